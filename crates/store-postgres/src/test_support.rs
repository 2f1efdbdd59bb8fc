//! For tests only (feature `test-support`): a fresh, empty database on the PostgreSQL server named
//! by `OLIVE_TEST_DATABASE_URL`, for the store suite here and for the black-box tests of `olive`.
//! Databases left by earlier runs are dropped the first time a process asks.

use sqlx::postgres::PgPool;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The URL of a new database named `{prefix}_{pid}_{n}`, or `None` (with a printed notice) when
/// `OLIVE_TEST_DATABASE_URL` is not set.
pub async fn fresh_database(prefix: &str) -> Option<String> {
    let Ok(base) = std::env::var("OLIVE_TEST_DATABASE_URL") else {
        eprintln!("OLIVE_TEST_DATABASE_URL is not set: skipping a PostgreSQL test");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    static SWEPT: AtomicBool = AtomicBool::new(false);
    let pid = std::process::id();
    let name = format!("{prefix}_{pid}_{}", N.fetch_add(1, Ordering::Relaxed));
    let admin = PgPool::connect(&base).await.expect("connect to OLIVE_TEST_DATABASE_URL");
    if !SWEPT.swap(true, Ordering::SeqCst) {
        let stale: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE $2")
                .bind(format!("{prefix}_%"))
                .bind(format!("{prefix}_{pid}_%"))
                .fetch_all(&admin)
                .await
                .expect("list databases");
        for db in stale {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&admin).await;
        }
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&admin).await.expect("drop database");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create database");
    admin.close().await;
    Some(with_database(&base, &name))
}

/// `base` (a `postgres://` URL) naming database `name` instead of its own.
fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = base.split_once('?').map_or((base, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = without_query.split_once("://").unwrap_or(("postgres", without_query));
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_or_adds_the_database() {
        assert_eq!(super::with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(super::with_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
        assert_eq!(super::with_database("postgresql://h/db?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
    }
}
