//! LL-HLS media playlists (RFC 8216bis, draft 16), written from a plain description of the live
//! window. Plain HLS players read the same text: they ignore the `EXT-X-PART*` tags and play the
//! complete segments.
//!
//! URIs are relative to the playlist: `init-{v}.mp4`, `seg-{msn}.m4s`, `part-{msn}-{i}.m4s`.

use crate::MediaFile;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistPart {
    pub index: u32,
    pub duration_ms: i64,
    pub independent: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistSegment {
    pub msn: u64,
    /// Wall-clock time of the segment's first sample (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time: DateTime<Utc>,
    /// Which init segment its samples need.
    pub init_version: u32,
    /// The first segment after a broadcaster reconnected.
    pub discontinuity: bool,
    pub parts: Vec<PlaylistPart>,
    /// `Some` once the segment is complete.
    pub duration_ms: Option<i64>,
}

/// A moment of timed metadata (`EXT-X-DATERANGE`, RFC 8216bis §4.4.5.1): a product pinned at
/// `start` on the media timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRange {
    pub id: i64,
    pub product_id: i64,
    pub start: DateTime<Utc>,
}

/// Where another rendition of the same ladder has got to (`EXT-X-RENDITION-REPORT`,
/// RFC 8216bis §4.4.5.4), so a player switching to it can ask for its next part at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// Relative to the playlist it appears in, e.g. `../480p/index.m3u8`.
    pub uri: String,
    pub last_msn: u64,
    pub last_part: Option<u32>,
}

/// The live window and how to render it.
#[derive(Debug, Clone)]
pub struct Playlist<'a> {
    pub segments: &'a [PlaylistSegment],
    /// Pins within the window. Delta updates keep them all: we do not offer
    /// `CAN-SKIP-DATERANGES` (§4.4.3.8).
    pub pins: &'a [PinRange],
    /// `EXT-X-TARGETDURATION`, whole seconds, fixed for the life of the stream.
    pub target_duration_s: u64,
    pub part_target_ms: i64,
    /// Discontinuities that have slid out of the window.
    pub discontinuity_sequence: u64,
    /// The stream ended: no more parts, `EXT-X-ENDLIST`.
    pub ended: bool,
    /// The other renditions of the ladder.
    pub rendition_reports: &'a [RenditionReport],
}

/// `EXT-X-SKIP` applies to segments older than this many target durations from the end.
pub const SKIP_TARGETS: u64 = 6;
/// Parts are listed for the segments of the last this many target durations.
pub const PART_TARGETS: u64 = 3;

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

impl Playlist<'_> {
    /// `EXT-X-SERVER-CONTROL`'s `PART-HOLD-BACK`: at least three part targets (§4.4.3.8).
    pub fn part_hold_back_ms(&self) -> i64 {
        self.part_target_ms * 3
    }

    /// Renders the playlist; `skip` asks for a delta update (`_HLS_skip=YES`, §6.2.5.1).
    pub fn render(&self, skip: bool) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 200);
        let target_ms = self.target_duration_s as i64 * 1000;
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:9");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration_s);
        if !self.ended {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={},CAN-SKIP-UNTIL={}",
                secs(self.part_hold_back_ms()),
                secs(target_ms * SKIP_TARGETS as i64)
            );
        }
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", secs(self.part_target_ms));
        let first_msn = self.segments.first().map_or(0, |s| s.msn);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        for pin in self.pins {
            let _ = writeln!(
                out,
                "#EXT-X-DATERANGE:ID=\"pin-{}\",CLASS=\"com.olive.pin\",START-DATE=\"{}\",X-PRODUCT-ID=\"{}\"",
                pin.id,
                pin.start.to_rfc3339_opts(SecondsFormat::Millis, true),
                pin.product_id
            );
        }

        // Time from each segment's start to the end of the playlist decides skipping and parts.
        let total_ms: i64 = self.segments.iter().map(segment_ms).sum();
        let mut elapsed = 0i64;
        let mut skipped = 0usize;
        if skip && !self.ended {
            for s in self.segments {
                let remaining = total_ms - elapsed;
                if remaining <= target_ms * SKIP_TARGETS as i64 || s.duration_ms.is_none() || s.discontinuity {
                    break;
                }
                elapsed += segment_ms(s);
                skipped += 1;
            }
        }
        let mut init_version = None;
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            init_version = Some(self.segments[skipped - 1].init_version);
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", MediaFile::Init(self.segments[skipped - 1].init_version));
        }
        // Parts are listed for the segments that begin less than three target durations from the
        // end (§4.4.4.9), and for no more than the last three, counting the segment the preload
        // hint opens: with segments shorter than the target (a short GOP after a long one), three
        // target durations hold more segments than players and validators expect parts on.
        let hinted = usize::from(!self.ended && self.segments.last().is_some_and(|s| s.duration_ms.is_some()));
        let first_with_parts = (self.segments.len() + hinted).saturating_sub(PART_TARGETS as usize);
        for (i, s) in self.segments.iter().enumerate().skip(skipped) {
            if s.discontinuity && Some(s.msn) != self.segments.first().map(|f| f.msn) {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            if init_version != Some(s.init_version) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", MediaFile::Init(s.init_version));
                init_version = Some(s.init_version);
            }
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                s.program_date_time.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            let remaining = total_ms - elapsed;
            if !self.ended && i >= first_with_parts && remaining < target_ms * PART_TARGETS as i64 {
                for p in &s.parts {
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={},URI=\"{}\"{}",
                        secs(p.duration_ms),
                        MediaFile::Part(s.msn, p.index),
                        if p.independent { ",INDEPENDENT=YES" } else { "" }
                    );
                }
            }
            if let Some(d) = s.duration_ms {
                let _ = writeln!(out, "#EXTINF:{},", secs(d));
                let _ = writeln!(out, "{}", MediaFile::Segment(s.msn));
            }
            elapsed += segment_ms(s);
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        } else if let Some((msn, index)) = self.next_part() {
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", MediaFile::Part(msn, index));
            for r in self.rendition_reports {
                let _ = write!(out, "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}", r.uri, r.last_msn);
                match r.last_part {
                    Some(part) => {
                        let _ = writeln!(out, ",LAST-PART={part}");
                    }
                    None => out.push('\n'),
                }
            }
        }
        out
    }

    /// The last part published: its segment and index (what other renditions report of this one).
    pub fn last_part(&self) -> Option<(u64, u32)> {
        let last = self.segments.last()?;
        last.parts.last().map(|p| (last.msn, p.index))
    }

    /// The part that will be published next: after the last part of the open segment, or the
    /// first part of the segment after the last complete one.
    pub fn next_part(&self) -> Option<(u64, u32)> {
        let last = self.segments.last()?;
        match last.duration_ms {
            None => Some((last.msn, last.parts.last().map_or(0, |p| p.index + 1))),
            Some(_) => Some((last.msn + 1, 0)),
        }
    }
}

fn segment_ms(s: &PlaylistSegment) -> i64 {
    s.duration_ms.unwrap_or_else(|| s.parts.iter().map(|p| p.duration_ms).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(complete: u64, open_parts: u32) -> Vec<PlaylistSegment> {
        let t0 = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&Utc);
        let mut segs: Vec<PlaylistSegment> = (0..complete)
            .map(|msn| PlaylistSegment {
                msn: 100 + msn,
                program_date_time: t0 + chrono::Duration::seconds(2 * msn as i64),
                init_version: 1,
                discontinuity: false,
                parts: (0..4).map(|i| PlaylistPart { index: i, duration_ms: 500, independent: i == 0 }).collect(),
                duration_ms: Some(2000),
            })
            .collect();
        segs.push(PlaylistSegment {
            msn: 100 + complete,
            program_date_time: t0 + chrono::Duration::seconds(2 * complete as i64),
            init_version: 1,
            discontinuity: false,
            parts: (0..open_parts).map(|i| PlaylistPart { index: i, duration_ms: 500, independent: i == 0 }).collect(),
            duration_ms: None,
        });
        segs
    }

    fn playlist(segments: &[PlaylistSegment]) -> Playlist<'_> {
        Playlist {
            segments,
            pins: &[],
            target_duration_s: 2,
            part_target_ms: 500,
            discontinuity_sequence: 0,
            ended: false,
            rendition_reports: &[],
        }
    }

    #[test]
    fn renders_the_ll_hls_tags() {
        let segs = window(3, 2);
        let text = playlist(&segs).render(false);
        let expected_head = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000\n\
            #EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z\n";
        assert!(text.starts_with(expected_head), "{text}");
        assert!(text.contains("#EXT-X-PART:DURATION=0.500,URI=\"part-103-1.m4s\"\n"));
        assert!(text.contains("#EXT-X-PART:DURATION=0.500,URI=\"part-103-0.m4s\",INDEPENDENT=YES\n"));
        assert!(text.contains("#EXTINF:2.000,\nseg-102.m4s\n"));
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-103-2.m4s\"\n"), "{text}");
        assert!(!text.contains("ENDLIST"));
    }

    #[test]
    fn other_renditions_are_reported_after_the_preload_hint() {
        let segs = window(3, 2);
        let reports = [
            RenditionReport { uri: "../index.m3u8".into(), last_msn: 103, last_part: Some(1) },
            RenditionReport { uri: "../360p/index.m3u8".into(), last_msn: 102, last_part: None },
        ];
        let mut p = playlist(&segs);
        p.rendition_reports = &reports;
        assert_eq!(p.last_part(), Some((103, 1)));
        let text = p.render(true);
        assert!(
            text.ends_with(
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-103-2.m4s\"\n\
                 #EXT-X-RENDITION-REPORT:URI=\"../index.m3u8\",LAST-MSN=103,LAST-PART=1\n\
                 #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=102\n"
            ),
            "{text}"
        );
        p.ended = true;
        assert!(!p.render(false).contains("RENDITION-REPORT"), "an ended playlist has no reports");
    }

    #[test]
    fn parts_stay_on_the_last_three_segments_when_gops_are_uneven() {
        // 11 s and 3 s segments alternate (a long GOP, then a short one): four of them begin
        // within three target durations of the end, but parts go on the last three only, the
        // next one (the preload hint's) counted.
        let mut segs = window(4, 0);
        segs.pop();
        for (s, ms) in segs.iter_mut().zip([11_000, 3_000, 11_000, 3_000]) {
            s.duration_ms = Some(ms);
        }
        let mut p = playlist(&segs);
        p.target_duration_s = 11;
        let text = p.render(false);
        assert!(!text.contains("part-100-") && !text.contains("part-101-"), "{text}");
        assert!(text.contains("part-102-0.m4s") && text.contains("part-103-0.m4s"), "{text}");
    }

    #[test]
    fn parts_are_listed_only_near_the_live_edge() {
        let segs = window(8, 1);
        let text = playlist(&segs).render(false);
        assert!(!text.contains("part-100-"), "old segments carry no parts");
        assert!(text.contains("part-107-0.m4s"));
        assert!(text.contains("part-108-0.m4s"));
    }

    #[test]
    fn preload_hint_moves_to_the_next_segment_after_a_cut() {
        let mut segs = window(2, 0);
        segs.pop();
        assert_eq!(playlist(&segs).next_part(), Some((102, 0)));
    }

    #[test]
    fn delta_updates_skip_old_segments() {
        let segs = window(10, 1);
        let text = playlist(&segs).render(true);
        // 20.5 s in the window: the segments starting more than 12 s before the end go.
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n"), "{text}");
        assert!(!text.contains("seg-104.m4s"));
        assert!(text.contains("seg-105.m4s"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:100"), "the sequence still counts skipped segments");
    }

    #[test]
    fn reconnects_are_marked_and_endings_closed() {
        let mut segs = window(3, 0);
        segs.pop();
        segs[2].discontinuity = true;
        segs[2].init_version = 2;
        let mut p = playlist(&segs);
        p.ended = true;
        let text = p.render(true);
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        assert!(!text.contains("PRELOAD-HINT") && !text.contains("SERVER-CONTROL") && !text.contains("EXT-X-PART:"));
    }
}
