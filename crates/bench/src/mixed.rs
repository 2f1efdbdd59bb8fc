//! `olive bench mixed`: a live-shopping peak, every workload at once against one server for a
//! bounded time. It sets up its own channels (each with a product on its line-up) as an admin,
//! then runs together:
//!
//! - the publishers: one RTMP publisher per channel, sending an FLV file at real time;
//! - LL-HLS viewers following the lives with blocking reloads ([`crate::hls`]);
//! - a live room under load: viewer sockets and chatters on the first channel ([`crate::chat`]);
//! - the hosts pinning their product on every channel at an interval;
//! - a flash sale on one product ([`crate::checkout`]), its buyers pressing "buy" at a set rate (or
//!   as fast as answered), on a thread and runtime of their own.
//!
//! A line of progress goes to the caller every second (each workload's operations and p99 in the last
//! second). The report gives each workload's throughput, latency percentiles and errors, the chat
//! messages lost, the units oversold, the server's CPU and RSS over the measured window, and each
//! workload's latency second by second ([`crate::timeline`]), which [`write_files`] plots as SVG
//! beside the JSON report; [`MixedReport::failures`] lists what must be zero.

use crate::chat::{self, ChatOptions, ChatReport};
use crate::checkout::{self, CheckoutOptions, CheckoutReport};
use crate::hls::{self, HlsOptions, HlsReport};
use crate::publish::{self, PublishOptions, PublishReport};
use crate::stats::{percentiles, sample_processes, Percentiles};
use crate::timeline::{Second, Timeline};
use anyhow::Context;
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct MixedOptions {
    /// `http://127.0.0.1:8080`
    pub base: String,
    /// `rtmp://127.0.0.1:1935/live`
    pub rtmp: String,
    pub admin_token: String,
    /// The FLV file each publisher sends.
    pub input: PathBuf,
    pub channels: usize,
    pub hls_viewers: usize,
    pub chat_viewers: usize,
    /// Bearer tokens of the chatting accounts.
    pub chatters: Vec<String>,
    /// Chat messages per second, all chatters together.
    pub chat_rate: f64,
    /// Hearts per second, all chatters together, in bursts.
    pub hearts: u64,
    pub pin_every: Duration,
    /// Bearer tokens of the flash sale's buyers.
    pub buyers: Vec<String>,
    pub units: i64,
    pub connections: usize,
    /// Sale attempts per second, all buyers together; `None`: as fast as the server answers.
    pub sale_rate: Option<f64>,
    pub duration: Duration,
    pub server_pids: Vec<u32>,
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PinReport {
    pub pins: u64,
    pub errors: u64,
    pub latency: Percentiles,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MixedReport {
    pub seconds: f64,
    pub channels: Vec<i64>,
    pub publish: PublishReport,
    pub hls: HlsReport,
    pub chat: ChatReport,
    pub pins: PinReport,
    pub checkout: CheckoutReport,
    /// Every failed operation of every workload.
    pub errors: u64,
    pub lost_messages: u64,
    /// Hearts tapped but missing from a viewer's announced total, summed over viewers.
    pub lost_hearts: u64,
    pub oversold: i64,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_mib: Option<f64>,
    /// Each workload's latency, second by second.
    pub timelines: Vec<WorkloadTimeline>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkloadTimeline {
    /// `hls`, `chat`, `pins`, `checkout`
    pub workload: &'static str,
    /// What its latency measures.
    pub measures: &'static str,
    pub seconds: Vec<Second>,
}

/// The workloads whose latency is followed over time, and what each one measures.
const WORKLOADS: [(&str, &str); 4] = [
    ("hls", "LL-HLS viewer cycle (blocking playlist + part)"),
    ("chat", "chat delivery (sent → read by a viewer)"),
    ("pins", "pin request"),
    ("checkout", "flash-sale order attempt"),
];

/// Writes `mixed.json` and one `latency-<workload>.svg` per workload into `dir`.
pub fn write_files(report: &MixedReport, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("mixed.json"), serde_json::to_vec_pretty(report)?)?;
    for t in &report.timelines {
        let path = dir.join(format!("latency-{}.svg", t.workload));
        crate::plot::latency_svg(&path, &format!("{}: p50 and p99 latency, second by second", t.measures), &t.seconds)?;
    }
    Ok(())
}

impl MixedReport {
    /// What went wrong: errors, lost messages, oversold units (empty when the run held).
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        if self.errors > 0 {
            let first = [&self.hls.first_error, &self.checkout.first_error]
                .into_iter()
                .flatten()
                .next()
                .cloned()
                .or_else(|| self.publish.errors.first().cloned());
            failed.push(format!(
                "{} errors (first: {})",
                self.errors,
                first.unwrap_or_else(|| "see the report".into())
            ));
        }
        if self.lost_messages > 0 {
            failed.push(format!("{} chat messages lost", self.lost_messages));
        }
        if self.lost_hearts > 0 {
            failed.push(format!("{} hearts lost", self.lost_hearts));
        }
        if self.oversold > 0 {
            failed.push(format!("{} units oversold", self.oversold));
        }
        failed
    }
}

async fn api(
    client: &reqwest::Client,
    token: &str,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> anyhow::Result<Value> {
    let r = client.request(method, &url).bearer_auth(token).json(&body).send().await.with_context(|| url.clone())?;
    let status = r.status();
    let text = r.text().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One channel per publisher, each with its own product on the line-up: `(channel, product, key)`.
async fn set_up(client: &reqwest::Client, opts: &MixedOptions, run: u128) -> anyhow::Result<Vec<(i64, i64, String)>> {
    let (base, token) = (&opts.base, &opts.admin_token);
    let mut shows = Vec::new();
    for i in 0..opts.channels {
        let product = api(client, token, reqwest::Method::POST, format!("{base}/api/v1/products"),
            json!({"name": format!("Mixed bench {run} #{i}"), "category": "skincare", "price_minor": 12_000, "stock": 1_000}))
            .await?["id"].as_i64().context("no product id")?;
        let channel = api(
            client,
            token,
            reqwest::Method::POST,
            format!("{base}/api/v1/channels"),
            json!({"title": format!("Mixed bench {run} #{i}")}),
        )
        .await?;
        let (id, key) = (
            channel["id"].as_i64().context("no channel id")?,
            channel["stream_key"].as_str().context("no stream key")?.to_owned(),
        );
        api(
            client,
            token,
            reqwest::Method::PUT,
            format!("{base}/api/v1/channels/{id}/lineup"),
            json!({"product_ids": [product]}),
        )
        .await?;
        shows.push((id, product, key));
    }
    Ok(shows)
}

/// Waits until every channel shows live.
async fn wait_live(client: &reqwest::Client, base: &str, channels: &[i64]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in channels {
        loop {
            let c: Value = client.get(format!("{base}/api/v1/channels/{id}")).send().await?.json().await?;
            if c["status"] == "live" {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "channel {id} did not go live within 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Every `every`, each host pins its product, until `until`.
async fn pin(
    client: reqwest::Client,
    opts: MixedOptions,
    shows: Vec<(i64, i64)>,
    until: Instant,
    timeline: Arc<Timeline>,
) -> PinReport {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut tick = tokio::time::interval(opts.pin_every);
    loop {
        tick.tick().await;
        if Instant::now() >= until {
            break;
        }
        for (channel, product) in &shows {
            let started = Instant::now();
            let url = format!("{}/api/v1/channels/{channel}/pin", opts.base);
            match api(&client, &opts.admin_token, reqwest::Method::POST, url, json!({"product_id": product})).await {
                Ok(_) => {
                    latencies.push(started.elapsed());
                    timeline.record(Instant::now(), started.elapsed());
                }
                Err(_) => errors += 1,
            }
        }
    }
    PinReport { pins: latencies.len() as u64, errors, latency: percentiles(&mut latencies) }
}

fn sample(pids: &[u32]) -> Option<(Instant, Duration, u64)> {
    if pids.is_empty() {
        return None;
    }
    let s = sample_processes(pids).ok()?;
    Some((Instant::now(), s.cpu, s.rss_bytes))
}

/// Runs `work` on a thread of its own, with a single-threaded runtime. The buyers' requests are
/// then sent and read when they are due, not after the answers of a thousand video players that
/// share the load generator's run queue (a shopper's phone has its own): the sale's latency is the
/// server's and the network's.
fn on_own_thread<T: Send + 'static>(
    name: &str,
    work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> impl Future<Output = anyhow::Result<T>> {
    let (done, result) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(work));
        let _ = done.send(outcome);
    });
    async move {
        thread.context("starting a load thread")?;
        result.await.context("a load thread stopped without a result")?
    }
}

/// Runs the peak; `progress` is given a line of progress every second (the binary prints it).
pub async fn run(opts: MixedOptions, progress: impl Fn(&str) + Send + Sync + 'static) -> anyhow::Result<MixedReport> {
    anyhow::ensure!(opts.channels > 0, "at least one channel");
    crate::http_target(&opts.base, opts.allow_remote)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let shows = set_up(&client, &opts, run).await?;
    let channels: Vec<i64> = shows.iter().map(|s| s.0).collect();

    // The publishers run from before the measured window to its end.
    let lead = Duration::from_secs(8);
    let publishing = tokio::spawn(publish::run(PublishOptions {
        rtmp: opts.rtmp.clone(),
        keys: shows.iter().map(|s| s.2.clone()).collect(),
        input: opts.input.clone(),
        duration: lead + opts.duration,
        warmup: lead,
        allow_remote: opts.allow_remote,
        follow: None,
        server_pids: Vec::new(),
    }));
    wait_live(&client, &opts.base, &channels).await?;
    // A few parts into each live before viewers arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let until = started + opts.duration;
    let before = sample(&opts.server_pids);
    // Room for the workloads' stragglers after the window.
    let span = opts.duration.as_secs() as usize + 30;
    let timelines: Vec<Arc<Timeline>> = WORKLOADS.iter().map(|_| Arc::new(Timeline::new(started, span))).collect();
    let hls = tokio::spawn(hls::run(HlsOptions {
        base: opts.base.clone(),
        channels: channels.clone(),
        viewers: opts.hls_viewers,
        duration: opts.duration,
        timeline: Some(timelines[0].clone()),
    }));
    let room = tokio::spawn(chat::run(ChatOptions {
        base: opts.base.clone(),
        channel: channels[0],
        viewers: opts.chat_viewers,
        chatters: opts.chatters.clone(),
        rate: opts.chat_rate,
        hearts: opts.hearts,
        duration: opts.duration,
        source_addresses: 8,
        server_pids: Vec::new(),
        allow_remote: opts.allow_remote,
        run_id: Some(format!("mixed-{run}")),
        timeline: Some(timelines[1].clone()),
    }));
    let pins = tokio::spawn(pin(
        client.clone(),
        opts.clone(),
        shows.iter().map(|s| (s.0, s.1)).collect(),
        until,
        timelines[2].clone(),
    ));
    let sale = on_own_thread(
        "flash-sale",
        checkout::run(CheckoutOptions {
            base: opts.base.clone(),
            admin_token: opts.admin_token.clone(),
            buyers: opts.buyers.clone(),
            units: opts.units,
            per_customer: 1,
            connections: opts.connections,
            duration: opts.duration,
            rate: opts.sale_rate,
            server_pids: Vec::new(),
            allow_remote: opts.allow_remote,
            timeline: Some(timelines[3].clone()),
        }),
    );
    let watched = timelines.clone();
    let progress = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while Instant::now() < until {
            tick.tick().await;
            let now = Instant::now();
            let line: Vec<String> = WORKLOADS
                .iter()
                .zip(&watched)
                .map(|((name, _), t)| {
                    let s = t.last_second(now);
                    format!("{name} {}/s p99 {:.0} ms", s.count, s.p99_ms)
                })
                .collect();
            progress(&format!("[{:>4.0} s] {}", started.elapsed().as_secs_f64(), line.join(" | ")));
        }
    });
    let hls = hls.await?.context("LL-HLS viewers")?;
    let chat = room.await?.context("the live room")?;
    let pins = pins.await?;
    let checkout = sale.await.context("the flash sale")?;
    let after = sample(&opts.server_pids);
    progress.abort();
    let publish = publishing.await?.context("the publishers")?;

    let usage = before.zip(after).map(|((t0, cpu0, _), (t1, cpu1, rss))| {
        ((cpu1.saturating_sub(cpu0)).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0, rss as f64 / (1024.0 * 1024.0))
    });
    let errors =
        publish.failed as u64 + hls.errors + chat.viewers_failed as u64 + chat.refused + pins.errors + checkout.errors;
    Ok(MixedReport {
        seconds: started.elapsed().as_secs_f64(),
        channels,
        lost_messages: chat.lost.unwrap_or(0),
        lost_hearts: chat.hearts_lost.unwrap_or(0),
        oversold: checkout.oversold,
        errors,
        publish,
        hls,
        chat,
        pins,
        checkout,
        server_cpu_percent: usage.map(|u| u.0),
        server_rss_mib: usage.map(|u| u.1),
        timelines: WORKLOADS
            .iter()
            .zip(&timelines)
            .map(|((workload, measures), t)| WorkloadTimeline {
                workload,
                measures,
                seconds: t.per_second(opts.duration.as_secs() as usize),
            })
            .collect(),
    })
}
