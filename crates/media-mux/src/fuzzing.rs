//! The harness shared by the `flv_packager` fuzz target and the regression test that replays the
//! inputs kept under `fuzz/regressions/flv_packager/`: bytes are cut into tags (a kind byte, a
//! 32-bit timestamp, a 16-bit length, the payload), demuxed, packaged, and the outputs turned into
//! a playlist. Nothing here may panic.

use crate::flv::{demux_audio, demux_video};
use crate::playlist::{Playlist, PlaylistPart, PlaylistSegment};
use crate::{Output, Packager, PackagerSettings};
use bytes::Bytes;

pub fn feed_tags(data: &[u8]) {
    let mut packager = Packager::new(PackagerSettings { segment_target_ms: 1000, part_target_ms: 300 }, 0);
    let mut rest = data;
    let mut segments: Vec<PlaylistSegment> = Vec::new();
    let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    while rest.len() >= 7 {
        let kind = rest[0];
        let ts = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]])).min(rest.len() - 7);
        let payload = Bytes::copy_from_slice(&rest[7..7 + len]);
        rest = &rest[7 + len..];
        let event = if kind & 1 == 0 { demux_video(ts, payload) } else { demux_audio(ts, payload) };
        if let Ok(event) = event {
            packager.handle(event);
        }
        if kind & 0x80 != 0 {
            packager.finish();
        }
        while let Some(output) = packager.poll_output() {
            match output {
                Output::Init { .. } => {}
                Output::Part(p) => {
                    if segments.last().is_none_or(|s| s.msn != p.segment) {
                        segments.push(PlaylistSegment {
                            msn: p.segment,
                            program_date_time: now,
                            init_version: 1,
                            discontinuity: false,
                            parts: Vec::new(),
                            duration_ms: None,
                        });
                    }
                    if let Some(s) = segments.last_mut() {
                        s.parts.push(PlaylistPart {
                            index: p.index,
                            duration_ms: p.duration_ms,
                            independent: p.independent,
                        });
                    }
                }
                Output::SegmentEnd { segment, duration_ms } => {
                    if let Some(s) = segments.iter_mut().find(|s| s.msn == segment) {
                        s.duration_ms = Some(duration_ms);
                    }
                }
            }
        }
    }
    packager.finish();
    let playlist = Playlist {
        segments: &segments,
        pins: &[],
        target_duration_s: 1,
        part_target_ms: 300,
        discontinuity_sequence: 0,
        ended: false,
        rendition_reports: &[],
    };
    let _ = playlist.render(true);
    let _ = playlist.render(false);
}

#[cfg(test)]
mod tests {
    /// Every input kept from fuzzing runs through the harness again.
    #[test]
    fn kept_fuzz_inputs_still_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/flv_packager");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the regression folder exists") {
            let path = entry.unwrap().path();
            if path.is_file() {
                super::feed_tags(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "no kept inputs in {}", dir.display());
    }
}
