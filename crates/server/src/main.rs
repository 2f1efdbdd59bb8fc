//! `olive`: one binary for the whole platform. This file only parses the command line, turns
//! signals into a shutdown, and hands over to the `olive_server` library, where each command lives.

use clap::{Parser, Subcommand};
use olive_server::config::{ServeArgs, ServeConfig};
use olive_server::{admin, backup, bench, config, cost, probe, reco, replication, telemetry, vision, Application};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "olive", version, about = "Live commerce in one program: live video, chat, catalogue, orders.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process.
    Serve(Box<config::ServeArgs>),
    /// Administrative tasks on the data directory or database.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// The recommender: offline evaluation on a public dataset.
    Reco {
        #[command(subcommand)]
        command: reco::RecoCommand,
    },
    /// What the platform costs: measured usage priced per channel and per day.
    Cost {
        #[command(subcommand)]
        command: cost::CostCommand,
    },
    /// Thumbnail labelling: label pictures with the vision model and time it.
    Vision {
        #[command(subcommand)]
        command: vision::VisionCommand,
    },
    /// Back up the embedded database (an online snapshot) and every object.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory.
    Restore(backup::RestoreArgs),
    /// Keep this data directory a warm standby of a primary's replica (--replica-url).
    Standby(replication::StandbyArgs),
    /// Turn a standby into a primary: stop following, check the database, allow `olive serve`.
    Promote(replication::PromoteArgs),
    /// Exit 0 when a URL answers 2xx within 3 s (the container's health check).
    Probe(probe::ProbeArgs),
    /// Load generators: drive a running Olive (or a peer) and report.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Admin { command } => admin::run(command).await,
            Command::Bench { command } => bench::run(command).await,
            Command::Reco { command } => reco::run(command).await,
            Command::Cost { command } => cost::run(command).await,
            Command::Probe(args) => probe::run(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Standby(args) => replication::standby(args).await,
            Command::Promote(args) => replication::promote(args).await,
            Command::Vision { command } => vision::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `olive serve`: the application until SIGTERM or Ctrl-C, then its orderly stop (exit 0).
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::from_args(&args)?;
    telemetry::init_logs();
    telemetry::log_panics();
    let signals = StopSignals::watch();
    let application = Application::build(config).await?;
    let trigger = application.shutdown_trigger();
    tokio::spawn(async move {
        signals.received().await;
        trigger.shutdown();
    });
    application.stopped().await;
    Ok(())
}

/// SIGTERM and Ctrl-C, watched from the start: a signal that arrives while the server is still
/// starting is kept rather than killing the process with its default action.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn watch() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let watch = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch {name}");
                    None
                }
            };
            StopSignals {
                term: watch(SignalKind::terminate(), "SIGTERM"),
                interrupt: watch(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Resolves on SIGTERM or Ctrl-C.
    async fn received(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(self.term) => {},
                () = next(self.interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Every password hash allocates 19 MiB (argon2id at OWASP's parameters). glibc raises its mmap
/// threshold after freeing the first such block, so later ones would be carved from per-thread arenas
/// and kept for good (an idle server sat at 50 MiB instead of 11). A fixed threshold keeps large
/// blocks mmapped and returned to the system when freed. It sits at 8 MiB, not glibc's 128 KiB
/// starting point: the thumbnail labeller's activations (up to 4.8 MB each) are allocated on every
/// picture, and mapping them afresh each time (page faults on zeroed pages) made labelling 60 %
/// slower.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: called first thing in main, before any other thread exists; mallopt only sets a tunable.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
