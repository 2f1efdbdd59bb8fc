//! Rows as both engines return them, and the small pure pieces the statements share. The row
//! structs decode on SQLite and PostgreSQL alike (the column types are chosen so that `i64`,
//! `String`, `Vec<u8>` and `DateTime<Utc>` map on both).

use chrono::{DateTime, Utc};
use olive_core::{ChannelId, Currency, DealId, OrderId, ProductId, ReplayId, UserId};
use olive_store::*;

#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<User> {
        Ok(User {
            id: UserId(r.id),
            email: r.email,
            display_name: r.display_name,
            role: r.role.parse().map_err(corrupt)?,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CredentialsRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: String,
}

impl TryFrom<CredentialsRow> for Credentials {
    type Error = StoreError;
    fn try_from(r: CredentialsRow) -> Result<Credentials> {
        Ok(Credentials { user: r.user.try_into()?, password_hash: r.password_hash })
    }
}

#[derive(sqlx::FromRow)]
pub struct ProductRow {
    pub id: i64,
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub stock: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProductRow {
    pub fn into_product(self, images: Vec<ProductImage>) -> Result<Product> {
        Ok(Product {
            id: ProductId(self.id),
            name: self.name,
            brand: self.brand,
            category: self.category,
            description: self.description,
            price_minor: self.price_minor,
            currency: self.currency.parse().map_err(corrupt)?,
            stock: self.stock,
            status: self.status.parse().map_err(corrupt)?,
            images,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ImageRow {
    pub id: i64,
    pub product_id: i64,
    pub object_key: String,
    pub content_type: String,
}

impl From<ImageRow> for ProductImage {
    fn from(r: ImageRow) -> ProductImage {
        ProductImage { id: r.id, object_key: r.object_key, content_type: r.content_type }
    }
}

#[derive(sqlx::FromRow)]
pub struct ChannelRow {
    pub id: i64,
    pub host_id: i64,
    pub title: String,
    pub description: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub status: String,
    pub channel_type: String,
    pub thumbnail_interval_s: i32,
    pub chat_slow_mode_s: i32,
    pub chat_banned_words: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<ChannelRow> for Channel {
    type Error = StoreError;
    fn try_from(r: ChannelRow) -> Result<Channel> {
        Ok(Channel {
            id: ChannelId(r.id),
            host_id: UserId(r.host_id),
            title: r.title,
            description: r.description,
            scheduled_at: r.scheduled_at,
            status: r.status.parse().map_err(corrupt)?,
            kind: r.channel_type.parse().map_err(corrupt)?,
            thumbnail_interval_s: r.thumbnail_interval_s,
            chat_slow_mode_s: r.chat_slow_mode_s,
            chat_banned_words: serde_json::from_str(&r.chat_banned_words).map_err(corrupt)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub status: String,
    pub total_minor: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderRow {
    pub fn into_order(self, items: Vec<OrderItem>) -> Result<Order> {
        Ok(Order {
            id: OrderId(self.id),
            user_id: UserId(self.user_id),
            status: self.status.parse().map_err(corrupt)?,
            items,
            total_minor: self.total_minor,
            currency: self.currency.parse().map_err(corrupt)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `channel_sales` from its `(currency, orders, total)` rows.
pub fn channel_sales(rows: Vec<(String, i64, i64)>) -> Result<ChannelSales> {
    let mut sales = ChannelSales::default();
    for (currency, orders, total) in rows {
        sales.orders += orders;
        sales.revenue.push((currency.parse::<Currency>().map_err(corrupt)?, total));
    }
    Ok(sales)
}

#[derive(sqlx::FromRow)]
pub struct OrderItemRow {
    pub order_id: i64,
    pub product_id: i64,
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

impl From<OrderItemRow> for OrderItem {
    fn from(r: OrderItemRow) -> OrderItem {
        OrderItem {
            product_id: ProductId(r.product_id),
            name: r.name,
            quantity: r.quantity,
            unit_price_minor: r.unit_price_minor,
        }
    }
}

/// The lines of an order being placed, priced as their stock is taken.
#[derive(Default)]
pub struct PricedLines {
    pub items: Vec<OrderItem>,
    currency: Option<Currency>,
    total: i64,
}

impl PricedLines {
    pub fn push(&mut self, line: &OrderLine, name: String, unit_price_minor: i64, currency: &str) -> Result<()> {
        let currency: Currency = currency.parse().map_err(corrupt)?;
        match self.currency {
            Some(c) if c != currency => return Err(StoreError::MixedCurrency),
            _ => self.currency = Some(currency),
        }
        let line_total = unit_price_minor
            .checked_mul(line.quantity)
            .and_then(|t| t.checked_add(self.total))
            .ok_or_else(|| StoreError::Backend("order total overflows".into()))?;
        self.total = line_total;
        self.items.push(OrderItem { product_id: line.product_id, name, quantity: line.quantity, unit_price_minor });
        Ok(())
    }

    pub fn total(&self) -> Result<(i64, Currency)> {
        let currency = self.currency.ok_or_else(|| StoreError::Backend("an order needs at least one line".into()))?;
        Ok((self.total, currency))
    }
}

/// `Replayed` when a reused idempotency key came with the same request, else a mismatch.
pub fn replay(same_request: bool, order: Order) -> Result<PlacedOrder> {
    if same_request {
        Ok(PlacedOrder::Replayed(order))
    } else {
        Err(StoreError::IdempotencyMismatch)
    }
}

/// Queues a job in the transaction that calls for it (an order's outbox), unless its dedupe key
/// was queued before. Binds: kind, payload, dedupe key, attempts, time.
pub const QUEUE_JOB: &str = "INSERT INTO jobs
       (kind, payload, dedupe_key, status, attempts, max_attempts, run_at, created_at, updated_at)
     VALUES ($1, $2, $3, 'queued', 0, $4, $5, $5, $5)
     ON CONFLICT (dedupe_key) DO NOTHING";

/// [`QUEUE_JOB`], only when a webhook is registered (a deal's order has nothing else to do).
pub const QUEUE_JOB_IF_WEBHOOKS: &str = "INSERT INTO jobs
       (kind, payload, dedupe_key, status, attempts, max_attempts, run_at, created_at, updated_at)
     SELECT $1, $2, $3, 'queued', 0, $4, $5, $5, $5 WHERE EXISTS (SELECT 1 FROM webhooks)
     ON CONFLICT (dedupe_key) DO NOTHING";

/// A purchase event, written in the order's transaction. Binds: visitor, user, product, quantity, time.
pub const RECORD_PURCHASE: &str = "INSERT INTO events (visitor, user_id, kind, target_kind, target_id, value, at)
     VALUES ($1, $2, 'purchase', 'product', $3, $4, $5)";

/// A job's JSON payload.
pub fn payload(notice: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(notice).map_err(|e| StoreError::Backend(format!("job payload: {e}")))
}

pub fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub fn unique_as(e: sqlx::Error, what: &'static str) -> StoreError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::AlreadyExists(what),
        _ => backend(e),
    }
}

pub fn foreign_key_as(e: sqlx::Error, what: &'static str) -> StoreError {
    match e.as_database_error() {
        Some(db) if db.is_foreign_key_violation() => StoreError::NotFound(what),
        _ => backend(e),
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt row: {e}"))
}

/// `head ($1, $2, …) tail` for `count` ids, to bind in order (numbered placeholders: both engines
/// take them).
pub fn select_in(head: &str, count: usize, tail: &str) -> String {
    let list: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
    format!("{head} ({}) {tail}", list.join(", "))
}

/// `($1, $2, …), (…)`: `rows` tuples of `columns` numbered placeholders each, to bind row by row.
pub fn values(rows: usize, columns: usize) -> String {
    let tuple = |row: usize| {
        let list: Vec<String> = (1..=columns).map(|c| format!("${}", row * columns + c)).collect();
        format!("({})", list.join(", "))
    };
    (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
}

pub const IMAGES_OF_PRODUCTS: &str =
    "SELECT id, product_id, object_key, content_type FROM product_images WHERE product_id IN";
pub const IMAGES_ORDER: &str = "ORDER BY product_id, id";
pub const ITEMS_OF_ORDERS: &str =
    "SELECT order_id, product_id, name, quantity, unit_price_minor FROM order_items WHERE order_id IN";
pub const ITEMS_ORDER: &str = "ORDER BY order_id, product_id";

/// Products with their images (fetched for all of them at once with [`IMAGES_OF_PRODUCTS`]).
pub fn attach_images(rows: Vec<ProductRow>, images: Vec<ImageRow>) -> Result<Vec<Product>> {
    let mut by_product: std::collections::HashMap<i64, Vec<ProductImage>> = Default::default();
    for image in images {
        by_product.entry(image.product_id).or_default().push(image.into());
    }
    rows.into_iter()
        .map(|r| {
            let images = by_product.remove(&r.id).unwrap_or_default();
            r.into_product(images)
        })
        .collect()
}

/// Orders with their items (fetched for all of them at once with [`ITEMS_OF_ORDERS`]).
pub fn attach_items(rows: Vec<OrderRow>, items: Vec<OrderItemRow>) -> Result<Vec<Order>> {
    let mut by_order: std::collections::HashMap<i64, Vec<OrderItem>> = Default::default();
    for item in items {
        by_order.entry(item.order_id).or_default().push(item.into());
    }
    rows.into_iter()
        .map(|r| {
            let items = by_order.remove(&r.id).unwrap_or_default();
            r.into_order(items)
        })
        .collect()
}

/// Why a conditional stock update matched no row, from the product's status (`None`: no product).
pub fn stock_refusal(id: ProductId, status: Option<&str>) -> StoreError {
    match status {
        None => StoreError::UnknownProduct(id),
        Some("active") => StoreError::OutOfStock(id),
        Some(_) => StoreError::ProductUnavailable(id),
    }
}

#[derive(sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Job> {
        Ok(Job {
            id: r.id,
            kind: r.kind,
            payload: r.payload,
            status: r.status.parse().map_err(corrupt)?,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub const JOB_COLUMNS: &str =
    "id, kind, payload, status, attempts, max_attempts, run_at, last_error, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub events: String,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Webhook {
        Webhook {
            id: r.id,
            url: r.url,
            secret: r.secret,
            events: r.events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct ReplayRow {
    pub id: i64,
    pub channel_id: i64,
    pub title: String,
    pub status: String,
    pub hidden: bool,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub bytes: i64,
    pub segments: i64,
    pub thumbnail_key: Option<String>,
    pub thumbnails: i64,
    pub products: String,
    pub node: String,
    pub heartbeat_at: DateTime<Utc>,
}

impl TryFrom<ReplayRow> for Replay {
    type Error = StoreError;
    fn try_from(r: ReplayRow) -> Result<Replay> {
        let products: Vec<i64> = serde_json::from_str(&r.products).map_err(corrupt)?;
        Ok(Replay {
            id: ReplayId(r.id),
            channel_id: ChannelId(r.channel_id),
            title: r.title,
            status: r.status.parse().map_err(corrupt)?,
            hidden: r.hidden,
            started_at: r.started_at,
            ended_at: r.ended_at,
            duration_ms: r.duration_ms,
            bytes: r.bytes,
            segments: r.segments,
            thumbnail_key: r.thumbnail_key,
            thumbnails: r.thumbnails,
            products: products.into_iter().map(ProductId).collect(),
            node: r.node,
            heartbeat_at: r.heartbeat_at,
        })
    }
}

/// The line-up as stored in `replays.products`.
pub fn product_list(products: &[ProductId]) -> String {
    serde_json::to_string(&products.iter().map(|p| p.0).collect::<Vec<_>>()).expect("ids serialise")
}

#[derive(sqlx::FromRow)]
pub struct ReplaySegmentRow {
    /// `''` for the source.
    pub rendition: String,
    pub msn: i64,
    pub init_version: i32,
    pub discontinuity: bool,
    pub duration_ms: i64,
    pub bytes: i64,
}

impl From<ReplaySegmentRow> for ReplaySegment {
    fn from(r: ReplaySegmentRow) -> ReplaySegment {
        ReplaySegment {
            rendition: Some(r.rendition).filter(|r| !r.is_empty()),
            msn: r.msn,
            init_version: r.init_version,
            discontinuity: r.discontinuity,
            duration_ms: r.duration_ms,
            bytes: r.bytes,
        }
    }
}

pub const CHAT_COLUMNS: &str = "id, channel_id, user_id, author, text, created_at, deleted_at";

#[derive(sqlx::FromRow)]
pub struct ChatMessageRow {
    pub id: i64,
    pub channel_id: i64,
    pub user_id: i64,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<ChatMessageRow> for ChatMessage {
    fn from(r: ChatMessageRow) -> ChatMessage {
        ChatMessage {
            id: r.id,
            channel_id: ChannelId(r.channel_id),
            user_id: UserId(r.user_id),
            author: r.author,
            text: r.text,
            created_at: r.created_at,
            deleted_at: r.deleted_at,
        }
    }
}

/// Banned words as stored in `channels.chat_banned_words`.
pub fn word_list(words: &[String]) -> String {
    serde_json::to_string(words).expect("strings serialise")
}

#[derive(sqlx::FromRow)]
pub struct ChatRestrictionRow {
    pub user_id: i64,
    pub until: Option<DateTime<Utc>>,
}

impl From<ChatRestrictionRow> for ChatRestriction {
    fn from(r: ChatRestrictionRow) -> ChatRestriction {
        ChatRestriction { user_id: UserId(r.user_id), until: r.until }
    }
}

#[derive(sqlx::FromRow)]
pub struct PinRow {
    pub id: i64,
    pub channel_id: i64,
    pub product_id: i64,
    pub pts: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<PinRow> for Pin {
    fn from(r: PinRow) -> Pin {
        Pin {
            id: r.id,
            channel_id: ChannelId(r.channel_id),
            product_id: ProductId(r.product_id),
            pts: r.pts,
            created_at: r.created_at,
        }
    }
}

/// Columns of `deals`, in [`DealRow`]'s order.
pub const DEAL_COLUMNS: &str =
    "id, channel_id, product_id, price_minor, currency, listed, sold, per_customer, starts_at, ends_at, status, node, ended_at";

#[derive(sqlx::FromRow)]
pub struct DealRow {
    pub id: i64,
    pub channel_id: i64,
    pub product_id: i64,
    pub price_minor: i64,
    pub currency: String,
    pub listed: i64,
    pub sold: i64,
    pub per_customer: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub node: String,
    pub ended_at: Option<DateTime<Utc>>,
}

impl TryFrom<DealRow> for Deal {
    type Error = StoreError;
    fn try_from(r: DealRow) -> Result<Deal> {
        Ok(Deal {
            id: DealId(r.id),
            channel_id: ChannelId(r.channel_id),
            product_id: ProductId(r.product_id),
            price_minor: r.price_minor,
            currency: r.currency.parse().map_err(corrupt)?,
            listed: r.listed,
            sold: r.sold,
            per_customer: r.per_customer,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            status: r.status.parse().map_err(corrupt)?,
            node: r.node,
            ended_at: r.ended_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct DealSaleRow {
    pub order_id: i64,
    pub user_id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub quantity: i64,
}

impl From<DealSaleRow> for DealSale {
    fn from(r: DealSaleRow) -> DealSale {
        DealSale {
            order_id: OrderId(r.order_id),
            user_id: UserId(r.user_id),
            idempotency_key: r.idempotency_key,
            request_hash: r.request_hash,
            quantity: r.quantity,
        }
    }
}

/// The order a deal sale creates, as it was written (so the batch need not read it back);
/// `created_at` as the database returned it (PostgreSQL keeps microseconds).
pub fn deal_order(id: i64, deal: &Deal, name: String, new: &NewDealOrder, created_at: DateTime<Utc>) -> Result<Order> {
    let total = deal
        .price_minor
        .checked_mul(new.quantity)
        .ok_or_else(|| StoreError::Backend("order total overflows".into()))?;
    Ok(Order {
        id: OrderId(id),
        user_id: new.user_id,
        status: OrderStatus::Placed,
        items: vec![OrderItem {
            product_id: deal.product_id,
            name,
            quantity: new.quantity,
            unit_price_minor: deal.price_minor,
        }],
        total_minor: total,
        currency: deal.currency,
        created_at,
        updated_at: created_at,
    })
}

#[derive(sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub visitor: String,
    pub user_id: Option<i64>,
    pub kind: String,
    pub target_kind: String,
    pub target_id: i64,
    pub value: f64,
    pub at: DateTime<Utc>,
}

impl EventRow {
    pub const COLUMNS: &'static str = "id, visitor, user_id, kind, target_kind, target_id, value, at";

    pub fn into_event(self) -> Result<Event> {
        Ok(Event {
            id: self.id,
            visitor: self.visitor,
            user_id: self.user_id.map(UserId),
            kind: self.kind.parse().map_err(corrupt)?,
            target: self.target_kind.parse().map_err(corrupt)?,
            target_id: self.target_id,
            value: self.value,
            at: self.at,
        })
    }
}

pub fn events(rows: Vec<EventRow>) -> Result<Vec<Event>> {
    rows.into_iter().map(EventRow::into_event).collect()
}

#[derive(sqlx::FromRow)]
pub struct PictureLabelsRow {
    pub replay_id: i64,
    pub channel_id: i64,
    pub thumbnail_key: String,
    pub taken_at: DateTime<Utc>,
    pub labels: String,
    pub cpu_ms: i64,
}

impl PictureLabelsRow {
    pub const COLUMNS: &'static str = "replay_id, channel_id, thumbnail_key, taken_at, labels, cpu_ms";
}

impl TryFrom<PictureLabelsRow> for PictureLabels {
    type Error = StoreError;
    fn try_from(r: PictureLabelsRow) -> Result<PictureLabels> {
        Ok(PictureLabels {
            replay_id: ReplayId(r.replay_id),
            channel_id: ChannelId(r.channel_id),
            thumbnail_key: r.thumbnail_key,
            taken_at: r.taken_at,
            labels: serde_json::from_str(&r.labels).map_err(corrupt)?,
            cpu_ms: r.cpu_ms,
        })
    }
}

/// Labels as stored in `picture_labels.labels`.
pub fn label_list(labels: &[olive_core::Label]) -> String {
    serde_json::to_string(labels).expect("labels serialise")
}

/// The platform's usage is stored under channel 0, which no channel has.
pub const PLATFORM_CHANNEL: i64 = 0;

pub fn usage_channel(channel: Option<ChannelId>) -> i64 {
    channel.map_or(PLATFORM_CHANNEL, |c| c.0)
}

fn channel_of_usage(id: i64) -> Option<ChannelId> {
    (id != PLATFORM_CHANNEL).then_some(ChannelId(id))
}

/// `(day, channel_id, meter, amount)` rows as usage.
pub fn usage_rows(rows: Vec<(chrono::NaiveDate, i64, String, i64)>) -> Result<Vec<Usage>> {
    rows.into_iter()
        .map(|(day, channel, meter, amount)| {
            let meter = meter.parse::<Meter>().map_err(|_| StoreError::Backend(format!("unknown meter {meter:?}")))?;
            Ok(Usage { day, channel: channel_of_usage(channel), meter, amount })
        })
        .collect()
}

pub fn usage_totals(rows: Vec<(i64, i64)>) -> Vec<(Option<ChannelId>, i64)> {
    rows.into_iter().map(|(channel, total)| (channel_of_usage(channel), total)).collect()
}

/// The gauges from `(status, count)` job rows and the sold-out count; pools are added by the engine.
pub fn store_gauges(jobs: Vec<(String, i64)>, products_sold_out: i64) -> Result<StoreGauges> {
    let jobs = jobs
        .into_iter()
        .map(|(status, n)| {
            status
                .parse::<JobStatus>()
                .map(|s| (s, n))
                .map_err(|_| StoreError::Backend(format!("job status {status:?}")))
        })
        .collect::<Result<_>>()?;
    Ok(StoreGauges { jobs, products_sold_out, pool_connections: 0, pool_idle: 0 })
}

pub const JOBS_BY_STATUS: &str = "SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status";
pub const PRODUCTS_SOLD_OUT: &str = "SELECT COUNT(*) FROM products WHERE status = 'active' AND stock = 0";
