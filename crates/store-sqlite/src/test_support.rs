//! For tests only (feature `test-support`): a fresh, migrated SQLite store in a directory of its
//! own under the system's temporary directory, for this crate's suite and every other crate's tests
//! (one helper, not one per crate).

use std::sync::atomic::{AtomicU32, Ordering};

/// A new, empty store in `<tmp>/olive-test-<pid>-<n>-<random>/olive.db`.
pub async fn temporary() -> super::SqliteStore {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "olive-test-{}-{}-{:016x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory for a test store");
    super::open(&format!("sqlite://{}/olive.db", dir.display())).await.expect("a temporary test store opens")
}
