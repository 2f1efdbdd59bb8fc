//! Recordings, replays and what their pictures showed.

use super::*;

#[async_trait]
impl<E> ReplayStore for SqlStore<E>
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
        .fetch_one(self.engine.writer())
        .await
        .map_err(|e| foreign_key_as(e, "channel"))?;
        row.try_into()
    }

    async fn replay(&self, id: ReplayId) -> Result<Replay> {
        let row: Option<ReplayRow> = sqlx::query_as("SELECT * FROM replays WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.engine.reader())
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
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn add_replay_segment(&self, id: ReplayId, segment: ReplaySegment, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let inserted = E::rows_affected(&sqlx::query(
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
        .map_err(|e| foreign_key_as(e, "replay"))?);
        let (duration, bytes, count) = match (inserted, &segment.rendition) {
            (1, None) => (segment.duration_ms, segment.bytes, 1),
            (1, Some(_)) => (0, segment.bytes, 0),
            _ => (0, 0, 0),
        };
        let updated = E::rows_affected(
            &sqlx::query(
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
            .map_err(backend)?,
        );
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
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        if E::rows_affected(&done) == 0 {
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
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn set_replay_thumbnail(&self, id: ReplayId, key: &str) -> Result<()> {
        let done = sqlx::query("UPDATE replays SET thumbnail_key = $1, thumbnails = thumbnails + 1 WHERE id = $2")
            .bind(key)
            .bind(id.0)
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        if E::rows_affected(&done) == 0 {
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
        .execute(self.engine.writer())
        .await
        .map_err(|err| foreign_key_as(err, "replay"))?;
        Ok(E::rows_affected(&done) == 1)
    }

    async fn picture_labels(&self, replay: ReplayId) -> Result<Vec<PictureLabels>> {
        let rows: Vec<PictureLabelsRow> = sqlx::query_as(&format!(
            "SELECT {} FROM picture_labels WHERE replay_id = $1 ORDER BY taken_at, thumbnail_key",
            PictureLabelsRow::COLUMNS
        ))
        .bind(replay.0)
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn current_picture_labels(&self, channel: ChannelId) -> Result<Option<PictureLabels>> {
        let row: Option<PictureLabelsRow> = sqlx::query_as(&format!(
            "SELECT {} FROM picture_labels
             WHERE channel_id = $1 AND replay_id IN (SELECT id FROM replays WHERE channel_id = $2 AND status = 'recording')
             ORDER BY taken_at DESC, thumbnail_key DESC LIMIT 1",
            PictureLabelsRow::COLUMNS
        ))
        .bind(channel.0)
        .bind(channel.0)
        .fetch_optional(self.engine.reader())
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
        .execute(self.engine.writer())
        .await
        .map_err(backend)?;
        if E::rows_affected(&done) == 1 {
            return Ok(true);
        }
        self.replay(id).await.map(|_| false)
    }

    async fn set_replay_hidden(&self, id: ReplayId, hidden: bool) -> Result<Replay> {
        let row: Option<ReplayRow> = sqlx::query_as("UPDATE replays SET hidden = $1 WHERE id = $2 RETURNING *")
            .bind(hidden)
            .bind(id.0)
            .fetch_optional(self.engine.writer())
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
        if E::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound("replay"));
        }
        tx.commit().await.map_err(backend)
    }
}
