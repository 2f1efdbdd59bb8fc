//! Channels, stream keys and line-ups.

use super::*;

#[async_trait]
impl<E> ChannelStore for SqlStore<E>
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
        .fetch_one(self.engine.writer())
        .await
        .map_err(|e| foreign_key_as(e, "user"))?;
        row.try_into()
    }

    async fn channel(&self, id: ChannelId) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as("SELECT * FROM channels WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.engine.reader())
            .await
            .map_err(backend)?;
        row.ok_or(StoreError::NotFound("channel"))?.try_into()
    }

    async fn list_channels(&self) -> Result<Vec<Channel>> {
        let rows: Vec<ChannelRow> = sqlx::query_as("SELECT * FROM channels ORDER BY id")
            .fetch_all(self.engine.reader())
            .await
            .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_channel(&self, id: ChannelId, patch: ChannelPatch) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as(
            "UPDATE channels SET
                title = COALESCE($1, title), description = COALESCE($2, description),
                scheduled_at = CASE WHEN $3 THEN $4 ELSE scheduled_at END,
                status = COALESCE($5, status), channel_type = COALESCE($6, channel_type), thumbnail_interval_s = COALESCE($7, thumbnail_interval_s),
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
        .fetch_optional(self.engine.writer())
        .await
        .map_err(backend)?;
        row.ok_or(StoreError::NotFound("channel"))?.try_into()
    }

    async fn set_stream_key_hash(&self, id: ChannelId, hash: StreamKeyHash) -> Result<()> {
        let done = sqlx::query("UPDATE channels SET stream_key_hash = $1 WHERE id = $2")
            .bind(&hash.0[..])
            .bind(id.0)
            .execute(self.engine.writer())
            .await
            .map_err(|e| unique_as(e, "stream key"))?;
        if E::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound("channel"));
        }
        Ok(())
    }

    async fn channel_by_stream_key_hash(&self, hash: &StreamKeyHash) -> Result<Option<Channel>> {
        let row: Option<ChannelRow> = sqlx::query_as("SELECT * FROM channels WHERE stream_key_hash = $1")
            .bind(&hash.0[..])
            .fetch_optional(self.engine.reader())
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
                .fetch_all(self.engine.reader())
                .await
                .map_err(backend)?;
        Ok(ids.into_iter().map(ProductId).collect())
    }
}
