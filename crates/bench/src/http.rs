//! `olive bench http`: the read path at full speed, for comparison with `wrk`. Each path is loaded
//! in turn by a fixed number of keep-alive HTTP/1.1 connections, each sending its next request as
//! soon as the last answer's body is in (a closed loop, as `wrk` does; no pipelining). Only 2xx
//! answers count as served; anything else, and every broken connection, is an error with its first
//! instance kept for the report.
//!
//! The client is hyper's own HTTP/1 connection, without a pool or redirects, so the generator
//! spends little of the machine it shares with the server.

use crate::stats::{sample_processes, Percentiles};
use crate::timeline::Timeline;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The read path a shopper's home and watch pages ask for.
pub const DEFAULT_PATHS: [&str; 3] = ["/api/v1/feed", "/api/v1/channels", "/api/v1/products/1"];

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `http://IP:PORT`.
    pub base: String,
    /// Paths loaded one after the other.
    pub paths: Vec<String>,
    pub connections: usize,
    /// How long each path is loaded.
    pub duration: Duration,
    pub server_pids: Vec<u32>,
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpReport {
    pub connections: usize,
    pub seconds_per_path: f64,
    pub paths: Vec<PathReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    pub path: String,
    /// 2xx answers, bodies read in full.
    pub requests: u64,
    pub requests_per_second: f64,
    /// Body bytes per second (MB/s, 10⁶).
    pub megabytes_per_second: f64,
    /// Non-2xx answers and failed requests or connections.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Request sent → body read, from a log histogram (each figure within 9 %).
    pub latency: Percentiles,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_mib: Option<f64>,
}

impl HttpReport {
    /// What makes the run a failure: any error on any path, or a path never answered.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for p in &self.paths {
            if p.errors > 0 {
                failures.push(format!(
                    "{}: {} errors (first: {})",
                    p.path,
                    p.errors,
                    p.first_error.as_deref().unwrap_or("?")
                ));
            } else if p.requests == 0 {
                failures.push(format!("{}: no answer in {:.0} s", p.path, self.seconds_per_path));
            }
        }
        failures
    }
}

pub async fn run(options: HttpOptions) -> anyhow::Result<HttpReport> {
    let (url, _) = crate::http_target(&options.base, options.allow_remote)?;
    anyhow::ensure!(options.connections > 0, "--connections must be positive");
    anyhow::ensure!(!options.duration.is_zero(), "--duration must be positive");
    anyhow::ensure!(!options.paths.is_empty(), "no paths to load");
    for path in &options.paths {
        anyhow::ensure!(path.starts_with('/'), "path {path:?} must start with /");
        path.parse::<hyper::Uri>().with_context(|| format!("path {path:?}"))?;
    }
    let host = url.host_str().context("--url has no host")?;
    let port = url.port_or_known_default().context("--url has no port")?;
    let authority = format!("{host}:{port}");
    let mut paths = Vec::with_capacity(options.paths.len());
    for path in &options.paths {
        paths.push(load_path(&authority, path, &options).await?);
    }
    Ok(HttpReport { connections: options.connections, seconds_per_path: options.duration.as_secs_f64(), paths })
}

/// Counters every connection of one path adds to.
struct Tally {
    timeline: Timeline,
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().expect("first error poisoned").get_or_insert(what);
    }
}

async fn load_path(authority: &str, path: &str, options: &HttpOptions) -> anyhow::Result<PathReport> {
    let seconds = options.duration.as_secs() as usize + 1;
    let start = Instant::now();
    let tally = Arc::new(Tally {
        timeline: Timeline::new(start, seconds),
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let deadline = start + options.duration;
    let server_before = sample_processes(&options.server_pids).ok();
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .with_context(|| format!("path {path:?}"))?;
    let tasks: Vec<_> = (0..options.connections)
        .map(|_| tokio::spawn(connection(authority.to_owned(), request.clone(), deadline, tally.clone())))
        .collect();
    for task in tasks {
        task.await.context("a connection task panicked")?;
    }
    let elapsed = start.elapsed();
    let server_after = sample_processes(&options.server_pids).ok();
    let (server_cpu_percent, server_rss_mib) = match (server_before, server_after) {
        (Some(b), Some(a)) if !options.server_pids.is_empty() => (
            Some((a.cpu.saturating_sub(b.cpu)).as_secs_f64() / elapsed.as_secs_f64() * 100.0),
            Some(a.rss_bytes as f64 / (1024.0 * 1024.0)),
        ),
        _ => (None, None),
    };
    let requests = tally.requests.load(Ordering::Relaxed);
    let first_error = tally.first_error.lock().expect("first error poisoned").clone();
    Ok(PathReport {
        path: path.to_owned(),
        requests,
        requests_per_second: requests as f64 / elapsed.as_secs_f64(),
        megabytes_per_second: tally.bytes.load(Ordering::Relaxed) as f64 / 1e6 / elapsed.as_secs_f64(),
        errors: tally.errors.load(Ordering::Relaxed),
        first_error,
        latency: tally.timeline.overall(seconds),
        server_cpu_percent,
        server_rss_mib,
    })
}

/// One keep-alive connection asking for `request` until `deadline`; a broken connection is counted
/// and opened again.
async fn connection(authority: String, request: hyper::Request<Empty<Bytes>>, deadline: Instant, tally: Arc<Tally>) {
    while Instant::now() < deadline {
        let stream = match tokio::time::timeout_at(deadline.into(), TcpStream::connect(&authority)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tally.error(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => return,
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = match http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => {
                tally.error(format!("handshake: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let driver = tokio::spawn(conn);
        while Instant::now() < deadline {
            let sent = Instant::now();
            match tokio::time::timeout_at(deadline.into(), exchange(&mut sender, request.clone())).await {
                Err(_) => break, // the run ended with this request in flight: not counted
                Ok(Ok(bytes)) => {
                    let done = Instant::now();
                    tally.timeline.record(done, done - sent);
                    tally.requests.fetch_add(1, Ordering::Relaxed);
                    tally.bytes.fetch_add(bytes, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    tally.error(e);
                    if sender.is_closed() {
                        break;
                    }
                }
            }
        }
        driver.abort();
    }
}

/// Sends one request and reads the whole answer; its body length when 2xx.
async fn exchange(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<u64, String> {
    sender.ready().await.map_err(|e| format!("connection: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    if !status.is_success() {
        return Err(format!("status {status}"));
    }
    Ok(body.len() as u64)
}
