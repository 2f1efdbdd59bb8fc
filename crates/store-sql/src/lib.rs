//! The one SQL implementation of the store. Every query and transaction of Olive is written here,
//! once, in SQL that SQLite and PostgreSQL both accept (numbered `$N` placeholders, which sqlx binds
//! on both; `CAST(… AS BIGINT)` rather than `::BIGINT`), generic over the sqlx database of an
//! [`Engine`]. An engine crate (`olive-store-sqlite`, `olive-store-postgres`) holds only what really
//! differs: connecting and its pools, its migrations, how a write transaction begins, and the row
//! locks that a database with concurrent writers needs and a database with one writer does not
//! ([`Engine::LOCK_ROWS`], [`Engine::SKIP_LOCKED`], [`Engine::serialise`]).
//!
//! The capabilities of [`olive_store::Store`] are implemented one module each. Each impl repeats
//! the same `where` clause (the column types and executors both engines provide): Rust does not
//! imply bounds whose subject is not `Self`, so they cannot be folded into [`Engine`].
//!
//! This crate must not hold domain rules beyond what a transaction guarantees, and opens no
//! connection of its own.

mod accounts;
mod catalogue;
mod channels;
mod events;
mod jobs;
mod orders;
mod replays;
mod room;
mod rows;
mod usage;
mod webhooks;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use olive_core::{ChannelId, DealId, OrderId, ProductId, ReplayId, Role, UserId};
use olive_store::*;
use rows::*;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type};
use std::future::Future;

pub use rows::{backend, PLATFORM_CHANNEL};

/// What differs between the SQL engines. Implemented by each engine crate; everything else is
/// [`SqlStore`].
pub trait Engine: Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database;
    /// `sqlite` or `postgres`, for logs and `/readyz`.
    const NAME: &'static str;
    /// Appended to a `SELECT` whose rows the transaction goes on to change, so a concurrent
    /// transaction waits for it (`FOR UPDATE`). Empty where the engine lets one writer in at a time.
    const LOCK_ROWS: &'static str;
    /// Appended to the `SELECT` that picks a job to claim, so concurrent claimers pass over the
    /// rows others are taking (`FOR UPDATE SKIP LOCKED`). Empty where writers take turns.
    const SKIP_LOCKED: &'static str;

    /// The pool reads go to.
    fn reader(&self) -> &Pool<Self::Db>;
    /// The pool writes go to; a read that must see a write just committed goes here too.
    fn writer(&self) -> &Pool<Self::Db>;
    /// Begins a transaction that will write.
    fn begin_write(&self) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
    /// Makes the transactions that call it with the same `lock` run one after another, until
    /// each ends. A no-op where writers take turns anyway.
    fn serialise<'t>(
        tx: &'t mut Transaction<'static, Self::Db>,
        lock: i64,
    ) -> impl Future<Output = sqlx::Result<()>> + Send + 't;
    /// The rows a statement changed.
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;
    /// Connections open and idle, over all pools.
    fn pool_occupancy(&self) -> (u32, u32);
}

/// A column or parameter type: bound, and read back, on the engine's database.
pub trait Column<DB: Database>: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> {}
impl<DB: Database, T> Column<DB> for T where T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> {}

type Conn<E> = <<E as Engine>::Db as Database>::Connection;
type Args<'q, E> = <<E as Engine>::Db as Database>::Arguments<'q>;
type DbRow<E> = <<E as Engine>::Db as Database>::Row;

/// Locks taken with [`Engine::serialise`].
mod locks {
    /// Event compaction: two at once would fold the same rows twice.
    pub const COMPACTION: i64 = 7401;
}

/// The store, on an engine.
pub struct SqlStore<E> {
    engine: E,
}

impl<E: Engine> SqlStore<E> {
    pub fn new(engine: E) -> Self {
        SqlStore { engine }
    }

    /// The engine, for what only it offers (a SQLite snapshot).
    pub fn engine_ref(&self) -> &E {
        &self.engine
    }

    async fn begin_write(&self) -> Result<Transaction<'static, E::Db>> {
        self.engine.begin_write().await.map_err(backend)
    }
}

/// Helpers the capability modules share.
impl<E> SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut Conn<E>: Executor<'c, Database = E::Db>,
    for<'q> Args<'q, E>: IntoArguments<'q, E::Db>,
    usize: ColumnIndex<DbRow<E>>,
    for<'a> &'a str: ColumnIndex<DbRow<E>> + Encode<'a, E::Db> + Type<E::Db>,
    for<'a> &'a [u8]: Encode<'a, E::Db> + Type<E::Db>,
    for<'a> Option<&'a str>: Encode<'a, E::Db>,
    i32: Column<E::Db>,
    i64: Column<E::Db>,
    f64: Column<E::Db>,
    bool: Column<E::Db>,
    String: Column<E::Db>,
    Vec<u8>: Column<E::Db>,
    DateTime<Utc>: Column<E::Db>,
    NaiveDate: Column<E::Db>,
    Option<i32>: Column<E::Db>,
    Option<i64>: Column<E::Db>,
    Option<String>: Column<E::Db>,
    Option<Vec<u8>>: Column<E::Db>,
    Option<DateTime<Utc>>: Column<E::Db>,
{
    async fn with_images(&self, rows: Vec<ProductRow>) -> Result<Vec<Product>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let images = if ids.is_empty() {
            Vec::new()
        } else {
            let sql = select_in(IMAGES_OF_PRODUCTS, ids.len(), IMAGES_ORDER);
            let query = ids.iter().fold(sqlx::query_as(&sql), |q, id| q.bind(*id));
            query.fetch_all(self.engine.reader()).await.map_err(backend)?
        };
        attach_images(rows, images)
    }

    async fn orders_with_items(&self, rows: Vec<OrderRow>, pool: &Pool<E::Db>) -> Result<Vec<Order>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let items = if ids.is_empty() {
            Vec::new()
        } else {
            let sql = select_in(ITEMS_OF_ORDERS, ids.len(), ITEMS_ORDER);
            let query = ids.iter().fold(sqlx::query_as(&sql), |q, id| q.bind(*id));
            query.fetch_all(pool).await.map_err(backend)?
        };
        attach_items(rows, items)
    }

    /// Reads an order just written, through the writer so it is certainly visible.
    async fn order_from_writer(&self, id: OrderId) -> Result<Order> {
        let row: OrderRow = sqlx::query_as("SELECT * FROM orders WHERE id = $1")
            .bind(id.0)
            .fetch_one(self.engine.writer())
            .await
            .map_err(backend)?;
        Ok(self.orders_with_items(vec![row], self.engine.writer()).await?.remove(0))
    }

    /// Why a stock update matched no row: the product is missing, not on sale, or short.
    async fn why_not_taken(tx: &mut Transaction<'static, E::Db>, id: ProductId) -> StoreError {
        let status: Option<String> = match sqlx::query_scalar("SELECT status FROM products WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await
        {
            Ok(s) => s,
            Err(e) => return backend(e),
        };
        stock_refusal(id, status.as_deref())
    }

    /// Queues an outbox job in the transaction ([`QUEUE_JOB`]); with `if_webhooks`, only when a
    /// webhook is registered.
    async fn queue_in(
        tx: &mut Transaction<'static, E::Db>,
        kind: &str,
        payload: String,
        dedupe_key: String,
        if_webhooks: bool,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = if if_webhooks { QUEUE_JOB_IF_WEBHOOKS } else { QUEUE_JOB };
        let query = sqlx::query(sql).bind(kind).bind(payload).bind(dedupe_key).bind(ORDER_PLACED_ATTEMPTS).bind(at);
        query.execute(&mut **tx).await.map_err(backend)?;
        Ok(())
    }

    /// Records an order line as a purchase event ([`RECORD_PURCHASE`]), in the order's transaction.
    async fn record_purchase(
        tx: &mut Transaction<'static, E::Db>,
        visitor: &str,
        user: UserId,
        product: ProductId,
        quantity: i64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let query = sqlx::query(RECORD_PURCHASE).bind(visitor).bind(user.0).bind(product.0);
        query.bind(quantity as f64).bind(at).execute(&mut **tx).await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl<E> Store for SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut Conn<E>: Executor<'c, Database = E::Db>,
    for<'q> Args<'q, E>: IntoArguments<'q, E::Db>,
    usize: ColumnIndex<DbRow<E>>,
    for<'a> &'a str: ColumnIndex<DbRow<E>> + Encode<'a, E::Db> + Type<E::Db>,
    for<'a> &'a [u8]: Encode<'a, E::Db> + Type<E::Db>,
    for<'a> Option<&'a str>: Encode<'a, E::Db>,
    i32: Column<E::Db>,
    i64: Column<E::Db>,
    f64: Column<E::Db>,
    bool: Column<E::Db>,
    String: Column<E::Db>,
    Vec<u8>: Column<E::Db>,
    DateTime<Utc>: Column<E::Db>,
    NaiveDate: Column<E::Db>,
    Option<i32>: Column<E::Db>,
    Option<i64>: Column<E::Db>,
    Option<String>: Column<E::Db>,
    Option<Vec<u8>>: Column<E::Db>,
    Option<DateTime<Utc>>: Column<E::Db>,
{
    fn engine(&self) -> &'static str {
        E::NAME
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.engine.reader()).await.map_err(backend)?;
        Ok(())
    }

    async fn gauges(&self) -> Result<StoreGauges> {
        let jobs: Vec<(String, i64)> =
            sqlx::query_as(JOBS_BY_STATUS).fetch_all(self.engine.reader()).await.map_err(backend)?;
        let sold_out: i64 =
            sqlx::query_scalar(PRODUCTS_SOLD_OUT).fetch_one(self.engine.reader()).await.map_err(backend)?;
        let mut gauges = store_gauges(jobs, sold_out)?;
        (gauges.pool_connections, gauges.pool_idle) = self.engine.pool_occupancy();
        Ok(gauges)
    }
}
