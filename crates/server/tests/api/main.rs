//! Black-box tests: each starts the real `olive` binary on port 0 with a fresh data directory (or
//! a fresh PostgreSQL database) and talks to it over HTTP, as a client would. One test binary, so
//! everything links once.

mod accounts;
mod backup;
mod benches;
mod cluster;
mod cost;
mod deals;
mod events;
mod feed;
mod helpers;
mod hostile;
mod hostile_clients;
mod in_process;
mod ladder;
mod live;
mod observability;
mod ops;
mod orders;
mod pg_failover;
mod reco;
mod replays;
mod roles;
mod room;
mod s3;
mod security;
mod standby;
mod vision;
mod web;
mod web_app;
mod webhooks;
