//! The rows a store reads and writes, as plain data.

use chrono::{DateTime, Utc};
use olive_core::{ChannelId, Currency, DealId, OrderId, ProductId, ReplayId, Role, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A fieldless enum stored as snake_case text: `as_str`, `FromStr` and `Display` from one list.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)),
                }
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// Normalised (trimmed, lower-case) email.
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    /// A PHC string (argon2id); never a password.
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// SHA-256 of a session id. The id itself is never stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHash(pub [u8; 32]);

impl fmt::Debug for SessionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionHash(..)")
    }
}

/// How a session's id travels: in the HttpOnly cookie, or as a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Cookie,
    Bearer,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Cookie => "cookie",
            SessionKind::Bearer => "bearer",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub hash: SessionHash,
    pub user_id: UserId,
    pub kind: SessionKind,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

text_enum!(
/// Whether a product can be bought.
ProductStatus {
    Active => "active",
    Draft => "draft",
    Archived => "archived",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductImage {
    pub id: i64,
    /// Where the bytes live in object storage.
    pub object_key: String,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProductImage {
    pub object_key: String,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: Currency,
    pub stock: i64,
    pub status: ProductStatus,
    pub images: Vec<ProductImage>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: Currency,
    pub stock: i64,
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<Currency>,
    pub stock: Option<i64>,
    pub status: Option<ProductStatus>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Offset paging with a bounded page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub const MAX_LIMIT: i64 = 200;

    pub fn new(limit: i64, offset: i64) -> Self {
        Page { limit: limit.clamp(1, Self::MAX_LIMIT), offset: offset.max(0) }
    }
}

impl Default for Page {
    fn default() -> Self {
        Page { limit: 50, offset: 0 }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    pub category: Option<String>,
    pub status: Option<ProductStatus>,
    pub page: Page,
}

text_enum!(
/// Whether a channel is on air.
ChannelStatus {
    Offline => "offline",
    Live => "live",
});

text_enum!(
/// What a channel's live becomes: the source alone, or the source and an adaptive ladder made from it.
ChannelType {
    Basic => "basic",
    Standard => "standard",
});

/// SHA-256 of a stream key. A database leak gives these, never a key that can publish.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamKeyHash(pub [u8; 32]);

impl fmt::Debug for StreamKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKeyHash(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: ChannelId,
    pub host_id: UserId,
    pub title: String,
    pub description: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub status: ChannelStatus,
    /// What its lives are made into (a node without room for a ladder plays `standard` as `basic`).
    pub kind: ChannelType,
    /// Seconds between thumbnails while live.
    pub thumbnail_interval_s: i32,
    /// Chat slow mode: seconds between one user's messages (0: off).
    pub chat_slow_mode_s: i32,
    /// Words the channel's chat refuses.
    pub chat_banned_words: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewChannel {
    pub host_id: UserId,
    pub title: String,
    pub description: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub stream_key_hash: StreamKeyHash,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` clears the schedule.
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
    pub status: Option<ChannelStatus>,
    pub kind: Option<ChannelType>,
    pub thumbnail_interval_s: Option<i32>,
    pub chat_slow_mode_s: Option<i32>,
    pub chat_banned_words: Option<Vec<String>>,
    pub updated_at: Option<DateTime<Utc>>,
}

text_enum!(
/// Where an order is.
OrderStatus {
    Placed => "placed",
    Shipped => "shipped",
    Cancelled => "cancelled",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    pub product_id: ProductId,
    /// The product's name and price when the order was placed.
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_minor: i64,
    pub currency: Currency,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: UserId,
    pub idempotency_key: String,
    /// A digest of the normalised request, so a reused key with another body is caught.
    pub request_hash: String,
    /// One line per product, quantities positive, sorted by product id (the lock order).
    pub lines: Vec<OrderLine>,
    /// The live channel it was placed from, if any (the host's sales figures count it).
    pub channel_id: Option<ChannelId>,
    /// The browser it was placed from (a first-party visitor id), for its purchase events.
    pub visitor: String,
    pub created_at: DateTime<Utc>,
}

/// A channel's orders (not cancelled) since some moment: how many, and their total per currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelSales {
    pub orders: i64,
    /// `(currency, total in minor units)`, by currency code.
    pub revenue: Vec<(Currency, i64)>,
}

/// What `place_order` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacedOrder {
    /// A new order; stock was taken.
    Created(Order),
    /// The idempotency key was seen before with the same request: the first order, unchanged.
    Replayed(Order),
}

impl PlacedOrder {
    pub fn order(&self) -> &Order {
        match self {
            PlacedOrder::Created(o) | PlacedOrder::Replayed(o) => o,
        }
    }

    pub fn into_order(self) -> Order {
        match self {
            PlacedOrder::Created(o) | PlacedOrder::Replayed(o) => o,
        }
    }
}

text_enum!(
/// Where a job is in its life.
JobStatus {
    Queued => "queued",
    Running => "running",
    Done => "done",
    /// Out of attempts: kept for an admin to see.
    Dead => "dead",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    /// JSON, as the handler of `kind` expects it.
    pub payload: String,
    pub status: JobStatus,
    /// Claims so far, this one included while running.
    pub attempts: i64,
    pub max_attempts: i64,
    /// Due time when queued; lease end when running.
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: String,
    /// Enqueuing twice with one key makes one job (the first).
    pub dedupe_key: Option<String>,
    pub max_attempts: i64,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// An endpoint that receives events.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// Signs each delivery (HMAC-SHA256); shown to the admin once, at creation.
    pub secret: String,
    /// The event types it wants; empty means all.
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook").field("id", &self.id).field("url", &self.url).field("events", &self.events).finish()
    }
}

impl Webhook {
    pub fn wants(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event)
    }
}

#[derive(Clone)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

text_enum!(
/// Where a recorded live session is.
ReplayStatus {
    /// The live is running (or its node died and it waits to be finalised).
    Recording => "recording",
    /// Finalised and listed.
    Ready => "ready",
});

/// A live session written to object storage: a recording while it runs, a replay after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub id: ReplayId,
    pub channel_id: ChannelId,
    /// The channel's title when the live began.
    pub title: String,
    pub status: ReplayStatus,
    /// Hidden replays are left out of listings and playback for everyone but the host and admins.
    pub hidden: bool,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Sum of the recorded segments' durations.
    pub duration_ms: i64,
    /// Media bytes written (init segments and segments).
    pub bytes: i64,
    pub segments: i64,
    /// Object key of the replay's thumbnail (the newest taken while it was live).
    pub thumbnail_key: Option<String>,
    /// Thumbnails taken while it was live (labelled or not).
    pub thumbnails: i64,
    /// The channel's product line-up when the replay was registered.
    pub products: Vec<ProductId>,
    /// The node that records it, and when that node last wrote a segment: a recording whose node
    /// restarted or went silent is finalised by whoever notices.
    pub node: String,
    pub heartbeat_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewReplay {
    pub channel_id: ChannelId,
    pub title: String,
    pub node: String,
    pub started_at: DateTime<Utc>,
}

/// One stored segment of a recording. Sequence numbers are those of the live playlist, so they
/// increase but may jump; a segment after a reconnect carries a discontinuity and the version of
/// the init segment it needs. A live with a ladder records every rung too: its segments have the
/// source's sequence numbers and durations and name their `rendition` (the rung, `"480p"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySegment {
    /// `None` for the source.
    pub rendition: Option<String>,
    pub msn: i64,
    pub init_version: i32,
    pub discontinuity: bool,
    pub duration_ms: i64,
    pub bytes: i64,
}

/// Which replays to list.
#[derive(Debug, Clone)]
pub struct ReplayQuery {
    pub channel: Option<ChannelId>,
    pub status: Option<ReplayStatus>,
    pub include_hidden: bool,
    pub page: Page,
}

/// A chat message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Increases in the order messages were accepted, across every node.
    pub id: i64,
    pub channel_id: ChannelId,
    pub user_id: UserId,
    /// The author's display name when it was sent.
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewChatMessage {
    pub channel_id: ChannelId,
    pub user_id: UserId,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A user's restriction in one channel's chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRestriction {
    pub user_id: UserId,
    /// Muted until then; `None` is a ban.
    pub until: Option<DateTime<Utc>>,
}

/// A product pinned during a live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub id: i64,
    pub channel_id: ChannelId,
    pub product_id: ProductId,
    /// The moment on the stream's media timeline (`EXT-X-PROGRAM-DATE-TIME`'s clock).
    pub pts: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

text_enum!(
/// Whether a deal is selling.
DealStatus {
    Running => "running",
    Ended => "ended",
});

/// A live deal: `listed` units of a line-up product at `price_minor` until `ends_at`. The units
/// are taken out of the product's stock when the deal starts; what is unsold goes back when it
/// ends. `sold` is the durable count (the database refuses `sold > listed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub id: DealId,
    pub channel_id: ChannelId,
    pub product_id: ProductId,
    pub price_minor: i64,
    pub currency: Currency,
    pub listed: i64,
    pub sold: i64,
    pub per_customer: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: DealStatus,
    /// The node that owns the running deal's count.
    pub node: String,
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewDeal {
    pub channel_id: ChannelId,
    pub product_id: ProductId,
    pub price_minor: i64,
    pub listed: i64,
    pub per_customer: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub node: String,
}

/// One confirmed deal order, as the deal's owner rebuilds its count from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealSale {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub idempotency_key: String,
    pub request_hash: String,
    pub quantity: i64,
}

/// A deal order to write: one line, the deal's product at the deal's price.
#[derive(Debug, Clone)]
pub struct NewDealOrder {
    pub user_id: UserId,
    pub idempotency_key: String,
    pub request_hash: String,
    pub quantity: i64,
    /// The visitor its purchase event is recorded under.
    pub visitor: String,
    pub created_at: DateTime<Utc>,
}

/// What `record_deal_orders` did with one order of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealOrderOutcome {
    Created(Order),
    /// The buyer's idempotency key already named this order (placed before, perhaps not as a
    /// deal order); nothing was written for it.
    Existing {
        order_id: OrderId,
        request_hash: String,
    },
    /// The buyer already bought `bought` units of this deal, and this order would pass its
    /// per-customer limit; nothing was written for it.
    OverLimit {
        bought: i64,
    },
}

text_enum!(
/// What a shopper did, as the recommender weighs it.
EventKind {
    Watch => "watch",
    View => "view",
    Click => "click",
    Cart => "cart",
    Purchase => "purchase",
    Heart => "heart",
});

text_enum!(
/// What an event is about.
TargetKind {
    Product => "product",
    Channel => "channel",
    Replay => "replay",
});

/// One thing a shopper did.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The browser's first-party id (every visitor has one, signed in or not).
    pub visitor: String,
    pub user_id: Option<UserId>,
    pub kind: EventKind,
    pub target: TargetKind,
    pub target_id: i64,
    /// Watch seconds, a quantity, or 1.
    pub value: f64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub visitor: String,
    pub user_id: Option<UserId>,
    pub kind: EventKind,
    pub target: TargetKind,
    pub target_id: i64,
    pub value: f64,
    pub at: DateTime<Utc>,
}

/// What the labeller saw in one thumbnail of a live.
#[derive(Debug, Clone, PartialEq)]
pub struct PictureLabels {
    /// The live's recording.
    pub replay_id: ReplayId,
    pub channel_id: ChannelId,
    pub thumbnail_key: String,
    pub taken_at: DateTime<Utc>,
    /// Most probable first.
    pub labels: Vec<olive_core::Label>,
    /// Processor time the labelling took.
    pub cpu_ms: i64,
}

text_enum!(
/// What the cost report measures. Bytes are payload bytes; CPU is thread or process CPU time.
Meter {
    /// Bytes sent to viewers and browsers (HTTP response bodies).
    EgressBytes => "egress_bytes",
    /// Bytes broadcasters published (RTMP payload).
    IngestBytes => "ingest_bytes",
    /// Bytes written to object storage; negative when deleted. Their running sum is what is stored.
    StoredBytes => "stored_bytes",
    /// CPU milliseconds spent.
    CpuMs => "cpu_ms",
});

/// An amount of one meter used on one UTC day, by one channel or (`channel: None`) by the
/// platform itself: pages, the API, work no channel caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub day: chrono::NaiveDate,
    pub channel: Option<ChannelId>,
    pub meter: Meter,
    pub amount: i64,
}

/// What the operations gauges read from the database in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Jobs by status (statuses with none are absent).
    pub jobs: Vec<(JobStatus, i64)>,
    /// Products on sale with no stock left.
    pub products_sold_out: i64,
    /// Connections the pools hold, and how many of those are idle.
    pub pool_connections: u32,
    pub pool_idle: u32,
}
