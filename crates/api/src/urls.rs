//! Where media is served, as clients see it: the one place its URLs are built (the routes in
//! `lib.rs` serve them). Domain and media crates hand out ids, never URLs.

use olive_core::{ChannelId, ReplayId};

/// A live's multivariant playlist: its `playback_url`.
pub fn live_master(channel: ChannelId) -> String {
    format!("/live/{channel}/master.m3u8")
}

/// A live's latest thumbnail.
pub fn live_thumbnail(channel: ChannelId) -> String {
    format!("/live/{channel}/thumbnail.jpg")
}

/// A replay's multivariant playlist: its `playback_url`.
pub fn vod_master(replay: ReplayId) -> String {
    format!("/vod/{replay}/master.m3u8")
}

/// A replay's poster.
pub fn vod_thumbnail(replay: ReplayId) -> String {
    format!("/vod/{replay}/thumbnail.jpg")
}

/// The `data` of a `replay.ready` webhook.
pub fn replay_ready(replay: &olive_store::Replay) -> serde_json::Value {
    serde_json::json!({
        "replay_id": replay.id,
        "channel_id": replay.channel_id,
        "title": replay.title,
        "duration_ms": replay.duration_ms,
        "playback_url": vod_master(replay.id),
    })
}
