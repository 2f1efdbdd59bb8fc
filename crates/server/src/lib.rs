//! The Olive platform as a library: [`application::Application`] (what `olive serve` runs), the
//! HTTP serving machinery it owns, the job handlers and workers it starts, and the other commands
//! of the `olive` binary, whose `main` only parses the command line and hands over.

pub mod admin;
mod api_lane;
pub mod application;
pub mod backup;
mod batched_writes;
pub mod bench;
pub mod config;
pub mod cost;
mod demo;
mod engines;
mod http_limits;
mod http_server;
mod labelling;
mod operations;
pub mod probe;
pub mod reco;
pub mod replication;
pub mod telemetry;
pub mod vision;

pub use application::{Application, ShutdownTrigger};
