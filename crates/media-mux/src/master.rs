//! The multivariant playlist of a channel's ladder (RFC 8216bis §4.4.6): one `EXT-X-STREAM-INF`
//! per rendition, best first, all sharing one audio group. The audio is the source's, passed
//! through and carried in every rendition, so the group's one rendition has no URI of its own
//! (§4.4.6.1: its media is in each variant's playlist). Lives and replays are described alike.

use crate::flv::{AudioConfig, VideoConfig};
use std::fmt::Write;

/// The audio group every variant names.
pub const AUDIO_GROUP: &str = "audio";

/// One rendition of the ladder, as a player chooses among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// Peak bits per second of its segments, audio included.
    pub bandwidth: u64,
    /// Average bits per second, audio included.
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Option<f64>,
    /// RFC 6381 codecs of the video and audio, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// RFC 6381 codecs of a rendition's tracks, as `CODECS` names them: `avc1.64001f,mp4a.40.2`.
pub fn codecs(video: &VideoConfig, audio: Option<&AudioConfig>) -> String {
    match audio {
        Some(a) => format!("{},{}", video.codec(), a.codec()),
        None => video.codec(),
    }
}

/// Orders renditions best first: tallest, then the higher bit rate.
pub fn best_first(variants: &mut [Variant]) {
    variants.sort_by(|a, b| b.height.cmp(&a.height).then(b.bandwidth.cmp(&a.bandwidth)));
}

/// The ladder's renditions (best first) and its audio, if the source has any.
#[derive(Debug, Clone, PartialEq)]
pub struct Multivariant<'a> {
    pub variants: &'a [Variant],
    /// Audio channels of the source's audio; `None` when it has none.
    pub audio_channels: Option<u8>,
}

impl Multivariant<'_> {
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(200 + self.variants.len() * 200);
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:7");
        // Every segment of every rendition begins with an IDR frame.
        let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
        if let Some(channels) = self.audio_channels {
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"main\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"{channels}\""
            );
        }
        for v in self.variants {
            let _ = write!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{}",
                v.bandwidth.max(1),
                v.average_bandwidth.clamp(1, v.bandwidth.max(1)),
                v.width,
                v.height
            );
            if let Some(fps) = v.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
                let _ = write!(out, ",FRAME-RATE={fps:.3}");
            }
            let _ = write!(out, ",CODECS=\"{}\"", v.codecs);
            if self.audio_channels.is_some() {
                let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
            }
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", v.uri);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(uri: &str, kbps: u64, width: u32, height: u32) -> Variant {
        Variant {
            uri: uri.into(),
            bandwidth: kbps * 1100,
            average_bandwidth: kbps * 1000,
            width,
            height,
            frame_rate: Some(30.0),
            codecs: "avc1.64001f,mp4a.40.2".into(),
        }
    }

    #[test]
    fn every_variant_names_the_audio_group_and_its_shape() {
        let variants = [variant("index.m3u8", 2628, 1280, 720), variant("480p/index.m3u8", 1328, 854, 480)];
        let text = Multivariant { variants: &variants, audio_channels: Some(2) }.render();
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"main\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2890800,AVERAGE-BANDWIDTH=2628000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\n\
             index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1460800,AVERAGE-BANDWIDTH=1328000,RESOLUTION=854x480,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\n\
             480p/index.m3u8\n"
        );
    }

    #[test]
    fn without_audio_there_is_no_group_and_odd_figures_stay_valid() {
        let mut v = variant("index.m3u8", 0, 853, 480);
        v.frame_rate = Some(f64::NAN);
        v.average_bandwidth = 5_000_000;
        let text = Multivariant { variants: &[v], audio_channels: None }.render();
        assert!(!text.contains("EXT-X-MEDIA") && !text.contains("AUDIO="), "{text}");
        assert!(text.contains("BANDWIDTH=1,AVERAGE-BANDWIDTH=1,RESOLUTION=853x480,CODECS="), "{text}");
    }
}
