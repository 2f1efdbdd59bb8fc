//! LL-HLS viewers for load: each follows a live as a player does — the playlist, then the part its
//! preload hint names (the request blocks on the server until the part is cut), then the playlist
//! again blocking on that part (`_HLS_msn`/`_HLS_part`, RFC 8216bis §6.2.5.2). A failure starts
//! over from a plain playlist request after a short pause. It counts parts, bytes and errors, and
//! times each cycle (blocking playlist plus part): at the live edge a cycle lasts about one part
//! duration, so a long cycle is a viewer falling behind.

use crate::stats::{Histogram, Percentiles};
use crate::timeline::Timeline;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct HlsOptions {
    /// `http://127.0.0.1:8080`
    pub base: String,
    /// The channels to watch; viewers are spread over them in turn.
    pub channels: Vec<i64>,
    pub viewers: usize,
    pub duration: Duration,
    /// Where each cycle's latency is also recorded by second, for plots and progress.
    pub timeline: Option<Arc<Timeline>>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HlsReport {
    pub viewers: usize,
    pub seconds: f64,
    pub parts: u64,
    pub parts_per_second: f64,
    pub megabits_per_second: f64,
    /// Failed playlist or part requests (statuses other than 200, transport errors).
    pub errors: u64,
    pub first_error: Option<String>,
    /// One cycle: the blocking playlist request and the part it announced.
    pub cycle: Percentiles,
}

#[derive(Default)]
struct Shared {
    parts: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    cycles: Histogram,
}

impl Shared {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().expect("first error poisoned").get_or_insert(what);
    }
}

/// The `(msn, part)` of a preload hint's URI `part-MSN-PART.m4s`.
pub fn hinted_part(playlist: &str) -> Option<(String, u64, u32)> {
    let uri = playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))?;
    let uri = uri.split('"').next()?;
    let (msn, part) = uri.strip_prefix("part-")?.strip_suffix(".m4s")?.split_once('-')?;
    Some((uri.to_owned(), msn.parse().ok()?, part.parse().ok()?))
}

async fn follow(
    client: reqwest::Client,
    base: String,
    channel: i64,
    until: Instant,
    shared: Arc<Shared>,
    timeline: Option<Arc<Timeline>>,
) {
    let mut query = String::new();
    while Instant::now() < until {
        let started = Instant::now();
        match cycle(&client, &base, channel, &query).await {
            Ok(Some((next, bytes))) => {
                shared.parts.fetch_add(1, Ordering::Relaxed);
                shared.bytes.fetch_add(bytes, Ordering::Relaxed);
                shared.cycles.record(started.elapsed().as_millis() as u64);
                if let Some(t) = &timeline {
                    t.record(Instant::now(), started.elapsed());
                }
                query = next;
                continue;
            }
            // Ended, or not started: look again shortly.
            Ok(None) => {}
            Err(e) => shared.error(format!("channel {channel}: {e}")),
        }
        query.clear();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One cycle: the playlist (blocking on `query`), then the part its preload hint names. Gives the
/// query that blocks on that part and the part's size, or `None` when the playlist hints no part.
async fn cycle(
    client: &reqwest::Client,
    base: &str,
    channel: i64,
    query: &str,
) -> Result<Option<(String, u64)>, String> {
    let text =
        get(client, format!("{base}/live/{channel}/index.m3u8{query}")).await.map_err(|e| format!("playlist: {e}"))?;
    let Some((uri, msn, part)) = hinted_part(&String::from_utf8_lossy(&text)) else { return Ok(None) };
    let bytes =
        receive(client, format!("{base}/live/{channel}/{uri}")).await.map_err(|e| format!("part {uri}: {e}"))?;
    Ok(Some((format!("?_HLS_msn={msn}&_HLS_part={part}"), bytes)))
}

/// Receives a `200` answer's body chunk by chunk, as a player feeding its decoder would, without
/// gathering it in one buffer (with 1,000 viewers that copy alone was 600 MB/s of the load
/// generator's time); gives its length, checked against `Content-Length`.
async fn receive(client: &reqwest::Client, url: String) -> Result<u64, String> {
    let mut r = client.get(url).send().await.map_err(|e| e.to_string())?;
    if r.status() != reqwest::StatusCode::OK {
        return Err(r.status().to_string());
    }
    let expected = r.content_length();
    let mut received = 0u64;
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        received += chunk.len() as u64;
    }
    match expected {
        Some(expected) if expected != received => Err(format!("{received} of {expected} bytes")),
        _ => Ok(received),
    }
}

/// A `200` answer's body, or why not.
async fn get(client: &reqwest::Client, url: String) -> Result<bytes::Bytes, String> {
    let r = client.get(url).send().await.map_err(|e| e.to_string())?;
    if r.status() != reqwest::StatusCode::OK {
        return Err(r.status().to_string());
    }
    r.bytes().await.map_err(|e| e.to_string())
}

pub async fn run(opts: HlsOptions) -> anyhow::Result<HlsReport> {
    anyhow::ensure!(!opts.channels.is_empty(), "no channels to watch");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(opts.viewers.max(1))
        .build()?;
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let until = started + opts.duration;
    let tasks: Vec<_> = (0..opts.viewers)
        .map(|i| {
            let channel = opts.channels[i % opts.channels.len()];
            tokio::spawn(follow(
                client.clone(),
                opts.base.clone(),
                channel,
                until,
                shared.clone(),
                opts.timeline.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let parts = shared.parts.load(Ordering::Relaxed);
    let first_error = shared.first_error.lock().expect("first error poisoned").clone();
    Ok(HlsReport {
        viewers: opts.viewers,
        seconds,
        parts,
        parts_per_second: parts as f64 / seconds,
        megabits_per_second: shared.bytes.load(Ordering::Relaxed) as f64 * 8.0 / seconds / 1e6,
        errors: shared.errors.load(Ordering::Relaxed),
        first_error,
        cycle: shared.cycles.percentiles(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preload_hint_names_the_next_part() {
        let playlist = "#EXTM3U\n#EXT-X-PART:DURATION=0.5,URI=\"part-12-2.m4s\"\n\
                        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-12-3.m4s\"\n";
        assert_eq!(hinted_part(playlist), Some(("part-12-3.m4s".into(), 12, 3)));
        assert_eq!(hinted_part("#EXTM3U\n#EXT-X-ENDLIST\n"), None);
        assert_eq!(hinted_part("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-x-1.m4s\"\n"), None);
        assert_eq!(hinted_part("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-1-99999999999.m4s\"\n"), None);
    }
}
