//! Registered webhooks.

use super::*;

#[async_trait]
impl<E> WebhookStore for SqlStore<E>
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
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        let row: WebhookRow = sqlx::query_as(
            "INSERT INTO webhooks (url, secret, events, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, url, secret, events, created_at",
        )
        .bind(&new.url)
        .bind(&new.secret)
        .bind(new.events.join(","))
        .bind(new.created_at)
        .fetch_one(self.engine.writer())
        .await
        .map_err(backend)?;
        Ok(row.into())
    }

    async fn webhook(&self, id: i64) -> Result<Webhook> {
        let row: Option<WebhookRow> =
            sqlx::query_as("SELECT id, url, secret, events, created_at FROM webhooks WHERE id = $1")
                .bind(id)
                .fetch_optional(self.engine.reader())
                .await
                .map_err(backend)?;
        Ok(row.ok_or(StoreError::NotFound("webhook"))?.into())
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let rows: Vec<WebhookRow> =
            sqlx::query_as("SELECT id, url, secret, events, created_at FROM webhooks ORDER BY id")
                .fetch_all(self.engine.reader())
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(self.engine.writer())
            .await
            .map_err(backend)?;
        if E::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        Ok(())
    }
}
