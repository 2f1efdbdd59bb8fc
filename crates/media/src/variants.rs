//! A live's renditions as players see them: the source's window and its ladder's rungs, the
//! multivariant playlist that lists them, and the rendition reports each media playlist carries
//! of the others. The source is always listed; rungs only while the ladder runs and once their
//! init segment exists (its codecs are what the playlist promises).

use crate::live::LiveChannel;
use crate::LiveMedia;
use olive_core::ChannelId;
use olive_media_mux::master::{self, Multivariant, Variant};
use olive_media_mux::playlist::RenditionReport;
use olive_media_mux::RungName;
use std::sync::Arc;

/// The bit rate assumed for the source before a segment of it is complete.
const SOURCE_BPS_UNTIL_MEASURED: u64 = 2_500_000;
/// The audio bit rate assumed for a rung before a segment of it is complete.
const AUDIO_BPS_UNTIL_MEASURED: u64 = 128_000;

fn codecs(shape: &crate::live::RenditionShape) -> Option<String> {
    Some(master::codecs(shape.video.as_ref()?, shape.audio.as_ref()))
}

impl LiveMedia {
    /// The window of rendition `rung` (the source's when `None`) of the channel's live here.
    pub fn rendition(&self, id: ChannelId, rung: Option<RungName>) -> Option<Arc<LiveChannel>> {
        match rung {
            None => self.channel(id),
            Some(name) => self.ladders().ladder(id)?.rung(name).map(|r| r.live.clone()),
        }
    }

    /// What the playlist of rendition `from` reports of the live's other renditions.
    pub fn rendition_reports(&self, id: ChannelId, from: Option<RungName>) -> Vec<RenditionReport> {
        let Some(ladder) = self.ladders().ladder(id).filter(|l| l.is_running()) else { return Vec::new() };
        let up = if from.is_some() { "../" } else { "" };
        let mut reports = Vec::new();
        if from.is_some() {
            if let Some((msn, part)) = self.channel(id).and_then(|l| l.last_part()) {
                reports.push(RenditionReport { uri: "../index.m3u8".into(), last_msn: msn, last_part: Some(part) });
            }
        }
        for rung in ladder.rungs.iter().filter(|r| Some(r.plan.name) != from) {
            if let Some((msn, part)) = rung.live.last_part() {
                reports.push(RenditionReport {
                    uri: format!("{up}{}/index.m3u8", rung.plan.name),
                    last_msn: msn,
                    last_part: Some(part),
                });
            }
        }
        reports
    }

    /// Whether the channel's ladder runs here but some rung has no init segment yet (the
    /// multivariant playlist may wait a moment for it).
    pub fn ladder_warming_up(&self, id: ChannelId) -> bool {
        self.ladders()
            .ladder(id)
            .is_some_and(|l| l.is_running() && l.rungs.iter().any(|r| r.live.shape().video.is_none()))
    }

    /// The multivariant playlist of the channel's live here: the source and every rung ready to
    /// play, best first. `None` until the source has its init segment.
    pub fn multivariant(&self, id: ChannelId) -> Option<String> {
        let source = self.channel(id)?.shape();
        let source_video = source.video.as_ref()?;
        let health = self.health(id);
        let measured = health.as_ref().map(|h| h.bitrate_bps).filter(|b| *b > 0);
        let source_fps = source_video.frame_rate.or(health.as_ref().map(|h| h.fps).filter(|f| *f > 0.0));
        let average = source.average_bps.or(measured).unwrap_or(SOURCE_BPS_UNTIL_MEASURED);
        let mut variants = vec![Variant {
            uri: "index.m3u8".into(),
            bandwidth: source.peak_bps.unwrap_or(average + average / 5).max(average),
            average_bandwidth: average,
            width: source_video.width,
            height: source_video.height,
            frame_rate: source_fps,
            codecs: codecs(&source)?,
        }];
        if let Some(ladder) = self.ladders().ladder(id).filter(|l| l.is_running()) {
            for rung in &ladder.rungs {
                let shape = rung.live.shape();
                let Some(codecs) = codecs(&shape) else { continue };
                let audio = if shape.audio.is_some() { AUDIO_BPS_UNTIL_MEASURED } else { 0 };
                let nominal = u64::from(rung.plan.video_kbps) * 1000 + audio;
                let average = shape.average_bps.unwrap_or(nominal);
                variants.push(Variant {
                    uri: format!("{}/index.m3u8", rung.plan.name),
                    bandwidth: shape.peak_bps.unwrap_or(nominal + nominal / 10).max(average),
                    average_bandwidth: average,
                    width: rung.plan.width,
                    height: rung.plan.height,
                    frame_rate: rung.plan.fps.map(f64::from).or(source_fps),
                    codecs,
                });
            }
        }
        master::best_first(&mut variants);
        Some(Multivariant { variants: &variants, audio_channels: source.audio.as_ref().map(|a| a.channels) }.render())
    }
}
