//! Orders and live deals: the statements that take and give back stock.

use super::*;

#[async_trait]
impl<E> OrderStore for SqlStore<E>
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
    async fn place_order(&self, new: NewOrder) -> Result<PlacedOrder> {
        let mut tx = self.begin_write().await?;
        // Claim the key first: a concurrent request with the same key (on PostgreSQL, where
        // writers run at once) blocks here until this transaction ends, then finds the committed
        // order, or the key free again after a rollback.
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
                    .fetch_one(self.engine.writer())
                    .await
                    .map_err(backend)?;
            return replay(hash == new.request_hash, self.order_from_writer(OrderId(id)).await?);
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
        let sql = format!(
            "INSERT INTO order_items (order_id, product_id, name, quantity, unit_price_minor) VALUES {}",
            values(priced.items.len(), 5)
        );
        let insert = priced.items.iter().fold(sqlx::query(&sql), |q, item| {
            q.bind(order_id).bind(item.product_id.0).bind(&item.name).bind(item.quantity).bind(item.unit_price_minor)
        });
        insert.execute(&mut *tx).await.map_err(backend)?;
        for item in &priced.items {
            let (product, quantity) = (item.product_id, item.quantity);
            Self::record_purchase(&mut tx, &new.visitor, new.user_id, product, quantity, new.created_at).await?;
        }
        let notice = OrderPlacedNotice {
            order_id: OrderId(order_id),
            stock_changed: priced.items.iter().map(|i| i.product_id).collect(),
        };
        let dedupe = format!("{ORDER_PLACED_JOB}/{order_id}");
        Self::queue_in(&mut tx, ORDER_PLACED_JOB, payload(&notice)?, dedupe, false, new.created_at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(PlacedOrder::Created(self.order_from_writer(OrderId(order_id)).await?))
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.engine.reader())
            .await
            .map_err(backend)?;
        let row = row.ok_or(StoreError::NotFound("order"))?;
        Ok(self.orders_with_items(vec![row], self.engine.reader()).await?.remove(0))
    }

    async fn orders_for_user(&self, user: UserId, page: Page) -> Result<Vec<Order>> {
        let rows: Vec<OrderRow> =
            sqlx::query_as("SELECT * FROM orders WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3")
                .bind(user.0)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(self.engine.reader())
                .await
                .map_err(backend)?;
        self.orders_with_items(rows, self.engine.reader()).await
    }

    async fn channel_sales(&self, channel: ChannelId, since: DateTime<Utc>) -> Result<ChannelSales> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT currency, COUNT(*), CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) FROM orders
             WHERE channel_id = $1 AND created_at >= $2 AND status <> 'cancelled'
             GROUP BY currency ORDER BY currency",
        )
        .bind(channel.0)
        .bind(since)
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        channel_sales(rows)
    }

    async fn cancel_order(&self, id: OrderId, user: UserId, now: DateTime<Utc>) -> Result<Order> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar(&format!("SELECT status FROM orders WHERE id = $1 AND user_id = $2{}", E::LOCK_ROWS))
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
        let products: Vec<i64> = sqlx::query_scalar("SELECT product_id FROM order_items WHERE order_id = $1")
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let notice = StockChangedNotice { products: products.into_iter().map(ProductId).collect() };
        let dedupe = format!("order.cancelled/{id}");
        Self::queue_in(&mut tx, STOCK_CHANGED_JOB, payload(&notice)?, dedupe, false, now).await?;
        tx.commit().await.map_err(backend)?;
        self.order_from_writer(id).await
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
            .fetch_optional(self.engine.reader())
            .await
            .map_err(backend)?;
        row.ok_or(StoreError::NotFound("deal"))?.try_into()
    }

    async fn running_deals(&self, node: Option<&str>) -> Result<Vec<Deal>> {
        let rows: Vec<DealRow> = sqlx::query_as(&format!(
            "SELECT {DEAL_COLUMNS} FROM deals WHERE status = 'running' AND (CAST($1 AS TEXT) IS NULL OR node = $1) ORDER BY id"
        ))
        .bind(node)
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn running_deal(&self, channel: ChannelId) -> Result<Option<Deal>> {
        let row: Option<DealRow> =
            sqlx::query_as(&format!("SELECT {DEAL_COLUMNS} FROM deals WHERE channel_id = $1 AND status = 'running'"))
                .bind(channel.0)
                .fetch_optional(self.engine.reader())
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
        .fetch_all(self.engine.writer())
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn record_deal_orders(&self, id: DealId, orders: &[NewDealOrder]) -> Result<Vec<DealOrderOutcome>> {
        let mut tx = self.begin_write().await?;
        let deal: Option<DealRow> =
                        // Locked: a second owner during a failover waits here, so the per-customer limit below
            // counts the first one's orders.
            sqlx::query_as(&format!("SELECT {DEAL_COLUMNS} FROM deals WHERE id = $1 AND status = 'running'{}", E::LOCK_ROWS))
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
            Self::record_purchase(&mut tx, &new.visitor, new.user_id, deal.product_id, new.quantity, created_at)
                .await?;
            // The deal took its product's stock when it started: only webhooks are left to do.
            let notice = OrderPlacedNotice { order_id: OrderId(order_id), stock_changed: Vec::new() };
            let dedupe = format!("{ORDER_PLACED_JOB}/{order_id}");
            Self::queue_in(&mut tx, ORDER_PLACED_JOB, payload(&notice)?, dedupe, true, created_at).await?;
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
        if E::rows_affected(&counted) != 1 {
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
