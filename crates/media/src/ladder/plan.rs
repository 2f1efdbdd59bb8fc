//! What a `standard` channel's ladder should hold: the rungs the operator configured, fitted to
//! the source. Rungs are never taller than the source (the source itself is the top rendition,
//! passed through), widths keep the source's shape and are even (H.264 in 4:2:0 needs it), and a
//! rung's frame rate is the source's unless the rung caps it.

use olive_media_mux::RungName;
use std::fmt;
use std::str::FromStr;

/// One rung as configured: `480p:1200` (height and video kbit/s), optionally `:30` (most frames
/// per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RungSpec {
    pub height: u16,
    pub video_kbps: u32,
    pub max_fps: Option<u32>,
}

/// The configured ladder, tallest rung first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderSpec(pub Vec<RungSpec>);

impl Default for LadderSpec {
    /// For phones: 720p for good Wi-Fi, 480p and 360p for cells, 160p for a crowded cell or a
    /// subway (with the 128 kbit/s of audio, under 400 kbit/s).
    fn default() -> Self {
        "720p:2500,480p:1200,360p:700,160p:250".parse().expect("the default ladder parses")
    }
}

impl fmt::Display for LadderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}p:{}", r.height, r.video_kbps)?;
            if let Some(fps) = r.max_fps {
                write!(f, ":{fps}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for LadderSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut rungs = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let mut fields = item.split(':');
            let name = fields.next().unwrap_or_default();
            let height = RungName::parse(name)
                .filter(|n| n.0 >= 90 && n.0 % 2 == 0)
                .ok_or_else(|| format!("rung {item:?}: the height is written like 480p (even, 90 to 4320)"))?
                .0;
            let video_kbps: u32 =
                fields.next().and_then(|k| k.parse().ok()).filter(|k| (50..=50_000).contains(k)).ok_or_else(|| {
                    format!("rung {item:?}: the video bitrate is kbit/s from 50 to 50000, as in 480p:1200")
                })?;
            let max_fps = match fields.next() {
                None => None,
                Some(f) => Some(
                    f.parse()
                        .ok()
                        .filter(|f| (1..=120).contains(f))
                        .ok_or_else(|| format!("rung {item:?}: the frame rate is 1 to 120, as in 160p:250:15"))?,
                ),
            };
            if fields.next().is_some() {
                return Err(format!("rung {item:?}: a rung is HEIGHTp:KBPS or HEIGHTp:KBPS:FPS"));
            }
            if rungs.iter().any(|r: &RungSpec| r.height == height) {
                return Err(format!("rung {item:?}: {height}p is listed twice"));
            }
            rungs.push(RungSpec { height, video_kbps, max_fps });
        }
        if rungs.len() > 8 {
            return Err("a ladder has at most 8 rungs".into());
        }
        rungs.sort_by_key(|r| std::cmp::Reverse(r.height));
        Ok(LadderSpec(rungs))
    }
}

/// A rung fitted to a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedRung {
    pub name: RungName,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
    /// `Some` when the rung makes fewer frames than the source.
    pub fps: Option<u32>,
}

/// The rungs to make from a `width`x`height` source at `source_fps` (if known): those shorter
/// than the source. Empty when none is (a 160p source has nothing below it).
pub fn plan(spec: &LadderSpec, width: u32, height: u32, source_fps: Option<f64>) -> Vec<PlannedRung> {
    if width == 0 || height == 0 {
        return Vec::new();
    }
    spec.0
        .iter()
        .filter(|r| u32::from(r.height) < height)
        .map(|r| {
            let h = u32::from(r.height);
            // Round to the nearest even width, at least 2.
            let w = ((u64::from(width) * u64::from(h) + u64::from(height)) / (2 * u64::from(height))) as u32 * 2;
            let fps = r.max_fps.filter(|cap| source_fps.is_none_or(|s| f64::from(*cap) < s - 0.5));
            PlannedRung { name: RungName(r.height), width: w.max(2), height: h, video_kbps: r.video_kbps, fps }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ladder_is_for_phones_and_round_trips() {
        let spec = LadderSpec::default();
        assert_eq!(spec.to_string(), "720p:2500,480p:1200,360p:700,160p:250");
        assert_eq!(spec.to_string().parse::<LadderSpec>().unwrap(), spec);
    }

    #[test]
    fn rungs_are_never_taller_than_the_source_and_keep_its_shape() {
        let spec = LadderSpec::default();
        let heights = |w, h| plan(&spec, w, h, Some(30.0)).iter().map(|r| (r.width, r.height)).collect::<Vec<_>>();
        assert_eq!(heights(1920, 1080), vec![(1280, 720), (854, 480), (640, 360), (284, 160)]);
        assert_eq!(heights(1280, 720), vec![(854, 480), (640, 360), (284, 160)], "720p is the source itself");
        assert_eq!(heights(1366, 768), vec![(1280, 720), (854, 480), (640, 360), (284, 160)]);
        assert_eq!(heights(853, 480), vec![(640, 360), (284, 160)]);
        assert_eq!(heights(1081, 607), vec![(854, 480), (642, 360), (284, 160)], "odd widths give even ones");
        assert_eq!(heights(720, 1280), vec![(406, 720), (270, 480), (202, 360), (90, 160)], "portrait phones");
        assert_eq!(heights(320, 160), Vec::<(u32, u32)>::new());
        assert_eq!(heights(0, 0), Vec::<(u32, u32)>::new());
    }

    #[test]
    fn a_frame_rate_cap_applies_only_below_the_source() {
        let spec: LadderSpec = "480p:1200:30,160p:250:15".parse().unwrap();
        let at = |fps| plan(&spec, 1280, 720, fps).iter().map(|r| r.fps).collect::<Vec<_>>();
        assert_eq!(at(Some(60.0)), vec![Some(30), Some(15)]);
        assert_eq!(at(Some(30.0)), vec![None, Some(15)]);
        assert_eq!(at(Some(29.97)), vec![None, Some(15)]);
        assert_eq!(at(None), vec![Some(30), Some(15)]);
    }

    #[test]
    fn bad_ladders_are_refused_with_what_is_wrong() {
        for (bad, says) in [
            ("480:1200", "height"),
            ("481p:1200", "height"),
            ("480p", "bitrate"),
            ("480p:0", "bitrate"),
            ("480p:1200:0", "frame rate"),
            ("480p:1200:30:1", "HEIGHTp:KBPS"),
            ("480p:1200,480p:800", "twice"),
            ("99999p:100", "height"),
            ("1000p:10,900p:10", "bitrate"),
        ] {
            let err = bad.parse::<LadderSpec>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let nine = (1..=9).map(|i| format!("{}p:500", 100 + i * 10)).collect::<Vec<_>>().join(",");
        assert!(nine.parse::<LadderSpec>().is_err());
        assert_eq!("".parse::<LadderSpec>().unwrap(), LadderSpec(vec![]), "an empty ladder makes every channel basic");
        assert_eq!(
            " 360p:700 , 720p:2500 ".parse::<LadderSpec>().unwrap().0.iter().map(|r| r.height).collect::<Vec<_>>(),
            vec![720, 360],
            "tallest first"
        );
    }
}
