//! The names of media files, in one place: playlists write them, HTTP routes parse them back, and
//! recordings store objects under them. `init-{v}.mp4`, `seg-{msn}.m4s`, `part-{msn}-{i}.m4s`.
//! Parsing is strict — plain decimal digits only — so no two names reach the same file.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFile {
    Init(u32),
    Segment(u64),
    Part(u64, u32),
}

impl fmt::Display for MediaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaFile::Init(v) => write!(f, "init-{v}.mp4"),
            MediaFile::Segment(msn) => write!(f, "seg-{msn}.m4s"),
            MediaFile::Part(msn, index) => write!(f, "part-{msn}-{index}.m4s"),
        }
    }
}

/// A number as we write it: digits only (no sign, no `+`), at most 20 of them.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl MediaFile {
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(v) = name.strip_prefix("init-").and_then(|r| r.strip_suffix(".mp4")) {
            return number(v).map(MediaFile::Init);
        }
        if let Some(msn) = name.strip_prefix("seg-").and_then(|r| r.strip_suffix(".m4s")) {
            return number(msn).map(MediaFile::Segment);
        }
        let (msn, index) = name.strip_prefix("part-")?.strip_suffix(".m4s")?.split_once('-')?;
        Some(MediaFile::Part(number(msn)?, number(index)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_strictly() {
        for file in [MediaFile::Init(3), MediaFile::Segment(884_400), MediaFile::Part(12, 3)] {
            assert_eq!(MediaFile::parse(&file.to_string()), Some(file));
        }
        assert_eq!(MediaFile::Part(12, 3).to_string(), "part-12-3.m4s");
        for bad in [
            "init-.mp4",
            "seg--1.m4s",
            "seg-+1.m4s",
            "seg-99999999999999999999999.m4s",
            "init-99999999999.mp4",
            "part-1.m4s",
            "part-a-b.m4s",
            "part-1-+2.m4s",
            "index.m3u8",
            "../seg-1.m4s",
            "seg-1.m4s.bak",
            "",
        ] {
            assert_eq!(MediaFile::parse(bad), None, "{bad}");
        }
    }
}
