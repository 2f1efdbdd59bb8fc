//! The MP4 boxes of CMAF, written with `mp4-atom`: [`init_segment`] (`ftyp` + `moov` with one
//! track per elementary stream and `mvex`) and [`fragment`] (`moof` + `mdat` for a run of samples
//! of each track). Small functions from data to bytes, nothing more.

use crate::flv::{AudioConfig, VideoConfig};
use bytes::Bytes;
use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dref, Encode, Esds, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd,
    Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, TrunSamples, Url,
    Visual, Vmhd,
};

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
/// Video decode times are kept in 90 kHz ticks, as in MPEG systems.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// ISO/IEC 14496-12 §8.8.3.1 sample flags: a sync sample depends on nothing…
pub const SYNC_SAMPLE: u32 = 0x0200_0000;
/// …a non-sync sample depends on others and is marked `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

fn encode(atom: &impl Encode, out: &mut Vec<u8>) {
    atom.encode(out).expect("encoding into a Vec cannot run out of room");
}

fn video_trak(v: &VideoConfig) -> Trak {
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width: v.width.min(u16::MAX as u32) as u16,
            height: v.height.min(u16::MAX as u32) as u16,
            ..Default::default()
        },
        avcc: Avcc {
            configuration_version: 1,
            avc_profile_indication: v.profile,
            profile_compatibility: v.compatibility,
            avc_level_indication: v.level,
            length_size: v.nal_length_size,
            sequence_parameter_sets: v.sps.iter().map(|s| s.to_vec()).collect(),
            picture_parameter_sets: v.pps.iter().map(|p| p.to_vec()).collect(),
            ext: None,
        },
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: (v.width.min(u16::MAX as u32) as u16).into(),
            height: (v.height.min(u16::MAX as u32) as u16).into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: VIDEO_TIMESCALE, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: b"vide".into(), name: "Olive video".into() },
            minf: Minf { vmhd: Some(Vmhd::default()), dinf: dinf(), stbl: stbl(avc1.into()), ..Default::default() },
        },
        ..Default::default()
    }
}

fn audio_trak(a: &AudioConfig) -> Trak {
    let mp4a = Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(a.channels.max(1)),
            sample_size: 16,
            sample_rate: (a.sample_rate.min(u16::MAX as u32) as u16).into(),
        },
        esds: Esds {
            es_desc: mp4_atom::esds::EsDescriptor {
                es_id: AUDIO_TRACK as u16,
                dec_config: mp4_atom::esds::DecoderConfig {
                    object_type_indication: 0x40, // MPEG-4 audio
                    stream_type: 5,               // audio stream
                    dec_specific: Some(mp4_atom::esds::DecoderSpecific { raw: a.asc.to_vec(), ..Default::default() }),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK,
            enabled: true,
            in_movie: true,
            alternate_group: 1,
            volume: 1.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: a.sample_rate, language: "und".into(), ..Default::default() },
            hdlr: Hdlr { handler: b"soun".into(), name: "Olive audio".into() },
            minf: Minf { smhd: Some(Smhd::default()), dinf: dinf(), stbl: stbl(mp4a.into()), ..Default::default() },
        },
        ..Default::default()
    }
}

fn dinf() -> Dinf {
    Dinf { dref: Dref { entries: vec![Url::default().into()] } }
}

/// A sample table with only the description: samples live in fragments.
fn stbl(codec: mp4_atom::Codec) -> Stbl {
    Stbl {
        stsd: Stsd { codecs: vec![codec] },
        stts: Stts::default(),
        stsc: Stsc::default(),
        stsz: Stsz::default(),
        stco: Some(Stco::default()),
        ..Default::default()
    }
}

/// `ftyp` + `moov` for the tracks present.
pub fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let mut trak = Vec::new();
    let mut trex = Vec::new();
    if let Some(v) = video {
        trak.push(video_trak(v));
        trex.push(Trex { track_id: VIDEO_TRACK, default_sample_description_index: 1, ..Default::default() });
    }
    if let Some(a) = audio {
        trak.push(audio_trak(a));
        trex.push(Trex { track_id: AUDIO_TRACK, default_sample_description_index: 1, ..Default::default() });
    }
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let moov = Moov {
        mvhd: Mvhd { timescale: 1000, next_track_id: AUDIO_TRACK + 1, ..Default::default() },
        mvex: Some(Mvex { mehd: None, trex }),
        trak,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    encode(&ftyp, &mut out);
    encode(&moov, &mut out);
    Bytes::from(out)
}

/// One sample of a track fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEntry {
    /// In the track's timescale.
    pub duration: u32,
    pub size: u32,
    pub sync: bool,
    /// Presentation minus decode time, in the track's timescale.
    pub composition_offset: i32,
}

/// A run of samples of one track and their bytes, in decode order.
#[derive(Debug, Clone, Default)]
pub struct TrackFragment {
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<SampleEntry>,
    pub data: Vec<Bytes>,
}

impl TrackFragment {
    /// The bytes of all samples in the run.
    pub fn data_len(&self) -> usize {
        self.data.iter().map(Bytes::len).sum()
    }
}

fn moof(sequence: u32, tracks: &[&TrackFragment], offsets: &[i32]) -> Moof {
    Moof {
        mfhd: Mfhd { sequence_number: sequence },
        traf: tracks
            .iter()
            .zip(offsets)
            .map(|(t, &offset)| Traf {
                tfhd: Tfhd { track_id: t.track_id, default_base_is_moof: true, ..Default::default() },
                tfdt: Some(Tfdt { base_media_decode_time: t.base_decode_time }),
                trun: vec![Trun {
                    data_offset: Some(offset),
                    samples: TrunSamples::Explicit(
                        t.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.size),
                                flags: Some(if s.sync { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
                                cts: Some(i64::from(s.composition_offset)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// `moof` + `mdat` for the non-empty tracks given; each track's bytes follow each other in `mdat`.
pub fn fragment(sequence: u32, tracks: &[TrackFragment]) -> Bytes {
    let tracks: Vec<&TrackFragment> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    // The moof's size does not depend on the offsets' values, so measure it once with zeros.
    let mut probe = Vec::new();
    encode(&moof(sequence, &tracks, &vec![0; tracks.len()]), &mut probe);
    let mut offsets = Vec::with_capacity(tracks.len());
    let mut at = probe.len() + 8; // mdat header
    for t in &tracks {
        offsets.push(i32::try_from(at).expect("parts are capped far below 2 GiB (packager::MAX_PART_BYTES)"));
        at += t.data_len();
    }
    // The mdat is written by hand: its payload is copied once, straight from the samples.
    let mdat_len =
        u32::try_from(at - probe.len()).expect("parts are capped far below 4 GiB (packager::MAX_PART_BYTES)");
    let mut out = Vec::with_capacity(at);
    encode(&moof(sequence, &tracks, &offsets), &mut out);
    debug_assert_eq!(out.len(), probe.len());
    out.extend_from_slice(&mdat_len.to_be_bytes());
    out.extend_from_slice(b"mdat");
    for t in &tracks {
        for d in &t.data {
            out.extend_from_slice(d);
        }
    }
    Bytes::from(out)
}

/// The tracks an init segment (ours: `ftyp` + `moov`) describes, as the packager was given them;
/// `None` if it is not one. How a recording's renditions are described to players afterwards.
pub fn read_init(bytes: &[u8]) -> Option<(Option<VideoConfig>, Option<AudioConfig>)> {
    use mp4_atom::{Codec, Decode};
    let mut cursor = std::io::Cursor::new(bytes);
    Ftyp::decode(&mut cursor).ok()?;
    let moov = Moov::decode(&mut cursor).ok()?;
    let (mut video, mut audio) = (None, None);
    for trak in &moov.trak {
        match trak.mdia.minf.stbl.stsd.codecs.first() {
            Some(Codec::Avc1(avc1)) => {
                let c = &avc1.avcc;
                let sps: Vec<Bytes> = c.sequence_parameter_sets.iter().map(|s| Bytes::copy_from_slice(s)).collect();
                let (width, height, frame_rate) = sps.first().and_then(|s| crate::flv::picture_info(s)).unwrap_or((
                    u32::from(avc1.visual.width),
                    u32::from(avc1.visual.height),
                    None,
                ));
                video = Some(VideoConfig {
                    profile: c.avc_profile_indication,
                    compatibility: c.profile_compatibility,
                    level: c.avc_level_indication,
                    nal_length_size: c.length_size,
                    sps,
                    pps: c.picture_parameter_sets.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
                    width,
                    height,
                    frame_rate,
                });
            }
            Some(Codec::Mp4a(mp4a)) => {
                let raw = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().map(|d| d.raw.clone())?;
                audio = crate::flv::audio_config(Bytes::from(raw)).ok();
            }
            _ => {}
        }
    }
    Some((video, audio))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{demux_audio, demux_video, tests as flv, FlvEvent};
    use mp4_atom::{Any, Decode};

    fn configs() -> (VideoConfig, AudioConfig) {
        let FlvEvent::VideoConfig(v) = demux_video(0, flv::avc_sequence_header()).unwrap() else { panic!() };
        let FlvEvent::AudioConfig(a) = demux_audio(0, flv::aac_sequence_header()).unwrap() else { panic!() };
        (v, a)
    }

    #[test]
    fn init_segment_decodes_back_with_both_tracks() {
        let (v, a) = configs();
        let init = init_segment(Some(&v), Some(&a));
        let mut cursor = std::io::Cursor::new(&init[..]);
        let ftyp = Ftyp::decode(&mut cursor).unwrap();
        assert_eq!(ftyp.major_brand, b"iso6".into());
        let moov = Moov::decode(&mut cursor).unwrap();
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, VIDEO_TIMESCALE);
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48_000);
        assert_eq!(moov.mvex.as_ref().unwrap().trex.len(), 2);
        let init_video_only = init_segment(Some(&v), None);
        let mut cursor = std::io::Cursor::new(&init_video_only[..]);
        Ftyp::decode(&mut cursor).unwrap();
        let moov = Moov::decode(&mut cursor).unwrap();
        assert_eq!(moov.trak.len(), 1);
    }

    #[test]
    fn an_init_segment_reads_back_as_its_tracks() {
        let (v, a) = configs();
        let init = init_segment(Some(&v), Some(&a));
        assert_eq!(read_init(&init), Some((Some(v.clone()), Some(a))));
        assert_eq!(read_init(&init_segment(Some(&v), None)), Some((Some(v), None)));
        for junk in [&b""[..], b"not an init segment", &init[..init.len() / 2]] {
            assert_eq!(read_init(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn fragment_offsets_point_at_each_tracks_bytes() {
        let video = TrackFragment {
            track_id: VIDEO_TRACK,
            base_decode_time: 90_000,
            samples: vec![
                SampleEntry { duration: 3000, size: 3, sync: true, composition_offset: 6000 },
                SampleEntry { duration: 3000, size: 2, sync: false, composition_offset: -3000 },
            ],
            data: vec![Bytes::from_static(b"AAA"), Bytes::from_static(b"BB")],
        };
        let audio = TrackFragment {
            track_id: AUDIO_TRACK,
            base_decode_time: 48_000,
            samples: vec![SampleEntry { duration: 1024, size: 4, sync: true, composition_offset: 0 }],
            data: vec![Bytes::from_static(b"cccc")],
        };
        let bytes = fragment(7, &[video, audio, TrackFragment::default()]);
        let mut cursor = std::io::Cursor::new(&bytes[..]);
        let Any::Moof(moof) = Any::decode(&mut cursor).unwrap() else { panic!("no moof first") };
        assert_eq!(moof.mfhd.sequence_number, 7);
        assert_eq!(moof.traf.len(), 2, "empty tracks are left out");
        let v_off = moof.traf[0].trun[0].data_offset.unwrap() as usize;
        let a_off = moof.traf[1].trun[0].data_offset.unwrap() as usize;
        assert_eq!(&bytes[v_off..v_off + 5], b"AAABB");
        assert_eq!(&bytes[a_off..a_off + 4], b"cccc");
        let entries: Vec<_> = moof.traf[0].trun[0].samples.iter().collect();
        assert_eq!(entries[1].cts, Some(-3000));
        assert_eq!(entries[0].flags, Some(SYNC_SAMPLE));
        assert_eq!(moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time, 90_000);
        let Any::Mdat(mdat) = Any::decode(&mut cursor).unwrap() else { panic!("no mdat") };
        assert_eq!(mdat.data, b"AAABBcccc");
    }
}
