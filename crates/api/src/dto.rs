//! The JSON shapes of the API, kept apart from the store's rows so that a column never leaks into
//! a response by accident (no password hash, no stream-key digest).

use chrono::{DateTime, Utc};
use olive_core::{ChannelId, Currency, DealId, Money, OrderId, ProductId, ReplayId, Role, UserId};
use olive_store::{
    Channel, ChannelStatus, ChannelType, Job, JobStatus, Order, OrderStatus, Product, ProductStatus, Replay,
    ReplayStatus, User,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            created_at: u.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: secrecy::SecretString,
    pub display_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: secrecy::SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    pub current_password: secrecy::SecretString,
    /// 8 to 128 characters.
    #[schema(value_type = String, format = Password)]
    pub new_password: secrecy::SecretString,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Use as `Authorization: Bearer <token>`. The browser session travels in an HttpOnly cookie.
    pub token: String,
    pub user: UserView,
}

/// The answer to every well-formed sign-up, whether the address was new or already had an account:
/// sign-up never tells who has one. Sign in next; a taken address keeps its own password.
#[derive(Serialize, ToSchema)]
pub struct SignupAccepted {
    /// The address as it is stored (trimmed, lower-cased).
    pub email: String,
    /// What to do next: always `log_in`.
    pub next: &'static str,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct ImageView {
    pub id: i64,
    pub url: String,
    pub content_type: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProductView {
    pub id: ProductId,
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
    /// Integer minor units of `currency` (won have none below themselves).
    pub price_minor: i64,
    pub currency: Currency,
    /// For display, e.g. `₩12,000`.
    pub price_display: String,
    pub stock: i64,
    pub status: ProductStatus,
    pub images: Vec<ImageView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a product image is served.
pub use olive_commerce::catalogue::image_url;

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        ProductView {
            id: p.id,
            name: p.name.clone(),
            brand: p.brand.clone(),
            category: p.category.clone(),
            description: p.description.clone(),
            price_minor: p.price_minor,
            currency: p.currency,
            price_display: Money::new(p.price_minor, p.currency).to_string(),
            stock: p.stock,
            status: p.status,
            images: p
                .images
                .iter()
                .map(|i| ImageView {
                    id: i.id,
                    url: image_url(p.id, &i.object_key),
                    content_type: i.content_type.clone(),
                })
                .collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    pub name: String,
    #[serde(default)]
    pub brand: String,
    pub category: String,
    #[serde(default)]
    pub description: String,
    pub price_minor: i64,
    #[serde(default)]
    pub currency: Currency,
    #[serde(default)]
    pub stock: i64,
    #[serde(default = "active")]
    pub status: ProductStatus,
}

fn active() -> ProductStatus {
    ProductStatus::Active
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<Currency>,
    pub stock: Option<i64>,
    pub status: Option<ProductStatus>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProductListQuery {
    pub category: Option<String>,
    /// Admins only; others always see active products.
    pub status: Option<ProductStatus>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// The `offset` of the next page, when there may be one.
    pub next_offset: Option<i64>,
}

impl<T> List<T> {
    pub fn page(items: Vec<T>, page: olive_store::Page) -> Self {
        let next_offset = (items.len() as i64 == page.limit).then_some(page.offset.saturating_add(page.limit));
        List { items, next_offset }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub id: ChannelId,
    pub host_id: UserId,
    pub title: String,
    pub description: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub status: ChannelStatus,
    /// `basic`: the source only; `standard`: the source and an adaptive ladder made from it.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    pub viewers: u64,
    pub thumbnail_interval_s: i32,
    pub chat_slow_mode_s: i32,
    /// The chat's banned words: shown to the host and admins only (in the answer to their PATCH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_banned_words: Option<Vec<String>>,
    pub thumbnail_url: String,
    pub playback_url: String,
    pub created_at: DateTime<Utc>,
    /// Ingest health while the channel is live (channel detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<olive_media::StreamHealth>,
    /// Its live's adaptive ladder: the rungs and their health, or why it plays as `basic`
    /// (channel detail, while live on the node answering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<olive_media::ladder::LadderStatus>,
    /// The RTMP server URL to stream to (channel detail, for its host and admins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_url: Option<String>,
    /// What the live's screen shows now, most probable first (from its newest changed thumbnail;
    /// empty when offline or not labelled).
    pub labels: Vec<olive_core::Label>,
}

impl From<&Channel> for ChannelView {
    fn from(c: &Channel) -> Self {
        ChannelView {
            id: c.id,
            host_id: c.host_id,
            title: c.title.clone(),
            description: c.description.clone(),
            scheduled_at: c.scheduled_at,
            status: c.status,
            kind: c.kind,
            viewers: 0,
            thumbnail_interval_s: c.thumbnail_interval_s,
            chat_slow_mode_s: c.chat_slow_mode_s,
            chat_banned_words: None,
            thumbnail_url: crate::urls::live_thumbnail(c.id),
            playback_url: crate::urls::live_master(c.id),
            created_at: c.created_at,
            health: None,
            ladder: None,
            ingest_url: None,
            labels: Vec::new(),
        }
    }
}

/// A channel's live stats for its host: viewers now, and orders placed from it since `since`.
#[derive(Serialize, ToSchema)]
pub struct ChannelStats {
    pub since: DateTime<Utc>,
    pub viewers: u64,
    pub orders: i64,
    /// Totals per currency, largest first.
    pub revenue: Vec<RevenueView>,
}

#[derive(Serialize, ToSchema)]
pub struct RevenueView {
    pub currency: Currency,
    pub total_minor: i64,
    pub total_display: String,
}

/// `GET /api/v1/channels/{id}/stats?since=…`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Count orders from this moment (RFC 3339); by default from the start of the current live,
    /// or the last 24 hours when the channel is offline.
    pub since: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelWithKey {
    #[serde(flatten)]
    pub channel: ChannelView,
    /// Shown once: at creation and at rotation. Only its hash is kept.
    pub stream_key: String,
    /// Where the encoder publishes: `rtmp://HOST:PORT/live` with the key as stream name.
    pub ingest_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct StreamKeyView {
    pub stream_key: String,
    pub ingest_url: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelCreate {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub scheduled_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `null` clears the schedule; absent leaves it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub scheduled_at: Option<Option<DateTime<Utc>>>,
    /// `basic` (the source only) or `standard` (the source and an adaptive ladder); from the next
    /// live on.
    #[serde(rename = "type")]
    pub kind: Option<ChannelType>,
    /// Seconds between live thumbnails (1 to 300).
    pub thumbnail_interval_s: Option<i64>,
    /// Chat slow mode: seconds between one user's messages, 0 (off) to 300.
    pub chat_slow_mode_s: Option<i64>,
    /// Words the chat refuses (at most 200, each 1 to 50 characters); replaces the list.
    pub chat_banned_words: Option<Vec<String>>,
}

/// A mute (`{"mute_minutes": N}`, 1 minute to a week) or a ban (`{"ban": true}`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRestrictionRequest {
    pub mute_minutes: Option<i64>,
    #[serde(default)]
    pub ban: bool,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    pub product_id: ProductId,
}

/// A pin as recorded: `pts` is the moment on the stream's media timeline (the clock of the
/// playlist's `EXT-X-PROGRAM-DATE-TIME`).
#[derive(Serialize, ToSchema)]
pub struct PinCreated {
    pub id: i64,
    pub product_id: ProductId,
    pub pts: DateTime<Utc>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lineup {
    pub product_ids: Vec<ProductId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub items: Vec<OrderRequestItem>,
    /// The live channel the order is placed from (its watch page), counted in its host's stats.
    /// Orders of a running deal count for the deal's channel whatever is sent here.
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// The deal the buyer is buying from (the card they pressed "buy" on). When it is no longer
    /// running the order is refused with `deal_ended` rather than placed at the full price.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub deal_id: Option<olive_core::DealId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequestItem {
    pub product_id: ProductId,
    pub quantity: i64,
}

#[derive(Serialize, ToSchema)]
pub struct OrderItemView {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

#[derive(Serialize, ToSchema)]
pub struct OrderView {
    pub id: OrderId,
    pub status: OrderStatus,
    pub items: Vec<OrderItemView>,
    pub total_minor: i64,
    pub currency: Currency,
    pub total_display: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderView {
    /// The order as JSON, as the API and the `order.placed` webhook show it.
    pub fn json(order: &Order) -> serde_json::Value {
        serde_json::to_value(OrderView::from(order)).expect("an order view serialises")
    }
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id,
            status: o.status,
            items: o
                .items
                .iter()
                .map(|i| OrderItemView {
                    product_id: i.product_id,
                    name: i.name.clone(),
                    quantity: i.quantity,
                    unit_price_minor: i.unit_price_minor,
                })
                .collect(),
            total_minor: o.total_minor,
            currency: o.currency,
            total_display: Money::new(o.total_minor, o.currency).to_string(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When it is due (queued) or its lease ends (running).
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> Self {
        JobView {
            id: j.id,
            kind: j.kind.clone(),
            status: j.status,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: j.run_at,
            last_error: j.last_error.clone(),
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    pub url: String,
    /// Any of `stream.started`, `stream.ended`, `replay.ready`, `order.placed`; none means all.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&olive_store::Webhook> for WebhookView {
    fn from(w: &olive_store::Webhook) -> Self {
        WebhookView { id: w.id, url: w.url.clone(), events: w.events.clone(), created_at: w.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// Verifies `Olive-Signature` (see docs/WEBHOOKS.md). Shown only now.
    pub secret: String,
}

/// A chat message of a replay, at its offset into the replay.
#[derive(Serialize, ToSchema)]
pub struct ReplayChatView {
    pub id: i64,
    pub user: ChatUserView,
    pub text: String,
    pub ts: DateTime<Utc>,
    pub offset_ms: i64,
}

/// A page of a replay's chat; `next_after` is the `after` of the next page, when there may be one.
#[derive(Serialize, ToSchema)]
pub struct ReplayChatPage {
    pub items: Vec<ReplayChatView>,
    pub next_after: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ChatUserView {
    pub id: UserId,
    pub name: String,
}

/// A product pinned during the live, at an offset into the replay.
#[derive(Serialize, ToSchema)]
pub struct PinView {
    pub product_id: ProductId,
    pub offset_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReplayView {
    pub id: ReplayId,
    pub channel_id: ChannelId,
    pub title: String,
    /// `recording` while the live runs, `ready` once it can be replayed.
    pub status: ReplayStatus,
    pub hidden: bool,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub playback_url: String,
    pub thumbnail_url: Option<String>,
    /// The show's product line-up when the live ended.
    pub products: Vec<ProductId>,
    /// Which product was pinned when (offsets into the replay), in order.
    pub pins: Vec<PinView>,
    /// What was on screen during the show, strongest first.
    pub labels: Vec<olive_core::Label>,
    /// Thumbnails taken and labelled, and what that cost beside a managed service (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelling: Option<olive_commerce::screen::LabellingCost>,
}

impl ReplayView {
    /// With its product timeline (each pin's offset from the start of the replay) and what its
    /// labelled thumbnails showed.
    pub fn with_pins(replay: &Replay, pins: &[olive_store::Pin], pictures: &[olive_store::PictureLabels]) -> Self {
        let mut view = ReplayView::from(replay);
        view.labels = olive_commerce::screen::over_show(pictures);
        view.pins = pins
            .iter()
            .map(|p| PinView {
                product_id: p.product_id,
                offset_ms: (p.pts - replay.started_at).num_milliseconds().max(0),
            })
            .collect();
        view
    }
}

impl From<&Replay> for ReplayView {
    fn from(r: &Replay) -> Self {
        ReplayView {
            id: r.id,
            channel_id: r.channel_id,
            title: r.title.clone(),
            status: r.status,
            hidden: r.hidden,
            started_at: r.started_at,
            ended_at: r.ended_at,
            duration_ms: r.duration_ms,
            playback_url: crate::urls::vod_master(r.id),
            thumbnail_url: r.thumbnail_key.as_ref().map(|_| crate::urls::vod_thumbnail(r.id)),
            products: r.products.clone(),
            pins: Vec::new(),
            labels: Vec::new(),
            labelling: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayUpdate {
    /// Hidden replays are listed and played only for their host and admins.
    pub hidden: bool,
}

/// A host's request to start a live deal on a line-up product.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealRequestBody {
    pub product_id: ProductId,
    /// The deal price, at most the product's price.
    pub price_minor: i64,
    /// Units on sale in the deal (taken from the product's stock while it runs).
    pub quantity: i64,
    pub per_customer_limit: i64,
    /// 10 s to 20 min.
    pub duration_s: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DealView {
    pub id: DealId,
    pub channel_id: ChannelId,
    pub product_id: ProductId,
    pub price_minor: i64,
    pub currency: String,
    pub listed: i64,
    pub sold: i64,
    /// Units a buyer can still get.
    pub remaining: i64,
    pub per_customer_limit: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: olive_store::DealStatus,
    pub ended_at: Option<DateTime<Utc>>,
}

impl DealView {
    /// With the owner's live counts when it is owned here, else the store's durable count.
    pub fn new(deal: &olive_store::Deal, counts: Option<olive_commerce::deal_book::DealCounts>) -> Self {
        let (sold, remaining) = match counts {
            Some(c) if deal.status == olive_store::DealStatus::Running => (c.sold, c.available),
            _ if deal.status == olive_store::DealStatus::Running => (deal.sold, deal.listed - deal.sold),
            _ => (deal.sold, 0),
        };
        DealView {
            id: deal.id,
            channel_id: deal.channel_id,
            product_id: deal.product_id,
            price_minor: deal.price_minor,
            currency: deal.currency.to_string(),
            listed: deal.listed,
            sold,
            remaining,
            per_customer_limit: deal.per_customer,
            starts_at: deal.starts_at,
            ends_at: deal.ends_at,
            status: deal.status,
            ended_at: deal.ended_at,
        }
    }
}

/// `POST /api/v1/events`: up to 50 events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<EventBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// `watch`, `view`, `click`, `cart` or `heart` (purchases are recorded by the order path).
    #[serde(rename = "type")]
    pub kind: olive_store::EventKind,
    pub target: EventTarget,
    /// For `watch`: seconds watched since the last report (at most 3600).
    #[serde(default)]
    pub seconds: Option<f64>,
    /// For `cart`: how many.
    #[serde(default)]
    pub quantity: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTarget {
    /// `product`, `channel` or `replay`.
    pub kind: olive_store::TargetKind,
    pub id: i64,
}

impl From<EventBody> for olive_commerce::events::ReportedEvent {
    fn from(e: EventBody) -> Self {
        olive_commerce::events::ReportedEvent {
            kind: e.kind,
            target: e.target.kind,
            target_id: e.target.id,
            value: e.seconds.or(e.quantity),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventsAccepted {
    pub accepted: usize,
}

/// The caller's feed: lives now and replays, best first.
#[derive(Serialize, ToSchema)]
pub struct FeedView {
    /// Ordered from the caller's own events (else by popularity).
    pub personalised: bool,
    /// When the recommender was last trained; `null` before the first training.
    pub trained_at: Option<DateTime<Utc>>,
    pub items: Vec<FeedItem>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedItem {
    /// `channel` (a live now) or `replay`.
    pub kind: &'static str,
    pub id: i64,
    /// Why it is here, in one line.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductView>,
}

/// `GET /api/v1/similar?kind=product&id=3`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    /// `product`, `channel` or `replay`.
    pub kind: olive_store::TargetKind,
    pub id: i64,
    /// At most this many (default 12, at most 50).
    pub limit: Option<i64>,
}

/// Items like the one asked about, best first.
#[derive(Serialize, ToSchema)]
pub struct SimilarView {
    pub items: Vec<FeedItem>,
}
