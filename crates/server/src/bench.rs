//! `olive bench …`: the command-line shapes of the load generators in `olive-bench`.

use anyhow::Context;
use clap::{Args, Subcommand};
use olive_bench::chat::{self, ChatOptions};
use olive_bench::checkout::{self, CheckoutOptions};
use olive_bench::http::{self, HttpOptions};
use olive_bench::mixed::{self, MixedOptions, MixedReport};
use olive_bench::publish::{self, PublishOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Publish N channels at real time from a local FLV file (looped) over RTMP.
    Publish(PublishArgs),
    /// Load one channel's live room: N viewer sockets, M chatters (signed up for the run).
    Chat(ChatArgs),
    /// A flash sale: one deal of N units, many buyers ordering it as fast as the server answers.
    Checkout(CheckoutArgs),
    /// A live-shopping peak: publishers, LL-HLS viewers, a busy room, pins and a flash sale at once.
    Mixed(MixedArgs),
    /// The read path (home feed, channel list, product detail) at full speed, path after path.
    Http(HttpArgs),
}

/// What every workload takes: whom to watch, where it may go, how to report.
#[derive(Args)]
pub struct Common {
    /// Sample these processes' CPU and RSS (the server under test), comma-separated.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Load addresses other than loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl Common {
    /// Prints the report as JSON, or as `human` lines.
    fn print<R: serde::Serialize>(&self, report: &R, human: impl FnOnce(&R)) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            human(report);
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct CheckoutArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin account that sets up the product, the channel and the deal.
    #[arg(long, env = "OLIVE_BENCH_ADMIN_EMAIL")]
    admin_email: String,
    #[arg(long, env = "OLIVE_BENCH_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
    /// Units in the deal.
    #[arg(long, default_value_t = 1000)]
    units: i64,
    /// Buyers (signed up for the run).
    #[arg(long, default_value_t = 2000)]
    buyers: usize,
    /// Units one buyer may get in the deal.
    #[arg(long, default_value_t = 1)]
    per_customer: i64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Attempts per second, all connections together, on a fixed schedule; latency counts from
    /// when each attempt was due. Without it each connection orders as fast as it is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// How long buyers keep ordering, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct HttpArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Paths to load, one after the other (repeat the flag, or separate with commas).
    #[arg(long = "path", value_delimiter = ',', default_values_t = http::DEFAULT_PATHS.map(String::from))]
    paths: Vec<String>,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds each path is loaded.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct MixedArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's RTMP application URL.
    #[arg(long, default_value = "rtmp://127.0.0.1:1935/live")]
    rtmp: String,
    /// An admin account: it creates the channels, products and the deal, and pins.
    #[arg(long, env = "OLIVE_BENCH_ADMIN_EMAIL")]
    admin_email: String,
    #[arg(long, env = "OLIVE_BENCH_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
    /// The FLV file every publisher sends (make one with `ffmpeg -i IN -c copy OUT.flv`).
    #[arg(long)]
    input: PathBuf,
    /// Channels live at once.
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// LL-HLS viewers, spread over the channels.
    #[arg(long, default_value_t = 1000)]
    hls_viewers: usize,
    /// Sockets in the first channel's room.
    #[arg(long, default_value_t = 2000)]
    chat_viewers: usize,
    /// Chatting accounts (signed up for the run; each may send one message a second).
    #[arg(long, default_value_t = 20)]
    chatters: usize,
    /// Chat messages per second, all chatters together.
    #[arg(long, default_value_t = 10.0)]
    chat_rate: f64,
    /// Hearts per second, all chatters together, each chatter's share tapped in one burst a second.
    #[arg(long, default_value_t = 200)]
    hearts: u64,
    /// Seconds between pins on each channel.
    #[arg(long, default_value_t = 5)]
    pin_every: u64,
    /// Units in the flash sale.
    #[arg(long, default_value_t = 500)]
    units: i64,
    /// Buyers (signed up for the run).
    #[arg(long, default_value_t = 1000)]
    buyers: usize,
    /// Concurrent buyer connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Sale attempts per second, all buyers together, on a fixed schedule (1,000 buyers pressing
    /// "buy" twice a second); 0: every connection as fast as it is answered.
    #[arg(long, default_value_t = 2000.0)]
    sale_rate: f64,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Also write the report (`mixed.json`) and latency-over-time plots (`latency-*.svg`) here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ChatArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The channel whose room to load.
    #[arg(long)]
    channel: i64,
    /// Viewer sockets.
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// Chatting accounts (signed up for the run; each may send one message a second). 0 only
    /// listens, for messages sent by another bench process with the same --run-id.
    #[arg(long, default_value_t = 20)]
    chatters: usize,
    /// Name the run (the bench messages carry it), to measure one room with several processes.
    #[arg(long)]
    run_id: Option<String>,
    /// Chat messages per second, all chatters together.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Hearts per second, all chatters together, each chatter's share tapped in one burst a second.
    #[arg(long, default_value_t = 0)]
    hearts: u64,
    /// How long the chatters send, in seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Spread viewers over 127.0.0.1 … 127.0.0.N.
    #[arg(long, default_value_t = 16)]
    sources: u8,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct PublishArgs {
    /// RTMP application URL to publish to.
    #[arg(long, default_value = "rtmp://127.0.0.1:1935/live")]
    rtmp: String,
    /// Stream keys, comma-separated.
    #[arg(long, value_delimiter = ',')]
    keys: Vec<String>,
    /// A file with one stream key per line (added to --keys).
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// How many channels to publish (default: every key given).
    #[arg(long)]
    channels: Option<usize>,
    /// The FLV file to send (make one with `ffmpeg -i IN -c copy OUT.flv`).
    #[arg(long)]
    input: PathBuf,
    /// How long to publish, in seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds after start before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Follow this LL-HLS playlist URL to measure server-side latency.
    #[arg(long)]
    follow: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Http(args) => {
            let report = http::run(HttpOptions {
                base: args.url.trim_end_matches('/').to_owned(),
                paths: args.paths,
                connections: args.connections,
                duration: Duration::from_secs(args.duration),
                server_pids: args.common.server_pid.clone(),
                allow_remote: args.common.allow_remote,
            })
            .await?;
            args.common.print(&report, |report| {
                println!(
                    "{} connections, {:.0} s per path, one request in flight per connection",
                    report.connections, report.seconds_per_path
                );
                println!(
                    "{:<28} {:>10} {:>8} {:>9} {:>9} {:>9} {:>7} {:>11}",
                    "path", "req/s", "MB/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU"
                );
                for p in &report.paths {
                    let cpu = p.server_cpu_percent.map_or_else(|| "-".to_owned(), |c| format!("{c:.0} %"));
                    println!(
                        "{:<28} {:>10.0} {:>8.1} {:>9.3} {:>9.3} {:>9.1} {:>7} {:>11}",
                        p.path,
                        p.requests_per_second,
                        p.megabytes_per_second,
                        p.latency.p50_ms,
                        p.latency.p99_ms,
                        p.latency.max_ms,
                        p.errors,
                        cpu
                    );
                }
            })?;
            let failures = report.failures();
            anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
            Ok(())
        }
        BenchCommand::Publish(args) => {
            let mut keys = args.keys;
            if let Some(file) = &args.keys_file {
                let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                keys.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
            }
            let wanted = args.channels.unwrap_or(keys.len());
            anyhow::ensure!(wanted > 0, "no stream keys: give --keys or --keys-file");
            anyhow::ensure!(keys.len() >= wanted, "{wanted} channels asked for but only {} keys given", keys.len());
            keys.truncate(wanted);
            anyhow::ensure!(args.warmup < args.duration, "--warmup must be shorter than --duration");
            let report = publish::run(PublishOptions {
                rtmp: args.rtmp,
                keys,
                input: args.input,
                duration: Duration::from_secs(args.duration),
                warmup: Duration::from_secs(args.warmup),
                allow_remote: args.common.allow_remote,
                follow: args.follow,
                server_pids: args.common.server_pid.clone(),
            })
            .await?;
            args.common.print(&report, |report| {
                println!(
                    "channels {}  duration {:.1} s  sent {:.1} Mbit/s  tags {}  failed {}  max lag {:.0} ms",
                    report.channels,
                    report.seconds,
                    report.megabits_sent_per_second,
                    report.tags_sent,
                    report.failed,
                    report.max_lag_ms
                );
                if let Some(l) = report.latency {
                    println!("latency (part's first frame in → blocking playlist out): n {} p50 {:.0} ms p99 {:.0} ms max {:.0} ms", l.count, l.p50_ms, l.p99_ms, l.max_ms);
                }
                if let Some(s) = report.server {
                    println!(
                        "server: {:.1} % of a core ({:.2} % per channel), RSS {:.1} MiB",
                        s.cpu_percent, s.cpu_percent_per_channel, s.rss_mib
                    );
                }
            })?;
            anyhow::ensure!(report.failed == 0, "{} publishers failed: {}", report.failed, report.errors.join("; "));
            Ok(())
        }
        BenchCommand::Mixed(args) => {
            anyhow::ensure!(
                args.chat_rate <= args.chatters as f64,
                "--chat-rate above --chatters: each chatter may send one message a second"
            );
            anyhow::ensure!(
                args.units > 0 && args.buyers > 0 && args.connections > 0 && args.pin_every > 0,
                "--units, --buyers, --connections and --pin-every must be positive"
            );
            // 0: as fast as answered.
            let sale_rate = (args.sale_rate != 0.0).then_some(args.sale_rate);
            checkout::check_rate(sale_rate).context("--sale-rate")?;
            let base = args.url.trim_end_matches('/').to_owned();
            let admin_token = olive_bench::accounts::log_in(&base, &args.admin_email, &args.admin_password).await?;
            eprintln!("signing up {} chatters and {} buyers…", args.chatters, args.buyers);
            let chatters = olive_bench::accounts::sign_up(&base, "chatter", args.chatters).await?;
            let buyers = olive_bench::accounts::sign_up(&base, "buyer", args.buyers).await?;
            let report = mixed::run(
                MixedOptions {
                    base,
                    rtmp: args.rtmp,
                    admin_token,
                    input: args.input,
                    channels: args.channels,
                    hls_viewers: args.hls_viewers,
                    chat_viewers: args.chat_viewers,
                    chatters,
                    chat_rate: args.chat_rate,
                    hearts: args.hearts,
                    pin_every: Duration::from_secs(args.pin_every),
                    buyers,
                    units: args.units,
                    connections: args.connections,
                    sale_rate,
                    duration: Duration::from_secs(args.duration),
                    server_pids: args.common.server_pid.clone(),
                    allow_remote: args.common.allow_remote,
                },
                |line| eprintln!("{line}"),
            )
            .await?;
            args.common.print(&report, print_mixed)?;
            if let Some(dir) = &args.out {
                mixed::write_files(&report, dir)?;
                eprintln!("report and plots written to {}", dir.display());
            }
            let failures = report.failures();
            anyhow::ensure!(failures.is_empty(), "the peak did not hold: {}", failures.join("; "));
            Ok(())
        }
        BenchCommand::Checkout(args) => {
            anyhow::ensure!(
                args.units > 0 && args.buyers > 0 && args.connections > 0,
                "--units, --buyers and --connections must be positive"
            );
            checkout::check_rate(args.rate).context("--rate")?;
            let base = args.url.trim_end_matches('/').to_owned();
            let admin_token = olive_bench::accounts::log_in(&base, &args.admin_email, &args.admin_password).await?;
            eprintln!("signing up {} buyers…", args.buyers);
            let buyers = olive_bench::accounts::sign_up(&base, "buyer", args.buyers).await?;
            let report = checkout::run(CheckoutOptions {
                base,
                admin_token,
                buyers,
                units: args.units,
                per_customer: args.per_customer,
                connections: args.connections,
                rate: args.rate,
                duration: Duration::from_secs(args.duration),
                server_pids: args.common.server_pid.clone(),
                allow_remote: args.common.allow_remote,
                timeline: None,
            })
            .await?;
            args.common.print(&report, |report| {
                println!(
                    "units {}  buyers {}  connections {}  {:.1} s: attempts {} ({:.0}/s)  orders {}  sold (server) {}  oversold {}",
                    report.units, report.buyers, report.connections, report.seconds, report.attempts,
                    report.attempts_per_second, report.created, report.server_sold, report.oversold
                );
                println!(
                    "refused: out of stock {}  limit reached {}  errors {}{}",
                    report.refused_out_of_stock,
                    report.refused_limit,
                    report.errors,
                    report.first_error.as_deref().map_or(String::new(), |e| format!(" (first: {e})"))
                );
                let (l, c) = (report.latency, report.latency_created);
                println!(
                    "latency, all attempts: p50 {:.2} ms  p99 {:.2} ms  max {:.1} ms",
                    l.p50_ms, l.p99_ms, l.max_ms
                );
                println!(
                    "latency, orders created: p50 {:.2} ms  p99 {:.2} ms  max {:.1} ms",
                    c.p50_ms, c.p99_ms, c.max_ms
                );
                if let Some(ms) = report.sold_out_after_ms {
                    println!("sold out after {ms:.0} ms");
                }
                if let (Some(cpu), Some(rss)) = (report.server_cpu_percent, report.server_rss_mib) {
                    println!("server: {cpu:.1} % of a core, RSS {rss:.1} MiB");
                }
            })?;
            anyhow::ensure!(report.oversold == 0, "OVERSOLD by {}", report.oversold);
            anyhow::ensure!(
                report.created as i64 == report.server_sold,
                "{} orders created but the deal counts {}",
                report.created,
                report.server_sold
            );
            Ok(())
        }
        BenchCommand::Chat(args) => {
            anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
            anyhow::ensure!(
                args.chatters > 0 || args.run_id.is_some(),
                "listening only (--chatters 0) needs the chatting process's --run-id"
            );
            let chatters =
                olive_bench::accounts::sign_up(args.url.trim_end_matches('/'), "chat", args.chatters).await?;
            let report = chat::run(ChatOptions {
                base: args.url,
                channel: args.channel,
                viewers: args.viewers,
                chatters,
                rate: args.rate,
                hearts: args.hearts,
                duration: Duration::from_secs(args.duration),
                source_addresses: args.sources,
                server_pids: args.common.server_pid.clone(),
                allow_remote: args.common.allow_remote,
                run_id: args.run_id,
                timeline: None,
            })
            .await?;
            args.common.print(&report, |report| {
                let l = report.latency;
                println!(
                    "viewers {} (failed {})  chatters {}  sent {} (refused {})  delivered {} ({:.0}/s)  lost {}",
                    report.viewers,
                    report.viewers_failed,
                    report.chatters,
                    report.sent,
                    report.refused,
                    report.delivered,
                    report.delivered_per_second,
                    report.lost.map_or_else(|| "unknown (listening only)".to_owned(), |n| n.to_string())
                );
                if report.hearts_sent > 0 {
                    let lost = report.hearts_lost.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
                    println!("hearts sent {}  missing from viewers' totals {lost}", report.hearts_sent);
                }
                println!(
                    "delivery latency (to the viewer's socket): p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
                    l.p50_ms, l.p99_ms, l.max_ms
                );
                let r = report.latency_read;
                println!(
                    "read by the load generator: p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
                    r.p50_ms, r.p99_ms, r.max_ms
                );
                if let (Some(cpu), Some(rss)) = (report.server_cpu_percent, report.server_rss_mib) {
                    let idle = report
                        .rss_per_idle_viewer_kib
                        .map_or(String::new(), |k| format!(", {k:.1} KiB per idle viewer"));
                    println!("server: {cpu:.1} % of a core, RSS {rss:.1} MiB{idle}");
                }
            })?;
            Ok(())
        }
    }
}

/// The mixed report as a table: one row per workload.
fn print_mixed(r: &MixedReport) {
    let row = |name: &str, rate: String, l: olive_bench::stats::Percentiles, errors: u64| {
        println!("{name:<22} {rate:>26} {:>9.1} {:>9.1} {:>9.1} {errors:>8}", l.p50_ms, l.p99_ms, l.max_ms);
    };
    println!("{:.0} s, channels {:?}", r.seconds, r.channels);
    println!("{:<22} {:>26} {:>9} {:>9} {:>9} {:>8}", "workload", "throughput", "p50 ms", "p99 ms", "max ms", "errors");
    let none = olive_bench::stats::Percentiles::default();
    row("publish", format!("{:.1} Mbit/s", r.publish.megabits_sent_per_second), none, r.publish.failed as u64);
    row(
        "LL-HLS viewers",
        format!("{:.0} parts/s ({} viewers)", r.hls.parts_per_second, r.hls.viewers),
        r.hls.cycle,
        r.hls.errors,
    );
    row(
        "chat delivery",
        format!("{:.0} msgs/s", r.chat.delivered_per_second),
        r.chat.latency,
        r.chat.viewers_failed as u64 + r.chat.refused,
    );
    row("hearts", format!("{} sent", r.chat.hearts_sent), none, 0);
    row("pins", format!("{} pins", r.pins.pins), r.pins.latency, r.pins.errors);
    row(
        "flash sale",
        match r.checkout.rate {
            Some(rate) => format!("{:.0} attempts/s (at {rate:.0}/s)", r.checkout.attempts_per_second),
            None => format!("{:.0} attempts/s", r.checkout.attempts_per_second),
        },
        r.checkout.latency,
        r.checkout.errors,
    );
    println!(
        "errors {}  lost chat messages {}  lost hearts {}  oversold {}  orders {} of {} units",
        r.errors, r.lost_messages, r.lost_hearts, r.oversold, r.checkout.created, r.checkout.units
    );
    if let (Some(cpu), Some(rss)) = (r.server_cpu_percent, r.server_rss_mib) {
        println!("server: {cpu:.0} % of a core, RSS {rss:.0} MiB");
    }
}
