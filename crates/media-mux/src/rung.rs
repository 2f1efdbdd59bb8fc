//! The ladder's alignment: one rung of a channel's ladder, packaged so that a player can switch
//! rungs at any part. The source's packager decides where parts and segments are cut; every rung
//! is cut at the same media times into parts with the same sequence numbers, indices and
//! durations, so `part-{msn}-{i}.m4s` of every rung covers the same moment.
//!
//! What goes in: the source's cuts ([`Cut`], as its packager made them), the source's keyframes
//! (their composition offsets), the source's audio (passed through, shared by every rung), and the
//! rung's video as the encoder sent it back. The encoder was given the source's timestamps and
//! told to make an IDR frame wherever the source has a keyframe, without B-frames, so a rung
//! frame's timestamp is its source frame's *presentation* time. A source part is a window of
//! decode times `[start, end)`; the rung's part is the window of presentation times shifted by the
//! source's presentation delay (its keyframe's composition offset), which begins exactly at the
//! rung's IDR when the source part begins at a keyframe. Audio keeps the source's window.
//!
//! A rung part is cut once the encoder has sent a frame past the window's end (or the stream
//! ended), so it holds every frame of its window. A rung starts at the first source segment that
//! its encoder began with an IDR frame. A rung whose encoder falls too far behind drops its
//! oldest pending parts rather than growing without bound ([`RungPackager::dropped_parts`]).

use crate::boxes::{self, SampleEntry, TrackFragment, AUDIO_TRACK, VIDEO_TIMESCALE, VIDEO_TRACK};
use crate::flv::{AudioConfig, FlvEvent, VideoConfig};
use crate::packager::{aac_dts, Output, Part};
use crate::timeline::Unwrapper;
use bytes::Bytes;
use std::collections::VecDeque;

/// Source parts a rung may wait on before it drops the oldest: 20 s at the default part target.
pub const MAX_PENDING_CUTS: usize = 40;
/// Encoded frames a rung holds while it waits for the source's cuts.
pub const MAX_PENDING_FRAMES: usize = 1200;

/// One part of the source, as its packager cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub segment: u64,
    pub index: u32,
    pub start_ms: i64,
    pub duration_ms: i64,
    /// This part ends its segment, which lasted this long.
    pub segment_ms: Option<i64>,
}

impl Cut {
    pub fn of(part: &Part) -> Self {
        Cut {
            segment: part.segment,
            index: part.index,
            start_ms: part.start_ms,
            duration_ms: part.duration_ms,
            segment_ms: None,
        }
    }

    fn end_ms(&self) -> i64 {
        self.start_ms + self.duration_ms
    }
}

#[derive(Debug)]
struct Frame {
    /// Decode time on the stream timeline, milliseconds.
    ms: i64,
    cts_ms: i32,
    keyframe: bool,
    data: Bytes,
}

impl Frame {
    fn pts(&self) -> i64 {
        self.ms + i64::from(self.cts_ms)
    }
}

#[derive(Debug, Default)]
pub struct RungPackager {
    video_config: Option<VideoConfig>,
    /// `Some` once the source's tracks are known; `Some(None)`: the source has no audio.
    source_audio: Option<Option<AudioConfig>>,
    started: bool,
    /// The rung has cut its first part (which began a segment with an IDR frame).
    begun: bool,
    clock: Unwrapper,
    cuts: VecDeque<Cut>,
    /// Source keyframes: (decode ms, composition offset ms), oldest first.
    keyframes: VecDeque<(i64, i32)>,
    video: VecDeque<Frame>,
    audio: VecDeque<(i64, Bytes)>,
    /// Decode time of the last audio sample written, in samples.
    last_audio_dts: Option<u64>,
    last_video_duration: u32,
    fragment_sequence: u32,
    finished: bool,
    dropped_parts: u64,
    out: VecDeque<Output>,
}

impl RungPackager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Source parts this rung could not make (its encoder fell behind, or never began a segment
    /// with an IDR frame where the source had a keyframe).
    pub fn dropped_parts(&self) -> u64 {
        self.dropped_parts
    }

    /// Source parts cut but not yet made for this rung.
    pub fn pending_parts(&self) -> usize {
        self.cuts.len()
    }

    /// The source's init segment went out with these tracks.
    pub fn source_started(&mut self, audio: Option<AudioConfig>) {
        if self.source_audio.is_none() {
            self.source_audio = Some(audio);
            self.advance();
        }
    }

    /// A source keyframe at decode time `ms` with composition offset `cts_ms`.
    pub fn source_keyframe(&mut self, ms: i64, cts_ms: i32) {
        self.keyframes.push_back((ms, cts_ms));
        if self.keyframes.len() > MAX_PENDING_CUTS * 2 {
            self.keyframes.pop_front();
        }
    }

    /// A source audio frame at stream time `ms`.
    pub fn source_audio(&mut self, ms: i64, data: Bytes) {
        if !self.started && self.source_audio.is_none() {
            return;
        }
        self.audio.push_back((ms, data));
        if self.audio.len() > MAX_PENDING_FRAMES {
            self.audio.pop_front();
        }
    }

    /// The source cut these parts (a part that ends its segment says so).
    pub fn source_cut(&mut self, cut: Cut) {
        self.cuts.push_back(cut);
        while self.cuts.len() > MAX_PENDING_CUTS {
            if let Some(old) = self.cuts.pop_front() {
                self.drop_cut(old);
            }
        }
        self.advance();
    }

    /// What the encoder sent back for this rung. Its timestamps are the stream's milliseconds.
    pub fn rung_video(&mut self, event: FlvEvent) {
        match event {
            FlvEvent::VideoConfig(c) if self.video_config.is_none() => self.video_config = Some(c),
            FlvEvent::Video(f) => {
                if self.video_config.is_none() {
                    return;
                }
                let ms = self.clock.unwrap(f.dts_ms);
                self.video.push_back(Frame { ms, cts_ms: f.cts_ms, keyframe: f.keyframe, data: f.data });
                if self.video.len() > MAX_PENDING_FRAMES {
                    self.video.pop_front();
                }
            }
            _ => {}
        }
        self.advance();
    }

    /// The encoder's output ended: what it sent is all there is.
    pub fn finish(&mut self) {
        self.finished = true;
        self.advance();
        self.cuts.clear();
    }

    /// The presentation delay of the source at `ms`: its latest keyframe's composition offset.
    fn shift_at(&self, ms: i64) -> i64 {
        self.keyframes.iter().rev().find(|(k, _)| *k <= ms).map_or(0, |(_, cts)| i64::from(*cts))
    }

    fn drop_cut(&mut self, cut: Cut) {
        let end = cut.end_ms() + self.shift_at(cut.start_ms);
        while self.video.front().is_some_and(|f| f.pts() < end) {
            self.video.pop_front();
        }
        while self.audio.front().is_some_and(|(ms, _)| *ms < cut.end_ms()) {
            self.audio.pop_front();
        }
        self.dropped_parts += 1;
        // What follows a gap can be decoded only from the next segment's IDR frame.
        self.begun = false;
    }

    fn advance(&mut self) {
        if !self.started {
            let (Some(video), Some(audio)) = (&self.video_config, &self.source_audio) else { return };
            self.started = true;
            self.out.push_back(Output::Init {
                bytes: boxes::init_segment(Some(video), audio.as_ref()),
                video: Some(video.clone()),
                audio: audio.clone(),
            });
        }
        while let Some(cut) = self.cuts.front().copied() {
            let shift = self.shift_at(cut.start_ms);
            let (start, end) = (cut.start_ms + shift, cut.end_ms() + shift);
            // Every frame of the window has arrived once one after it has.
            if !self.finished && self.video.back().is_none_or(|f| f.ms < end) {
                return;
            }
            self.cuts.pop_front();
            while self.video.front().is_some_and(|f| f.pts() < start) {
                self.video.pop_front(); // before the rung's first part, or of a dropped one
            }
            if !self.begun {
                let opens_with_idr = self.video.front().is_some_and(|f| f.keyframe && f.pts() < end);
                if cut.index != 0 || !opens_with_idr {
                    self.drop_cut(cut);
                    continue;
                }
                self.begun = true;
            }
            self.cut_part(cut, end);
        }
    }

    fn cut_part(&mut self, cut: Cut, end: i64) {
        let ticks = i64::from(VIDEO_TIMESCALE / 1000);
        let mut video = TrackFragment { track_id: VIDEO_TRACK, ..Default::default() };
        let mut independent = None;
        while let Some(f) = self.video.front() {
            if f.pts() >= end {
                break;
            }
            let f = self.video.pop_front().expect("just looked");
            let next = self.video.front().map(|n| n.ms);
            let duration = match next {
                Some(n) => u32::try_from((n - f.ms).max(1) * ticks).unwrap_or(u32::MAX),
                None => self.last_video_duration.max(1),
            };
            self.last_video_duration = duration;
            if video.samples.is_empty() {
                video.base_decode_time = (f.ms.max(0) * ticks) as u64;
                independent = Some(f.keyframe);
            }
            video.samples.push(SampleEntry {
                duration,
                size: u32::try_from(f.data.len()).unwrap_or(u32::MAX),
                sync: f.keyframe,
                composition_offset: f.cts_ms.saturating_mul(ticks as i32),
            });
            video.data.push(f.data);
        }
        let mut audio = TrackFragment { track_id: AUDIO_TRACK, ..Default::default() };
        if let Some(Some(config)) = &self.source_audio {
            let rate = u64::from(config.sample_rate);
            while self.audio.front().is_some_and(|(ms, _)| *ms < cut.end_ms()) {
                let (ms, data) = self.audio.pop_front().expect("just looked");
                let dts = aac_dts(self.last_audio_dts, ms.max(0) as u64 * rate / 1000);
                if let (Some(prev), Some(last)) = (self.last_audio_dts, audio.samples.last_mut()) {
                    last.duration = u32::try_from(dts - prev).unwrap_or(1024);
                }
                if audio.samples.is_empty() {
                    audio.base_decode_time = dts;
                }
                self.last_audio_dts = Some(dts);
                audio.samples.push(SampleEntry {
                    duration: 1024,
                    size: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    sync: true,
                    composition_offset: 0,
                });
                audio.data.push(data);
            }
        } else {
            self.audio.clear();
        }
        if video.samples.is_empty() && audio.samples.is_empty() {
            // Nothing of the rung covers this moment (the encoder dropped it): the rung skips the
            // part and begins again at the next segment.
            self.dropped_parts += 1;
            self.begun = false;
            return;
        }
        self.fragment_sequence += 1;
        self.out.push_back(Output::Part(Part {
            segment: cut.segment,
            index: cut.index,
            start_ms: cut.start_ms,
            duration_ms: cut.duration_ms,
            independent: independent.unwrap_or(true),
            bytes: boxes::fragment(self.fragment_sequence, &[video, audio]),
        }));
        if let Some(duration_ms) = cut.segment_ms {
            self.out.push_back(Output::SegmentEnd { segment: cut.segment, duration_ms });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{demux_audio, demux_video, tests as flv, VideoFrame};
    use crate::packager::{Packager, PackagerSettings};

    /// Source: 30 fps with B-frames as x264 sends them (decode order I P B B P B B …, one frame of
    /// presentation delay), a keyframe every `gop` frames, 48 kHz audio. Returns the source
    /// packager's outputs and its frames (decode ms, composition offset, keyframe), and feeds
    /// `rung` the source's side as the ingest driver does.
    fn source(rung: &mut RungPackager, seconds: u32, gop: u32) -> (Vec<Output>, Vec<(i64, i32, bool)>) {
        let mut p = Packager::new(PackagerSettings::default(), 100);
        let mut outputs = Vec::new();
        let mut frames = Vec::new();
        let mut pending: Option<Cut> = None;
        let mut drain = |p: &mut Packager, rung: &mut RungPackager, outputs: &mut Vec<Output>| {
            while let Some(o) = p.poll_output() {
                match &o {
                    Output::Init { audio, .. } => rung.source_started(audio.clone()),
                    Output::Part(part) => {
                        if let Some(c) = pending.take() {
                            rung.source_cut(c);
                        }
                        pending = Some(Cut::of(part));
                    }
                    Output::SegmentEnd { duration_ms, .. } => {
                        if let Some(mut c) = pending.take() {
                            c.segment_ms = Some(*duration_ms);
                            rung.source_cut(c);
                        }
                    }
                }
                outputs.push(o);
            }
            if let Some(c) = pending.take() {
                rung.source_cut(c);
            }
        };
        p.handle(demux_video(0, flv::avc_sequence_header()).unwrap());
        p.handle(demux_audio(0, flv::aac_sequence_header()).unwrap());
        let mut next_audio = 0u32;
        for i in 0..seconds * 30 {
            let ms = i * 1000 / 30;
            while next_audio * 1000 / 48_000 <= ms {
                p.handle(demux_audio(next_audio * 1000 / 48_000, flv::aac_frame(&[0x21, 1])).unwrap());
                if let Some(at) = p.accepted_ms() {
                    rung.source_audio(at, Bytes::from_static(&[0x21, 1]));
                }
                next_audio += 1024;
            }
            let (g, d) = (i / gop, i % gop);
            let display = match d {
                0 => 0,
                d if 3 * ((d - 1) / 3) + 3 > gop - 1 => d,
                d => 3 * ((d - 1) / 3) + [3, 1, 2][((d - 1) % 3) as usize],
            };
            let key = d == 0;
            let cts = ((g * gop + display + 1) * 1000 / 30 - ms) as i32;
            p.handle(demux_video(ms, flv::avc_frame(key, cts, &[if key { 0x65 } else { 0x41 }, i as u8])).unwrap());
            if let Some(at) = p.accepted_ms() {
                if key {
                    rung.source_keyframe(at, cts);
                }
                frames.push((at, cts, key));
            }
            drain(&mut p, rung, &mut outputs);
        }
        p.finish();
        drain(&mut p, rung, &mut outputs);
        (outputs, frames)
    }

    /// What an encoder without B-frames sends for the source's frames: presentation times,
    /// an IDR where the source had a keyframe; `delay` frames behind.
    fn encode(rung: &mut RungPackager, frames: &[(i64, i32, bool)]) {
        rung.rung_video(demux_video(0, flv::avc_sequence_header()).unwrap());
        let mut shown: Vec<(i64, bool)> = frames.iter().map(|(ms, cts, key)| (ms + i64::from(*cts), *key)).collect();
        shown.sort();
        for (pts, key) in shown {
            rung.rung_video(FlvEvent::Video(VideoFrame {
                dts_ms: pts as u32,
                cts_ms: 0,
                keyframe: key,
                data: Bytes::from_static(&[0x41, 0]),
            }));
        }
    }

    fn parts(outputs: &[Output]) -> Vec<&Part> {
        outputs.iter().filter_map(|o| if let Output::Part(p) = o { Some(p) } else { None }).collect()
    }

    fn drain(rung: &mut RungPackager) -> Vec<Output> {
        std::iter::from_fn(|| rung.poll_output()).collect()
    }

    #[test]
    fn every_part_of_the_rung_is_cut_where_the_source_was() {
        let mut rung = RungPackager::new();
        let (source_out, frames) = source(&mut rung, 12, 60);
        encode(&mut rung, &frames);
        rung.finish();
        let out = drain(&mut rung);
        assert!(matches!(out[0], Output::Init { .. }));
        let (src, ours) = (parts(&source_out), parts(&out));
        assert_eq!(src.len(), ours.len(), "one rung part per source part");
        for (s, r) in src.iter().zip(&ours) {
            assert_eq!(
                (s.segment, s.index, s.start_ms, s.duration_ms),
                (r.segment, r.index, r.start_ms, r.duration_ms)
            );
            assert_eq!(s.independent, r.independent, "part {}-{}", s.segment, s.index);
        }
        let ends = |o: &[Output]| -> Vec<(u64, i64)> {
            o.iter()
                .filter_map(|o| {
                    if let Output::SegmentEnd { segment, duration_ms } = o {
                        Some((*segment, *duration_ms))
                    } else {
                        None
                    }
                })
                .collect()
        };
        assert_eq!(ends(&source_out), ends(&out));
        assert_eq!(rung.dropped_parts(), 0);
    }

    #[test]
    fn a_rung_part_opens_with_its_idr_and_holds_the_moments_its_source_part_shows() {
        let mut rung = RungPackager::new();
        let (_, frames) = source(&mut rung, 6, 60);
        encode(&mut rung, &frames);
        rung.finish();
        let out = drain(&mut rung);
        for part in parts(&out) {
            let decoded = crate::packager::tests::decode_times(part);
            let (_, base, duration) = decoded.iter().find(|(t, _, _)| *t == VIDEO_TRACK).copied().unwrap();
            // The rung's window is the source's shifted by its one frame (33 ms) of presentation
            // delay; a segment's first part begins exactly at its IDR frame.
            let (start, end) =
                ((part.start_ms as u64 + 33) * 90, (part.start_ms + part.duration_ms) as u64 * 90 + 33 * 90);
            if part.index == 0 {
                assert!(part.independent);
                assert_eq!(base, start, "part {}-{}", part.segment, part.index);
            } else {
                assert!(
                    (start..start + 34 * 90).contains(&base),
                    "part {}-{}: {base} vs {start}",
                    part.segment,
                    part.index
                );
            }
            assert!(base + duration <= end + 34 * 90, "part {}-{} ends in its window", part.segment, part.index);
        }
    }

    #[test]
    fn a_rung_waits_for_frames_past_the_window_and_starts_at_a_segment() {
        let mut rung = RungPackager::new();
        let (source_out, frames) = source(&mut rung, 6, 60);
        let first_segment = parts(&source_out).iter().filter(|p| p.segment == 100).count() as u64;
        // The encoder began late: its first frame is the source's second keyframe.
        let late: Vec<_> = frames.iter().copied().filter(|(ms, _, _)| *ms >= 2000).collect();
        encode(&mut rung, &late);
        let mut out = drain(&mut rung);
        let before_finish = parts(&out).len();
        rung.finish();
        out.extend(drain(&mut rung));
        let all = parts(&out);
        assert!(before_finish > 0 && all.len() > before_finish, "the last part waits for the end");
        assert_eq!(rung.dropped_parts(), first_segment, "the first segment's parts could not be made");
        assert_eq!((all[0].segment, all[0].index, all[0].start_ms, all[0].independent), (101, 0, 2000, true));
    }

    #[test]
    fn an_encoder_that_never_answers_costs_bounded_memory() {
        let mut rung = RungPackager::new();
        let (_, _) = source(&mut rung, 60, 60);
        assert!(rung.pending_parts() <= MAX_PENDING_CUTS);
        assert!(rung.audio.len() <= MAX_PENDING_FRAMES);
        assert!(rung.dropped_parts() > 0);
        // The encoder that comes back late starts at a segment boundary.
        rung.rung_video(demux_video(0, flv::avc_sequence_header()).unwrap());
        rung.finish();
        assert!(parts(&drain(&mut rung)).is_empty());
    }

    #[test]
    fn a_source_without_audio_makes_video_only_rungs() {
        let mut rung = RungPackager::new();
        rung.source_started(None);
        rung.source_keyframe(0, 0);
        rung.rung_video(demux_video(0, flv::avc_sequence_header()).unwrap());
        for i in 0..40i64 {
            let key = i % 30 == 0;
            rung.rung_video(FlvEvent::Video(VideoFrame {
                dts_ms: (i * 33) as u32,
                cts_ms: 0,
                keyframe: key,
                data: Bytes::from_static(&[0x65]),
            }));
        }
        rung.source_cut(Cut { segment: 5, index: 0, start_ms: 0, duration_ms: 500, segment_ms: None });
        let out = drain(&mut rung);
        assert!(matches!(&out[0], Output::Init { audio: None, .. }));
        let p = parts(&out);
        assert_eq!((p.len(), p[0].segment, p[0].independent), (1, 5, true));
    }
}
