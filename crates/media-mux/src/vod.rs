//! Recorded playlists (RFC 8216bis §4.4.3.5 `EXT-X-PLAYLIST-TYPE`): the segments a live left in
//! object storage, rendered as an `EVENT` playlist while it is still being recorded and as a
//! complete `VOD` playlist with `#EXT-X-ENDLIST` once it ended.
//!
//! URIs are relative to the playlist, as in the live playlist: `init-{v}.mp4`, `seg-{msn}.m4s`.
//! Sequence numbers come from the live playlist, so they increase but may jump where a segment
//! could not be stored; that jump, like a reconnect (which also brings a new init segment), is
//! marked `#EXT-X-DISCONTINUITY`.

use crate::MediaFile;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VodSegment {
    pub msn: u64,
    pub init_version: u32,
    pub discontinuity: bool,
    pub duration_ms: i64,
}

/// Renders the playlist of a recording; `complete` once it has ended.
pub fn render(segments: &[VodSegment], complete: bool) -> String {
    let mut out = String::with_capacity(200 + segments.len() * 40);
    // Rounded segment durations must not exceed the target (§4.4.3.1).
    let target = segments.iter().map(|s| (s.duration_ms + 500) / 1000).max().unwrap_or(1).max(1);
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:7");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{}", if complete { "VOD" } else { "EVENT" });
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", segments.first().map_or(0, |s| s.msn));
    let mut init_version = None;
    let mut previous_msn: Option<u64> = None;
    for s in segments {
        // A reconnect, or a segment that could not be stored: the timestamps jump here.
        let jumps = previous_msn.is_some_and(|p| s.msn > p + 1);
        if previous_msn.is_some() && (s.discontinuity || init_version != Some(s.init_version) || jumps) {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        if init_version != Some(s.init_version) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", MediaFile::Init(s.init_version));
            init_version = Some(s.init_version);
        }
        let _ = writeln!(out, "#EXTINF:{}.{:03},", s.duration_ms / 1000, s.duration_ms % 1000);
        let _ = writeln!(out, "{}", MediaFile::Segment(s.msn));
        previous_msn = Some(s.msn);
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
}
