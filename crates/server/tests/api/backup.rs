//! `olive backup` and `olive restore` round trips: an online backup taken beside a running server
//! restores into a data directory a new server serves from; an offline one restores row for row
//! (every table of the database) and byte for byte (every object). Damaged, incomplete and
//! misdirected restores are refused with a reason and change nothing.

use crate::helpers::*;
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;
use std::path::Path;
use tokio::process::Command;

async fn olive(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(BIN).args(args).arg("--data-dir").arg(data_dir).output().await.unwrap()
}

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn refused(out: &std::process::Output, reason: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(reason), "expected a refusal naming {reason:?}: {stderr}");
}

/// Every row of every table, each as its columns' SQL literals, by table.
async fn rows(db: &Path) -> BTreeMap<String, Vec<String>> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
        let all: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\" ORDER BY 1")).fetch_all(&pool).await.unwrap();
        out.insert(table, all);
    }
    pool.close().await;
    out
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[tokio::test]
async fn backups_restore_row_for_row_and_byte_for_byte() {
    let server = Server::start_with(Db::Sqlite, &["--demo"]).await;
    let admin = server.create_user("backup-admin@example.com", "admin").await;
    server.product(&admin, "Kept lipstick", 7).await;
    let channels: Value = server.get_json("/api/v1/channels").await;
    let products: Value = server.get_json("/api/v1/products?limit=100").await;

    // Online: beside the running server.
    let backups = tempfile::tempdir().unwrap();
    let online = backups.path().join("online");
    let online_arg = online.to_str().unwrap();
    ok(&olive(&["backup", "--to", online_arg], server.data_dir.path()).await);
    refused(&olive(&["backup", "--to", online_arg], server.data_dir.path()).await, "already holds a backup");
    let restored = tempfile::tempdir().unwrap();
    ok(&olive(&["restore", "--from", online_arg], restored.path()).await);
    let (status, data_dir) = server.stop_keeping_data().await;
    assert!(status.success());
    let copy = Server::start_in_dir(restored, &[]).await;
    assert_eq!(copy.get_json("/api/v1/channels").await["items"], channels["items"]);
    assert_eq!(copy.get_json("/api/v1/products?limit=100").await["items"], products["items"]);
    let image = products["items"][0]["images"][0]["url"].as_str().unwrap();
    let png = copy.client.get(copy.url(image)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    copy.stop().await;

    // Offline: the restored installation equals the original exactly.
    let offline = backups.path().join("offline");
    let offline_arg = offline.to_str().unwrap();
    ok(&olive(&["backup", "--to", offline_arg], data_dir.path()).await);
    let target = tempfile::tempdir().unwrap();
    ok(&olive(&["restore", "--from", offline_arg], target.path()).await);
    let (before, after) = (rows(&data_dir.path().join("olive.db")).await, rows(&target.path().join("olive.db")).await);
    assert!(before["products"].len() >= 13 && before["users"].len() >= 4, "{:?}", before.keys());
    assert_eq!(before, after, "row for row");
    let (before, after) = (files(&data_dir.path().join("objects")), files(&target.path().join("objects")));
    assert!(before.len() >= 12, "{} objects", before.len());
    assert_eq!(before, after, "byte for byte");

    // Refusals: a data directory in use, a damaged backup, no backup at all, PostgreSQL.
    refused(&olive(&["restore", "--from", offline_arg], target.path()).await, "already holds a database");
    let damaged = tempfile::tempdir().unwrap();
    let (key, bytes) = files(&offline.join("objects")).into_iter().next().unwrap();
    let mut bytes = bytes;
    bytes[0] ^= 0xff;
    std::fs::write(offline.join("objects").join(&key), bytes).unwrap();
    refused(&olive(&["restore", "--from", offline_arg], damaged.path()).await, "is damaged");
    assert!(!damaged.path().join("olive.db").exists(), "a refused restore leaves no database");
    let nothing = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    refused(&olive(&["restore", "--from", nothing.path().to_str().unwrap()], empty.path()).await, "no complete backup");
    let pg = Command::new(BIN)
        .args(["backup", "--to", online_arg, "--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .output()
        .await
        .unwrap();
    refused(&pg, "pg_basebackup");
}

#[tokio::test]
async fn a_backup_goes_to_s3_and_comes_back() {
    let Some(s3) = crate::s3::S3Server::start().await else { return };
    let server = Server::start_with(Db::Sqlite, &["--demo"]).await;
    let (status, data_dir) = server.stop_keeping_data().await;
    assert!(status.success());
    let url = s3.url("backups/nightly");
    let run = |args: Vec<String>, dir: &Path| {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--data-dir").arg(dir).envs(s3.env());
        cmd
    };
    ok(&run(vec!["backup".into(), "--to".into(), url.clone()], data_dir.path()).output().await.unwrap());
    let target = tempfile::tempdir().unwrap();
    ok(&run(vec!["restore".into(), "--from".into(), url], target.path()).output().await.unwrap());
    assert_eq!(rows(&data_dir.path().join("olive.db")).await, rows(&target.path().join("olive.db")).await);
    assert_eq!(files(&data_dir.path().join("objects")), files(&target.path().join("objects")));
}
