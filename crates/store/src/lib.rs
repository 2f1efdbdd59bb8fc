//! The one storage interface of Olive. Domain crates talk to `dyn Store`; each database engine
//! (`olive-store-sqlite`, `olive-store-postgres`) implements it in its own crate with its own
//! migrations, and the same test suite (`testsuite`, behind the feature of that name) runs against
//! every engine.
//!
//! This crate knows nothing of HTTP, passwords or caching. Invariants that need atomicity (stock
//! never below zero, one order per idempotency key) are the engines' job, inside one transaction,
//! because only the database can keep them across concurrent requests and nodes.

mod types;
pub mod usage;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use types::*;

/// The outbox of an order: the job its transaction queues, so a crash between the order's commit
/// and its effects outside the database loses none of them. It announces the products whose stock
/// the order took (every node's read cache forgets them) and turns into the `order.placed` webhook
/// deliveries (`olive_jobs::order_effects`). An ordinary order always queues it; a deal's order
/// (whose product's stock the deal took when it started) only when a webhook is registered. Its
/// payload is [`OrderPlacedNotice`]. The purchase events are not in the outbox: they are rows of
/// the same database, written by the same transaction.
pub const ORDER_PLACED_JOB: &str = "order.placed";
/// The job a cancelled order's transaction queues: it announces the products whose stock came
/// back. Its payload is [`StockChangedNotice`].
pub const STOCK_CHANGED_JOB: &str = "stock.changed";
/// Attempts of an order's outbox job before it is a dead letter.
pub const ORDER_PLACED_ATTEMPTS: i64 = 8;

/// The payload of an [`ORDER_PLACED_JOB`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderPlacedNotice {
    pub order_id: OrderId,
    /// Products whose stock the order took.
    #[serde(default)]
    pub stock_changed: Vec<ProductId>,
}

/// The payload of a [`STOCK_CHANGED_JOB`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StockChangedNotice {
    pub products: Vec<ProductId>,
}

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, DealId, OrderId, ProductId, ReplayId, Role, UserId};

/// Errors a store reports. Domain outcomes (`OutOfStock`, `IdempotencyMismatch`…) are variants so
/// callers can map them; `Backend` carries the engine's own failure for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("product {0} does not have enough stock")]
    OutOfStock(ProductId),
    #[error("product {0} is not on sale")]
    ProductUnavailable(ProductId),
    #[error("product {0} does not exist")]
    UnknownProduct(ProductId),
    #[error("an order cannot mix currencies")]
    MixedCurrency,
    #[error("the idempotency key was already used with a different request")]
    IdempotencyMismatch,
    #[error("order is {0} and can no longer be cancelled")]
    NotCancellable(OrderStatus),
    #[error("deal {0} is not running")]
    DealNotRunning(DealId),
    #[error("database error: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Every capability of a storage engine, and what an operator asks of it as a whole. Domain
/// modules ask for the one capability they use (`&dyn OrderStore`); `&dyn Store` turns into any
/// of them.
#[async_trait]
pub trait Store:
    UsageStore
    + AccountStore
    + CatalogueStore
    + ChannelStore
    + OrderStore
    + JobStore
    + EventStore
    + WebhookStore
    + ReplayStore
    + RoomStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`, for logs and `/readyz`.
    fn engine(&self) -> &'static str;

    /// Answers when the database does.
    async fn ping(&self) -> Result<()>;
    /// Job counts, sold-out products and pool occupancy, for the operations gauges.
    async fn gauges(&self) -> Result<StoreGauges>;
}

/// Usage, for the cost report.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds each row's amount to what is recorded for its day, channel and meter.
    async fn add_usage(&self, rows: &[Usage]) -> Result<()>;
    /// Usage recorded on days in `from..to`, oldest first.
    async fn usage(&self, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<Vec<Usage>>;
    /// Each channel's (and the platform's) total of `meter` over all days before `day`.
    async fn usage_before(&self, day: chrono::NaiveDate, meter: Meter) -> Result<Vec<(Option<ChannelId>, i64)>>;
}

/// Accounts and sessions (session ids are stored only as hashes).
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_user(&self, new: NewUser) -> Result<User>;
    async fn user(&self, id: UserId) -> Result<User>;
    /// The account and its password hash, looked up by normalised email.
    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>>;
    async fn count_users(&self) -> Result<i64>;
    async fn list_users(&self, page: Page) -> Result<Vec<User>>;
    async fn set_user_role(&self, id: UserId, role: Role) -> Result<User>;
    /// Replaces the account's password hash.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()>;

    async fn create_session(&self, new: NewSession) -> Result<()>;
    /// The user a live session belongs to; `None` for unknown or expired sessions.
    async fn session_user(&self, hash: &SessionHash, now: DateTime<Utc>) -> Result<Option<User>>;
    async fn delete_session(&self, hash: &SessionHash) -> Result<()>;
    /// Ends every session of `user` except `keep`; how many ended.
    async fn delete_user_sessions(&self, user: UserId, keep: Option<&SessionHash>) -> Result<u64>;
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64>;
}

/// The catalogue: products, their stock and images.
#[async_trait]
pub trait CatalogueStore: Send + Sync {
    async fn create_product(&self, new: NewProduct) -> Result<Product>;
    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product>;
    async fn product(&self, id: ProductId) -> Result<Product>;
    async fn list_products(&self, query: &ProductQuery) -> Result<Vec<Product>>;
    async fn add_product_image(&self, id: ProductId, image: NewProductImage) -> Result<ProductImage>;
}

/// Channels, their stream keys and their shows' line-ups.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    async fn create_channel(&self, new: NewChannel) -> Result<Channel>;
    async fn channel(&self, id: ChannelId) -> Result<Channel>;
    async fn list_channels(&self) -> Result<Vec<Channel>>;
    async fn update_channel(&self, id: ChannelId, patch: ChannelPatch) -> Result<Channel>;
    async fn set_stream_key_hash(&self, id: ChannelId, hash: StreamKeyHash) -> Result<()>;
    async fn channel_by_stream_key_hash(&self, hash: &StreamKeyHash) -> Result<Option<Channel>>;
    /// Replaces the show's line-up; every product must exist.
    async fn set_lineup(&self, id: ChannelId, products: &[ProductId]) -> Result<()>;
    async fn lineup(&self, id: ChannelId) -> Result<Vec<ProductId>>;
}

/// Orders, and the live deals that sell through them.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Places an order atomically: stock of every item is taken in the same transaction as the
    /// order row, or nothing happens. A repeated idempotency key with the same request hash returns
    /// the first order; with a different hash it is refused.
    async fn place_order(&self, new: NewOrder) -> Result<PlacedOrder>;
    async fn order(&self, id: OrderId) -> Result<Order>;
    async fn orders_for_user(&self, user: UserId, page: Page) -> Result<Vec<Order>>;
    /// Cancels an order of `user` that has not shipped and returns its stock.
    async fn cancel_order(&self, id: OrderId, user: UserId, now: DateTime<Utc>) -> Result<Order>;
    /// The orders placed from `channel` (its watch page and its deals) at or after `since`,
    /// cancelled ones left out.
    async fn channel_sales(&self, channel: ChannelId, since: DateTime<Utc>) -> Result<ChannelSales>;

    /// Starts a deal: takes `listed` units from the product's stock and records the deal, in one
    /// transaction. `OutOfStock`/`ProductUnavailable`/`UnknownProduct` for the product,
    /// `AlreadyExists("running deal")` when the channel or the product already has one.
    async fn start_deal(&self, new: NewDeal) -> Result<Deal>;
    async fn deal(&self, id: DealId) -> Result<Deal>;
    /// The running deals `node` owns (it resumes them after a restart), or every node's.
    async fn running_deals(&self, node: Option<&str>) -> Result<Vec<Deal>>;
    /// The channel's running deal, if any.
    async fn running_deal(&self, channel: ChannelId) -> Result<Option<Deal>>;
    /// The deal's confirmed orders.
    async fn deal_sales(&self, id: DealId) -> Result<Vec<DealSale>>;
    /// Writes a batch of deal orders in one transaction and adds their units to the deal's
    /// `sold`. All or nothing: `DealNotRunning` if the deal ended, `OutOfStock` if the batch
    /// would sell more than listed. An order whose idempotency key was used before is not written.
    async fn record_deal_orders(&self, id: DealId, orders: &[NewDealOrder]) -> Result<Vec<DealOrderOutcome>>;
    /// Ends a deal and puts its unsold units back in the product's stock. Ending an ended deal
    /// changes nothing.
    async fn end_deal(&self, id: DealId, now: DateTime<Utc>) -> Result<Deal>;
}

/// The durable job queue (see `olive-jobs`).
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a job, or returns the existing one with the same dedupe key.
    async fn enqueue_job(&self, new: NewJob) -> Result<Job>;
    /// Takes the oldest due job — queued and due, or running with an expired lease — marks it
    /// running until `lease_until` and counts the attempt. Concurrent claimers never get the same job.
    async fn claim_job(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Option<Job>>;
    /// Marks attempt `attempt` of a job done; `false` if that attempt no longer holds it.
    async fn complete_job(&self, id: i64, attempt: i64, now: DateTime<Utc>) -> Result<bool>;
    /// Records a failed attempt: queued again at `retry_at`, or dead when `None`.
    async fn fail_job(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn list_jobs(&self, status: Option<JobStatus>, page: Page) -> Result<Vec<Job>>;
}

/// Viewing and shopping events (append-only, for the recommender).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch of events, all or none.
    async fn record_events(&self, events: &[NewEvent]) -> Result<()>;
    /// Events with an id above `after`, oldest first, at most `limit` (training reads them in pages).
    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>>;
    /// The newest events of a signed-in user (any browser) or else of a visitor, newest first.
    async fn recent_events(&self, user: Option<UserId>, visitor: &str, limit: i64) -> Result<Vec<Event>>;
    /// Folds the events older than `before` into one row per visitor, account, kind and target
    /// (values summed, the latest time kept); returns how many rows were folded.
    async fn compact_events(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// Registered webhooks.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook>;
    async fn webhook(&self, id: i64) -> Result<Webhook>;
    async fn list_webhooks(&self) -> Result<Vec<Webhook>>;
    async fn delete_webhook(&self, id: i64) -> Result<()>;
}

/// Recordings, the replays they become, and what their pictures showed.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    async fn create_replay(&self, new: NewReplay) -> Result<Replay>;
    async fn replay(&self, id: ReplayId) -> Result<Replay>;
    /// Newest first.
    async fn list_replays(&self, query: &ReplayQuery) -> Result<Vec<Replay>>;
    /// Records a segment stored in object storage, adds it to the replay's totals (a rung's
    /// segment adds its bytes only: the duration and count are the source's) and refreshes its
    /// heartbeat. Recording the same rendition's sequence number again changes nothing.
    /// `NotFound` if the replay was deleted.
    async fn add_replay_segment(&self, id: ReplayId, segment: ReplaySegment, now: DateTime<Utc>) -> Result<()>;
    /// Counts the bytes of an init segment stored for the replay.
    async fn add_replay_bytes(&self, id: ReplayId, bytes: i64, now: DateTime<Utc>) -> Result<()>;
    /// Every rendition's: the source's first, then each rung's by name, each in sequence order.
    async fn replay_segments(&self, id: ReplayId) -> Result<Vec<ReplaySegment>>;
    /// Names a new thumbnail as the replay's poster and counts it among the live's thumbnails.
    async fn set_replay_thumbnail(&self, id: ReplayId, key: &str) -> Result<()>;
    /// Records what a thumbnail showed. Returns `false` (and changes nothing) if that thumbnail was
    /// recorded already.
    async fn record_picture_labels(&self, labels: &PictureLabels) -> Result<bool>;
    /// A recording's labelled pictures, oldest first.
    async fn picture_labels(&self, replay: ReplayId) -> Result<Vec<PictureLabels>>;
    /// What the channel's screen shows now: the newest labelled picture of its running recording.
    async fn current_picture_labels(&self, channel: ChannelId) -> Result<Option<PictureLabels>>;
    /// Marks a recording ready with its end time and the line-up to show beside it. Returns
    /// `false` (and changes nothing) if it was ready already.
    async fn finish_replay(&self, id: ReplayId, ended_at: DateTime<Utc>, products: &[ProductId]) -> Result<bool>;
    async fn set_replay_hidden(&self, id: ReplayId, hidden: bool) -> Result<Replay>;
    /// Deletes the replay and its segment list.
    async fn delete_replay(&self, id: ReplayId) -> Result<()>;
}

/// What happens in a channel's room: chat, its moderation, and product pins.
#[async_trait]
pub trait RoomStore: Send + Sync {
    async fn add_chat_message(&self, new: NewChatMessage) -> Result<ChatMessage>;
    /// The channel's last `limit` messages that are not deleted, oldest first.
    async fn recent_chat(&self, channel: ChannelId, limit: i64) -> Result<Vec<ChatMessage>>;
    /// Messages sent in `[from, to)`, not deleted, oldest first, at most `limit` after id `after`
    /// (for a replay's chat, page by page).
    async fn chat_between(
        &self,
        channel: ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChatMessage>>;
    /// Marks a message deleted; `false` if it was already. `NotFound` if it is not the channel's.
    async fn delete_chat_message(&self, channel: ChannelId, id: i64, now: DateTime<Utc>) -> Result<bool>;
    /// Mutes (`until` a time) or bans (`None`) a user in a channel's chat, replacing what was set.
    async fn restrict_chat(
        &self,
        channel: ChannelId,
        user: UserId,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Lifts a mute or ban; `false` if there was none.
    async fn lift_chat_restriction(&self, channel: ChannelId, user: UserId) -> Result<bool>;
    /// Bans, and mutes that end after `now`.
    async fn chat_restrictions(&self, channel: ChannelId, now: DateTime<Utc>) -> Result<Vec<ChatRestriction>>;

    // Product pins: the moments a host showed a product.
    async fn add_pin(
        &self,
        channel: ChannelId,
        product: ProductId,
        pts: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Pin>;
    /// The channel's most recent pin.
    async fn latest_pin(&self, channel: ChannelId) -> Result<Option<Pin>>;
    /// Pins with `pts` in `[from, to)`, in order (a replay's product timeline; at most 1,000).
    async fn pins_between(&self, channel: ChannelId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Pin>>;
}
