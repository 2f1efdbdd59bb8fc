//! Chat, its moderation, and product pins.

use super::*;

#[async_trait]
impl<E> RoomStore for SqlStore<E>
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
        .fetch_one(self.engine.writer())
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
        .fetch_all(self.engine.reader())
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
        .fetch_all(self.engine.reader())
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
        .execute(self.engine.writer())
        .await
        .map_err(backend)?;
        if E::rows_affected(&done) == 1 {
            return Ok(true);
        }
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM chat_messages WHERE id = $1 AND channel_id = $2")
            .bind(id)
            .bind(channel.0)
            .fetch_optional(self.engine.writer())
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
        .execute(self.engine.writer())
        .await
        .map_err(|e| foreign_key_as(e, "channel or user"))?;
        Ok(())
    }

    async fn lift_chat_restriction(&self, channel: ChannelId, user: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chat_restrictions WHERE channel_id = $1 AND user_id = $2")
            .bind(channel.0)
            .bind(user.0)
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        Ok(E::rows_affected(&done) == 1)
    }

    async fn chat_restrictions(&self, channel: ChannelId, now: DateTime<Utc>) -> Result<Vec<ChatRestriction>> {
        let rows: Vec<ChatRestrictionRow> = sqlx::query_as(
            "SELECT user_id, until FROM chat_restrictions
             WHERE channel_id = $1 AND (until IS NULL OR until > $2) ORDER BY user_id",
        )
        .bind(channel.0)
        .bind(now)
        .fetch_all(self.engine.reader())
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
        .fetch_one(self.engine.writer())
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
        .fetch_optional(self.engine.reader())
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
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
