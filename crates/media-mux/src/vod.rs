//! Recorded playlists (RFC 8216bis §4.4.3.5 `EXT-X-PLAYLIST-TYPE`): the segments a live left in
//! object storage, rendered as an `EVENT` playlist while it is still being recorded and as a
//! complete `VOD` playlist with `#EXT-X-ENDLIST` once it ended.
//!
//! URIs are relative to the playlist, as in the live playlist: `init-{v}.mp4`, `seg-{msn}.m4s`.
//! Sequence numbers come from the live playlist, so they increase but may jump where a segment
//! could not be stored; that jump, like a reconnect (which also brings a new init segment), is
//! marked `#EXT-X-DISCONTINUITY`. A live with a ladder leaves each rung's segments too; a rung's
//! playlist follows the source's line for line ([`render_rung`]).

use crate::MediaFile;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VodSegment {
    pub msn: u64,
    pub init_version: u32,
    pub discontinuity: bool,
    pub duration_ms: i64,
}

/// One line of a playlist being written: where the discontinuities fall is decided already.
struct Entry {
    msn: u64,
    init_version: u32,
    discontinuity: bool,
    duration_ms: i64,
    /// Listed for its place and duration, marked `EXT-X-GAP`: it was not recorded.
    gap: bool,
}

/// The source's segments with their discontinuities: a reconnect, a new init segment, or a jump
/// in sequence numbers (a segment that could not be stored).
fn source_entries(segments: &[VodSegment]) -> Vec<Entry> {
    let mut previous: Option<&VodSegment> = None;
    segments
        .iter()
        .map(|s| {
            let discontinuity =
                previous.is_some_and(|p| s.discontinuity || s.init_version != p.init_version || s.msn > p.msn + 1);
            previous = Some(s);
            Entry { msn: s.msn, init_version: s.init_version, discontinuity, duration_ms: s.duration_ms, gap: false }
        })
        .collect()
}

/// Renders the playlist of a recording; `complete` once it has ended.
pub fn render(segments: &[VodSegment], complete: bool) -> String {
    write(&source_entries(segments), complete)
}

/// Renders a rung's playlist of a recording beside its source's: the same segments, durations and
/// discontinuities as the source's (so a player switching renditions finds the same moment in
/// each), the rung's own init segments, and `EXT-X-GAP` (RFC 8216bis §4.4.4.7) where the rung
/// has no segment (its encoder was behind or restarting).
pub fn render_rung(source: &[VodSegment], rung: &[VodSegment], complete: bool) -> String {
    let by_msn: std::collections::HashMap<u64, u32> = rung.iter().map(|s| (s.msn, s.init_version)).collect();
    let mut init_version = rung.first().map_or(1, |s| s.init_version);
    let entries: Vec<Entry> = source_entries(source)
        .into_iter()
        .map(|e| {
            let own = by_msn.get(&e.msn).copied();
            if let Some(v) = own {
                init_version = v;
            }
            Entry { init_version, gap: own.is_none(), ..e }
        })
        .collect();
    write(&entries, complete)
}

fn write(entries: &[Entry], complete: bool) -> String {
    let mut out = String::with_capacity(200 + entries.len() * 40);
    // Rounded segment durations must not exceed the target (§4.4.3.1).
    let target = entries.iter().map(|s| (s.duration_ms + 500) / 1000).max().unwrap_or(1).max(1);
    let _ = writeln!(out, "#EXTM3U");
    // EXT-X-GAP needs version 8 (RFC 8216bis §7).
    let _ = writeln!(out, "#EXT-X-VERSION:{}", if entries.iter().any(|e| e.gap) { 8 } else { 7 });
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{}", if complete { "VOD" } else { "EVENT" });
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", entries.first().map_or(0, |s| s.msn));
    let mut init_version = None;
    for s in entries {
        if s.discontinuity {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        if init_version != Some(s.init_version) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", MediaFile::Init(s.init_version));
            init_version = Some(s.init_version);
        }
        let _ = writeln!(out, "#EXTINF:{}.{:03},", s.duration_ms / 1000, s.duration_ms % 1000);
        if s.gap {
            let _ = writeln!(out, "#EXT-X-GAP");
        }
        let _ = writeln!(out, "{}", MediaFile::Segment(s.msn));
    }
    if complete {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(msn: u64, init_version: u32, discontinuity: bool, duration_ms: i64) -> VodSegment {
        VodSegment { msn, init_version, discontinuity, duration_ms }
    }

    #[test]
    fn a_complete_recording_is_a_vod_playlist() {
        let text = render(&[seg(100, 1, false, 2002), seg(101, 1, false, 1968), seg(102, 1, false, 1500)], true);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
             #EXTINF:2.002,\nseg-100.m4s\n#EXTINF:1.968,\nseg-101.m4s\n#EXTINF:1.500,\nseg-102.m4s\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn a_running_recording_is_an_event_playlist_without_end() {
        let text = render(&[seg(7, 1, false, 2000)], false);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!text.contains("ENDLIST"));
        let empty = render(&[], false);
        assert!(empty.contains("#EXT-X-TARGETDURATION:1\n") && empty.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
    }

    #[test]
    fn reconnects_are_discontinuities_with_their_own_init() {
        let text = render(&[seg(1, 1, false, 2000), seg(2, 2, true, 2000), seg(3, 2, false, 4400)], true);
        assert!(
            text.contains("seg-1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n#EXTINF:2.000,\nseg-2.m4s")
        );
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1);
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n"), "long GOPs raise the target");
    }

    #[test]
    fn a_missing_segment_is_a_discontinuity() {
        let text = render(&[seg(1, 1, false, 2000), seg(3, 1, false, 2000)], true);
        assert!(text.contains("seg-1.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF"));
        assert!(!text.contains("#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXT-X-MAP"));
    }

    /// A rung follows its source line for line: a missing rung segment is a gap, not a jump, and
    /// the discontinuities are the source's, whatever the rung's own init segments.
    #[test]
    fn a_rung_mirrors_its_source_with_gaps_where_it_has_none() {
        let source = [seg(1, 1, false, 2000), seg(2, 1, false, 2000), seg(3, 2, true, 2000), seg(5, 2, false, 1000)];
        // The rung missed segment 1 and 3, and its encoder restarted (init 2) at segment 2.
        let rung = [seg(2, 2, false, 2000), seg(5, 3, false, 1000)];
        let text = render_rung(&source, &rung, true);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI=\"init-2.mp4\"\n\
             #EXTINF:2.000,\n#EXT-X-GAP\nseg-1.m4s\n#EXTINF:2.000,\nseg-2.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:2.000,\n#EXT-X-GAP\nseg-3.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-3.mp4\"\n#EXTINF:1.000,\nseg-5.m4s\n#EXT-X-ENDLIST\n"
        );
        assert_eq!(
            render(&source, true).matches("#EXT-X-DISCONTINUITY").count(),
            text.matches("#EXT-X-DISCONTINUITY").count()
        );
    }
}
