//! The packager: media events in, CMAF init segment, LL-HLS parts and segment boundaries out.
//!
//! Settings (what the operator asked for) are kept apart from state (what the stream is doing).
//! Parts are cut on sample boundaries so that no part is longer than the part target, as
//! RFC 8216bis §4.4.4.9 requires: a boundary is taken as soon as two more frames of the current
//! cadence would overflow the target. The second frame is headroom for timestamp jitter (FLV's
//! millisecond clock alternates 33 and 34 ms at 30 fps; looping encoders leave small gaps), and
//! still leaves parts above the 85 % floor the same section asks for. Segments end only where the next part can start on a
//! keyframe and the segment has reached its target; a GOP longer than the target makes a longer
//! segment, never one that starts mid-GOP. Audio rides along in the part open when it arrives;
//! an audio-only stream cuts parts on audio frames, all of them independent.
//!
//! A sample's duration is only known when the next sample of its track arrives, so each track
//! holds back one sample; `finish` flushes them with the last known duration.

use crate::boxes::{self, SampleEntry, TrackFragment, AUDIO_TRACK, VIDEO_TIMESCALE, VIDEO_TRACK};
use crate::flv::{AudioConfig, AudioFrame, FlvEvent, VideoConfig, VideoFrame};
use crate::timeline::Unwrapper;
use bytes::Bytes;
use std::collections::VecDeque;

/// The most media bytes a part gathers before it is cut, whatever its duration: a publisher
/// sending huge frames or a flood of frames with one timestamp cannot grow a part without bound.
/// One RTMP message is at most 16 MiB, so a part stays far below the 2 GiB a `trun` offset holds.
pub const MAX_PART_BYTES: usize = 64 * 1024 * 1024;

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackagerSettings {
    pub segment_target_ms: i64,
    pub part_target_ms: i64,
}

impl Default for PackagerSettings {
    fn default() -> Self {
        PackagerSettings { segment_target_ms: 2000, part_target_ms: 500 }
    }
}

/// One LL-HLS partial segment: a CMAF fragment (`moof`+`mdat`).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Media sequence number of the segment this part belongs to.
    pub segment: u64,
    /// Index of the part within its segment, from 0.
    pub index: u32,
    /// Start on the stream's timeline (milliseconds since the first frame).
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Starts with a keyframe (or is audio only): a player can begin decoding here.
    pub independent: bool,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The init segment: before the first part, and again when the broadcaster changes its
    /// encoding mid-stream (a new resolution): then the open segment ends at the first keyframe
    /// coded with the new configuration, this follows, and the timeline runs on unbroken.
    Init {
        bytes: Bytes,
        video: Option<VideoConfig>,
        audio: Option<AudioConfig>,
    },
    Part(Part),
    /// The segment `segment` is complete: it is the concatenation of its parts.
    SegmentEnd {
        segment: u64,
        duration_ms: i64,
    },
}

/// A sample whose duration is not known yet.
#[derive(Debug, Clone)]
struct Held {
    /// Decode time in the track's timescale.
    dts: u64,
    composition_offset: i32,
    sync: bool,
    data: Bytes,
    /// Decode time on the stream timeline, in milliseconds.
    ms: i64,
}

#[derive(Debug, Default)]
struct TrackState {
    clock: Unwrapper,
    held: Option<Held>,
    fragment: TrackFragment,
    /// Duration of the last completed sample, in the track's timescale.
    last_duration: u32,
}

impl TrackState {
    fn new(track_id: u32) -> Self {
        TrackState { fragment: TrackFragment { track_id, ..Default::default() }, ..Default::default() }
    }

    /// Completes the held sample with the decode time of its successor.
    fn complete_held(&mut self, next_dts: u64) {
        if let Some(h) = self.held.take() {
            let duration = u32::try_from(next_dts.saturating_sub(h.dts)).unwrap_or(u32::MAX).max(1);
            self.push(h, duration);
        }
    }

    fn push(&mut self, h: Held, duration: u32) {
        if self.fragment.samples.is_empty() {
            self.fragment.base_decode_time = h.dts;
        }
        self.last_duration = duration;
        self.fragment.samples.push(SampleEntry {
            duration,
            size: u32::try_from(h.data.len()).unwrap_or(u32::MAX),
            sync: h.sync,
            composition_offset: h.composition_offset,
        });
        self.fragment.data.push(h.data);
    }

    fn take_fragment(&mut self) -> TrackFragment {
        let id = self.fragment.track_id;
        std::mem::replace(&mut self.fragment, TrackFragment { track_id: id, ..Default::default() })
    }
}

/// What the stream is doing.
#[derive(Debug)]
pub struct Packager {
    settings: PackagerSettings,
    video_config: Option<VideoConfig>,
    audio_config: Option<AudioConfig>,
    /// Tracks fixed when the init segment went out.
    started: Option<(bool, bool)>,
    /// Configurations that differ from the last init segment's: the next keyframe (or, without
    /// video, the next audio frame) starts a segment under a new init that carries them.
    next_video: Option<VideoConfig>,
    next_audio: Option<AudioConfig>,
    origin_ms: Option<i64>,
    video: TrackState,
    audio: TrackState,
    waiting_for_keyframe: bool,
    segment: u64,
    part_index: u32,
    segment_start_ms: i64,
    part_start_ms: Option<i64>,
    part_independent: bool,
    fragment_sequence: u32,
    /// The stream time given to the frame last handed in, if it was kept.
    accepted_ms: Option<i64>,
    out: VecDeque<Output>,
}

/// Two video configurations code pictures alike (a repeated sequence header is no change).
fn same_video(a: &VideoConfig, b: &VideoConfig) -> bool {
    (a.nal_length_size, &a.sps, &a.pps) == (b.nal_length_size, &b.sps, &b.pps)
}

/// The decode time of an AAC frame (in samples): one frame (1024 samples) after `previous`, unless
/// the clock's `from_clock` says a frame was lost or the clock jumped, so millisecond rounding
/// never jitters the audio.
pub(crate) fn aac_dts(previous: Option<u64>, from_clock: u64) -> u64 {
    match previous {
        Some(prev) => {
            let expected = prev + 1024;
            if from_clock.abs_diff(expected) <= 512 {
                expected
            } else {
                from_clock.max(prev + 1)
            }
        }
        None => from_clock,
    }
}

impl Packager {
    /// A packager whose first segment gets media sequence number `first_segment` (so a reconnect
    /// can continue the same playlist).
    pub fn new(settings: PackagerSettings, first_segment: u64) -> Self {
        Packager {
            settings,
            video_config: None,
            audio_config: None,
            started: None,
            next_video: None,
            next_audio: None,
            origin_ms: None,
            video: TrackState::new(VIDEO_TRACK),
            audio: TrackState::new(AUDIO_TRACK),
            waiting_for_keyframe: true,
            segment: first_segment,
            part_index: 0,
            segment_start_ms: 0,
            part_start_ms: None,
            part_independent: false,
            fragment_sequence: 0,
            accepted_ms: None,
            out: VecDeque::new(),
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The time on the stream's timeline (milliseconds since its first keyframe) given to the
    /// audio or video frame last handed to [`handle`](Self::handle); `None` if it was dropped (it
    /// came before the first keyframe, or was a configuration).
    pub fn accepted_ms(&self) -> Option<i64> {
        self.accepted_ms
    }

    pub fn handle(&mut self, event: FlvEvent) {
        self.accepted_ms = None;
        match event {
            FlvEvent::VideoConfig(c) => {
                match self.started {
                    None => self.video_config = Some(c),
                    // Encoders repeat their sequence header; only a different one is a change.
                    Some((true, _)) => {
                        let same = self.video_config.as_ref().is_some_and(|old| same_video(old, &c));
                        self.next_video = (!same).then_some(c);
                    }
                    Some(_) => {}
                }
            }
            FlvEvent::AudioConfig(c) => match self.started {
                None => self.audio_config = Some(c),
                Some((_, true)) => {
                    let same = self.audio_config.as_ref().is_some_and(|old| old.asc == c.asc);
                    self.next_audio = (!same).then_some(c);
                }
                Some(_) => {}
            },
            FlvEvent::Video(f) => self.push_video(f),
            FlvEvent::Audio(f) => self.push_audio(f),
            FlvEvent::Ignored(_) => {}
        }
    }

    /// Sends the init segment on the first media frame, with the tracks configured by then.
    fn start(&mut self) -> (bool, bool) {
        if let Some(tracks) = self.started {
            return tracks;
        }
        let tracks = (self.video_config.is_some(), self.audio_config.is_some());
        if tracks == (false, false) {
            return tracks;
        }
        self.started = Some(tracks);
        self.out.push_back(Output::Init {
            bytes: boxes::init_segment(self.video_config.as_ref(), self.audio_config.as_ref()),
            video: self.video_config.clone(),
            audio: self.audio_config.clone(),
        });
        tracks
    }

    /// The configuration changed and this frame may start under it: the open segment ends here,
    /// with whatever is held (its duration is the last one's), and the new init goes out.
    fn restart_here(&mut self, ms: i64) {
        if self.next_video.is_none() && self.next_audio.is_none() {
            return;
        }
        self.push_held();
        self.close_part(ms, true);
        if let Some(c) = self.next_video.take() {
            self.video_config = Some(c);
        }
        if let Some(c) = self.next_audio.take() {
            self.audio_config = Some(c);
        }
        self.out.push_back(Output::Init {
            bytes: boxes::init_segment(self.video_config.as_ref(), self.audio_config.as_ref()),
            video: self.video_config.clone(),
            audio: self.audio_config.clone(),
        });
        self.part_start_ms = None;
    }

    fn stream_ms(&mut self, unwrapped: i64) -> i64 {
        let origin = *self.origin_ms.get_or_insert(unwrapped);
        (unwrapped - origin).max(0)
    }

    fn push_video(&mut self, f: VideoFrame) {
        let (has_video, _) = self.start();
        if !has_video {
            return;
        }
        if self.waiting_for_keyframe {
            if !f.keyframe {
                return; // nothing can be decoded before the first keyframe
            }
            self.waiting_for_keyframe = false;
        }
        let raw = self.video.clock.unwrap(f.dts_ms);
        let ms = self.stream_ms(raw);
        let dts = ms as u64 * u64::from(VIDEO_TIMESCALE / 1000);
        self.accepted_ms = Some(ms);
        self.video.complete_held(dts);
        if f.keyframe {
            self.restart_here(ms);
        }
        self.video_boundary(ms, f.keyframe);
        self.video.held = Some(Held {
            dts,
            composition_offset: f.cts_ms.saturating_mul((VIDEO_TIMESCALE / 1000) as i32),
            sync: f.keyframe,
            data: f.data,
            ms,
        });
    }

    /// Decides, at the start of a new video frame at `ms`, whether the open part (and segment) ends.
    fn video_boundary(&mut self, ms: i64, keyframe: bool) {
        let Some(part_start) = self.part_start_ms else {
            self.open_part(ms, keyframe);
            return;
        };
        if self.video.fragment.samples.is_empty() {
            return;
        }
        let cadence_ms = i64::from(self.video.last_duration) / i64::from(VIDEO_TIMESCALE / 1000);
        let segment_len = ms - self.segment_start_ms;
        if keyframe && segment_len >= self.settings.segment_target_ms {
            self.close_part(ms, true);
            self.open_part(ms, true);
        } else if ms - part_start + 2 * cadence_ms > self.settings.part_target_ms || self.oversized() {
            self.close_part(ms, false);
            self.open_part(ms, keyframe);
        }
    }

    fn oversized(&self) -> bool {
        self.video.fragment.data_len() + self.audio.fragment.data_len() > MAX_PART_BYTES
    }

    fn push_audio(&mut self, f: AudioFrame) {
        let (has_video, has_audio) = self.start();
        if !has_audio || (has_video && self.waiting_for_keyframe) {
            return;
        }
        let raw = self.audio.clock.unwrap(f.ts_ms);
        let ms = self.stream_ms(raw);
        if !has_video {
            self.restart_here(ms);
        }
        let Some(config) = &self.audio_config else { return };
        let rate = u64::from(config.sample_rate);
        let from_clock = ms as u64 * rate / 1000;
        let dts = aac_dts(self.audio.held.as_ref().map(|h| h.dts), from_clock);
        self.accepted_ms = Some(ms);
        self.audio.complete_held(dts);
        if !has_video {
            self.audio_boundary(ms);
        } else if self.oversized() {
            // Audio piling up while no video frame comes to close the part.
            self.close_part(ms, false);
            self.open_part(ms, false);
        }
        self.audio.held = Some(Held { dts, composition_offset: 0, sync: true, data: f.data, ms });
    }

    /// Part and segment cuts for audio-only streams.
    fn audio_boundary(&mut self, ms: i64) {
        let Some(part_start) = self.part_start_ms else {
            self.open_part(ms, true);
            return;
        };
        if self.audio.fragment.samples.is_empty() {
            return;
        }
        let rate = i64::from(self.audio_config.as_ref().map_or(48_000, |c| c.sample_rate));
        let cadence_ms = i64::from(self.audio.last_duration) * 1000 / rate;
        if ms - part_start + 2 * cadence_ms > self.settings.part_target_ms || self.oversized() {
            let end_segment = ms - self.segment_start_ms >= self.settings.segment_target_ms;
            self.close_part(ms, end_segment);
            self.open_part(ms, true);
        }
    }

    fn open_part(&mut self, ms: i64, independent: bool) {
        if self.part_start_ms.is_none() {
            self.segment_start_ms = ms;
        }
        self.part_start_ms = Some(ms);
        self.part_independent = independent;
    }

    fn close_part(&mut self, end_ms: i64, end_segment: bool) {
        let Some(start) = self.part_start_ms else { return };
        let tracks = [self.video.take_fragment(), self.audio.take_fragment()];
        if tracks.iter().all(|t| t.samples.is_empty()) {
            return;
        }
        self.fragment_sequence += 1;
        self.out.push_back(Output::Part(Part {
            segment: self.segment,
            index: self.part_index,
            start_ms: start,
            duration_ms: end_ms - start,
            independent: self.part_independent,
            bytes: boxes::fragment(self.fragment_sequence, &tracks),
        }));
        self.part_index += 1;
        if end_segment {
            self.out
                .push_back(Output::SegmentEnd { segment: self.segment, duration_ms: end_ms - self.segment_start_ms });
            self.segment += 1;
            self.part_index = 0;
            self.segment_start_ms = end_ms;
        }
    }

    /// The stream ended: flush what is held, close the open part and segment.
    pub fn finish(&mut self) {
        let start = self.part_start_ms.unwrap_or(0);
        let end_ms = self.push_held().map_or(start, |end| end.max(start));
        self.close_part(end_ms, true);
    }

    /// Pushes each track's held sample with the duration of the one before it (no successor will
    /// tell it); returns where the later of them ends, in stream milliseconds.
    fn push_held(&mut self) -> Option<i64> {
        let mut end_ms = None::<i64>;
        for (track, ticks_per_ms) in [
            (&mut self.video, u64::from(VIDEO_TIMESCALE / 1000)),
            (&mut self.audio, self.audio_config.as_ref().map_or(48, |c| u64::from(c.sample_rate) / 1000).max(1)),
        ] {
            if let Some(h) = track.held.take() {
                let duration = track.last_duration.max(1);
                let end = h.ms + (u64::from(duration) / ticks_per_ms) as i64;
                end_ms = Some(end_ms.map_or(end, |e| e.max(end)));
                track.push(h, duration);
            }
        }
        end_ms
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::flv::{demux_audio, demux_video, tests as flv};
    use mp4_atom::{Any, Decode};

    /// Feeds `seconds` of 30 fps video (keyframe every `gop` frames, B-frame-style composition
    /// offsets) and 48 kHz AAC, starting at raw timestamp `t0`.
    fn feed(p: &mut Packager, seconds: u32, gop: u32, t0: u32, audio: bool) {
        p.handle(demux_video(t0, flv::avc_sequence_header()).unwrap());
        if audio {
            p.handle(demux_audio(t0, flv::aac_sequence_header()).unwrap());
        }
        let frames = seconds * 30;
        let mut next_audio = 0u32; // in 1/48000 s
        for i in 0..frames {
            let ms = i * 1000 / 30;
            while audio && next_audio * 1000 / 48_000 <= ms {
                let ts = t0.wrapping_add(next_audio * 1000 / 48_000);
                p.handle(demux_audio(ts, flv::aac_frame(&[0x21, 0x10, 4, 5])).unwrap());
                next_audio += 1024;
            }
            let key = i % gop == 0;
            let cts = if !key && i % 3 == 1 { 67 } else { 0 };
            p.handle(
                demux_video(t0.wrapping_add(ms), flv::avc_frame(key, cts, &[if key { 0x65 } else { 0x41 }, i as u8]))
                    .unwrap(),
            );
        }
        p.finish();
    }

    fn drain(p: &mut Packager) -> Vec<Output> {
        std::iter::from_fn(|| p.poll_output()).collect()
    }

    fn parts(outputs: &[Output]) -> Vec<&Part> {
        outputs.iter().filter_map(|o| if let Output::Part(p) = o { Some(p) } else { None }).collect()
    }

    fn segments(outputs: &[Output]) -> Vec<(u64, i64)> {
        outputs
            .iter()
            .filter_map(|o| {
                if let Output::SegmentEnd { segment, duration_ms } = o {
                    Some((*segment, *duration_ms))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Every part is a decodable fragment; returns its (track, base decode time, total duration).
    pub(crate) fn decode_times(part: &Part) -> Vec<(u32, u64, u64)> {
        let mut cursor = std::io::Cursor::new(&part.bytes[..]);
        let Any::Moof(moof) = Any::decode(&mut cursor).unwrap() else { panic!("part does not start with moof") };
        let Any::Mdat(_) = Any::decode(&mut cursor).unwrap() else { panic!("no mdat") };
        moof.traf
            .iter()
            .map(|t| {
                let total: u64 = t.trun[0].samples.iter().map(|s| u64::from(s.duration.unwrap())).sum();
                (t.tfhd.track_id, t.tfdt.as_ref().unwrap().base_media_decode_time, total)
            })
            .collect()
    }

    #[test]
    fn cuts_two_second_segments_of_half_second_parts() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        feed(&mut p, 10, 60, 0, true);
        let out = drain(&mut p);
        assert!(matches!(out[0], Output::Init { .. }), "init first");
        let segs = segments(&out);
        assert_eq!(segs.len(), 5);
        for (i, (msn, dur)) in segs.iter().enumerate() {
            assert_eq!(*msn, i as u64);
            assert!((1990..=2010).contains(dur), "segment {msn} lasts {dur} ms");
        }
        let parts = parts(&out);
        for part in &parts {
            assert!(part.duration_ms <= 500, "part {}.{} lasts {} ms", part.segment, part.index, part.duration_ms);
            assert_eq!(part.independent, part.index == 0, "only segment starts hold keyframes here");
        }
        for s in 0..5u64 {
            let of_segment: Vec<_> = parts.iter().filter(|p| p.segment == s).collect();
            let sum: i64 = of_segment.iter().map(|p| p.duration_ms).sum();
            assert_eq!(sum, segs[s as usize].1, "parts add up to their segment");
            for p in &of_segment[..of_segment.len() - 1] {
                assert!(p.duration_ms >= 425, "non-final parts are at least 85 % of the target");
            }
        }
    }

    #[test]
    fn decode_times_are_continuous_across_parts() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        feed(&mut p, 6, 60, 0, true);
        let out = drain(&mut p);
        let mut next: std::collections::HashMap<u32, u64> = Default::default();
        for part in parts(&out) {
            for (track, base, total) in decode_times(part) {
                if let Some(expected) = next.get(&track) {
                    assert_eq!(base, *expected, "track {track} jumps at part {}.{}", part.segment, part.index);
                }
                next.insert(track, base + total);
            }
        }
        assert_eq!(next.len(), 2, "both tracks carried");
        let audio_samples = next[&AUDIO_TRACK] / 1024;
        assert!(audio_samples >= 6 * 46, "audio kept its 1024-sample cadence ({audio_samples} frames)");
    }

    #[test]
    fn a_long_gop_makes_long_segments_never_broken_ones() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        feed(&mut p, 10, 150, 0, false);
        let out = drain(&mut p);
        let segs = segments(&out);
        assert_eq!(segs.len(), 2);
        assert!(segs.iter().all(|(_, d)| (4990..=5010).contains(d)), "{segs:?}");
        let first_parts: Vec<_> = parts(&out).into_iter().filter(|p| p.index == 0).collect();
        assert!(first_parts.iter().all(|p| p.independent));
    }

    #[test]
    fn survives_the_32_bit_timestamp_wrap() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        feed(&mut p, 6, 60, u32::MAX - 2500, true);
        let out = drain(&mut p);
        assert_eq!(segments(&out).len(), 3);
        let mut last_video = None;
        for part in parts(&out) {
            for (track, base, total) in decode_times(part) {
                if track == VIDEO_TRACK {
                    if let Some(expected) = last_video {
                        assert_eq!(base, expected);
                    }
                    last_video = Some(base + total);
                }
            }
        }
        // The last frame is at 5966 ms and keeps the cadence before it (33 ms).
        assert_eq!(last_video, Some((5966 + 33) * 90), "6 s of video at 90 kHz, no gap at the wrap");
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped() {
        let mut p = Packager::new(PackagerSettings::default(), 7);
        p.handle(demux_video(0, flv::avc_sequence_header()).unwrap());
        p.handle(demux_video(0, flv::avc_frame(false, 0, &[0x41])).unwrap());
        p.handle(demux_video(33, flv::avc_frame(true, 0, &[0x65])).unwrap());
        p.handle(demux_video(67, flv::avc_frame(false, 0, &[0x41])).unwrap());
        p.finish();
        let out = drain(&mut p);
        let parts = parts(&out);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].segment, 7, "numbering continues from the given sequence");
        assert!(parts[0].independent);
        assert_eq!(parts[0].start_ms, 0, "the timeline starts at the first frame kept");
    }

    #[test]
    fn audio_only_streams_are_packaged() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        p.handle(demux_audio(0, flv::aac_sequence_header()).unwrap());
        for i in 0..(48_000 * 5 / 1024) {
            p.handle(demux_audio(i * 1024 * 1000 / 48_000, flv::aac_frame(&[1, 2])).unwrap());
        }
        p.finish();
        let out = drain(&mut p);
        let Output::Init { video, audio, .. } = &out[0] else { panic!() };
        assert!(video.is_none() && audio.is_some());
        let parts = parts(&out);
        assert!(parts.len() >= 9);
        assert!(parts.iter().all(|p| p.independent && p.duration_ms <= 500));
        assert!(segments(&out).len() >= 2);
    }

    #[test]
    fn parts_never_outgrow_the_byte_cap() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        p.handle(demux_video(0, flv::avc_sequence_header()).unwrap());
        let big = vec![0x41u8; 4 * 1024 * 1024];
        for i in 0..40u32 {
            // A flood of 4 MiB frames, all with the same timestamp.
            p.handle(demux_video(0, flv::avc_frame(i == 0, 0, &big)).unwrap());
        }
        p.finish();
        let out = drain(&mut p);
        let parts = parts(&out);
        assert!(parts.len() >= 2, "the flood was cut into several parts");
        assert!(parts.iter().all(|p| p.bytes.len() <= MAX_PART_BYTES + 5 * 1024 * 1024));
    }

    /// OBS's "new resolution": a different sequence header mid-stream. The open segment ends at
    /// the first keyframe after it, a new init follows with the new picture size, and the
    /// timeline runs on; a repeated identical header changes nothing.
    #[test]
    fn a_new_sequence_header_starts_a_segment_under_a_new_init() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        p.handle(demux_video(0, flv::avc_sequence_header()).unwrap());
        p.handle(demux_audio(0, flv::aac_sequence_header()).unwrap());
        let mut audio_ms = 0u32;
        let mut frame = |p: &mut Packager, i: u32| {
            let ms = i * 1000 / 30;
            while audio_ms <= ms {
                p.handle(demux_audio(audio_ms, flv::aac_frame(&[0x21])).unwrap());
                audio_ms += 21;
            }
            p.handle(demux_video(ms, flv::avc_frame(i.is_multiple_of(20), 0, &[0x65, i as u8])).unwrap());
        };
        for i in 0..75 {
            frame(&mut p, i);
        }
        // The same header again: nothing happens. Then a new one, sent mid-GOP.
        p.handle(demux_video(2500, flv::avc_sequence_header()).unwrap());
        p.handle(demux_video(2500, flv::avc_sequence_header_with(flv::SPS_360P)).unwrap());
        for i in 75..150 {
            frame(&mut p, i);
        }
        p.finish();
        let out = drain(&mut p);
        let inits: Vec<(usize, u32)> = out
            .iter()
            .enumerate()
            .filter_map(|(at, o)| match o {
                Output::Init { video: Some(v), .. } => Some((at, v.height)),
                _ => None,
            })
            .collect();
        assert_eq!(inits.iter().map(|(_, h)| *h).collect::<Vec<_>>(), [720, 360], "{inits:?}");
        // The new init comes right after a segment cut short at the next keyframe (frame 80,
        // 2666 ms), not at the segment target.
        let (at, _) = inits[1];
        let Output::SegmentEnd { segment, duration_ms } = &out[at - 1] else { panic!("{:?}", out[at - 1]) };
        assert_eq!((*segment, *duration_ms), (1, 666));
        let Output::Part(next) = &out[at + 1] else { panic!() };
        assert_eq!((next.segment, next.index, next.start_ms, next.independent), (2, 0, 2666, true));
        // Decode times go on across the change.
        assert_eq!(decode_times(next).iter().find(|t| t.0 == VIDEO_TRACK).unwrap().1, 2666 * 90);
        assert!(segments(&out).iter().all(|(_, d)| *d > 0));
    }

    #[test]
    fn nothing_without_configuration() {
        let mut p = Packager::new(PackagerSettings::default(), 0);
        p.handle(demux_video(0, flv::avc_frame(true, 0, &[0x65])).unwrap());
        p.handle(demux_audio(0, flv::aac_frame(&[1])).unwrap());
        p.finish();
        assert!(drain(&mut p).is_empty());
    }

    proptest::proptest! {
        /// Whatever the frame cadence and GOP, parts stay within the target (plus one frame of
        /// jitter), segments start independent, and parts add up to their segments.
        #[test]
        fn invariants_hold_for_any_cadence(durations in proptest::collection::vec(20u32..60, 50..400), gop in 10usize..200) {
            let mut p = Packager::new(PackagerSettings::default(), 0);
            p.handle(demux_video(0, flv::avc_sequence_header()).unwrap());
            let mut t = 0u32;
            for (i, d) in durations.iter().enumerate() {
                p.handle(demux_video(t, flv::avc_frame(i % gop == 0, 0, &[0x65])).unwrap());
                t += d;
            }
            p.finish();
            let out = drain(&mut p);
            let parts = parts(&out);
            let segs = segments(&out);
            for part in &parts {
                proptest::prop_assert!(part.duration_ms <= 500 + 40, "part of {} ms", part.duration_ms);
                if part.index == 0 { proptest::prop_assert!(part.independent); }
            }
            for (msn, dur) in &segs {
                let sum: i64 = parts.iter().filter(|p| p.segment == *msn).map(|p| p.duration_ms).sum();
                proptest::prop_assert_eq!(sum, *dur);
            }
        }
    }
}
