//! Replays as shoppers and hosts see them: who may watch, hide or delete one. A replay is public
//! once it is ready and not hidden; its channel's host and admins see it in every state, so they
//! can check a recording before showing it again. Deleting removes the objects first and the row
//! last, so a delete that fails half-way leaves a hidden replay to delete again, never a listed
//! replay without its media.

use crate::channels::can_manage;
use crate::{CommerceError, Result};
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, ReplayId};
use olive_objects::Objects;
use olive_store::{ChannelStore, Page, Replay, ReplayQuery, ReplayStatus, ReplayStore, RoomStore, Store, User};

/// Every object of a recording (init segments, segments, playlist) lives under this key prefix.
pub fn object_prefix(id: ReplayId) -> String {
    format!("recordings/{id}")
}

/// Whether `viewer` manages the replay's channel.
async fn manages(store: &dyn ChannelStore, viewer: Option<&User>, replay: &Replay) -> Result<bool> {
    let Some(user) = viewer else { return Ok(false) };
    Ok(can_manage(user, &store.channel(replay.channel_id).await?))
}

fn is_public(replay: &Replay) -> bool {
    replay.status == ReplayStatus::Ready && !replay.hidden
}

/// A replay `viewer` may see, or `NotFound` (a hidden replay does not reveal that it exists).
pub async fn visible(store: &dyn Store, viewer: Option<&User>, id: ReplayId) -> Result<Replay> {
    let replay = store.replay(id).await?;
    if is_public(&replay) || manages(store, viewer, &replay).await? {
        return Ok(replay);
    }
    Err(CommerceError::NotFound("replay"))
}

/// Public replays, newest first; `channel` narrows to one channel.
pub async fn list(store: &dyn ReplayStore, channel: Option<olive_core::ChannelId>, page: Page) -> Result<Vec<Replay>> {
    let query = ReplayQuery { channel, status: Some(ReplayStatus::Ready), include_hidden: false, page };
    Ok(store.list_replays(&query).await?)
}

async fn managed(store: &dyn Store, actor: &User, id: ReplayId) -> Result<Replay> {
    let replay = store.replay(id).await?;
    if !manages(store, Some(actor), &replay).await? {
        // Others learn nothing about replays they cannot see.
        return Err(if is_public(&replay) { CommerceError::Forbidden } else { CommerceError::NotFound("replay") });
    }
    Ok(replay)
}

pub async fn set_hidden(store: &dyn Store, actor: &User, id: ReplayId, hidden: bool) -> Result<Replay> {
    managed(store, actor, id).await?;
    let replay = store.set_replay_hidden(id, hidden).await?;
    tracing::info!(replay_id = %id, hidden, actor = %actor.id, "replay visibility changed");
    Ok(replay)
}

/// What deleting a replay freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freed {
    pub channel: ChannelId,
    /// The recording's objects' bytes and its thumbnails' bytes.
    pub bytes: i64,
}

/// Deletes a finished replay and every object it stored.
pub async fn delete(store: &dyn Store, objects: &Objects, actor: &User, id: ReplayId) -> Result<Freed> {
    let replay = managed(store, actor, id).await?;
    if replay.status == ReplayStatus::Recording {
        return Err(CommerceError::StillRecording);
    }
    store.set_replay_hidden(id, true).await?;
    let recording = objects.delete_prefix(&object_prefix(id)).await?;
    let mut removed = recording.objects;
    // The thumbnails taken while it was live (named by their time) go too.
    let (from, to) = live_span(&replay);
    let thumbnails = objects.list(&format!("thumbnails/{}", replay.channel_id)).await?;
    let mut thumbnail_bytes = 0u64;
    for key in thumbnails {
        if thumbnail_taken_at(&key).is_some_and(|at| from <= at && at < to) {
            thumbnail_bytes += objects.size(&key).await.unwrap_or(0);
            objects.delete(&key).await?;
            removed += 1;
        }
    }
    store.delete_replay(id).await?;
    tracing::info!(replay_id = %id, objects = removed, actor = %actor.id, "replay deleted");
    let bytes = i64::try_from(recording.bytes.saturating_add(thumbnail_bytes)).unwrap_or(i64::MAX);
    Ok(Freed { channel: replay.channel_id, bytes })
}

/// When the replay was live, `[from, to)`: until its end (or its last stored segment, while it is
/// being recorded), with a second's margin for what was under way as it ended.
fn live_span(replay: &Replay) -> (DateTime<Utc>, DateTime<Utc>) {
    (replay.started_at, replay.ended_at.unwrap_or(replay.heartbeat_at) + chrono::Duration::seconds(1))
}

/// Where a live thumbnail is stored: `thumbnails/{channel}/{unix_ms}.jpg`.
pub fn thumbnail_key(channel: ChannelId, taken_at: DateTime<Utc>) -> String {
    format!("thumbnails/{channel}/{}.jpg", taken_at.timestamp_millis())
}

/// When the thumbnail stored under `key` was taken.
fn thumbnail_taken_at(key: &str) -> Option<DateTime<Utc>> {
    let ms = key.rsplit('/').next()?.strip_suffix(".jpg")?.parse().ok()?;
    DateTime::from_timestamp_millis(ms)
}

/// The replay's product timeline: the pins made while it was live.
/// What a replay's thumbnails were labelled, oldest first.
pub async fn pictures(store: &dyn ReplayStore, replay: &Replay) -> Result<Vec<olive_store::PictureLabels>> {
    Ok(store.picture_labels(replay.id).await?)
}

/// The newest ready, visible replays: what feeds choose from besides the lives.
pub async fn newest_ready(store: &dyn ReplayStore, limit: i64) -> Result<Vec<Replay>> {
    let query = ReplayQuery {
        channel: None,
        status: Some(ReplayStatus::Ready),
        include_hidden: false,
        page: Page::new(limit, 0),
    };
    Ok(store.list_replays(&query).await?)
}

/// A channel's last visible replay (whatever its state), whose poster stands for the channel once
/// it is off air.
pub async fn last_of(store: &dyn ReplayStore, channel: ChannelId) -> Result<Option<Replay>> {
    let query = ReplayQuery { channel: Some(channel), status: None, include_hidden: false, page: Page::new(1, 0) };
    Ok(store.list_replays(&query).await?.into_iter().next())
}

pub async fn pins(store: &dyn RoomStore, replay: &Replay) -> Result<Vec<olive_store::Pin>> {
    let (from, to) = live_span(replay);
    Ok(store.pins_between(replay.channel_id, from, to).await?)
}

/// The recording's stored segments, every rendition's (the source's, then each rung's), in order.
pub async fn segments(store: &dyn ReplayStore, replay: &Replay) -> Result<Vec<olive_store::ReplaySegment>> {
    Ok(store.replay_segments(replay.id).await?)
}

/// The chat sent while the replay was live, oldest first: up to `limit` messages after id `after`.
pub async fn chat(
    store: &dyn RoomStore,
    replay: &Replay,
    after: i64,
    limit: i64,
) -> Result<Vec<olive_store::ChatMessage>> {
    let (from, to) = live_span(replay);
    Ok(store.chat_between(replay.channel_id, from, to, after, limit.clamp(1, 200)).await?)
}
