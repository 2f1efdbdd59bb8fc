//! Stream health as an operator and a host see it: codec, picture size, measured frame rate and
//! bitrate, keyframe interval, time since the last frame, malformed tags. Measured by the ingest
//! session over one-second windows; the clock is passed in.

use chrono::{DateTime, Utc};
use olive_media_mux::{AudioConfig, VideoConfig};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StreamHealth {
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Video frames per second over the last second.
    pub fps: f64,
    /// Audio and video payload bits per second over the last second.
    pub bitrate_bps: u64,
    /// Time between the last two keyframes.
    pub keyframe_interval_ms: Option<i64>,
    /// How long ago the last frame arrived (when the snapshot was taken).
    pub ms_since_last_frame: u64,
    /// Tags that could not be parsed and were skipped.
    pub malformed_tags: u64,
    pub started_at: DateTime<Utc>,
}

/// Counts what arrives and produces a snapshot each second.
#[derive(Debug)]
pub struct HealthTracker {
    snapshot: StreamHealth,
    window_start: Instant,
    frames: u32,
    bytes: u64,
    last_keyframe_ms: Option<i64>,
    last_frame: Instant,
}

impl HealthTracker {
    pub fn new(now: Instant, started_at: DateTime<Utc>) -> Self {
        HealthTracker {
            snapshot: StreamHealth {
                video_codec: None,
                audio_codec: None,
                width: None,
                height: None,
                fps: 0.0,
                bitrate_bps: 0,
                keyframe_interval_ms: None,
                ms_since_last_frame: 0,
                malformed_tags: 0,
                started_at,
            },
            window_start: now,
            frames: 0,
            bytes: 0,
            last_keyframe_ms: None,
            last_frame: now,
        }
    }

    pub fn video_config(&mut self, c: &VideoConfig) {
        self.snapshot.video_codec = Some(c.codec());
        self.snapshot.width = Some(c.width);
        self.snapshot.height = Some(c.height);
    }

    pub fn audio_config(&mut self, c: &AudioConfig) {
        self.snapshot.audio_codec = Some(c.codec());
    }

    pub fn malformed(&mut self) {
        self.snapshot.malformed_tags += 1;
    }

    /// A media payload arrived; `keyframe_at_ms` is its stream timestamp when it is a keyframe.
    /// Returns a fresh snapshot once a second.
    pub fn frame(
        &mut self,
        now: Instant,
        bytes: usize,
        video: bool,
        keyframe_at_ms: Option<i64>,
    ) -> Option<StreamHealth> {
        self.bytes += bytes as u64;
        self.last_frame = now;
        if video {
            self.frames += 1;
        }
        if let Some(at) = keyframe_at_ms {
            if let Some(prev) = self.last_keyframe_ms {
                if at > prev {
                    self.snapshot.keyframe_interval_ms = Some(at - prev);
                }
            }
            self.last_keyframe_ms = Some(at);
        }
        let elapsed = now.duration_since(self.window_start);
        if elapsed < Duration::from_secs(1) {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        self.snapshot.fps = (f64::from(self.frames) / secs * 10.0).round() / 10.0;
        self.snapshot.bitrate_bps = (self.bytes as f64 * 8.0 / secs) as u64;
        self.frames = 0;
        self.bytes = 0;
        self.window_start = now;
        Some(self.snapshot(now))
    }

    pub fn snapshot(&self, now: Instant) -> StreamHealth {
        let mut s = self.snapshot.clone();
        s.ms_since_last_frame = now.duration_since(self.last_frame).as_millis() as u64;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_rate_bitrate_and_gop_per_second() {
        let t0 = Instant::now();
        let mut h = HealthTracker::new(t0, Utc::now());
        let mut snapshot = None;
        for i in 0..=30u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 1000 / 30);
            let key = (i % 15 == 0).then(|| i64::from(i) * 1000 / 30);
            if let Some(s) = h.frame(now, 1000, true, key) {
                snapshot = Some(s);
            }
        }
        let s = snapshot.expect("a snapshot after one second");
        assert!((29.0..=31.5).contains(&s.fps), "{}", s.fps);
        assert!((230_000..=260_000).contains(&s.bitrate_bps), "{}", s.bitrate_bps);
        assert_eq!(s.keyframe_interval_ms, Some(500));
        let later = h.snapshot(t0 + Duration::from_secs(5));
        assert!(later.ms_since_last_frame >= 3900);
    }
}
