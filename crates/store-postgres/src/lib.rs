//! The scale-out engine: PostgreSQL, shared by every node.
//!
//! Invariants are kept by the database, not by process-local locks: stock is taken with a
//! conditional `UPDATE … WHERE stock >= n` whose row lock serialises concurrent buyers, lines are
//! taken in product-id order so two orders never deadlock, and the idempotency key is claimed first
//! with `INSERT … ON CONFLICT DO NOTHING`, so a concurrent retry waits on the unique index and then
//! sees the first order. This crate must not hold domain rules beyond what a transaction guarantees.

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use olive_core::{ChannelId, DealId, OrderId, ProductId, ReplayId, Role, UserId};
use olive_store::*;
use olive_store_sql::*;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL and runs migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(format!("bad postgres url: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        Ok(PostgresStore { pool })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(backend)
    }

    async fn with_images(&self, rows: Vec<ProductRow>) -> Result<Vec<Product>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let images = if ids.is_empty() {
            Vec::new()
        } else {
            let mut q = select_in::<Postgres>(IMAGES_OF_PRODUCTS, &ids, IMAGES_ORDER);
            q.build_query_as().fetch_all(&self.pool).await.map_err(backend)?
        };
        attach_images(rows, images)
    }

    async fn orders_with_items(&self, rows: Vec<OrderRow>) -> Result<Vec<Order>> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let items = if ids.is_empty() {
            Vec::new()
        } else {
            let mut q = select_in::<Postgres>(ITEMS_OF_ORDERS, &ids, ITEMS_ORDER);
            q.build_query_as().fetch_all(&self.pool).await.map_err(backend)?
        };
        attach_items(rows, items)
    }

    /// Why a stock update matched no row: the product is missing, not on sale, or short.
    async fn why_not_taken(tx: &mut Transaction<'static, Postgres>, id: ProductId) -> StoreError {
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
}

#[async_trait]
impl Store for PostgresStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn gauges(&self) -> Result<StoreGauges> {
        let jobs: Vec<(String, i64)> = sqlx::query_as(JOBS_BY_STATUS).fetch_all(&self.pool).await.map_err(backend)?;
        let sold_out: i64 = sqlx::query_scalar(PRODUCTS_SOLD_OUT).fetch_one(&self.pool).await.map_err(backend)?;
        let mut gauges = store_gauges(jobs, sold_out)?;
        let (size, idle) = (self.pool.size(), u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX));
        gauges.pool_connections = size;
        gauges.pool_idle = idle;
        Ok(gauges)
    }

    async fn add_usage(&self, rows: &[Usage]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for row in rows {
            sqlx::query(
                "INSERT INTO usage_daily (day, channel_id, meter, amount) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (day, channel_id, meter) DO UPDATE SET amount = usage_daily.amount + excluded.amount",
            )
            .bind(row.day)
            .bind(usage_channel(row.channel))
            .bind(row.meter.as_str())
            .bind(row.amount)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn usage(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Usage>> {
        let rows: Vec<(NaiveDate, i64, String, i64)> = sqlx::query_as(
            "SELECT day, channel_id, meter, amount FROM usage_daily WHERE day >= $1 AND day < $2
             ORDER BY day, channel_id, meter",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        usage_rows(rows)
    }

    async fn usage_before(&self, day: NaiveDate, meter: Meter) -> Result<Vec<(Option<ChannelId>, i64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT channel_id, CAST(SUM(amount) AS BIGINT) FROM usage_daily WHERE day < $1 AND meter = $2
             GROUP BY channel_id ORDER BY channel_id",
        )
        .bind(day)
        .bind(meter.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(usage_totals(rows))
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        let row: UserRow = sqlx::query_as(
            "INSERT INTO users (email, display_name, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id, email, display_name, role, created_at",
        )
        .bind(&new.email)
        .bind(&new.display_name)
        .bind(&new.password_hash)
        .bind(new.role.as_str())
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unique_as(e, "user"))?;
        row.try_into()
    }

    async fn user(&self, id: UserId) -> Result<User> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, email, display_name, role, created_at FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.ok_or(StoreError::NotFound("user"))?.try_into()
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>> {
        let row: Option<CredentialsRow> = sqlx::query_as(
            "SELECT id, email, display_name, role, created_at, password_hash FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(backend)
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, email, display_name, role, created_at FROM users ORDER BY id LIMIT $1 OFFSET $2",
        )
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_user_role(&self, id: UserId, role: Role) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(
            "UPDATE users SET role = $1 WHERE id = $2 RETURNING id, email, display_name, role, created_at",
        )
        .bind(role.as_str())
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.ok_or(StoreError::NotFound("user"))?.try_into()
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    async fn create_session(&self, new: NewSession) -> Result<()> {
        sqlx::query("INSERT INTO sessions (hash, user_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&new.hash.0[..])
            .bind(new.user_id.0)
            .bind(new.kind.as_str())
            .bind(new.created_at)
            .bind(new.expires_at)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_as(e, "session"))?;
        Ok(())
    }

    async fn session_user(&self, hash: &SessionHash, now: DateTime<Utc>) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.display_name, u.role, u.created_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.hash = $1 AND s.expires_at > $2",
        )
        .bind(&hash.0[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn delete_session(&self, hash: &SessionHash) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(&hash.0[..])
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user: UserId, keep: Option<&SessionHash>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR hash <> $2)")
            .bind(user.0)
            .bind(keep.map(|h| h.0.to_vec()))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn create_product(&self, new: NewProduct) -> Result<Product> {
        let row: ProductRow = sqlx::query_as(
            "INSERT INTO products
               (name, brand, category, description, price_minor, currency, stock, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
        )
        .bind(&new.name)
        .bind(&new.brand)
        .bind(&new.category)
        .bind(&new.description)
        .bind(new.price_minor)
        .bind(new.currency.code())
        .bind(new.stock)
        .bind(new.status.as_str())
        .bind(new.created_at)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        row.into_product(Vec::new())
    }

    async fn update_product(&self, id: ProductId, patch: ProductPatch) -> Result<Product> {
        let row: Option<ProductRow> = sqlx::query_as(
            "UPDATE products SET
                name = COALESCE($1, name), brand = COALESCE($2, brand),
                category = COALESCE($3, category), description = COALESCE($4, description),
                price_minor = COALESCE($5, price_minor), currency = COALESCE($6, currency),
                stock = COALESCE($7, stock), status = COALESCE($8, status),
                updated_at = COALESCE($9, updated_at)
             WHERE id = $10 RETURNING *",
        )
        .bind(patch.name)
        .bind(patch.brand)
        .bind(patch.category)
        .bind(patch.description)
        .bind(patch.price_minor)
        .bind(patch.currency.map(|c| c.code()))
        .bind(patch.stock)
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.updated_at)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let row = row.ok_or(StoreError::NotFound("product"))?;
        Ok(self.with_images(vec![row]).await?.remove(0))
    }

    async fn product(&self, id: ProductId) -> Result<Product> {
        let row: Option<ProductRow> = sqlx::query_as("SELECT * FROM products WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let row = row.ok_or(StoreError::NotFound("product"))?;
        Ok(self.with_images(vec![row]).await?.remove(0))
    }

    async fn list_products(&self, query: &ProductQuery) -> Result<Vec<Product>> {
        let rows: Vec<ProductRow> = sqlx::query_as(
            "SELECT * FROM products
             WHERE ($1 IS NULL OR category = $2) AND ($3 IS NULL OR status = $4)
             ORDER BY id LIMIT $5 OFFSET $6",
        )
        .bind(&query.category)
        .bind(&query.category)
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.page.limit)
        .bind(query.page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        self.with_images(rows).await
    }

    async fn add_product_image(&self, id: ProductId, image: NewProductImage) -> Result<ProductImage> {
        let row: ImageRow = sqlx::query_as(
            "INSERT INTO product_images (product_id, object_key, content_type) VALUES ($1, $2, $3)
             RETURNING id, product_id, object_key, content_type",
        )
        .bind(id.0)
        .bind(&image.object_key)
        .bind(&image.content_type)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| foreign_key_as(e, "product"))?;
        Ok(row.into())
    }

    async fn create_channel(&self, new: NewChannel) -> Result<Channel> {
        let row: ChannelRow = sqlx::query_as(
            "INSERT INTO channels
               (host_id, title, description, scheduled_at, stream_key_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        )
        .bind(new.host_id.0)
        .bind(&new.title)
        .bind(&new.description)
        .bind(new.scheduled_at)
        .bind(&new.stream_key_hash.0[..])
        .bind(new.created_at)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| foreign_key_as(e, "user"))?;
        row.try_into()
    }

    async fn channel(&self, id: ChannelId) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as("SELECT * FROM channels WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.ok_or(StoreError::NotFound("channel"))?.try_into()
    }

    async fn list_channels(&self) -> Result<Vec<Channel>> {
        let rows: Vec<ChannelRow> =
            sqlx::query_as("SELECT * FROM channels ORDER BY id").fetch_all(&self.pool).await.map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_channel(&self, id: ChannelId, patch: ChannelPatch) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as(
            "UPDATE channels SET
                title = COALESCE($1, title), description = COALESCE($2, description),
                scheduled_at = CASE WHEN $3 THEN $4 ELSE scheduled_at END,
                status = COALESCE($5, status), channel_type = COALESCE($6, channel_type),
                thumbnail_interval_s = COALESCE($7, thumbnail_interval_s),
                chat_slow_mode_s = COALESCE($8, chat_slow_mode_s), chat_banned_words = COALESCE($9, chat_banned_words),
                updated_at = COALESCE($10, updated_at)
             WHERE id = $11 RETURNING *",
        )
        .bind(patch.title)
        .bind(patch.description)
        .bind(patch.scheduled_at.is_some())
        .bind(patch.scheduled_at.flatten())
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.kind.map(|k| k.as_str()))
        .bind(patch.thumbnail_interval_s)
        .bind(patch.chat_slow_mode_s)
        .bind(patch.chat_banned_words.as_deref().map(word_list))
        .bind(patch.updated_at)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.ok_or(StoreError::NotFound("channel"))?.try_into()
    }

    async fn set_stream_key_hash(&self, id: ChannelId, hash: StreamKeyHash) -> Result<()> {
        let done = sqlx::query("UPDATE channels SET stream_key_hash = $1 WHERE id = $2")
            .bind(&hash.0[..])
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_as(e, "stream key"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("channel"));
        }
        Ok(())
    }

    async fn channel_by_stream_key_hash(&self, hash: &StreamKeyHash) -> Result<Option<Channel>> {
        let row: Option<ChannelRow> = sqlx::query_as("SELECT * FROM channels WHERE stream_key_hash = $1")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn set_lineup(&self, id: ChannelId, products: &[ProductId]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM channels WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StoreError::NotFound("channel"));
        }
        sqlx::query("DELETE FROM lineups WHERE channel_id = $1").bind(id.0).execute(&mut *tx).await.map_err(backend)?;
        for (position, product) in products.iter().enumerate() {
            let known: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = $1")
                .bind(product.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            if known.is_none() {
                return Err(StoreError::UnknownProduct(*product));
            }
            sqlx::query("INSERT INTO lineups (channel_id, position, product_id) VALUES ($1, $2, $3)")
                .bind(id.0)
                .bind(position as i64)
                .bind(product.0)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn lineup(&self, id: ChannelId) -> Result<Vec<ProductId>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT product_id FROM lineups WHERE channel_id = $1 ORDER BY position")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(ids.into_iter().map(ProductId).collect())
    }

    async fn place_order(&self, new: NewOrder) -> Result<PlacedOrder> {
        let mut tx = self.begin_write().await?;
        // Claim the key first: a concurrent request with the same key blocks here until this
        // transaction ends, then finds the committed order (or the key free again on rollback).
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO orders
               (user_id, idempotency_key, request_hash, status, total_minor, currency, channel_id, created_at, updated_at)
             VALUES ($1, $2, $3, 'placed', 0, 'KRW', $4, $5, $5)
             ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(new.user_id.0)
        .bind(&new.idempotency_key)
        .bind(&new.request_hash)
        .bind(new.channel_id.map(|c| c.0))
        .bind(new.created_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(order_id) = claimed else {
            drop(tx);
            let (id, hash): (i64, String) =
                sqlx::query_as("SELECT id, request_hash FROM orders WHERE user_id = $1 AND idempotency_key = $2")
                    .bind(new.user_id.0)
                    .bind(&new.idempotency_key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend)?;
            return replay(hash == new.request_hash, self.order(OrderId(id)).await?);
        };

        let mut priced = PricedLines::default();
        for line in &new.lines {
            let taken: Option<(String, i64, String)> = sqlx::query_as(
                "UPDATE products SET stock = stock - $1
                 WHERE id = $2 AND status = 'active' AND stock >= $1
                 RETURNING name, price_minor, currency",
            )
            .bind(line.quantity)
            .bind(line.product_id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            match taken {
                Some((name, price, currency)) => priced.push(line, name, price, &currency)?,
                None => return Err(Self::why_not_taken(&mut tx, line.product_id).await),
            }
        }
        let (total, currency) = priced.total()?;
        sqlx::query("UPDATE orders SET total_minor = $1, currency = $2 WHERE id = $3")
            .bind(total)
            .bind(currency.code())
            .bind(order_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO order_items (order_id, product_id, name, quantity, unit_price_minor) ",
        );
        insert.push_values(&priced.items, |mut row, item| {
            row.push_bind(order_id)
                .push_bind(item.product_id.0)
                .push_bind(&item.name)
                .push_bind(item.quantity)
                .push_bind(item.unit_price_minor);
        });
        insert.build().execute(&mut *tx).await.map_err(backend)?;
        queue_order_placed(&mut tx, order_id, new.created_at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(PlacedOrder::Created(self.order(OrderId(order_id)).await?))
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let row = row.ok_or(StoreError::NotFound("order"))?;
        Ok(self.orders_with_items(vec![row]).await?.remove(0))
    }

    async fn orders_for_user(&self, user: UserId, page: Page) -> Result<Vec<Order>> {
        let rows: Vec<OrderRow> =
            sqlx::query_as("SELECT * FROM orders WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3")
                .bind(user.0)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        self.orders_with_items(rows).await
    }

    async fn channel_sales(&self, channel: ChannelId, since: DateTime<Utc>) -> Result<ChannelSales> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT currency, COUNT(*), COALESCE(SUM(total_minor), 0)::BIGINT FROM orders
             WHERE channel_id = $1 AND created_at >= $2 AND status <> 'cancelled'
             GROUP BY currency ORDER BY currency",
        )
        .bind(channel.0)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        channel_sales(rows)
    }

    async fn cancel_order(&self, id: OrderId, user: UserId, now: DateTime<Utc>) -> Result<Order> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM orders WHERE id = $1 AND user_id = $2 FOR UPDATE")
                .bind(id.0)
                .bind(user.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let status: OrderStatus = status.ok_or(StoreError::NotFound("order"))?.parse().map_err(StoreError::Backend)?;
        if status != OrderStatus::Placed {
            return Err(StoreError::NotCancellable(status));
        }
        sqlx::query("UPDATE orders SET status = 'cancelled', updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(
            "UPDATE products SET stock = stock + (
                 SELECT quantity FROM order_items WHERE order_id = $1 AND product_id = products.id)
             WHERE id IN (SELECT product_id FROM order_items WHERE order_id = $2)",
        )
        .bind(id.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.order(id).await
    }

    async fn enqueue_job(&self, new: NewJob) -> Result<Job> {
        let inserted: Option<JobRow> = sqlx::query_as(&format!(
            "INSERT INTO jobs (kind, payload, dedupe_key, status, attempts, max_attempts, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING {JOB_COLUMNS}"
        ))
        .bind(&new.kind)
        .bind(&new.payload)
        .bind(&new.dedupe_key)
        .bind(new.max_attempts)
        .bind(new.run_at)
        .bind(new.created_at)
        .bind(new.created_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let row = match inserted {
            Some(row) => row,
            None => sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE dedupe_key = $1"))
                .bind(&new.dedupe_key)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?,
        };
        row.try_into()
    }

    async fn claim_job(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Option<Job>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE jobs SET status = 'dead', last_error = 'lease expired on the last attempt', updated_at = $1
             WHERE status = 'running' AND run_at <= $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, run_at = $1, updated_at = $2
             WHERE id = (SELECT id FROM jobs WHERE status IN ('queued', 'running') AND run_at <= $2
                         AND attempts < max_attempts ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn complete_job(&self, id: i64, attempt: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'done', updated_at = $1 WHERE id = $2 AND attempts = $3 AND status = 'running'",
        )
        .bind(now)
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_job(
        &self,
        id: i64,
        attempt: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let status = if retry_at.is_some() { JobStatus::Queued } else { JobStatus::Dead };
        let done = sqlx::query(
            "UPDATE jobs SET status = $1, run_at = COALESCE($2, run_at), last_error = $3, updated_at = $4
             WHERE id = $5 AND attempts = $6 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(retry_at)
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_jobs(&self, status: Option<JobStatus>, page: Page) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::TEXT IS NULL OR status = $1) ORDER BY id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(status.map(|s| s.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn record_events(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for e in events {
            sqlx::query(
                "INSERT INTO events (visitor, user_id, kind, target_kind, target_id, value, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.visitor)
            .bind(e.user_id.map(|u| u.0))
            .bind(e.kind.as_str())
            .bind(e.target.as_str())
            .bind(e.target_id)
            .bind(e.value)
            .bind(e.at)
            .execute(&mut *tx)
            .await
            .map_err(|err| foreign_key_as(err, "user"))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> =
            sqlx::query_as(&format!("SELECT {} FROM events WHERE id > $1 ORDER BY id LIMIT $2", EventRow::COLUMNS))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        events(rows)
    }

    async fn recent_events(&self, user: Option<UserId>, visitor: &str, limit: i64) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = match user {
            Some(user) => sqlx::query_as(&format!(
                "SELECT {} FROM events WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                EventRow::COLUMNS
            ))
            .bind(user.0)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?,
            None => sqlx::query_as(&format!(
                "SELECT {} FROM events WHERE visitor = $1 ORDER BY id DESC LIMIT $2",
                EventRow::COLUMNS
            ))
            .bind(visitor)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?,
        };
        events(rows)
    }

    async fn compact_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One compaction at a time (two would fold the same rows twice).
        sqlx::query("SELECT pg_advisory_xact_lock(7401)").execute(&mut *tx).await.map_err(backend)?;
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events WHERE at < $1")
            .bind(before)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(last) = last else { return Ok(0) };
        sqlx::query(
            "INSERT INTO events (visitor, user_id, kind, target_kind, target_id, value, at)
             SELECT visitor, user_id, kind, target_kind, target_id, SUM(value), MAX(at) FROM events
             WHERE id <= $1 AND at < $2
             GROUP BY visitor, user_id, kind, target_kind, target_id",
        )
        .bind(last)
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let folded = sqlx::query("DELETE FROM events WHERE id <= $1 AND at < $2")
            .bind(last)
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        tx.commit().await.map_err(backend)?;
        Ok(folded)
    }

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        let row: WebhookRow = sqlx::query_as(
            "INSERT INTO webhooks (url, secret, events, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, url, secret, events, created_at",
        )
        .bind(&new.url)
        .bind(&new.secret)
        .bind(new.events.join(","))
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.into())
    }

    async fn webhook(&self, id: i64) -> Result<Webhook> {
        let row: Option<WebhookRow> =
            sqlx::query_as("SELECT id, url, secret, events, created_at FROM webhooks WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.ok_or(StoreError::NotFound("webhook"))?.into())
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let rows: Vec<WebhookRow> =
            sqlx::query_as("SELECT id, url, secret, events, created_at FROM webhooks ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&self.pool).await.map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        Ok(())
    }
    async fn create_replay(&self, new: NewReplay) -> Result<Replay> {
        let row: ReplayRow = sqlx::query_as(
            "INSERT INTO replays (channel_id, title, node, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING *",
        )
        .bind(new.channel_id.0)
        .bind(&new.title)
        .bind(&new.node)
        .bind(new.started_at)
        .bind(new.started_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| foreign_key_as(e, "channel"))?;
        row.try_into()
    }

    async fn replay(&self, id: ReplayId) -> Result<Replay> {
        let row: Option<ReplayRow> = sqlx::query_as("SELECT * FROM replays WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.ok_or(StoreError::NotFound("replay"))?.try_into()
    }

    async fn list_replays(&self, query: &ReplayQuery) -> Result<Vec<Replay>> {
        let rows: Vec<ReplayRow> = sqlx::query_as(
            "SELECT * FROM replays
             WHERE ($1 IS NULL OR channel_id = $2) AND ($3 IS NULL OR status = $4) AND ($5 OR hidden = FALSE)
             ORDER BY started_at DESC, id DESC LIMIT $6 OFFSET $7",
        )
        .bind(query.channel.map(|c| c.0))
        .bind(query.channel.map(|c| c.0))
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.status.map(|s| s.as_str()))
        .bind(query.include_hidden)
        .bind(query.page.limit)
        .bind(query.page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn add_replay_segment(&self, id: ReplayId, segment: ReplaySegment, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO replay_segments (replay_id, rendition, msn, init_version, discontinuity, duration_ms, bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (replay_id, rendition, msn) DO NOTHING",
        )
        .bind(id.0)
        .bind(segment.rendition.as_deref().unwrap_or(""))
        .bind(segment.msn)
        .bind(segment.init_version)
        .bind(segment.discontinuity)
        .bind(segment.duration_ms)
        .bind(segment.bytes)
        .execute(&mut *tx)
        .await
        .map_err(|e| foreign_key_as(e, "replay"))?
        .rows_affected();
        let (duration, bytes, count) = match (inserted, &segment.rendition) {
            (1, None) => (segment.duration_ms, segment.bytes, 1),
            (1, Some(_)) => (0, segment.bytes, 0),
            _ => (0, 0, 0),
        };
        let updated = sqlx::query(
            "UPDATE replays SET duration_ms = duration_ms + $1, bytes = bytes + $2, segments = segments + $3,
                heartbeat_at = $4 WHERE id = $5",
        )
        .bind(duration)
        .bind(bytes)
        .bind(count)
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound("replay"));
        }
        tx.commit().await.map_err(backend)
    }

    async fn add_replay_bytes(&self, id: ReplayId, bytes: i64, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query("UPDATE replays SET bytes = bytes + $1, heartbeat_at = $2 WHERE id = $3")
            .bind(bytes)
            .bind(now)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("replay"));
        }
        Ok(())
    }

    async fn replay_segments(&self, id: ReplayId) -> Result<Vec<ReplaySegment>> {
        let rows: Vec<ReplaySegmentRow> = sqlx::query_as(
            "SELECT rendition, msn, init_version, discontinuity, duration_ms, bytes FROM replay_segments
             WHERE replay_id = $1 ORDER BY rendition, msn",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn set_replay_thumbnail(&self, id: ReplayId, key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE replays SET thumbnail_key = $1, thumbnails = thumbnails + 1 WHERE id = $2")
            .bind(key)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("replay"));
        }
        Ok(())
    }

    async fn record_picture_labels(&self, labels: &PictureLabels) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO picture_labels (replay_id, channel_id, thumbnail_key, taken_at, labels, cpu_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (replay_id, thumbnail_key) DO NOTHING",
        )
        .bind(labels.replay_id.0)
        .bind(labels.channel_id.0)
        .bind(&labels.thumbnail_key)
        .bind(labels.taken_at)
        .bind(label_list(&labels.labels))
        .bind(labels.cpu_ms.max(0))
        .execute(&self.pool)
        .await
        .map_err(|err| foreign_key_as(err, "replay"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn picture_labels(&self, replay: ReplayId) -> Result<Vec<PictureLabels>> {
        let rows: Vec<PictureLabelsRow> = sqlx::query_as(&format!(
            "SELECT {} FROM picture_labels WHERE replay_id = $1 ORDER BY taken_at, thumbnail_key",
            PictureLabelsRow::COLUMNS
        ))
        .bind(replay.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn current_picture_labels(&self, channel: ChannelId) -> Result<Option<PictureLabels>> {
        let row: Option<PictureLabelsRow> = sqlx::query_as(&format!(
            "SELECT {} FROM picture_labels
             WHERE channel_id = $1 AND replay_id IN (SELECT id FROM replays WHERE channel_id = $1 AND status = 'recording')
             ORDER BY taken_at DESC, thumbnail_key DESC LIMIT 1",
            PictureLabelsRow::COLUMNS
        ))
        .bind(channel.0)
        .bind(channel.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn finish_replay(&self, id: ReplayId, ended_at: DateTime<Utc>, products: &[ProductId]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE replays SET status = 'ready', ended_at = $1, products = $2 WHERE id = $3 AND status = 'recording'",
        )
        .bind(ended_at)
        .bind(product_list(products))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        self.replay(id).await.map(|_| false)
    }

    async fn set_replay_hidden(&self, id: ReplayId, hidden: bool) -> Result<Replay> {
        let row: Option<ReplayRow> = sqlx::query_as("UPDATE replays SET hidden = $1 WHERE id = $2 RETURNING *")
            .bind(hidden)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.ok_or(StoreError::NotFound("replay"))?.try_into()
    }

    async fn delete_replay(&self, id: ReplayId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM picture_labels WHERE replay_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM replay_segments WHERE replay_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done =
            sqlx::query("DELETE FROM replays WHERE id = $1").bind(id.0).execute(&mut *tx).await.map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("replay"));
        }
        tx.commit().await.map_err(backend)
    }
    async fn add_chat_message(&self, new: NewChatMessage) -> Result<ChatMessage> {
        let row: ChatMessageRow = sqlx::query_as(&format!(
            "INSERT INTO chat_messages (channel_id, user_id, author, text, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING {CHAT_COLUMNS}"
        ))
        .bind(new.channel_id.0)
        .bind(new.user_id.0)
        .bind(&new.author)
        .bind(&new.text)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| foreign_key_as(e, "channel or user"))?;
        Ok(row.into())
    }

    async fn recent_chat(&self, channel: ChannelId, limit: i64) -> Result<Vec<ChatMessage>> {
        let mut rows: Vec<ChatMessageRow> = sqlx::query_as(&format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages WHERE channel_id = $1 AND deleted_at IS NULL
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(channel.0)
        .bind(limit.clamp(0, Page::MAX_LIMIT))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.reverse();
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn chat_between(
        &self,
        channel: ChannelId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChatMessage>> {
        let rows: Vec<ChatMessageRow> = sqlx::query_as(&format!(
            "SELECT {CHAT_COLUMNS} FROM chat_messages
             WHERE channel_id = $1 AND created_at >= $2 AND created_at < $3 AND id > $4 AND deleted_at IS NULL
             ORDER BY id LIMIT $5"
        ))
        .bind(channel.0)
        .bind(from)
        .bind(to)
        .bind(after)
        .bind(limit.clamp(0, Page::MAX_LIMIT))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_chat_message(&self, channel: ChannelId, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chat_messages SET deleted_at = $1 WHERE id = $2 AND channel_id = $3 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(channel.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM chat_messages WHERE id = $1 AND channel_id = $2")
            .bind(id)
            .bind(channel.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        exists.map(|_| false).ok_or(StoreError::NotFound("chat message"))
    }
    async fn restrict_chat(
        &self,
        channel: ChannelId,
        user: UserId,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_restrictions (channel_id, user_id, until, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET until = excluded.until, created_at = excluded.created_at",
        )
        .bind(channel.0)
        .bind(user.0)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| foreign_key_as(e, "channel or user"))?;
        Ok(())
    }

    async fn lift_chat_restriction(&self, channel: ChannelId, user: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chat_restrictions WHERE channel_id = $1 AND user_id = $2")
            .bind(channel.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn chat_restrictions(&self, channel: ChannelId, now: DateTime<Utc>) -> Result<Vec<ChatRestriction>> {
        let rows: Vec<ChatRestrictionRow> = sqlx::query_as(
            "SELECT user_id, until FROM chat_restrictions
             WHERE channel_id = $1 AND (until IS NULL OR until > $2) ORDER BY user_id",
        )
        .bind(channel.0)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn add_pin(
        &self,
        channel: ChannelId,
        product: ProductId,
        pts: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Pin> {
        let row: PinRow = sqlx::query_as(
            "INSERT INTO pins (channel_id, product_id, pts, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, channel_id, product_id, pts, created_at",
        )
        .bind(channel.0)
        .bind(product.0)
        .bind(pts)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| foreign_key_as(e, "channel or product"))?;
        Ok(row.into())
    }

    async fn latest_pin(&self, channel: ChannelId) -> Result<Option<Pin>> {
        let row: Option<PinRow> = sqlx::query_as(
            "SELECT id, channel_id, product_id, pts, created_at FROM pins WHERE channel_id = $1
             ORDER BY pts DESC, id DESC LIMIT 1",
        )
        .bind(channel.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.map(Into::into))
    }

    async fn pins_between(&self, channel: ChannelId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Pin>> {
        let rows: Vec<PinRow> = sqlx::query_as(
            "SELECT id, channel_id, product_id, pts, created_at FROM pins
             WHERE channel_id = $1 AND pts >= $2 AND pts < $3 ORDER BY pts, id LIMIT 1000",
        )
        .bind(channel.0)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn start_deal(&self, new: NewDeal) -> Result<Deal> {
        let mut tx = self.begin_write().await?;
        let currency: Option<String> = sqlx::query_scalar(
            "UPDATE products SET stock = stock - $1 WHERE id = $2 AND status = 'active' AND stock >= $3 RETURNING currency",
        )
        .bind(new.listed)
        .bind(new.product_id.0)
        .bind(new.listed)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(currency) = currency else { return Err(Self::why_not_taken(&mut tx, new.product_id).await) };
        let row: DealRow = sqlx::query_as(&format!(
            "INSERT INTO deals (channel_id, product_id, price_minor, currency, listed, sold, per_customer,
                                starts_at, ends_at, status, node)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, 'running', $9) RETURNING {DEAL_COLUMNS}"
        ))
        .bind(new.channel_id.0)
        .bind(new.product_id.0)
        .bind(new.price_minor)
        .bind(currency)
        .bind(new.listed)
        .bind(new.per_customer)
        .bind(new.starts_at)
        .bind(new.ends_at)
        .bind(&new.node)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.is_foreign_key_violation() => StoreError::NotFound("channel"),
            _ => unique_as(e, "running deal"),
        })?;
        tx.commit().await.map_err(backend)?;
        row.try_into()
    }

    async fn deal(&self, id: DealId) -> Result<Deal> {
        let row: Option<DealRow> = sqlx::query_as(&format!("SELECT {DEAL_COLUMNS} FROM deals WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.ok_or(StoreError::NotFound("deal"))?.try_into()
    }

    async fn running_deals(&self, node: Option<&str>) -> Result<Vec<Deal>> {
        let rows: Vec<DealRow> = sqlx::query_as(&format!(
            "SELECT {DEAL_COLUMNS} FROM deals WHERE status = 'running' AND ($1::text IS NULL OR node = $1) ORDER BY id"
        ))
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn running_deal(&self, channel: ChannelId) -> Result<Option<Deal>> {
        let row: Option<DealRow> =
            sqlx::query_as(&format!("SELECT {DEAL_COLUMNS} FROM deals WHERE channel_id = $1 AND status = 'running'"))
                .bind(channel.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn deal_sales(&self, id: DealId) -> Result<Vec<DealSale>> {
        let rows: Vec<DealSaleRow> = sqlx::query_as(
            "SELECT o.id AS order_id, o.user_id, o.idempotency_key, o.request_hash, i.quantity
             FROM order_items i JOIN orders o ON o.id = i.order_id
             WHERE i.deal_id = $1 ORDER BY o.id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn record_deal_orders(&self, id: DealId, orders: &[NewDealOrder]) -> Result<Vec<DealOrderOutcome>> {
        let mut tx = self.begin_write().await?;
        let deal: Option<DealRow> =
            // Locked: a second owner during a failover waits here, so the per-customer limit below
            // counts the first one's orders.
            sqlx::query_as(&format!("SELECT {DEAL_COLUMNS} FROM deals WHERE id = $1 AND status = 'running' FOR UPDATE"))
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let deal: Deal = deal.ok_or(StoreError::DealNotRunning(id))?.try_into()?;
        let name: String = sqlx::query_scalar("SELECT name FROM products WHERE id = $1")
            .bind(deal.product_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let mut outcomes = Vec::with_capacity(orders.len());
        let mut units = 0i64;
        for new in orders {
            // The per-customer limit, kept by the database too: an owner's memory is not the only
            // guard (two owners during a failover). A retried key is answered below as before.
            let bought: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i JOIN orders o ON o.id = i.order_id
                 WHERE i.deal_id = $1 AND o.user_id = $2
                   AND NOT EXISTS (SELECT 1 FROM orders k WHERE k.user_id = $3 AND k.idempotency_key = $4)",
            )
            .bind(id.0)
            .bind(new.user_id.0)
            .bind(new.user_id.0)
            .bind(&new.idempotency_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            if bought + new.quantity > deal.per_customer {
                outcomes.push(DealOrderOutcome::OverLimit { bought });
                continue;
            }
            let inserted: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
                "INSERT INTO orders
                   (user_id, idempotency_key, request_hash, status, total_minor, currency, channel_id, created_at, updated_at)
                 VALUES ($1, $2, $3, 'placed', $4, $5, $6, $7, $8)
                 ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id, created_at",
            )
            .bind(new.user_id.0)
            .bind(&new.idempotency_key)
            .bind(&new.request_hash)
            .bind(deal.price_minor.saturating_mul(new.quantity))
            .bind(deal.currency.code())
            .bind(deal.channel_id.0)
            .bind(new.created_at)
            .bind(new.created_at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            let Some((order_id, created_at)) = inserted else {
                let (order_id, request_hash): (i64, String) =
                    sqlx::query_as("SELECT id, request_hash FROM orders WHERE user_id = $1 AND idempotency_key = $2")
                        .bind(new.user_id.0)
                        .bind(&new.idempotency_key)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend)?;
                outcomes.push(DealOrderOutcome::Existing { order_id: OrderId(order_id), request_hash });
                continue;
            };
            sqlx::query(
                "INSERT INTO order_items (order_id, product_id, name, quantity, unit_price_minor, deal_id)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(order_id)
            .bind(deal.product_id.0)
            .bind(&name)
            .bind(new.quantity)
            .bind(deal.price_minor)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            units += new.quantity;
            queue_order_placed(&mut tx, order_id, created_at).await?;
            outcomes.push(DealOrderOutcome::Created(deal_order(order_id, &deal, name.clone(), new, created_at)?));
        }
        let counted = sqlx::query(
            "UPDATE deals SET sold = sold + $1 WHERE id = $2 AND status = 'running' AND sold + $1 <= listed",
        )
        .bind(units)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if counted.rows_affected() != 1 {
            // Another transaction ended the deal, or the batch would sell more than listed.
            let status: String = sqlx::query_scalar("SELECT status FROM deals WHERE id = $1")
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            return Err(if status == "running" {
                StoreError::OutOfStock(deal.product_id)
            } else {
                StoreError::DealNotRunning(id)
            });
        }
        tx.commit().await.map_err(backend)?;
        Ok(outcomes)
    }

    async fn end_deal(&self, id: DealId, now: DateTime<Utc>) -> Result<Deal> {
        let mut tx = self.begin_write().await?;
        let ended: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE deals SET status = 'ended', ended_at = $1 WHERE id = $2 AND status = 'running'
             RETURNING product_id, listed - sold",
        )
        .bind(now)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some((product, unsold)) = ended {
            sqlx::query("UPDATE products SET stock = stock + $1 WHERE id = $2")
                .bind(unsold)
                .bind(product)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let row: Option<DealRow> = sqlx::query_as(&format!("SELECT {DEAL_COLUMNS} FROM deals WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let deal = row.ok_or(StoreError::NotFound("deal"))?.try_into()?;
        tx.commit().await.map_err(backend)?;
        Ok(deal)
    }
}

/// Queues the order's `order.placed` notice in its transaction ([`olive_store_sql::QUEUE_ORDER_PLACED`]).
async fn queue_order_placed(conn: &mut sqlx::PgConnection, order_id: i64, at: DateTime<Utc>) -> Result<()> {
    let (payload, dedupe) = olive_store_sql::order_placed_notice(order_id);
    let query = sqlx::query(olive_store_sql::QUEUE_ORDER_PLACED).bind(olive_store::ORDER_PLACED_JOB).bind(payload);
    let query = query.bind(dedupe).bind(olive_store::ORDER_PLACED_ATTEMPTS).bind(at);
    query.execute(conn).await.map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A new, empty, migrated database on the server named by `OLIVE_TEST_DATABASE_URL`.
    async fn fresh() -> Option<Arc<dyn Store>> {
        let url = crate::test_support::fresh_database("olive_store_test").await?;
        Some(Arc::new(PostgresStore::open(&url).await.unwrap()))
    }

    olive_store::store_tests!(fresh);
}
