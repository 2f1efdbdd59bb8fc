//! `olive bench publish`: N RTMP publishers sending the tags of one FLV file at real time, looped,
//! for a bounded duration — the load of N broadcasters. Optionally follows one channel's LL-HLS
//! playlist with blocking reloads to measure server-side latency (a part's first frame arriving
//! over RTMP → the blocking playlist request that lists the part returning), and samples the
//! server's CPU and memory.

use crate::flv_file::{self, Tag, TagKind};
use crate::rtmp_client::{Publisher, Target};
use crate::stats::{percentiles, sample_processes, Percentiles};
use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// `rtmp://host:port/app`
    pub rtmp: String,
    pub keys: Vec<String>,
    pub input: PathBuf,
    pub duration: Duration,
    /// Measure from this long after start (publishers connecting and filling windows).
    pub warmup: Duration,
    pub allow_remote: bool,
    /// A playlist URL to follow for latency.
    pub follow: Option<String>,
    /// The server's processes (several for nginx's workers), for CPU and RSS.
    pub server_pids: Vec<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    pub channels: usize,
    pub seconds: f64,
    pub megabits_sent_per_second: f64,
    pub tags_sent: u64,
    /// Publishers the server refused or disconnected.
    pub failed: usize,
    /// Why, for the first few.
    pub errors: Vec<String>,
    /// How far behind real time the slowest publisher fell.
    pub max_lag_ms: f64,
    pub latency: Option<Percentiles>,
    pub server: Option<ServerUsage>,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ServerUsage {
    /// Of one core, over the measured window.
    pub cpu_percent: f64,
    pub cpu_percent_per_channel: f64,
    pub rss_mib: f64,
}

struct ChannelResult {
    error: Option<String>,
    bytes: u64,
    tags: u64,
    failed: bool,
    max_lag: Duration,
}

pub async fn run(opts: PublishOptions) -> anyhow::Result<PublishReport> {
    let file = Bytes::from(std::fs::read(&opts.input).with_context(|| format!("reading {}", opts.input.display()))?);
    let tags = Arc::new(flv_file::parse(&file).with_context(|| opts.input.display().to_string())?);
    let targets: Vec<Target> = opts.keys.iter().map(|k| Target::parse(&opts.rtmp, k)).collect::<anyhow::Result<_>>()?;
    if !opts.allow_remote {
        anyhow::ensure!(
            targets.iter().all(Target::is_loopback),
            "refusing a non-loopback target without --allow-remote"
        );
    }
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut tasks = Vec::new();
    for (i, target) in targets.into_iter().enumerate() {
        let tags = tags.clone();
        // Stagger the starts so keyframes of all channels do not arrive together.
        let delay = Duration::from_millis((i as u64 * 37) % 2000);
        tasks.push(tokio::spawn(async move { publish_one(target, tags, delay, deadline).await }));
    }
    let follower = opts.follow.clone().map(|url| tokio::spawn(follow(url, started + opts.warmup, deadline)));
    let usage = if opts.server_pids.is_empty() {
        None
    } else {
        let sample_all = |pids: &[u32]| -> anyhow::Result<(Duration, u64)> {
            let s = sample_processes(pids).context("reading the server's /proc")?;
            Ok((s.cpu, s.rss_bytes))
        };
        tokio::time::sleep_until((started + opts.warmup).into()).await;
        let (t0, (cpu0, _)) = (Instant::now(), sample_all(&opts.server_pids)?);
        tokio::time::sleep_until(deadline.into()).await;
        let (t1, (cpu1, rss)) = (Instant::now(), sample_all(&opts.server_pids)?);
        Some(((cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0, rss))
    };
    let results: Vec<ChannelResult> =
        futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("publisher task panicked")).collect();
    let latency = match follower {
        Some(f) => Some(percentiles(&mut f.await.expect("follower panicked"))),
        None => None,
    };
    let seconds = started.elapsed().as_secs_f64();
    let channels = results.len();
    Ok(PublishReport {
        channels,
        seconds,
        megabits_sent_per_second: results.iter().map(|r| r.bytes).sum::<u64>() as f64 * 8.0 / seconds / 1e6,
        tags_sent: results.iter().map(|r| r.tags).sum(),
        failed: results.iter().filter(|r| r.failed).count(),
        errors: results.iter().filter_map(|r| r.error.clone()).take(5).collect(),
        max_lag_ms: results.iter().map(|r| r.max_lag.as_secs_f64() * 1e3).fold(0.0, f64::max),
        latency,
        server: usage.map(|(cpu_percent, rss)| ServerUsage {
            cpu_percent,
            cpu_percent_per_channel: cpu_percent / channels.max(1) as f64,
            rss_mib: rss as f64 / (1024.0 * 1024.0),
        }),
    })
}

/// Sends the file's tags at their own pace, looping with continuing timestamps.
async fn publish_one(target: Target, tags: Arc<Vec<Tag>>, delay: Duration, deadline: Instant) -> ChannelResult {
    let mut result = ChannelResult { error: None, bytes: 0, tags: 0, failed: false, max_lag: Duration::ZERO };
    tokio::time::sleep(delay).await;
    let mut publisher = match Publisher::connect(&target).await {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(format!("cannot connect: {e}"));
            result.failed = true;
            return result;
        }
    };
    let first = tags.iter().map(|t| t.timestamp_ms).min().unwrap_or(0);
    let last = tags.iter().map(|t| t.timestamp_ms).max().unwrap_or(0);
    let loop_len = u64::from(last - first) + 33;
    let start = Instant::now();
    let mut offset = 0u64;
    'outer: loop {
        for tag in tags.iter() {
            if tag.kind == TagKind::Script && offset > 0 {
                continue;
            }
            let ts = offset + u64::from(tag.timestamp_ms - first);
            let due = start + Duration::from_millis(ts);
            if due >= deadline {
                break 'outer;
            }
            let now = Instant::now();
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else {
                result.max_lag = result.max_lag.max(now - due);
            }
            if publisher.queue(tag.kind, ts as u32, tag.payload.clone()).is_err() {
                result.failed = true;
                break 'outer;
            }
            match publisher.flush().await {
                Ok(n) => {
                    result.bytes += n as u64;
                    result.tags += 1;
                }
                Err(_) => {
                    result.failed = true;
                    break 'outer;
                }
            }
        }
        offset += loop_len;
    }
    result.failed |= publisher.is_closed() && result.tags == 0;
    result
}

/// Follows a playlist with blocking reloads; for every part that appears after `from`, the time
/// from its first frame (its program date-time) to the response that listed it.
async fn follow(url: String, from: Instant, deadline: Instant) -> Vec<std::time::Duration> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
    let mut seen: HashSet<(u64, u32)> = HashSet::new();
    let mut latencies = Vec::new();
    let mut hint: Option<(u64, u32)> = None;
    while Instant::now() < deadline {
        let request_url = match hint {
            Some((msn, part)) => format!("{url}?_HLS_msn={msn}&_HLS_part={part}"),
            None => url.clone(),
        };
        let response = match tokio::time::timeout_at(deadline.into(), client.get(&request_url).send()).await {
            Err(_) => break, // the run is over
            Ok(Ok(r)) => r,
            Ok(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let text = response.text().await.unwrap_or_default();
        let returned = Utc::now();
        let record = Instant::now() >= from && hint.is_some();
        let parsed = parse_parts(&text);
        for (key, start) in parsed.parts {
            if seen.insert(key) && record {
                if let Ok(latency) = (returned - start).to_std() {
                    latencies.push(latency);
                }
            }
        }
        hint = parsed.hint;
        if hint.is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    latencies
}

struct ParsedParts {
    parts: Vec<((u64, u32), DateTime<Utc>)>,
    hint: Option<(u64, u32)>,
}

fn part_key(uri: &str) -> Option<(u64, u32)> {
    let (msn, index) = uri.trim_matches('"').strip_prefix("part-")?.strip_suffix(".m4s")?.split_once('-')?;
    Some((msn.parse().ok()?, index.parse().ok()?))
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split([':', ',']).find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Each listed part with its start time (segment date-time plus the parts before it).
fn parse_parts(text: &str) -> ParsedParts {
    let mut parts = Vec::new();
    let mut hint = None;
    let mut segment_start: Option<DateTime<Utc>> = None;
    let mut offset_ms = 0.0;
    for line in text.lines() {
        if let Some(pdt) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            segment_start = DateTime::parse_from_rfc3339(pdt).ok().map(|t| t.with_timezone(&Utc));
            offset_ms = 0.0;
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let duration: f64 = attr(rest, "DURATION").and_then(|d| d.parse().ok()).unwrap_or(0.0);
            if let (Some(start), Some(key)) = (segment_start, attr(rest, "URI").and_then(part_key)) {
                parts.push((key, start + chrono::Duration::microseconds((offset_ms * 1000.0) as i64)));
            }
            offset_ms += duration * 1000.0;
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            hint = attr(rest, "URI").and_then(part_key);
        }
    }
    ParsedParts { parts, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_get_their_start_times() {
        let text = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z\n\
            #EXT-X-PART:DURATION=0.433,URI=\"part-7-0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.467,URI=\"part-7-1.m4s\"\n#EXTINF:0.900,\nseg-7.m4s\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.900Z\n#EXT-X-PART:DURATION=0.433,URI=\"part-8-0.m4s\"\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-8-1.m4s\"\n";
        let parsed = parse_parts(text);
        assert_eq!(parsed.hint, Some((8, 1)));
        let t0 = parsed.parts[0].1;
        let starts: Vec<_> = parsed.parts.iter().map(|(k, t)| (*k, (*t - t0).num_milliseconds())).collect();
        assert_eq!(starts, vec![((7, 0), 0), ((7, 1), 433), ((8, 0), 900)]);
    }
}
