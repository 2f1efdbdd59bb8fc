//! Failover on PostgreSQL's own streaming replication, measured: two local clusters on loopback
//! (`initdb`, `pg_ctl`, `pg_basebackup -R` from Debian's PostgreSQL), Olive on the primary, a
//! shopper placing orders continuously and logging every acknowledged order id. The primary is
//! stopped the hard way (`pg_ctl -m immediate`), fenced (a `standby.signal` file, so that if it is
//! started again it comes up read-only), the standby is promoted (`pg_ctl promote`), and Olive is
//! pointed at it. The test reports the acknowledged orders missing after promotion (RPO) and the
//! seconds from the kill to the first accepted order (RTO); with `synchronous_commit=remote_apply`
//! nothing acknowledged may be missing. Docs: docs/DISASTER_RECOVERY.md.
//!
//! Skipped with a notice where PostgreSQL's server binaries are not installed.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// Debian's PostgreSQL server binaries (the newest installed major version).
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_basebackup").exists())
        .collect();
    versions.sort();
    let found = versions.pop();
    if found.is_none() {
        eprintln!(
            "PostgreSQL's server binaries are not installed: skipping the failover test (apt-get install postgresql)"
        );
    }
    found
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (the server refuses root).
async fn pg(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root { Command::new("runuser") } else { Command::new(bin.join(tool)) };
    if root {
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
    }
    let out = cmd.args(args).stdin(std::process::Stdio::null()).output().await.unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A scratch directory the `postgres` user may write.
fn scratch() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

struct Cluster {
    data: PathBuf,
    port: u16,
}

impl Cluster {
    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn configure(&self, lines: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(self.data.join("postgresql.auto.conf")).unwrap();
        writeln!(f, "{lines}").unwrap();
    }

    async fn start(&self, bin: &Path) {
        let log = self.data.with_extension("log");
        pg(bin, "pg_ctl", &["-D", self.data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "60", "start"])
            .await;
    }
}

/// Primary and standby; orders for six seconds; the primary dies; the standby takes over.
async fn fail_over(synchronous: bool) -> Option<Value> {
    let bin = pg_bin()?;
    let dir = scratch();
    let primary = Cluster { data: dir.path().join("primary"), port: free_port() };
    let standby = Cluster { data: dir.path().join("standby"), port: free_port() };
    let socket_dir = dir.path().display().to_string();
    pg(&bin, "initdb", &["-D", primary.data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync"]).await;
    primary.configure(&format!(
        "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\nwal_level = replica\n\
         max_wal_senders = 4\nwal_keep_size = '256MB'\nfsync = on",
        primary.port
    ));
    primary.start(&bin).await;
    let admin_pool = sqlx::PgPool::connect(&primary.url("postgres")).await.unwrap();
    sqlx::query("CREATE DATABASE olive").execute(&admin_pool).await.unwrap();
    admin_pool.close().await;
    let conninfo = format!("host=127.0.0.1 port={} user=postgres application_name=standby", primary.port);
    pg(&bin, "pg_basebackup", &["-d", &conninfo, "-D", standby.data.to_str().unwrap(), "-R", "-X", "stream"]).await;
    standby.configure(&format!("port = {}\nprimary_conninfo = '{conninfo}'", standby.port));
    standby.start(&bin).await;
    if synchronous {
        // Only now: with no standby attached, every commit would wait for one.
        let pool = sqlx::PgPool::connect(&primary.url("postgres")).await.unwrap();
        for setting in ["synchronous_standby_names = 'standby'", "synchronous_commit = remote_apply"] {
            sqlx::query(&format!("ALTER SYSTEM SET {setting}")).execute(&pool).await.unwrap();
        }
        sqlx::query("SELECT pg_reload_conf()").execute(&pool).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state: Option<String> =
                sqlx::query_scalar("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")
                    .fetch_optional(&pool)
                    .await
                    .unwrap();
            if state.as_deref() == Some("sync") {
                break;
            }
            assert!(Instant::now() < deadline, "the standby never became synchronous: {state:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pool.close().await;
    }

    let node = Server::start_with(Db::Postgres(primary.url("olive")), &["--node-id", "failover"]).await;
    let admin = node.create_user("failover-admin@example.com", "admin").await;
    let product = node.product(&admin, "Toner", 1_000_000).await;
    let buyer = node.signup("failover-buyer@example.com").await;
    let client = reqwest::Client::new();

    let mut acknowledged: Vec<(i64, Instant)> = Vec::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(6) {
        n += 1;
        if let Some(id) = try_order(&client, &node.base, &buyer.token, product, &format!("o-{n}")).await {
            acknowledged.push((id, Instant::now()));
        }
    }
    // The primary's database dies mid-stream.
    pg(&bin, "pg_ctl", &["-D", primary.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]).await;
    let killed = Instant::now();
    // Fence it: started again by mistake, it would come up read-only.
    std::fs::write(primary.data.join("standby.signal"), "").unwrap();
    pg(&bin, "pg_ctl", &["-D", standby.data.to_str().unwrap(), "-w", "promote"]).await;
    drop(node);
    let node = Server::start_with(Db::Postgres(standby.url("olive")), &["--node-id", "failover"]).await;
    let mut tries = 0;
    let first = loop {
        tries += 1;
        if let Some(id) = try_order(&client, &node.base, &buyer.token, product, &format!("after-{tries}")).await {
            break id;
        }
        assert!(tries < 100, "the promoted standby never accepted an order");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rto = killed.elapsed();

    let pool = sqlx::PgPool::connect(&standby.url("olive")).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders").fetch_all(&pool).await.unwrap();
    let stored: HashSet<i64> = ids.into_iter().collect();
    assert!(stored.contains(&first));
    let missing: Vec<&(i64, Instant)> = acknowledged.iter().filter(|(id, _)| !stored.contains(id)).collect();
    let rpo = missing.iter().map(|(_, at)| killed.duration_since(*at)).max().unwrap_or_default();
    pool.close().await;

    // The fenced old primary, started again, refuses writes.
    primary.start(&bin).await;
    let old = sqlx::PgPool::connect(&primary.url("olive")).await.unwrap();
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&old).await.unwrap();
    assert!(in_recovery, "the fenced old primary came back read-only");
    old.close().await;
    assert!(node.stop().await.success());
    for cluster in [&primary, &standby] {
        pg(&bin, "pg_ctl", &["-D", cluster.data.to_str().unwrap(), "-m", "fast", "-w", "stop"]).await;
    }
    let report = json!({
        "synchronous_commit": if synchronous { "remote_apply" } else { "on (asynchronous standby)" },
        "acknowledged": acknowledged.len(),
        "missing": missing.len(),
        "rpo_seconds": rpo.as_secs_f64(),
        "rto_seconds": rto.as_secs_f64(),
    });
    eprintln!("postgresql failover: {report}");
    assert!(acknowledged.len() > 50, "orders kept coming: {report}");
    Some(report)
}

fn keep(report: &Value, name: &str) {
    if let Ok(dir) = std::env::var("OLIVE_FAILOVER_REPORT_DIR") {
        std::fs::write(Path::new(&dir).join(name), report.to_string()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fails_over_to_its_streaming_standby() {
    let Some(report) = fail_over(false).await else { return };
    assert!(report["rpo_seconds"].as_f64().unwrap() < 5.0, "{report}");
    keep(&report, "postgres-async.json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_standby_loses_no_acknowledged_order() {
    let Some(report) = fail_over(true).await else { return };
    assert_eq!(report["missing"], 0, "remote_apply: every acknowledged order is on the standby: {report}");
    keep(&report, "postgres-sync.json");
}
