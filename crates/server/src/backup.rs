//! `olive backup` and `olive restore` for the embedded mode: a consistent online snapshot of the
//! SQLite database (`VACUUM INTO`, taken while `olive serve` keeps running) and a copy of every
//! object, written to a directory or an S3 URL with a manifest of sizes and SHA-256 digests; and
//! the way back into an empty data directory, checking every digest. PostgreSQL installations
//! back up with PostgreSQL's own tools (see docs/OPERATIONS.md).
//!
//! Layout at the destination: `manifest.json`, `olive.db`, and `objects/<key>` for every object.
//! Objects are copied after the database snapshot, so every object the snapshot names is there
//! (objects are written before the rows that name them, and replays are deleted row first).

use crate::config::{StorageArgs, StorageConfig};
use anyhow::{bail, Context};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_objects::Objects;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "olive.db";
const FORMAT: u32 = 1;

#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Where to write the backup: a directory, file:///DIR or s3://BUCKET/PREFIX (empty or new).
    #[arg(long, value_name = "DIR|URL")]
    to: String,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The backup to restore: a directory, file:///DIR or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|URL")]
    from: String,
}

/// What a backup holds, written last: a backup without it is incomplete.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: DateTime<Utc>,
    database: Entry,
    objects: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: String,
    bytes: u64,
    sha256: String,
}

impl Entry {
    fn of(key: &str, data: &[u8]) -> Entry {
        Entry { key: key.to_owned(), bytes: data.len() as u64, sha256: hex::encode(Sha256::digest(data)) }
    }

    fn check(&self, data: &[u8]) -> anyhow::Result<()> {
        let got = Entry::of(&self.key, data);
        if got.bytes != self.bytes || got.sha256 != self.sha256 {
            bail!(
                "{} is damaged: {} bytes, sha256 {}; the manifest says {} and {}",
                self.key,
                got.bytes,
                got.sha256,
                self.bytes,
                self.sha256
            );
        }
        Ok(())
    }
}

/// A destination or source given as a directory path or an object-store URL.
fn backup_store(place: &str, storage: &StorageConfig) -> anyhow::Result<Objects> {
    let url = if place.contains("://") {
        place.to_owned()
    } else {
        crate::config::directory_url(Path::new(place)).map_err(anyhow::Error::msg)?
    };
    Objects::from_url(&url, &storage.s3).with_context(|| format!("opening {place}"))
}

fn sqlite_path(storage: &StorageConfig) -> anyhow::Result<PathBuf> {
    storage
        .sqlite_path()
        .context("backup and restore cover the embedded database; back PostgreSQL up with pg_basebackup or pg_dump")
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let storage = StorageConfig::from_args(&args.storage)?;
    let db_path = sqlite_path(&storage)?;
    if !db_path.exists() {
        bail!("there is no database at {}", db_path.display());
    }
    let destination = backup_store(&args.to, &storage)?;
    if destination.get(MANIFEST).await.is_ok() {
        bail!("{} already holds a backup; choose an empty place", args.to);
    }
    let created_at = Utc::now();

    // The database first: one consistent snapshot, taken beside a running server.
    let scratch = tempfile::tempdir().context("making a scratch directory")?;
    let snapshot = scratch.path().join(DATABASE);
    let store =
        olive_store_sqlite::open(&format!("sqlite://{}", db_path.display())).await.context("opening the database")?;
    store.engine_ref().snapshot_into(&snapshot).await.context("taking the database snapshot")?;
    let db = Bytes::from(std::fs::read(&snapshot).context("reading the snapshot")?);
    let database = Entry::of(DATABASE, &db);
    destination.put(DATABASE, db).await.context("writing the database")?;

    let source = Objects::from_url(storage.object_store_url(), &storage.s3).context("opening object storage")?;
    let mut objects = Vec::new();
    for (key, _) in source.inventory().await.context("listing objects")? {
        let data = match source.get(&key).await {
            Ok(object) => object.bytes,
            // Deleted since it was listed (a replay removed meanwhile): nothing to keep.
            Err(olive_objects::ObjectError::NotFound(_)) => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {key}")),
        };
        objects.push(Entry::of(&key, &data));
        destination.put(&format!("objects/{key}"), data).await.with_context(|| format!("writing {key}"))?;
    }
    let bytes: u64 = objects.iter().map(|o| o.bytes).sum();
    let count = objects.len();
    let manifest = Manifest { format: FORMAT, created_at, database, objects };
    destination
        .put(MANIFEST, Bytes::from(serde_json::to_vec_pretty(&manifest)?))
        .await
        .context("writing the manifest")?;
    println!(
        "backed up the database ({} bytes) and {count} objects ({bytes} bytes) to {}",
        manifest.database.bytes, args.to
    );
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let storage = StorageConfig::from_args(&args.storage)?;
    let db_path = sqlite_path(&storage)?;
    if db_path.exists() {
        bail!("{} already holds a database; restore into an empty data directory", db_path.display());
    }
    let source = backup_store(&args.from, &storage)?;
    let manifest = source.get(MANIFEST).await.with_context(|| format!("{} holds no complete backup", args.from))?;
    let manifest: Manifest = serde_json::from_slice(&manifest.bytes).context("reading the manifest")?;
    if manifest.format != FORMAT {
        bail!("backup format {} is not one this olive reads ({FORMAT})", manifest.format);
    }
    let target = Objects::from_url(storage.object_store_url(), &storage.s3).context("opening object storage")?;
    // Only what an interrupted run of this restore left may be there already.
    let known: std::collections::HashSet<&str> = manifest.objects.iter().map(|e| e.key.as_str()).collect();
    let existing = target.inventory().await.context("listing objects")?;
    if let Some((stranger, _)) = existing.iter().find(|(key, _)| !known.contains(key.as_str())) {
        bail!("the object store already holds {stranger}, which is not in this backup; restore into an empty one");
    }
    // Objects first and the database last, so an interrupted restore leaves no database behind
    // and can simply be run again.
    for entry in &manifest.objects {
        let data =
            source.get(&format!("objects/{}", entry.key)).await.with_context(|| format!("reading {}", entry.key))?;
        entry.check(&data.bytes)?;
        target.put(&entry.key, data.bytes).await.with_context(|| format!("writing {}", entry.key))?;
    }
    let db = source.get(DATABASE).await.context("reading the database")?;
    manifest.database.check(&db.bytes)?;
    write_new(&db_path, &db.bytes)?;
    println!(
        "restored the backup of {} ({} objects) into {}",
        manifest.created_at,
        manifest.objects.len(),
        storage.data_dir.display()
    );
    Ok(())
}

/// Writes `data` to a new file beside `path`, then renames it into place.
fn write_new(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let partial = path.with_extension("db.partial");
    std::fs::write(&partial, data).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("moving the database into {}", path.display()))?;
    Ok(())
}
