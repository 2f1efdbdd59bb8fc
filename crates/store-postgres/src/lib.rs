//! The scale-out engine: PostgreSQL, shared by every node. The statements are `olive-store-sql`'s;
//! this crate holds what only PostgreSQL needs.
//!
//! Invariants are kept by the database, not by process-local locks: stock is taken with a
//! conditional `UPDATE … WHERE stock >= n` whose row lock serialises concurrent buyers, the rows a
//! transaction reads and then changes are locked as it reads them ([`Engine::LOCK_ROWS`]),
//! claimers of jobs pass over each other's rows ([`Engine::SKIP_LOCKED`]), and work that must not
//! run twice at once takes a transaction-scoped advisory lock ([`Engine::serialise`]).

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

use olive_store::{Result, StoreError};
use olive_store_sql::{backend, Engine, SqlStore};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Postgres, Transaction};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<PostgresEngine>;

/// Connects to a `postgres://` URL and runs migrations.
pub async fn open(url: &str) -> Result<PostgresStore> {
    Ok(SqlStore::new(PostgresEngine::open(url).await?))
}

/// A PostgreSQL database: one pool for reads and writes.
pub struct PostgresEngine {
    pool: PgPool,
}

impl PostgresEngine {
    async fn open(url: &str) -> Result<Self> {
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
        Ok(PostgresEngine { pool })
    }
}

impl Engine for PostgresEngine {
    type Db = Postgres;
    const NAME: &'static str = "postgres";
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn begin_write(&self) -> impl Future<Output = sqlx::Result<Transaction<'static, Postgres>>> + Send {
        self.pool.begin()
    }

    async fn serialise(tx: &mut Transaction<'static, Postgres>, lock: i64) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock).execute(&mut **tx).await?;
        Ok(())
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn pool_occupancy(&self) -> (u32, u32) {
        (self.pool.size(), u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use olive_store::Store;
    use std::sync::Arc;

    /// A new, empty, migrated database on the server named by `OLIVE_TEST_DATABASE_URL`.
    async fn fresh() -> Option<Arc<dyn Store>> {
        let url = crate::test_support::fresh_database("olive_store_test").await?;
        Some(Arc::new(super::open(&url).await.unwrap()))
    }

    olive_store::store_tests!(fresh);
}
