//! The embedded engine: SQLite in WAL mode, one file under the data directory. The statements are
//! `olive-store-sql`'s; this crate holds what only SQLite has.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection and
//! every write transaction starts with `BEGIN IMMEDIATE` (taking the write lock up front, so a
//! read-then-write transaction never fails with a busy snapshot when another process — `olive
//! admin` beside `olive serve` — wrote in between). With writers taking turns, no statement needs
//! a row lock. Reads use a separate read-only pool and never wait for writers.

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

use olive_store::{Result, StoreError};
use olive_store_sql::{backend, Engine, SqlStore};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqliteEngine>;

/// Opens (creating if needed) the database at a `sqlite://path` URL and runs migrations.
pub async fn open(url: &str) -> Result<SqliteStore> {
    Ok(SqlStore::new(SqliteEngine::open(url).await?))
}

/// A SQLite database: one writer, several readers.
pub struct SqliteEngine {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteEngine {
    async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad sqlite url: {e}")))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().create_if_missing(true))
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations")
            .run(&write)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        let read =
            SqlitePoolOptions::new().max_connections(8).connect_with(options.read_only(true)).await.map_err(backend)?;
        Ok(SqliteEngine { read, write })
    }

    /// Writes a consistent copy of the whole database to `path` (which must not exist) while
    /// others keep reading and writing: `VACUUM INTO` reads one snapshot (WAL readers do not block
    /// writers) and writes it as a compact, standalone database file.
    pub async fn snapshot_into(&self, path: &std::path::Path) -> Result<()> {
        let path = path.to_str().ok_or_else(|| StoreError::Backend(format!("{} is not UTF-8", path.display())))?;
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.write).await.map_err(backend)?;
        Ok(())
    }
}

impl Engine for SqliteEngine {
    type Db = Sqlite;
    const NAME: &'static str = "sqlite";
    // One writer at a time holds the whole database: nothing to lock row by row.
    const LOCK_ROWS: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    fn writer(&self) -> &SqlitePool {
        &self.write
    }

    fn begin_write(&self) -> impl Future<Output = sqlx::Result<Transaction<'static, Sqlite>>> + Send {
        self.write.begin_with("BEGIN IMMEDIATE")
    }

    async fn serialise(_tx: &mut Transaction<'static, Sqlite>, _lock: i64) -> sqlx::Result<()> {
        // `BEGIN IMMEDIATE` already made this transaction the only writer.
        Ok(())
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn pool_occupancy(&self) -> (u32, u32) {
        let size = self.read.size() + self.write.size();
        (size, u32::try_from(self.read.num_idle() + self.write.num_idle()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use olive_store::Store;
    use std::sync::Arc;

    async fn fresh() -> Option<Arc<dyn Store>> {
        Some(Arc::new(crate::test_support::temporary().await))
    }

    olive_store::store_tests!(fresh);
}
