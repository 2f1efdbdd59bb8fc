//! The durable job queue.

use super::*;

#[async_trait]
impl<E> JobStore for SqlStore<E>
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
        .fetch_optional(self.engine.writer())
        .await
        .map_err(backend)?;
        let row = match inserted {
            Some(row) => row,
            None => sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE dedupe_key = $1"))
                .bind(&new.dedupe_key)
                .fetch_one(self.engine.writer())
                .await
                .map_err(backend)?,
        };
        row.try_into()
    }

    async fn claim_job(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Option<Job>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE jobs SET status = 'dead', last_error = 'lease expired on the last attempt', updated_at = $1
             WHERE status = 'running' AND run_at <= $2 AND attempts >= max_attempts",
        )
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, run_at = $1, updated_at = $2
             WHERE id = (SELECT id FROM jobs WHERE status IN ('queued', 'running') AND run_at <= $3
                         AND attempts < max_attempts ORDER BY run_at, id LIMIT 1{skip_locked})
             RETURNING {JOB_COLUMNS}",
            skip_locked = E::SKIP_LOCKED
        ))
        .bind(lease_until)
        .bind(now)
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
        .execute(self.engine.writer())
        .await
        .map_err(backend)?;
        Ok(E::rows_affected(&done) == 1)
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
        .execute(self.engine.writer())
        .await
        .map_err(backend)?;
        Ok(E::rows_affected(&done) == 1)
    }

    async fn list_jobs(&self, status: Option<JobStatus>, page: Page) -> Result<Vec<Job>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) ORDER BY id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(status.map(|s| s.as_str()))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
