//! How fast one connection may send, whatever it sends. Chat has its own per-account limit
//! ([`crate::chat`]); this paces every client frame on one socket, so hearts, junk and frames the
//! room refuses cannot make a node parse, count and answer without end.
//!
//! Three GCRA limits, with time as an argument: all frames together (over it, a frame is dropped
//! unanswered), hearts (over it, the heart is not counted: a finger tapping faster is not more
//! love), and frames that are not a message (over it, the connection is closed: a client that
//! keeps sending junk is broken or hostile). A client that keeps sending far past the overall
//! limit is closed too.

use olive_core::ratelimit::{KeyedLimiter, Quota};
use std::time::{Duration, Instant};

/// What a client frame turned out to be, for pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Chat,
    Heart,
    /// Not a message: malformed, too large or binary.
    Invalid,
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Handle,
    /// Ignore it, without an answer.
    Drop,
    /// Close the connection (WebSocket 1008, policy violation).
    Close,
}

/// The limits, per connection.
#[derive(Debug, Clone, Copy)]
pub struct PaceLimits {
    pub frames: Quota,
    pub hearts: Quota,
    pub invalid: Quota,
    /// Frames sent while over `frames` before the connection is closed.
    pub over_limit: Quota,
}

impl Default for PaceLimits {
    fn default() -> Self {
        PaceLimits {
            // 20 a second with bursts of 60: far above a person, chat included.
            frames: Quota::new(60, Duration::from_millis(50)),
            // 10 a second with bursts of 20.
            hearts: Quota::new(20, Duration::from_millis(100)),
            // 5 at once, then one a second.
            invalid: Quota::new(5, Duration::from_secs(1)),
            over_limit: Quota::new(100, Duration::from_millis(100)),
        }
    }
}

/// One connection's pace; see the module documentation.
#[derive(Debug)]
pub struct ClientPace {
    frames: KeyedLimiter<()>,
    hearts: KeyedLimiter<()>,
    invalid: KeyedLimiter<()>,
    over_limit: KeyedLimiter<()>,
}

impl ClientPace {
    pub fn new(limits: PaceLimits) -> Self {
        ClientPace {
            frames: KeyedLimiter::new(limits.frames, 1),
            hearts: KeyedLimiter::new(limits.hearts, 1),
            invalid: KeyedLimiter::new(limits.invalid, 1),
            over_limit: KeyedLimiter::new(limits.over_limit, 1),
        }
    }

    pub fn admit(&mut self, kind: FrameKind, now: Instant) -> Verdict {
        if kind == FrameKind::Invalid && self.invalid.check(&(), now).is_err() {
            return Verdict::Close;
        }
        if self.frames.check(&(), now).is_err() {
            return if self.over_limit.check(&(), now).is_err() { Verdict::Close } else { Verdict::Drop };
        }
        if kind == FrameKind::Heart && self.hearts.check(&(), now).is_err() {
            return Verdict::Drop;
        }
        Verdict::Handle
    }
}

impl Default for ClientPace {
    fn default() -> Self {
        ClientPace::new(PaceLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hearts_past_their_rate_are_not_counted_and_a_burst_a_second_is() {
        let mut pace = ClientPace::default();
        let start = Instant::now();
        for second in 0..30 {
            let now = start + Duration::from_secs(second);
            for _ in 0..10 {
                assert_eq!(pace.admit(FrameKind::Heart, now), Verdict::Handle, "a burst of 10 each second");
            }
        }
        let now = start + Duration::from_secs(40);
        let handled = (0..30).filter(|_| pace.admit(FrameKind::Heart, now) == Verdict::Handle).count();
        assert_eq!(handled, 20, "a burst is capped");
        assert_eq!(pace.admit(FrameKind::Chat, now), Verdict::Handle, "chat goes on");
    }

    #[test]
    fn junk_past_a_few_frames_closes_the_connection() {
        let mut pace = ClientPace::default();
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(pace.admit(FrameKind::Invalid, now), Verdict::Handle);
        }
        assert_eq!(pace.admit(FrameKind::Invalid, now), Verdict::Close);
        // Now and then a bad frame is forgiven.
        let mut pace = ClientPace::default();
        for n in 0..100 {
            assert_eq!(pace.admit(FrameKind::Invalid, now + Duration::from_secs(n)), Verdict::Handle);
        }
    }

    #[test]
    fn a_flood_is_dropped_then_closed() {
        let mut pace = ClientPace::default();
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..1000).map(|_| pace.admit(FrameKind::Chat, now)).collect();
        assert!(verdicts[..60].iter().all(|v| *v == Verdict::Handle));
        assert_eq!(verdicts[60], Verdict::Drop);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Drop).count(), 100);
        assert_eq!(verdicts[160], Verdict::Close);
    }
}
