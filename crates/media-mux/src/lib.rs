//! The packager's pure core: what arrives over RTMP (FLV video and audio tag payloads with their
//! millisecond timestamps) goes in; a CMAF init segment, fMP4 parts (`moof`+`mdat`) and segment
//! boundaries come out, and LL-HLS media playlists are written from what came out.
//!
//! Nothing here opens a socket, spawns a task or reads a clock: time is the stream's own
//! timestamps, so every edge case — B-frames, a 32-bit timestamp wrap, timestamps that go
//! backwards, a GOP longer than the segment target — is a unit test. The async driver that owns
//! sockets and serves playlists lives in `olive-media`.

pub mod boxes;
pub mod flv;
pub mod flv_stream;
#[doc(hidden)]
pub mod fuzzing;
pub mod master;
pub mod names;
pub mod packager;
pub mod playlist;
pub mod rung;
pub mod timeline;
pub mod vod;

pub use flv::{AudioConfig, AudioFrame, DemuxError, FlvEvent, VideoConfig, VideoFrame};
pub use names::{MediaFile, RungName};
pub use packager::{Output, Packager, PackagerSettings, Part};
