//! Usage per day, channel and meter, for the cost report.

use super::*;

#[async_trait]
impl<E> UsageStore for SqlStore<E>
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
    async fn add_usage(&self, rows: &[Usage]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
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
        .fetch_all(self.engine.reader())
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
        .fetch_all(self.engine.reader())
        .await
        .map_err(backend)?;
        Ok(usage_totals(rows))
    }
}
