//! A ladder encoded on another node. A node whose slots are all taken (or that has no encoder)
//! keeps a `standard` live's rung windows, packagers and recording itself, and asks the cluster
//! for an encoder: it announces the ladder on the bus ([`topics::LADDERS_WANTED`]) until a node
//! with a free slot takes the lease `ladder:{channel}` ([`lease_key`]) and links to it, the way
//! playback forwarding reaches the node that holds a live. Over the link the ingesting node sends
//! an [`EncoderJob`], then the source's video as FLV (the bytes an encoder here would read on its
//! standard input); the encoding node sends back [`EncoderMessage`]s: each rung's FLV, thumbnail
//! pictures, CPU reports and how the run ended. A node that dies stops renewing its lease and
//! stops talking; the ingesting node restarts its rungs at the next segment and announces the
//! ladder again, and another node takes it over once the lease has run out.
//!
//! This module holds the protocol's pure parts; the transport (a WebSocket between nodes,
//! authenticated with the node secret) lives in `olive-api`.

use super::encoder::ThumbnailOutput;
use super::plan::PlannedRung;
use bytes::{BufMut, Bytes, BytesMut};
use olive_core::ChannelId;
use olive_media_mux::RungName;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use olive_bus::topics::LADDERS_WANTED;

/// The lease the node encoding a channel's ladder holds while it does.
pub fn lease_key(channel: ChannelId) -> String {
    format!("ladder:{channel}")
}

/// How often a waiting ladder is announced.
pub const ANNOUNCE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a waiting ladder plays as `basic` before it says no node took it.
pub const PLACEMENT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a link may stay silent (the encoding node reports its CPU every two seconds) before
/// the ingesting node gives it up.
pub const LINK_SILENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// The most rungs a job may ask for.
pub const MAX_RUNGS: usize = 16;
/// The largest message on a link (a thumbnail picture of 640 px width is well under 1 MB).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// The announcement of a ladder that wants an encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub channel: ChannelId,
    /// The node that ingests the live (and holds its `live:{channel}` lease).
    pub node: String,
}

/// One rung to encode, as sent between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRung {
    pub height: u16,
    pub width: u32,
    pub video_kbps: u32,
    pub fps: Option<u32>,
}

/// Thumbnails to send back, as sent between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobThumbnails {
    pub width: u32,
    pub height: u32,
    pub interval_s: u32,
}

/// What the ingesting node asks of the encoding node: the link's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderJob {
    pub channel: ChannelId,
    pub rungs: Vec<JobRung>,
    pub thumbnails: Option<JobThumbnails>,
}

impl EncoderJob {
    pub fn new(channel: ChannelId, rungs: &[PlannedRung], thumbnails: Option<ThumbnailOutput>) -> Self {
        EncoderJob {
            channel,
            rungs: rungs
                .iter()
                .map(|r| JobRung { height: r.name.0, width: r.width, video_kbps: r.video_kbps, fps: r.fps })
                .collect(),
            thumbnails: thumbnails.map(|t| JobThumbnails {
                width: t.width,
                height: t.height,
                interval_s: t.interval_s,
            }),
        }
    }

    /// Reads a job from the link's first message; everything is checked, as for any input.
    pub fn parse(text: &str) -> Result<EncoderJob, String> {
        if text.len() > 64 * 1024 {
            return Err("the job is larger than 64 KiB".into());
        }
        let job: EncoderJob = serde_json::from_str(text).map_err(|e| format!("the job is not valid: {e}"))?;
        job.plans()?;
        job.thumbnail_output()?;
        Ok(job)
    }

    /// The rungs to encode, each checked: an even size within 8K, a sane bitrate and frame rate.
    pub fn plans(&self) -> Result<Vec<PlannedRung>, String> {
        if self.rungs.is_empty() || self.rungs.len() > MAX_RUNGS {
            return Err(format!("a job has 1 to {MAX_RUNGS} rungs, not {}", self.rungs.len()));
        }
        self.rungs
            .iter()
            .map(|r| {
                let even = |n: u32, most: u32| n >= 2 && n <= most && n.is_multiple_of(2);
                let name = RungName::parse(&format!("{}p", r.height)).filter(|n| even(u32::from(n.0), 4320));
                match name {
                    Some(name)
                        if even(r.width, 7680)
                            && (50..=50_000).contains(&r.video_kbps)
                            && r.fps.is_none_or(|f| (1..=240).contains(&f)) =>
                    {
                        Ok(PlannedRung {
                            name,
                            width: r.width,
                            height: u32::from(r.height),
                            video_kbps: r.video_kbps,
                            fps: r.fps,
                        })
                    }
                    _ => Err(format!("rung {r:?} is not one an encoder can make")),
                }
            })
            .collect()
    }

    /// The thumbnails to send back, checked.
    pub fn thumbnail_output(&self) -> Result<Option<ThumbnailOutput>, String> {
        match self.thumbnails {
            None => Ok(None),
            Some(t)
                if (2..=1920).contains(&t.width)
                    && (2..=1920).contains(&t.height)
                    && t.width.is_multiple_of(2)
                    && t.height.is_multiple_of(2)
                    && (1..=3600).contains(&t.interval_s) =>
            {
                Ok(Some(ThumbnailOutput { width: t.width, height: t.height, interval_s: t.interval_s }))
            }
            Some(t) => Err(format!("thumbnails {t:?} are not ones an encoder can make")),
        }
    }
}

/// What the encoding node sends, one binary message each.
#[derive(Debug, Clone, PartialEq)]
pub enum EncoderMessage {
    /// A piece of rung `index`'s FLV stream.
    Rung(u8, Bytes),
    /// Rung `index`'s stream ended.
    RungEnded(u8),
    /// A thumbnail picture, raw `yuv420p` at the job's thumbnail size.
    Picture(Bytes),
    /// CPU seconds the encoder used since the last report.
    Cpu(f64),
    /// The source ended and every rung is flushed.
    Done,
    /// The encoder failed, and why.
    Failed(String),
}

/// A message that is not one of [`EncoderMessage`]'s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("an empty message")]
    Empty,
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("a message of kind {0} is cut short")]
    Truncated(u8),
    #[error("a message of kind {0} has bytes after its end")]
    Trailing(u8),
    #[error("a CPU report of {0} s")]
    BadCpu(f64),
}

const RUNG: u8 = 1;
const RUNG_ENDED: u8 = 2;
const PICTURE: u8 = 3;
const CPU: u8 = 4;
const DONE: u8 = 5;
const FAILED: u8 = 6;
/// The longest failure reason kept.
const MAX_REASON: usize = 1000;

impl EncoderMessage {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            EncoderMessage::Rung(index, bytes) => {
                out.reserve(2 + bytes.len());
                out.put_u8(RUNG);
                out.put_u8(*index);
                out.put_slice(bytes);
            }
            EncoderMessage::RungEnded(index) => out.put_slice(&[RUNG_ENDED, *index]),
            EncoderMessage::Picture(bytes) => {
                out.reserve(1 + bytes.len());
                out.put_u8(PICTURE);
                out.put_slice(bytes);
            }
            EncoderMessage::Cpu(seconds) => {
                out.put_u8(CPU);
                out.put_f64(*seconds);
            }
            EncoderMessage::Done => out.put_u8(DONE),
            EncoderMessage::Failed(why) => {
                out.put_u8(FAILED);
                out.put_slice(truncate(why, MAX_REASON).as_bytes());
            }
        }
        out.freeze()
    }

    pub fn decode(message: Bytes) -> Result<EncoderMessage, WireError> {
        let (&kind, rest) = message.split_first().ok_or(WireError::Empty)?;
        let exact = |n: usize| match rest.len().cmp(&n) {
            std::cmp::Ordering::Less => Err(WireError::Truncated(kind)),
            std::cmp::Ordering::Greater => Err(WireError::Trailing(kind)),
            std::cmp::Ordering::Equal => Ok(()),
        };
        Ok(match kind {
            RUNG => {
                let &index = rest.first().ok_or(WireError::Truncated(kind))?;
                EncoderMessage::Rung(index, message.slice(2..))
            }
            RUNG_ENDED => {
                exact(1)?;
                EncoderMessage::RungEnded(rest[0])
            }
            PICTURE => EncoderMessage::Picture(message.slice(1..)),
            CPU => {
                exact(8)?;
                let seconds = f64::from_be_bytes(rest.try_into().expect("eight bytes"));
                if !(0.0..=3600.0).contains(&seconds) {
                    return Err(WireError::BadCpu(seconds));
                }
                EncoderMessage::Cpu(seconds)
            }
            DONE => {
                exact(0)?;
                EncoderMessage::Done
            }
            FAILED => EncoderMessage::Failed(truncate(&String::from_utf8_lossy(rest), MAX_REASON).to_owned()),
            other => return Err(WireError::UnknownKind(other)),
        })
    }
}

fn truncate(s: &str, most: usize) -> &str {
    if s.len() <= most {
        return s;
    }
    let mut end = most;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The ingesting node's end of a link, handed to the ladder's supervisor.
#[derive(Debug)]
pub struct EncoderLink {
    /// The node at the other end.
    pub node: String,
    /// The source as FLV; closed when the source ends.
    pub source: mpsc::Sender<Bytes>,
    /// What the encoding node sends, undecoded; closed when the link goes.
    pub messages: mpsc::Receiver<Bytes>,
}

/// The transport's end of a link on the ingesting node.
#[derive(Debug)]
pub struct LinkEnds {
    pub job: EncoderJob,
    /// The source for the encoding node; `None` once the source ended.
    pub source: mpsc::Receiver<Bytes>,
    /// Where the encoding node's messages go.
    pub messages: mpsc::Sender<Bytes>,
}

/// Source chunks (about one frame each) queued for the link.
const LINK_QUEUE: usize = 64;

/// Both ends of a new link.
pub(crate) fn link(node: &str, job: EncoderJob) -> (EncoderLink, LinkEnds) {
    let (source_tx, source_rx) = mpsc::channel(LINK_QUEUE);
    let (messages_tx, messages_rx) = mpsc::channel(LINK_QUEUE);
    (
        EncoderLink { node: node.to_owned(), source: source_tx, messages: messages_rx },
        LinkEnds { job, source: source_rx, messages: messages_tx },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> EncoderJob {
        let rungs = [
            PlannedRung { name: RungName(480), width: 854, height: 480, video_kbps: 1200, fps: None },
            PlannedRung { name: RungName(160), width: 284, height: 160, video_kbps: 250, fps: Some(15) },
        ];
        EncoderJob::new(ChannelId(7), &rungs, Some(ThumbnailOutput { width: 640, height: 360, interval_s: 5 }))
    }

    #[test]
    fn a_job_goes_across_and_comes_back_the_same() {
        let job = job();
        let text = serde_json::to_string(&job).unwrap();
        let back = EncoderJob::parse(&text).unwrap();
        assert_eq!(back, job);
        assert_eq!(
            back.plans().unwrap()[1],
            PlannedRung { name: RungName(160), width: 284, height: 160, video_kbps: 250, fps: Some(15) }
        );
        assert_eq!(back.thumbnail_output().unwrap(), Some(ThumbnailOutput { width: 640, height: 360, interval_s: 5 }));
    }

    #[test]
    fn a_job_no_encoder_can_make_is_refused() {
        let with = |f: &dyn Fn(&mut EncoderJob)| {
            let mut job = job();
            f(&mut job);
            EncoderJob::parse(&serde_json::to_string(&job).unwrap())
        };
        assert!(with(&|j| j.rungs.clear()).is_err(), "no rungs");
        assert!(with(&|j| j.rungs = vec![j.rungs[0]; MAX_RUNGS + 1]).is_err(), "too many rungs");
        assert!(with(&|j| j.rungs[0].width = 853).is_err(), "odd width");
        assert!(with(&|j| j.rungs[0].width = 0).is_err());
        assert!(with(&|j| j.rungs[0].width = 100_000).is_err());
        assert!(with(&|j| j.rungs[0].height = 481).is_err(), "odd height");
        assert!(with(&|j| j.rungs[0].height = 8640).is_err(), "taller than 8K");
        assert!(with(&|j| j.rungs[0].video_kbps = 0).is_err());
        assert!(with(&|j| j.rungs[0].fps = Some(0)).is_err());
        assert!(with(&|j| j.rungs[0].fps = Some(100_000)).is_err());
        assert!(with(&|j| j.thumbnails.as_mut().unwrap().width = 0).is_err());
        assert!(with(&|j| j.thumbnails.as_mut().unwrap().height = 99_999).is_err());
        assert!(with(&|j| j.thumbnails.as_mut().unwrap().interval_s = 0).is_err());
        for bad in ["", "{", "null", "[]", r#"{"channel":"x","rungs":[],"thumbnails":null}"#] {
            assert!(EncoderJob::parse(bad).is_err(), "{bad}");
        }
        assert!(EncoderJob::parse(&" ".repeat(100_000)).is_err(), "oversized");
    }

    #[test]
    fn messages_go_across_and_come_back_the_same() {
        let messages = [
            EncoderMessage::Rung(3, Bytes::from_static(b"FLV\x01")),
            EncoderMessage::Rung(0, Bytes::new()),
            EncoderMessage::RungEnded(2),
            EncoderMessage::Picture(Bytes::from(vec![16u8; 6])),
            EncoderMessage::Cpu(1.25),
            EncoderMessage::Done,
            EncoderMessage::Failed("it exited with 1".into()),
        ];
        for m in messages {
            assert_eq!(EncoderMessage::decode(m.encode()), Ok(m.clone()), "{m:?}");
        }
        let long = EncoderMessage::Failed("é".repeat(2000));
        let EncoderMessage::Failed(kept) = EncoderMessage::decode(long.encode()).unwrap() else { panic!() };
        assert!(kept.len() <= MAX_REASON && kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        let cases: [(&[u8], WireError); 9] = [
            (b"", WireError::Empty),
            (&[0], WireError::UnknownKind(0)),
            (&[200, 1, 2], WireError::UnknownKind(200)),
            (&[RUNG], WireError::Truncated(RUNG)),
            (&[RUNG_ENDED], WireError::Truncated(RUNG_ENDED)),
            (&[RUNG_ENDED, 1, 2], WireError::Trailing(RUNG_ENDED)),
            (&[CPU, 0, 0, 0], WireError::Truncated(CPU)),
            (&[DONE, 0], WireError::Trailing(DONE)),
            (&[CPU, 0xff, 0xf8, 0, 0, 0, 0, 0, 0], WireError::BadCpu(f64::NAN)),
        ];
        for (bytes, expected) in cases {
            let got = EncoderMessage::decode(Bytes::copy_from_slice(bytes));
            match (&got, &expected) {
                (Err(WireError::BadCpu(a)), WireError::BadCpu(b)) => assert!(a.is_nan() && b.is_nan()),
                _ => assert_eq!(got, Err(expected), "{bytes:?}"),
            }
        }
        let negative = EncoderMessage::Cpu(-1.0).encode();
        assert_eq!(EncoderMessage::decode(negative), Err(WireError::BadCpu(-1.0)));
        let invalid_utf8 = EncoderMessage::decode(Bytes::from_static(&[FAILED, 0xff, b'x'])).unwrap();
        assert_eq!(invalid_utf8, EncoderMessage::Failed("\u{fffd}x".into()));
    }
}
