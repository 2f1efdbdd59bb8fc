//! FLV tag payloads (as RTMP delivers them) to media events. We keep H.264 in AVCC form
//! (length-prefixed NAL units, as fMP4 wants it) and AAC as raw access units; parameter sets and
//! the AudioSpecificConfig are kept for the init segment. Anything else (other codecs, commands,
//! metadata) is reported as ignored, never an error that would drop the stream.
//!
//! Audio goes through `scuffle-flv` and `scuffle-aac`. The video tag header (five bytes, FLV spec
//! §E.4.3.1) and the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) are read here, and the
//! SPS with `h264-reader`: the `flv_packager` fuzz target found arithmetic overflows in the scuffle
//! crates' parsing of both (the record's SPS extension and the SPS itself) on hostile input.

use bytes::Bytes;
use scuffle_flv::audio::body::legacy::aac::AacAudioData;
use scuffle_flv::audio::body::legacy::LegacyAudioTagBody;
use scuffle_flv::audio::body::AudioTagBody;
use scuffle_flv::audio::AudioData;
use std::io::Cursor;

#[derive(Debug, thiserror::Error)]
pub enum DemuxError {
    #[error("malformed FLV {kind} tag: {reason}")]
    Malformed { kind: &'static str, reason: String },
}

/// H.264 decoder configuration, with what the playlist and the init segment need from the SPS.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    pub nal_length_size: u8,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Option<f64>,
}

impl VideoConfig {
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec(&self) -> String {
        format!("avc1.{:02x}{:02x}{:02x}", self.profile, self.compatibility, self.level)
    }
}

/// One coded picture: AVCC NAL units with its decode timestamp and composition offset.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    pub dts_ms: u32,
    /// Presentation minus decode time, in milliseconds (signed: FLV's SI24).
    pub cts_ms: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioConfig {
    /// The AudioSpecificConfig bytes, verbatim.
    pub asc: Bytes,
    pub object_type: u16,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AudioConfig {
    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    pub ts_ms: u32,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FlvEvent {
    VideoConfig(VideoConfig),
    Video(VideoFrame),
    AudioConfig(AudioConfig),
    Audio(AudioFrame),
    /// Understood but not carried (another codec, a command, an end-of-sequence marker).
    Ignored(&'static str),
}

fn malformed(kind: &'static str, reason: impl ToString) -> DemuxError {
    DemuxError::Malformed { kind, reason: reason.to_string() }
}

/// Sign-extends FLV's 24-bit composition time offset.
fn si24(v: u32) -> i32 {
    let v = v & 0x00ff_ffff;
    if v & 0x0080_0000 != 0 {
        v as i32 - 0x0100_0000
    } else {
        v as i32
    }
}

/// Width, height and (when signalled) frame rate from an SPS NAL unit, with `h264-reader`. We
/// first used `scuffle-h264` here, but the `flv_packager` fuzz target found arithmetic overflows in
/// its SPS parsing and size computation on hostile input; `h264-reader` checks them.
pub(crate) fn picture_info(sps_nal: &[u8]) -> Option<(u32, u32, Option<f64>)> {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::nal::{Nal, RefNal};
    if sps_nal.is_empty() {
        return None; // RefNal requires a header byte
    }
    let nal = RefNal::new(sps_nal, &[], true);
    let sps = SeqParameterSet::from_bits(nal.rbsp_bits()).ok()?;
    let (width, height) = sps.pixel_dimensions().ok()?;
    let sensible = |v: u32| (1..=16_384).contains(&v);
    (sensible(width) && sensible(height)).then(|| (width, height, sps.fps().filter(|f| f.is_finite() && *f > 0.0)))
}

/// Reads an AVCDecoderConfigurationRecord: the four header bytes, then the SPS and PPS lists.
/// The optional high-profile extension after them is not needed and not read.
fn avc_config(record: &[u8]) -> Result<VideoConfig, DemuxError> {
    let short = || malformed("video", "AVC sequence header is truncated");
    let header = record.get(..6).ok_or_else(short)?;
    if header[0] != 1 {
        return Err(malformed("video", format!("unknown AVC configuration version {}", header[0])));
    }
    let mut at = 5;
    let read_sets = |count: usize, at: &mut usize| -> Result<Vec<Bytes>, DemuxError> {
        let mut sets = Vec::with_capacity(count);
        for _ in 0..count {
            let len =
                record.get(*at..*at + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))).ok_or_else(short)?;
            let set = record.get(*at + 2..*at + 2 + len).ok_or_else(short)?;
            if set.is_empty() {
                return Err(malformed("video", "empty parameter set"));
            }
            sets.push(Bytes::copy_from_slice(set));
            *at += 2 + len;
        }
        Ok(sets)
    };
    let sps_count = usize::from(record[at] & 0x1f);
    at += 1;
    let sps = read_sets(sps_count, &mut at)?;
    let pps_count = usize::from(*record.get(at).ok_or_else(short)?);
    at += 1;
    let pps = read_sets(pps_count, &mut at)?;
    let first = sps.first().ok_or_else(|| malformed("video", "AVC sequence header without SPS"))?;
    let (width, height, frame_rate) =
        picture_info(first).ok_or_else(|| malformed("video", "SPS unreadable or of no sensible picture size"))?;
    Ok(VideoConfig {
        profile: header[1],
        compatibility: header[2],
        level: header[3],
        nal_length_size: (header[4] & 0x03) + 1,
        sps,
        pps,
        width,
        height,
        frame_rate,
    })
}

/// Reads an AAC AudioSpecificConfig.
pub(crate) fn audio_config(asc: Bytes) -> Result<AudioConfig, DemuxError> {
    let parsed = scuffle_aac::PartialAudioSpecificConfig::parse(&asc)
        .map_err(|e| malformed("audio", format!("AudioSpecificConfig: {e}")))?;
    if parsed.sampling_frequency == 0 || parsed.sampling_frequency > 192_000 {
        return Err(malformed("audio", format!("unsupported sample rate {}", parsed.sampling_frequency)));
    }
    Ok(AudioConfig {
        object_type: parsed.audio_object_type.as_u16(),
        sample_rate: parsed.sampling_frequency,
        channels: parsed.channel_configuration,
        asc,
    })
}

/// Demuxes one RTMP video message payload (FLV `VIDEODATA`).
pub fn demux_video(timestamp_ms: u32, payload: Bytes) -> Result<FlvEvent, DemuxError> {
    let first = *payload.first().ok_or_else(|| malformed("video", "empty payload"))?;
    if first & 0x80 != 0 {
        return Ok(FlvEvent::Ignored("enhanced RTMP video (only H.264 is packaged)"));
    }
    let (frame_type, codec) = (first >> 4, first & 0x0f);
    if frame_type == 5 {
        return Ok(FlvEvent::Ignored("video command"));
    }
    if codec != 7 {
        return Ok(FlvEvent::Ignored("video codec other than H.264"));
    }
    let header = payload.get(..5).ok_or_else(|| malformed("video", "AVC packet header is truncated"))?;
    let cts_ms = si24(u32::from_be_bytes([0, header[2], header[3], header[4]]));
    match header[1] {
        0 => avc_config(&payload[5..]).map(FlvEvent::VideoConfig),
        1 => {
            let nalus = payload.slice(5..);
            if nalus.is_empty() {
                return Ok(FlvEvent::Ignored("empty AVC NALU packet"));
            }
            Ok(FlvEvent::Video(VideoFrame { dts_ms: timestamp_ms, cts_ms, keyframe: frame_type == 1, data: nalus }))
        }
        2 => Ok(FlvEvent::Ignored("AVC end of sequence")),
        other => Err(malformed("video", format!("unknown AVC packet type {other}"))),
    }
}

/// Demuxes one RTMP audio message payload.
pub fn demux_audio(timestamp_ms: u32, payload: Bytes) -> Result<FlvEvent, DemuxError> {
    let data = AudioData::demux(&mut Cursor::new(payload)).map_err(|e| malformed("audio", e))?;
    match data.body {
        AudioTagBody::Legacy(LegacyAudioTagBody::Aac(AacAudioData::SequenceHeader(asc))) => {
            audio_config(asc).map(FlvEvent::AudioConfig)
        }
        AudioTagBody::Legacy(LegacyAudioTagBody::Aac(AacAudioData::Raw(frame))) => {
            if frame.is_empty() {
                return Ok(FlvEvent::Ignored("empty AAC frame"));
            }
            Ok(FlvEvent::Audio(AudioFrame { ts_ms: timestamp_ms, data: frame }))
        }
        _ => Ok(FlvEvent::Ignored("audio codec other than AAC")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real SPS/PPS pair (x264, High profile, 1280x720).
    pub const SPS_720P: &[u8] =
        &[103, 100, 0, 31, 172, 217, 128, 80, 5, 187, 1, 106, 2, 2, 2, 128, 0, 0, 3, 0, 128, 0, 0, 30, 7, 140, 24, 205];
    pub const PPS: &[u8] = &[104, 233, 123, 44, 139];

    /// x264's for 640x360, High profile.
    pub const SPS_360P: &[u8] =
        &[103, 100, 0, 30, 172, 217, 64, 160, 47, 249, 112, 17, 0, 0, 3, 0, 1, 0, 0, 3, 0, 60, 15, 22, 45, 150];

    /// An FLV AVC sequence header payload for [`SPS_720P`].
    pub fn avc_sequence_header() -> Bytes {
        avc_sequence_header_with(SPS_720P)
    }

    /// An FLV AVC sequence header payload for `sps` and [`PPS`].
    pub fn avc_sequence_header_with(sps: &[u8]) -> Bytes {
        let mut p = vec![0x17, 0x00, 0, 0, 0];
        p.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        p.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        p.extend_from_slice(sps);
        p.push(1);
        p.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        p.extend_from_slice(PPS);
        Bytes::from(p)
    }

    /// An FLV AVC NALU payload holding one made-up NAL unit.
    pub fn avc_frame(keyframe: bool, cts_ms: i32, nal: &[u8]) -> Bytes {
        let mut p = vec![if keyframe { 0x17 } else { 0x27 }, 0x01];
        p.extend_from_slice(&(cts_ms as u32 & 0xff_ffff).to_be_bytes()[1..]);
        p.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        p.extend_from_slice(nal);
        Bytes::from(p)
    }

    /// AAC-LC 48 kHz stereo.
    pub fn aac_sequence_header() -> Bytes {
        Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90])
    }

    pub fn aac_frame(bytes: &[u8]) -> Bytes {
        let mut p = vec![0xaf, 0x01];
        p.extend_from_slice(bytes);
        Bytes::from(p)
    }

    #[test]
    fn parses_the_avc_sequence_header() {
        let FlvEvent::VideoConfig(c) = demux_video(0, avc_sequence_header()).unwrap() else { panic!() };
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!(c.codec(), "avc1.64001f");
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.sps[0].as_ref(), SPS_720P);
        assert_eq!(c.pps[0].as_ref(), PPS);
    }

    #[test]
    fn parses_frames_with_signed_composition_offsets() {
        let FlvEvent::Video(f) = demux_video(40, avc_frame(true, 67, &[0x65, 1, 2])).unwrap() else { panic!() };
        assert!(f.keyframe);
        assert_eq!((f.dts_ms, f.cts_ms), (40, 67));
        let FlvEvent::Video(f) = demux_video(80, avc_frame(false, -33, &[0x41, 9])).unwrap() else { panic!() };
        assert!(!f.keyframe);
        assert_eq!(f.cts_ms, -33);
    }

    #[test]
    fn parses_aac() {
        let FlvEvent::AudioConfig(c) = demux_audio(0, aac_sequence_header()).unwrap() else { panic!() };
        assert_eq!((c.sample_rate, c.channels, c.object_type), (48_000, 2, 2));
        assert_eq!(c.codec(), "mp4a.40.2");
        let FlvEvent::Audio(a) = demux_audio(21, aac_frame(&[1, 2, 3])).unwrap() else { panic!() };
        assert_eq!(a.data.as_ref(), &[1, 2, 3]);
    }

    #[test]
    fn junk_is_an_error_or_ignored_never_a_panic() {
        for bytes in [
            &b""[..],
            &[0x17],
            &[0x17, 0x00],
            &[0x17, 0x00, 0, 0, 0, 1],
            &[0xff; 40],
            &[0x2a, 1, 2],
            &[0xaf, 0x00, 0xff, 0xff],
        ] {
            let _ = demux_video(0, Bytes::copy_from_slice(bytes));
            let _ = demux_audio(0, Bytes::copy_from_slice(bytes));
        }
        assert!(demux_video(0, Bytes::new()).is_err());
        assert!(matches!(demux_audio(0, Bytes::from_static(&[0x2f, 0, 0])).unwrap(), FlvEvent::Ignored(_)));
    }
}
