//! The names of media files, in one place: playlists write them, HTTP routes parse them back, and
//! recordings store objects under them. `init-{v}.mp4`, `seg-{msn}.m4s`, `part-{msn}-{i}.m4s`.
//! Parsing is strict — plain decimal digits only — so no two names reach the same file.
//!
//! A ladder's rungs are named by their height (`480p`) and live under their own folder,
//! `/live/{channel}/480p/…`; the source rendition keeps the channel's folder itself.

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

/// A rung of a channel's ladder, named by its picture height: `480p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RungName(pub u16);

impl fmt::Display for RungName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}p", self.0)
    }
}

impl RungName {
    /// The tallest rung a ladder may have.
    pub const MAX_HEIGHT: u16 = 4320;

    /// `{height}p`, the height 2 to 4 digits without a leading zero and at most 4320.
    pub fn parse(name: &str) -> Option<Self> {
        let digits = name.strip_suffix('p')?;
        if !(2..=4).contains(&digits.len()) || digits.starts_with('0') {
            return None;
        }
        let height: u16 = number(digits)?;
        (height <= Self::MAX_HEIGHT).then_some(RungName(height))
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

    #[test]
    fn rung_names_are_heights_written_one_way() {
        assert_eq!(RungName::parse("480p"), Some(RungName(480)));
        assert_eq!(RungName(160).to_string(), "160p");
        for bad in ["0480p", "480", "p", "4p", "99999p", "4321p", "480P", "+480p", "48 0p", "480p/", "..", "index.m3u8"]
        {
            assert_eq!(RungName::parse(bad), None, "{bad}");
        }
    }
}
