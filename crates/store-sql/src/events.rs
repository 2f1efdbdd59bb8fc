//! The append-only event log the recommender trains on.

use super::*;

#[async_trait]
impl<E> EventStore for SqlStore<E>
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
    async fn record_events(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
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
                .fetch_all(self.engine.reader())
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
            .fetch_all(self.engine.reader())
            .await
            .map_err(backend)?,
            None => sqlx::query_as(&format!(
                "SELECT {} FROM events WHERE visitor = $1 ORDER BY id DESC LIMIT $2",
                EventRow::COLUMNS
            ))
            .bind(visitor)
            .bind(limit)
            .fetch_all(self.engine.reader())
            .await
            .map_err(backend)?,
        };
        events(rows)
    }

    async fn compact_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        E::serialise(&mut tx, locks::COMPACTION).await.map_err(backend)?;
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
        let folded = E::rows_affected(
            &sqlx::query("DELETE FROM events WHERE id <= $1 AND at < $2")
                .bind(last)
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(backend)?,
        );
        tx.commit().await.map_err(backend)?;
        Ok(folded)
    }
}
