//! Quick requests are served on a lane of their own: connections whose first request is an
//! ordinary API call (an order, a page of the feed) run on a second runtime, so a checkout never
//! waits in a run queue behind video.
//!
//! When a part is published, every viewer blocked on it (LL-HLS blocking reloads and preload
//! hints) wakes at once, and each is sent a few hundred kilobytes: with 1,000 viewers that is tens
//! of milliseconds of copying per part. On one runtime an order that arrives meanwhile waits
//! behind all of it: in `olive bench mixed` the flash sale's p99 was 6.5 ms without viewers and
//! 69–87 ms with them. The lane's threads are mostly idle, so the kernel runs one the moment a
//! request wakes it.
//!
//! Streams stay on the main runtime with the ingest that feeds them: video (`/live/`, `/vod/`)
//! and WebSocket upgrades. A connection is sorted by its first request (a peek, before hyper reads
//! it); what follows on it is served on the same lane, by the same router, whatever it is. A
//! first request whose head has not fully arrived is left on the main runtime.

use tokio::runtime::{Handle, Runtime};

/// The runtime quick requests are served on; shut down (without waiting) when dropped.
pub struct ApiLane {
    runtime: Option<Runtime>,
}

impl ApiLane {
    /// A multi-threaded runtime, one worker per core, its threads named `olive-api`.
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().thread_name("olive-api").enable_all().build()?;
        Ok(ApiLane { runtime: Some(runtime) })
    }

    pub fn handle(&self) -> Handle {
        self.runtime.as_ref().expect("running until dropped").handle().clone()
    }
}

impl Drop for ApiLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How many of a connection's first bytes are looked at.
pub const PEEK: usize = 2048;

/// Whether a connection's first bytes hold the whole head of a quick request: not video, not a
/// WebSocket upgrade.
pub fn is_quick_request(first: &[u8]) -> bool {
    let Some(end) = first.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = &first[..end];
    let mut lines = head.split(|b| *b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let Some(target) = request_line.split(|b| *b == b' ').nth(1) else { return false };
    if target.starts_with(b"/live/") || target.starts_with(b"/vod/") {
        return false;
    }
    !lines.any(|line| line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"upgrade:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_calls_are_quick_and_streams_are_not() {
        for quick in [
            &b"POST /api/v1/orders HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"[..],
            b"GET /api/v1/feed HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /livez HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-Upgrade-Note: no\r\n\r\n",
        ] {
            assert!(is_quick_request(quick), "{:?}", String::from_utf8_lossy(quick));
        }
        for stream in [
            &b"GET /live/3/part-12-2.m4s HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /vod/7/index.m3u8 HTTP/1.1\r\n\r\n",
            b"GET /api/v1/channels/1/room HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/v1/channels/1/room HTTP/1.1\r\nUPGRADE: websocket\r\n\r\n",
            // The head has not all arrived, or is not HTTP.
            b"GET /api/v1/feed HTTP/1.1\r\nHost: a\r\n",
            b"",
            b"\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            assert!(!is_quick_request(stream), "{:?}", String::from_utf8_lossy(stream));
        }
        let long_head = format!("GET /api/v1/feed HTTP/1.1\r\nCookie: {}\r\n\r\n", "c".repeat(PEEK));
        assert!(!is_quick_request(&long_head.as_bytes()[..PEEK]), "a head longer than the peek stays");
    }
}
