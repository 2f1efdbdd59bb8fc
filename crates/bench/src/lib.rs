//! `olive bench …`: load generators that talk to a running Olive (or a peer such as nginx-rtmp)
//! over loopback and report throughput and latency. Each workload is a module; the command-line
//! shapes live in the `olive` binary.

pub mod accounts;
pub mod chat;
pub mod checkout;
pub mod flv_file;
pub mod hls;
pub mod mixed;
pub mod plot;
pub mod publish;
pub mod rtmp_client;
pub mod stats;
pub mod timeline;
