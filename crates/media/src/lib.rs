//! Live video: the async driver around the pure packager in `olive-media-mux`. It owns the RTMP
//! listener and its sessions ([`ingest`]), the in-memory LL-HLS window of every live channel
//! ([`live`]), and each stream's health ([`health`]). HTTP serving of the window lives in
//! `olive-api`; this crate never formats a response.

mod eof;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod ingest;
pub mod labelling;
pub mod ladder;
pub mod live;
pub mod record;
pub mod registry;
pub mod stream_events;
pub mod thumbnail;
mod variants;

pub use health::StreamHealth;
pub use ladder::{Fallback, Ladder, LadderHealth, LadderSettings, Ladders};
pub use live::{LiveChannel, RenditionShape, Wanted};
pub use olive_media_mux::playlist::PinRange;
pub use olive_media_mux::{MediaFile, RungName};

use chrono::Utc;
use olive_core::ChannelId;
use olive_media_mux::PackagerSettings;
use olive_store::usage::UsageMeter;
use registry::LiveRegistry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What the operator chose for live video.
#[derive(Debug, Clone, Copy)]
pub struct MediaSettings {
    pub packager: PackagerSettings,
    /// How long a dropped broadcaster may take to come back and continue the same playlist.
    pub reconnect_grace: Duration,
    /// Most simultaneous RTMP connections (publishing or still handshaking).
    pub max_connections: usize,
    /// How long a connection may take to publish with a valid stream key before it is closed.
    pub publish_timeout: Duration,
    /// RTMP connections one client address may hold open before publishing.
    pub unpublished_per_address: usize,
    /// The largest RTMP message before a publish (commands only) and after (a keyframe).
    pub max_message_before_publish: usize,
    pub max_message: usize,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            packager: PackagerSettings::default(),
            reconnect_grace: Duration::from_secs(30),
            max_connections: 512,
            publish_timeout: Duration::from_secs(10),
            unpublished_per_address: 8,
            // connect, createStream, publish: a few hundred bytes each.
            max_message_before_publish: 64 * 1024,
            // Four times nginx-rtmp's default `max_message` (1 MB): a 4K keyframe at a high bitrate.
            max_message: 4 * 1024 * 1024,
        }
    }
}

/// Every channel's live window, and who is publishing where.
pub struct LiveMedia {
    settings: MediaSettings,
    channels: RwLock<HashMap<ChannelId, Arc<LiveChannel>>>,
    /// Channel → the publishing session that holds it.
    publishing: Mutex<HashMap<ChannelId, u64>>,
    health: RwLock<HashMap<ChannelId, StreamHealth>>,
    sessions: AtomicU64,
    /// What channels use (ingest bytes, CPU, stored and sent bytes), for the cost report.
    usage: Arc<UsageMeter>,
    /// Which node holds each live.
    registry: Arc<LiveRegistry>,
    /// The ladders this node makes.
    ladders: Arc<Ladders>,
}

impl LiveMedia {
    pub fn new(settings: MediaSettings) -> Self {
        LiveMedia {
            settings,
            channels: RwLock::new(HashMap::new()),
            publishing: Mutex::new(HashMap::new()),
            health: RwLock::new(HashMap::new()),
            sessions: AtomicU64::new(0),
            usage: Arc::default(),
            registry: Arc::new(LiveRegistry::single_node()),
            ladders: Arc::new(Ladders::disabled("no encoder was configured")),
        }
    }

    /// Makes ladders for `standard` channels with `ladders`.
    pub fn with_ladders(mut self, ladders: Ladders) -> Self {
        self.ladders = Arc::new(ladders);
        self
    }

    /// The ladders this node makes.
    pub fn ladders(&self) -> &Arc<Ladders> {
        &self.ladders
    }

    /// Pins a product in the live's playlists: the source's and every rung's.
    pub fn add_pin(&self, id: ChannelId, pin: PinRange) {
        if let Some(live) = self.channel(id) {
            live.add_pin(pin.clone());
        }
        if let Some(ladder) = self.ladders.ladder(id) {
            for rung in &ladder.rungs {
                rung.live.add_pin(pin.clone());
            }
        }
    }

    /// Shares lives with other nodes through `registry` (one process alone needs none).
    pub fn with_registry(mut self, registry: Arc<LiveRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// Which node holds each live.
    pub fn registry(&self) -> &Arc<LiveRegistry> {
        &self.registry
    }

    pub fn settings(&self) -> MediaSettings {
        self.settings
    }

    /// The meter every part of the media path counts its usage in.
    pub fn usage(&self) -> &Arc<UsageMeter> {
        &self.usage
    }

    /// The live window of a channel, if it has one (publishing, in its reconnect grace, or ended
    /// and not yet replaced).
    pub fn channel(&self, id: ChannelId) -> Option<Arc<LiveChannel>> {
        self.channels.read().expect("live map poisoned").get(&id).cloned()
    }

    pub fn health(&self, id: ChannelId) -> Option<StreamHealth> {
        self.health.read().expect("health map poisoned").get(&id).cloned()
    }

    pub fn is_publishing(&self, id: ChannelId) -> bool {
        self.publishing.lock().expect("publisher map poisoned").contains_key(&id)
    }

    /// Channels with a window, ended or not.
    pub fn channels_with_windows(&self) -> Vec<ChannelId> {
        self.channels.read().expect("live map poisoned").keys().copied().collect()
    }

    pub fn live_channels(&self) -> Vec<ChannelId> {
        self.publishing.lock().expect("publisher map poisoned").keys().copied().collect()
    }

    /// Takes the channel for a new publishing session, or `None` if someone publishes there.
    /// Returns the session id and the window to write to: the existing one when it has not ended
    /// (a reconnect continues the playlist), else a fresh one whose sequence numbers start from
    /// the wall clock, so URIs never repeat across restarts and can be cached for good.
    fn claim(&self, id: ChannelId) -> Option<(u64, Arc<LiveChannel>)> {
        let mut publishing = self.publishing.lock().expect("publisher map poisoned");
        if publishing.contains_key(&id) {
            return None;
        }
        let session = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        publishing.insert(id, session);
        drop(publishing);
        let mut channels = self.channels.write().expect("live map poisoned");
        let live = match channels.get(&id) {
            Some(live) if !live.is_ended() => live.clone(),
            _ => {
                let p = self.settings.packager;
                let first_msn = (Utc::now().timestamp_millis() / p.segment_target_ms.max(1)) as u64;
                let live = Arc::new(LiveChannel::new(p.segment_target_ms, p.part_target_ms, first_msn));
                channels.insert(id, live.clone());
                live
            }
        };
        Some((session, live))
    }

    /// Gives the channel back if `session` still holds it.
    fn release(&self, id: ChannelId, session: u64) {
        let mut publishing = self.publishing.lock().expect("publisher map poisoned");
        if publishing.get(&id) == Some(&session) {
            publishing.remove(&id);
        }
        drop(publishing);
        self.health.write().expect("health map poisoned").remove(&id);
    }

    fn set_health(&self, id: ChannelId, health: StreamHealth) {
        self.health.write().expect("health map poisoned").insert(id, health);
    }
}
