//! The driver of the live rooms on this node: who is watching which channel here, what they are
//! sent, and how a room's events reach every node.
//!
//! Every event of a room goes through the bus topic [`ROOM_EVENTS`] — also on one node, where the
//! memory bus hands it straight back — so a viewer sees the same stream of events whichever node
//! they are connected to. Each node turns an event into a frame once and shares the bytes.
//!
//! Fan-out: a room's viewers on this node are spread over [`RELAYS`] relay tasks. A relay gathers
//! the frames that arrive during one tick (25 ms, longer when the room is big: about 200,000
//! viewer writes a second per node, at most 200 ms) and writes them to each of its viewers'
//! connections itself, through their [`Outlet`]s, without waiting. So a connection is written once
//! per tick, not once per message, and no task is woken per viewer: a tick's thousands of writes
//! do not queue the room's other work (the next chat message, the next tick) behind them. A
//! connection that cannot take its frames keeps them for the next tick; past a bound it skips
//! ahead instead of slowing the relay or anyone else (the transport decides the bound).
//!
//! - Chat is admitted by the room's [`ChatGate`] on the node the sender is connected to, stored
//!   (its id orders it), then published.
//! - Hearts are counted per node and published as one count per tick.
//! - Viewer counts: each node publishes its own count per room every [`VIEWER_TICK`]; each node sums
//!   the counts it heard from every node in the last three ticks.
//! - Deals: the deal's owner (the node it was started on) publishes its start and end, and its
//!   stock at most once per [`HEART_TICK`]; every node keeps the room's running deal for joiners.

use crate::chat::{BannedWords, ChatGate, ChatQuota, Rejection, Sender};
use crate::hearts::HeartCounter;
use crate::protocol::{ChatAuthor, DealCard, PinnedProduct, ServerMessage};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_bus::Bus;
use olive_commerce::deal_desk::DealNews;
use olive_core::ChannelId;
use olive_store::{Channel, NewChatMessage, Store, StoreError, User};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// The bus topic every room event travels on.
pub const ROOM_EVENTS: &str = "room-events";
/// Chat messages a joining viewer is sent.
pub const HISTORY: i64 = 50;
/// How often hearts are announced.
pub const HEART_TICK: Duration = Duration::from_millis(250);
/// How often viewer counts are exchanged and announced.
pub const VIEWER_TICK: Duration = Duration::from_secs(2);
/// Frames a relay may be behind the room before it skips ahead.
pub const RELAY_QUEUE: usize = 4096;

/// Relay tasks per room per node.
pub const RELAYS: usize = 4;
/// Connections a relay writes before letting other tasks run.
const RELAY_SLICE: usize = 256;
/// The shortest and longest tick a relay gathers frames over.
pub const MIN_TICK: Duration = Duration::from_millis(25);
pub const MAX_TICK: Duration = Duration::from_millis(200);
/// Viewer writes per second a node aims at, all relays together.
const WRITES_PER_SECOND: u64 = 200_000;

/// A frame's JSON text (always UTF-8), serialised once and shared by every viewer it goes to.
pub type Frame = Bytes;
/// A frame and its place in the room's order (from 1), so a viewer given the same frame twice
/// (when its connection is handed to a relay) writes it once.
pub type Numbered = (u64, Frame);

/// How long a relay gathers frames, given how many viewers this node has in the room.
pub fn tick_for(viewers: u64) -> Duration {
    let spread = Duration::from_micros(viewers.saturating_mul(1_000_000) / WRITES_PER_SECOND);
    spread.clamp(MIN_TICK, MAX_TICK)
}

/// What an outlet did with the frames offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Written, or kept to be written with the next ones.
    Taken,
    /// The connection is gone: forget it.
    Closed,
}

/// A viewer's connection as a relay writes to it. `offer` must never wait; it writes each frame
/// once, skipping any numbered at or below the last it took. The WebSocket route implements it.
pub trait Outlet: Send {
    fn offer(&mut self, frames: &[Numbered]) -> Offer;
}

/// One relay's viewers.
#[derive(Default)]
struct Relay {
    outlets: Mutex<Vec<Box<dyn Outlet>>>,
}

/// What travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoomEvent {
    channel: ChannelId,
    node: String,
    #[serde(flatten)]
    kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum EventKind {
    /// A message to show as it is (chat, a deleted message, a pin).
    Message { message: ServerMessage },
    /// Hearts counted on `node` since its last tick.
    Hearts { count: u64 },
    /// How many viewers `node` has in the room now.
    Viewers { count: u64 },
    /// The room's moderation changed in the store: read it again.
    Moderation,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the channel does not exist")]
    NoSuchChannel,
    #[error("storage is unavailable")]
    Storage(#[source] StoreError),
    #[error("the bus is unavailable")]
    Bus(#[source] olive_bus::BusError),
}

impl HubError {
    pub fn code(&self) -> &'static str {
        match self {
            HubError::Rejected(r) => r.code(),
            HubError::NoSuchChannel => "not_found",
            HubError::Storage(_) | HubError::Bus(_) => "unavailable",
        }
    }
}

struct Room {
    frames: broadcast::Sender<Numbered>,
    /// The number of the last frame sent.
    sequence: AtomicU64,
    relays: Vec<Arc<Relay>>,
    relays_started: std::sync::Once,
    next_relay: std::sync::atomic::AtomicUsize,
    gate: Mutex<ChatGate>,
    /// The gate's rules must be (re)read from the store before the next message.
    stale: std::sync::atomic::AtomicBool,
    /// The channel as read with the rules (its host moderates).
    channel: Mutex<Option<Arc<Channel>>>,
    hearts: Mutex<HeartCounter>,
    /// Viewers connected to this node.
    here: AtomicU64,
    /// Each node's last reported count, and when it was heard.
    counts: Mutex<HashMap<String, (u64, Instant)>>,
    /// The total announced at the last exchange.
    announced: AtomicU64,
    /// The running deal as last heard (`Some(None)`: none), or `None` before this node knows.
    deal: Mutex<Option<Option<DealCard>>>,
    /// The deal's stock as its owner here last counted it, announced at the next heart tick.
    deal_stock: Mutex<Option<ServerMessage>>,
    /// The last [`HISTORY`] chat messages (id, frame), once a viewer here has joined.
    history: Mutex<Option<VecDeque<(i64, Frame)>>>,
    /// The latest pin's frame (`Some(None)`: none yet), once known on this node.
    pinned: Mutex<Option<Option<Frame>>>,
    /// The store confirmed the channel exists (a join need not ask again).
    confirmed: std::sync::atomic::AtomicBool,
}

impl Room {
    fn new() -> Self {
        Room {
            frames: broadcast::channel(RELAY_QUEUE).0,
            sequence: AtomicU64::new(0),
            relays: (0..RELAYS).map(|_| Arc::new(Relay::default())).collect(),
            relays_started: std::sync::Once::new(),
            next_relay: std::sync::atomic::AtomicUsize::new(0),
            gate: Mutex::new(ChatGate::new(ChatQuota::default(), BannedWords::default())),
            stale: std::sync::atomic::AtomicBool::new(true),
            channel: Mutex::new(None),
            hearts: Mutex::new(HeartCounter::default()),
            here: AtomicU64::new(0),
            counts: Mutex::new(HashMap::new()),
            announced: AtomicU64::new(0),
            deal: Mutex::new(None),
            deal_stock: Mutex::new(None),
            history: Mutex::new(None),
            pinned: Mutex::new(None),
            confirmed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Keeps the room's deal in step with the deal messages it is sent.
    fn note_deal(&self, message: &ServerMessage) {
        let mut slot = self.deal.lock().expect("deal poisoned");
        match message {
            ServerMessage::Deal { deal, .. } => *slot = Some(Some(deal.clone())),
            ServerMessage::DealStock { id, remaining, .. } => {
                if let Some(Some(card)) = slot.as_mut() {
                    if card.id == *id {
                        card.remaining = *remaining;
                    }
                }
            }
            // Unless a newer deal was heard of first.
            ServerMessage::DealEnded { id, .. }
                if slot.as_ref().is_none_or(|c| c.as_ref().is_none_or(|c| c.id == *id)) =>
            {
                *slot = Some(None)
            }
            _ => {}
        }
    }

    fn send(&self, message: &ServerMessage) {
        let frame = Frame::from(message.to_json());
        if let Some(kept) = self.history.lock().expect("history poisoned").as_mut() {
            match message {
                ServerMessage::Chat { id, .. } => {
                    kept.push_back((*id, frame.clone()));
                    while kept.len() > HISTORY as usize {
                        kept.pop_front();
                    }
                }
                ServerMessage::ChatDeleted { id } => kept.retain(|(kept_id, _)| kept_id != id),
                _ => {}
            }
        }
        if let ServerMessage::Pin { .. } = message {
            *self.pinned.lock().expect("pin poisoned") = Some(Some(frame.clone()));
        }
        let number = self.sequence.fetch_add(1, Ordering::AcqRel) + 1;
        let _ = self.frames.send((number, frame));
    }

    fn viewers(&self, now: Instant) -> u64 {
        let stale = VIEWER_TICK * 3;
        self.counts.lock().expect("counts poisoned").values().filter(|(_, at)| now - *at < stale).map(|(n, _)| n).sum()
    }
}

/// A viewer's place in a room; leaving the room is dropping it.
pub struct Seat {
    room: Arc<Room>,
    /// Frames sent to the room since the viewer joined, until its outlet is attached.
    early: Option<broadcast::Receiver<Numbered>>,
}

impl Seat {
    /// Hands the viewer's connection to a relay once the first frames are written to it: from now
    /// on the relay writes the room's frames to it, starting with those sent since joining.
    pub fn attach(&mut self, mut outlet: Box<dyn Outlet>) {
        let Some(mut early) = self.early.take() else { return };
        let relay = self.room.next_relay.fetch_add(1, Ordering::Relaxed) % RELAYS;
        // Under the relay's lock, so that a frame is either among these or in a later batch of
        // the relay's (or both, and the outlet writes it once).
        let mut outlets = self.room.relays[relay].outlets.lock().expect("outlets poisoned");
        let mut since = Vec::new();
        loop {
            match early.try_recv() {
                Ok(frame) => since.push(frame),
                Err(broadcast::error::TryRecvError::Lagged(n)) => skipped(n),
                Err(_) => break,
            }
        }
        if outlet.offer(&since) == Offer::Taken {
            outlets.push(outlet);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.room.here.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("olive_ws_connections").decrement(1.0);
    }
}

pub struct Hub {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    node: String,
    rooms: Mutex<HashMap<ChannelId, Arc<Room>>>,
    /// Bumped whenever a room's viewer total changes, so caches that show counts know to refresh.
    counts_version: AtomicU64,
}

impl Hub {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, node: String) -> Arc<Self> {
        Arc::new(Hub { store, bus, node, rooms: Mutex::new(HashMap::new()), counts_version: AtomicU64::new(0) })
    }

    fn room(&self, channel: ChannelId) -> Arc<Room> {
        self.rooms.lock().expect("rooms poisoned").entry(channel).or_insert_with(|| Arc::new(Room::new())).clone()
    }

    /// Joins a room: the frames to send first (recent chat, the viewer count, the pinned product,
    /// the running deal) and the seat that receives everything after.
    pub async fn join(&self, channel: ChannelId, now: DateTime<Utc>) -> Result<(Vec<Frame>, Seat), HubError> {
        let known = self
            .rooms
            .lock()
            .expect("rooms poisoned")
            .get(&channel)
            .is_some_and(|r| r.confirmed.load(Ordering::Acquire));
        // Only a channel that exists gets a room (ids come from the URL).
        if !known {
            match self.store.channel(channel).await {
                Ok(_) => {}
                Err(StoreError::NotFound(_)) => return Err(HubError::NoSuchChannel),
                Err(e) => return Err(HubError::Storage(e)),
            }
        }
        let room = self.room(channel);
        room.confirmed.store(true, Ordering::Release);
        room.relays_started.call_once(|| {
            let epoch = Instant::now();
            for (index, relay) in room.relays.iter().enumerate() {
                // Unconstrained: a relay polls thousands of sockets per tick on purpose, and
                // Tokio's per-task budget would otherwise turn most of those writes into "not now".
                let relay = run_relay(Arc::downgrade(&room), room.frames.subscribe(), relay.clone(), (epoch, index));
                tokio::spawn(tokio::task::unconstrained(relay));
            }
        });
        // Take the seat before reading the history, so nothing falls between the two.
        let early = Some(room.frames.subscribe());
        room.here.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("olive_ws_connections").increment(1.0);
        let seat = Seat { room: room.clone(), early };
        let mut first = self.history(channel, &room).await?;
        let count = room.viewers(Instant::now()).max(1);
        first.push(Frame::from(ServerMessage::Viewers { count }.to_json()));
        if let Some(pin) = self.latest_pin(channel, &room).await? {
            first.push(pin);
        }
        if let Some(card) = self.running_deal(channel, &room).await? {
            first.push(Frame::from(card.message(now).to_json()));
        }
        Ok((first, seat))
    }

    /// The room's latest pin as a frame: kept from the pins the room is sent, read from the store
    /// by the first viewer to join on this node.
    async fn latest_pin(&self, channel: ChannelId, room: &Room) -> Result<Option<Frame>, HubError> {
        if let Some(known) = room.pinned.lock().expect("pin poisoned").clone() {
            return Ok(known);
        }
        let mut frame = None;
        if let Some(pin) = self.store.latest_pin(channel).await.map_err(HubError::Storage)? {
            if let Ok(product) = self.store.product(pin.product_id).await {
                let message = ServerMessage::Pin { product: PinnedProduct::of(&product), pts: pin.pts };
                frame = Some(Frame::from(message.to_json()));
            }
        }
        // A pin that arrived while the store was read is newer: keep it.
        Ok(room.pinned.lock().expect("pin poisoned").get_or_insert(frame).clone())
    }

    /// The room's recent chat as frames: kept in memory from the messages the room is sent, read
    /// from the store only by the first viewer to join on this node (so a crowd joining at once
    /// costs one read, not one each).
    async fn history(&self, channel: ChannelId, room: &Room) -> Result<Vec<Frame>, HubError> {
        if let Some(kept) = room.history.lock().expect("history poisoned").as_ref() {
            return Ok(kept.iter().map(|(_, frame)| frame.clone()).collect());
        }
        let stored = self.store.recent_chat(channel, HISTORY).await.map_err(HubError::Storage)?;
        let kept: VecDeque<(i64, Frame)> = stored
            .into_iter()
            .map(|m| {
                let message = ServerMessage::Chat {
                    id: m.id,
                    user: ChatAuthor { id: m.user_id, name: m.author },
                    text: m.text,
                    ts: m.created_at,
                };
                (m.id, Frame::from(message.to_json()))
            })
            .collect();
        let frames = kept.iter().map(|(_, frame)| frame.clone()).collect();
        // A message that arrived while the store was read is in one or the other; keep the first
        // copy filled.
        room.history.lock().expect("history poisoned").get_or_insert(kept);
        Ok(frames)
    }

    /// The room's running deal: as last heard, or read from the store the first time (its
    /// remaining stock is then the durable count's, until the owner's next announcement).
    async fn running_deal(&self, channel: ChannelId, room: &Room) -> Result<Option<DealCard>, HubError> {
        if let Some(known) = room.deal.lock().expect("deal poisoned").clone() {
            return Ok(known);
        }
        let card = match self.store.running_deal(channel).await.map_err(HubError::Storage)? {
            Some(deal) => {
                let product = self.store.product(deal.product_id).await.map_err(HubError::Storage)?;
                Some(DealCard::of(&deal, &product, deal.listed - deal.sold))
            }
            None => None,
        };
        room.deal.lock().expect("deal poisoned").get_or_insert(card.clone());
        Ok(card)
    }

    /// Announces this node's deal news (from its `DealDesk`) to every node's viewers, until the
    /// desk is gone. Stock is announced at the next heart tick, the newest count only.
    pub async fn follow_deals(self: Arc<Self>, mut news: tokio::sync::broadcast::Receiver<DealNews>) {
        loop {
            let item = match news.recv().await {
                Ok(item) => item,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            match item {
                DealNews::Started(deal) => {
                    let product = match self.store.product(deal.product_id).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(deal_id = %deal.id, error = %e, "could not read a deal's product");
                            continue;
                        }
                    };
                    let message = DealCard::of(&deal, &product, deal.listed - deal.sold).message(Utc::now());
                    self.publish(deal.channel_id, EventKind::Message { message }).await;
                }
                DealNews::Stock { deal, channel, counts } => {
                    let message = ServerMessage::DealStock { id: deal, remaining: counts.available, sold: counts.sold };
                    *self.room(channel).deal_stock.lock().expect("deal stock poisoned") = Some(message);
                }
                DealNews::Ended(deal) => {
                    self.room(deal.channel_id).deal_stock.lock().expect("deal stock poisoned").take();
                    let message = ServerMessage::DealEnded { id: deal.id, sold: deal.sold };
                    self.publish(deal.channel_id, EventKind::Message { message }).await;
                }
            }
        }
    }

    /// A chat message from `user` (anonymous viewers may not chat): admitted, stored, announced.
    pub async fn chat(
        &self,
        channel: ChannelId,
        user: Option<&User>,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), HubError> {
        let room = self.room(channel);
        let ch = self.rules(channel, &room, now).await?;
        let sender = user.map(|u| Sender { user: u.id, moderator: olive_commerce::channels::can_manage(u, &ch) });
        let (sender, text) = room.gate.lock().expect("gate poisoned").check(sender, text, now)?;
        self.pace(channel, &room, sender, now).await?;
        let user = user.expect("admitted messages have a sender");
        let stored = self
            .store
            .add_chat_message(NewChatMessage {
                channel_id: channel,
                user_id: user.id,
                author: user.display_name.clone(),
                text,
                created_at: now,
            })
            .await
            .map_err(HubError::Storage)?;
        metrics::counter!("olive_chat_messages_total", "channel" => channel.to_string()).increment(1);
        let message = ServerMessage::Chat {
            id: stored.id,
            user: ChatAuthor { id: user.id, name: stored.author },
            text: stored.text,
            ts: stored.created_at,
        };
        self.publish(channel, EventKind::Message { message }).await;
        Ok(())
    }

    /// Counts a message against the sender's rate limit and slow mode: in this node's memory, or
    /// with several nodes on a shared bus, in the schedule they all share (so a chatter connected
    /// to two nodes gets one allowance, not two).
    async fn pace(&self, channel: ChannelId, room: &Room, sender: Sender, now: DateTime<Utc>) -> Result<(), HubError> {
        let Some(limits) = self.bus.shared_limits() else {
            return Ok(room.gate.lock().expect("gate poisoned").pace(sender, now)?);
        };
        if sender.moderator {
            return Ok(());
        }
        let (quota, slow) = room.gate.lock().expect("gate poisoned").pacing();
        let ms = |d: std::time::Duration| (d.as_millis() as i64).max(1);
        if let Some(slow) = slow.and_then(|s| s.to_std().ok()) {
            let key = format!("chat-slow:{channel}:{}", sender.user);
            if let Some(wait) = limits.take(&key, slow, 1).await.map_err(HubError::Bus)? {
                return Err(Rejection::SlowMode(ms(wait)).into());
            }
        }
        let period = quota.period.to_std().unwrap_or(std::time::Duration::from_secs(1));
        let key = format!("chat:{channel}:{}", sender.user);
        if let Some(wait) = limits.take(&key, period, quota.burst).await.map_err(HubError::Bus)? {
            return Err(Rejection::RateLimited(ms(wait)).into());
        }
        Ok(())
    }

    /// The channel as the room's rules were last read from the store: read again (with its mutes
    /// and bans) only when a moderation event marked them stale, not for every message.
    async fn rules(&self, channel: ChannelId, room: &Room, now: DateTime<Utc>) -> Result<Arc<Channel>, HubError> {
        if !room.stale.swap(false, Ordering::AcqRel) {
            if let Some(ch) = room.channel.lock().expect("channel poisoned").clone() {
                return Ok(ch);
            }
        }
        let loaded = async {
            let ch = self.store.channel(channel).await.map_err(|e| match e {
                StoreError::NotFound(_) => HubError::NoSuchChannel,
                e => HubError::Storage(e),
            })?;
            let restrictions = self.store.chat_restrictions(channel, now).await.map_err(HubError::Storage)?;
            Ok::<_, HubError>((ch, restrictions))
        };
        let (ch, restrictions) = match loaded.await {
            Ok(loaded) => loaded,
            Err(e) => {
                room.stale.store(true, Ordering::Release);
                return Err(e);
            }
        };
        let slow = (ch.chat_slow_mode_s > 0).then(|| chrono::Duration::seconds(i64::from(ch.chat_slow_mode_s)));
        room.gate.lock().expect("gate poisoned").configure(
            BannedWords::new(&ch.chat_banned_words),
            slow,
            restrictions.into_iter().map(|r| (r.user_id, r.until)),
        );
        let ch = Arc::new(ch);
        *room.channel.lock().expect("channel poisoned") = Some(ch.clone());
        Ok(ch)
    }

    /// A product was pinned at `pts` on the media timeline: every viewer shows its card when the
    /// picture reaches that moment.
    pub async fn pinned(&self, channel: ChannelId, product: &olive_store::Product, pts: DateTime<Utc>) {
        let message = ServerMessage::Pin { product: PinnedProduct::of(product), pts };
        self.publish(channel, EventKind::Message { message }).await;
    }

    /// A moderator deleted a message: every viewer drops it.
    pub async fn message_deleted(&self, channel: ChannelId, id: i64) {
        self.publish(channel, EventKind::Message { message: ServerMessage::ChatDeleted { id } }).await;
    }

    /// The channel's chat rules changed in the store (settings, a mute, a ban): every node reads
    /// them again before its next message.
    pub async fn moderation_changed(&self, channel: ChannelId) {
        // This node at once (the moderator's next request may race the bus), the others by bus.
        self.room(channel).stale.store(true, Ordering::Release);
        self.publish(channel, EventKind::Moderation).await;
    }

    /// A heart from a viewer here; announced with the others at the next tick.
    pub fn heart(&self, channel: ChannelId) {
        self.room(channel).hearts.lock().expect("hearts poisoned").add(1);
    }

    async fn publish(&self, channel: ChannelId, kind: EventKind) {
        let event = RoomEvent { channel, node: self.node.clone(), kind };
        let bytes = Bytes::from(serde_json::to_vec(&event).expect("room events serialise"));
        if let Err(e) = self.bus.publish(ROOM_EVENTS, bytes).await {
            tracing::warn!(channel_id = %channel, error = %e, "could not publish a room event");
        }
    }

    /// Delivers room events from the bus to this node's viewers, until the bus closes.
    pub async fn deliver(self: Arc<Self>) {
        let mut events = self.bus.subscribe(ROOM_EVENTS);
        while let Some(event) = events.recv().await {
            let Ok(bytes) = event else {
                tracing::warn!("room events were lost: this node fell behind the bus");
                continue;
            };
            let Ok(event) = serde_json::from_slice::<RoomEvent>(&bytes) else { continue };
            let room = self.room(event.channel);
            match event.kind {
                EventKind::Message { message } => {
                    room.note_deal(&message);
                    room.send(&message);
                }
                EventKind::Hearts { count } => room.send(&ServerMessage::Hearts { count }),
                EventKind::Viewers { count } => {
                    room.counts.lock().expect("counts poisoned").insert(event.node, (count, Instant::now()));
                }
                EventKind::Moderation => room.stale.store(true, Ordering::Release),
            }
        }
    }

    /// Announces this node's hearts every [`HEART_TICK`] and exchanges and announces viewer
    /// counts every [`VIEWER_TICK`], forever.
    pub async fn tick(self: Arc<Self>) {
        let mut hearts = tokio::time::interval(HEART_TICK);
        let mut viewers = tokio::time::interval(VIEWER_TICK);
        loop {
            tokio::select! {
                _ = hearts.tick() => {
                    let rooms: Vec<(ChannelId, Arc<Room>)> =
                        self.rooms.lock().expect("rooms poisoned").iter().map(|(c, r)| (*c, r.clone())).collect();
                    let hearts: Vec<(ChannelId, u64)> = rooms.iter()
                        .filter_map(|(c, r)| r.hearts.lock().expect("hearts poisoned").take().map(|n| (*c, n)))
                        .collect();
                    let stock: Vec<(ChannelId, ServerMessage)> = rooms.iter()
                        .filter_map(|(c, r)| r.deal_stock.lock().expect("deal stock poisoned").take().map(|m| (*c, m)))
                        .collect();
                    for (channel, count) in hearts {
                        self.publish(channel, EventKind::Hearts { count }).await;
                    }
                    for (channel, message) in stock {
                        self.publish(channel, EventKind::Message { message }).await;
                    }
                }
                _ = viewers.tick() => self.exchange_viewers().await,
            }
        }
    }

    async fn exchange_viewers(&self) {
        let now = Instant::now();
        let rooms: Vec<(ChannelId, Arc<Room>)> =
            self.rooms.lock().expect("rooms poisoned").iter().map(|(c, r)| (*c, r.clone())).collect();
        for (channel, room) in rooms {
            let here = room.here.load(Ordering::Relaxed);
            let total = room.viewers(now);
            if here == 0 && total == 0 {
                continue;
            }
            self.publish(channel, EventKind::Viewers { count: here }).await;
            metrics::gauge!("olive_viewers", "channel" => channel.to_string()).set(total as f64);
            if room.announced.swap(total, Ordering::Relaxed) != total {
                self.counts_version.fetch_add(1, Ordering::Release);
            }
            if room.here.load(Ordering::Relaxed) > 0 {
                room.send(&ServerMessage::Viewers { count: total });
            }
        }
    }

    /// Changes whenever any room's viewer total does.
    pub fn counts_version(&self) -> u64 {
        self.counts_version.load(Ordering::Acquire)
    }

    /// Live viewers of a channel on every node, as last exchanged.
    pub fn viewers(&self, channel: ChannelId) -> u64 {
        self.rooms.lock().expect("rooms poisoned").get(&channel).map_or(0, |r| r.viewers(Instant::now()))
    }
}

/// One relay of a room: gathers the room's frames over a tick and writes each batch to its
/// viewers' connections. Ends when the room is gone.
async fn run_relay(
    room: std::sync::Weak<Room>,
    mut frames: broadcast::Receiver<Numbered>,
    relay: Arc<Relay>,
    (epoch, index): (Instant, usize),
) {
    loop {
        let first = match frames.recv().await {
            Ok(frame) => frame,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                skipped(n);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(viewers) = room.upgrade().map(|r| r.here.load(Ordering::Relaxed)) else { return };
        tokio::time::sleep(until_turn(tick_for(viewers), epoch.elapsed(), index)).await;
        let mut batch = vec![first];
        loop {
            match frames.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(broadcast::error::TryRecvError::Lagged(n)) => skipped(n),
                Err(_) => break,
            }
        }
        // In slices, letting the room's other work (the next message, the timers) run between
        // them rather than behind one long stretch of writes.
        let mut next = 0;
        loop {
            {
                let mut outlets = relay.outlets.lock().expect("outlets poisoned");
                let end = (next + RELAY_SLICE).min(outlets.len());
                if next >= end {
                    break;
                }
                let mut at = next;
                while at < end.min(outlets.len()) {
                    if outlets[at].offer(&batch) == Offer::Taken {
                        at += 1;
                    } else {
                        // The last outlet moves here and is offered next, once.
                        outlets.swap_remove(at);
                    }
                }
                next = at;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// How long relay `index` waits, `elapsed` into the room's life, for its next turn to write: the
/// relays of a room take turns spread evenly over each tick, so their writes do not all land at
/// once, and a frame waits at most one tick.
pub fn until_turn(tick: Duration, elapsed: Duration, index: usize) -> Duration {
    let tick_us = tick.as_micros().max(1);
    let phase = tick_us * (index % RELAYS) as u128 / RELAYS as u128;
    let now = elapsed.as_micros();
    let turn = if now < phase { phase } else { phase + ((now - phase) / tick_us + 1) * tick_us };
    Duration::from_micros((turn - now) as u64)
}

/// Counts frames a viewer missed because it fell too far behind.
pub fn skipped(frames: u64) {
    metrics::counter!("olive_ws_skipped_frames_total").increment(frames);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_take_turns_spread_over_the_tick() {
        let tick = Duration::from_millis(100);
        let ms = Duration::from_millis;
        assert_eq!(until_turn(tick, ms(0), 0), ms(100));
        assert_eq!(until_turn(tick, ms(0), 1), ms(25));
        assert_eq!(until_turn(tick, ms(30), 1), ms(95));
        assert_eq!(until_turn(tick, ms(30), 2), ms(20));
        assert_eq!(until_turn(tick, ms(1_010), 3), ms(65));
        for index in 0..RELAYS {
            for at in (0..1_000).step_by(7) {
                let wait = until_turn(tick, ms(at), index);
                assert!(wait > Duration::ZERO && wait <= tick, "{index} at {at}: {wait:?}");
            }
        }
    }

    #[test]
    fn ticks_grow_with_the_room_within_bounds() {
        assert_eq!(tick_for(0), MIN_TICK);
        assert_eq!(tick_for(2_000), MIN_TICK);
        assert_eq!(tick_for(10_000), Duration::from_millis(50));
        assert_eq!(tick_for(19_000), Duration::from_millis(95));
        assert_eq!(tick_for(40_000), MAX_TICK);
        assert_eq!(tick_for(1_000_000), MAX_TICK);
        assert_eq!(tick_for(u64::MAX), MAX_TICK);
    }
}
