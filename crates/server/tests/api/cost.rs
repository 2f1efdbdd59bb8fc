//! The cost report follows from a recorded workload: ffmpeg publishes a short live, a viewer
//! fetches its live and replay media (bytes we count ourselves), the recording and thumbnails land
//! in the data directory (bytes we add up from the files), and after a clean stop `olive cost
//! report` shows exactly those bytes for the channel, priced at the unit prices given. The admin
//! API answers the same. Skipped with a notice where ffmpeg is not installed.

use crate::helpers::*;
use crate::live::{channel_with_key, have_ffmpeg};
use crate::replays::{publish_colour, wait_for_replay};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Prices high enough that every byte shows in the dollars.
const PRICES: [(&str, &str); 4] = [
    ("--price-egress-per-gb", "90"),
    ("--price-ingest-per-gb", "10"),
    ("--price-storage-per-gb-month", "30"),
    ("--price-cpu-per-hour", "3600"),
];

/// Fetches `path` and returns its body's length.
async fn fetched(server: &Server, path: &str) -> (u64, String) {
    let r = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let body = r.bytes().await.unwrap();
    (body.len() as u64, String::from_utf8_lossy(&body).into_owned())
}

/// Fetches a playlist and every init segment and segment it names; returns the bytes received.
async fn watch(server: &Server, base: &str) -> u64 {
    let (mut total, playlist) = fetched(server, &format!("{base}/index.m3u8")).await;
    let map = playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")?.split('"').next().map(str::to_owned));
    let files = map.into_iter().chain(playlist.lines().filter(|l| l.starts_with("seg-")).map(str::to_owned));
    for file in files {
        total += fetched(server, &format!("{base}/{file}")).await.0;
    }
    total
}

fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.unwrap())
        .map(|e| if e.file_type().unwrap().is_dir() { bytes_under(&e.path()) } else { e.metadata().unwrap().len() })
        .sum()
}

async fn run_report(data_dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["cost", "report", "--data-dir"]).arg(data_dir).args(extra);
    for (flag, value) in PRICES {
        cmd.args([flag, value]);
    }
    cmd.output().await.unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[tokio::test]
async fn the_cost_report_follows_from_measured_bytes() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let host = server.create_user("cost-host@example.com", "host").await;
    let (channel, key) = channel_with_key(&host, "Priced").await;
    let publisher = publish_colour(&format!("{}/{key}", server.rtmp), 8);
    // Waiting for the live: a "not live yet" 404 is not the channel's egress (a node that holds no
    // window cannot tell a channel not yet live from no channel without asking the database, and
    // a request for an id that does not exist must charge nobody), but every playlist served is.
    let mut watched = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.client.get(server.url(&format!("/live/{channel}/index.m3u8"))).send().await.unwrap();
        let status = r.status();
        let body = r.bytes().await.unwrap();
        if status == StatusCode::OK {
            watched += body.len() as u64;
        }
        if status == StatusCode::OK && String::from_utf8_lossy(&body).matches("#EXTINF:").count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the live never had two segments");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    watched += watch(&server, &format!("/live/{channel}")).await;
    let out = tokio::time::timeout(Duration::from_secs(60), publisher.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
    let replay = wait_for_replay(&server, channel, Duration::from_secs(15)).await;
    let replay_id = replay["id"].as_i64().unwrap();
    watched += watch(&server, &format!("/vod/{replay_id}")).await;
    let thumbnail = fetched(&server, &format!("/vod/{replay_id}/thumbnail.jpg")).await.0;
    watched += thumbnail;

    let (status, data_dir) = server.stop_keeping_data().await;
    assert!(status.success());
    let objects = data_dir.path().join("objects");
    let stored = bytes_under(&objects.join(format!("recordings/{replay_id}")))
        + bytes_under(&objects.join(format!("thumbnails/{channel}")));
    assert!(stored > 10_000 && thumbnail > 0, "the live stored {stored} bytes");

    let out = run_report(data_dir.path(), &["--json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let line = report["channels"].as_array().unwrap().iter().find(|l| l["channel_id"] == channel).expect("the channel");
    let n = |field: &str| line[field].as_f64().unwrap();
    eprintln!("viewer received {watched} bytes, files hold {stored} bytes; the report's line: {line}");
    assert_eq!(line["egress_bytes"].as_u64().unwrap(), watched, "every byte the viewer received, and no other");
    // One day: the stored bytes at its end are what the files hold.
    let days = report["days"].as_array().unwrap().len() as u64;
    assert_eq!(line["stored_bytes"].as_u64().unwrap(), stored * days, "{line}");
    assert!(n("ingest_bytes") > 0.0 && n("cpu_ms") >= 0.0);
    let today = chrono::Utc::now().date_naive();
    let month_days = {
        use chrono::Datelike;
        let first = today.with_day(1).unwrap();
        (first.checked_add_months(chrono::Months::new(1)).unwrap() - first).num_days() as f64
    };
    assert!(close(n("egress_usd"), watched as f64 / 1e9 * 90.0));
    assert!(close(n("ingest_usd"), n("ingest_bytes") / 1e9 * 10.0));
    assert!(close(n("storage_usd"), n("stored_bytes") / 1e9 * 30.0 / month_days));
    assert!(close(n("cpu_usd"), n("cpu_ms") / 3.6e6 * 3600.0));
    assert!(close(n("total_usd"), n("egress_usd") + n("ingest_usd") + n("storage_usd") + n("cpu_usd")));
    let platform = &report["channels"][0];
    assert!(platform["channel_id"].is_null() && platform["cpu_ms"].as_i64().unwrap() > 0, "the server's own CPU");
    assert!(close(report["total"]["total_usd"].as_f64().unwrap(), {
        report["channels"].as_array().unwrap().iter().map(|l| l["total_usd"].as_f64().unwrap()).sum::<f64>()
    }));

    let text = report_text(data_dir.path()).await;
    assert!(text.contains(&format!("channel {channel}")) && text.contains("total"), "{text}");
    let refused = run_report(data_dir.path(), &["--from", "2026-02-10", "--to", "2026-02-01"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("before"));
    let refused = run_report(data_dir.path(), &["--from", "yesterday"]).await;
    assert!(!refused.status.success());

    // The admin API prices the same usage the same way (here at the default prices).
    let server = Server::start_in_dir(data_dir, &[]).await;
    let admin = server.create_user("cost-admin@example.com", "admin").await;
    let api: Value = admin.get("/api/v1/admin/cost").send().await.unwrap().json().await.unwrap();
    let api_line = api["channels"].as_array().unwrap().iter().find(|l| l["channel_id"] == channel).unwrap();
    assert_eq!(api_line["egress_bytes"], line["egress_bytes"]);
    assert_eq!(api_line["stored_bytes"], line["stored_bytes"]);
    assert!(close(api_line["egress_usd"].as_f64().unwrap(), watched as f64 / 1e9 * 0.09));
    let host = server.login("cost-host@example.com", PASSWORD).await;
    assert_eq!(host.get("/api/v1/admin/cost").send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let anonymous = server.client.get(server.url("/api/v1/admin/cost")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for query in ["?from=2026-02-10&to=2026-02-01", "?from=2020-01-01&to=2026-01-01", "?from=nonsense", "?days=3"] {
        let r = admin.get(&format!("/api/v1/admin/cost{query}")).send().await.unwrap();
        assert!(r.status().is_client_error(), "{query}: {}", r.status());
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{query}: {body}");
    }
}

async fn report_text(data_dir: &Path) -> String {
    let out = run_report(data_dir, &[]).await;
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn readiness_fails_while_draining_after_sigterm() {
    let server = Server::start_with(Db::Sqlite, &["--drain-secs", "3"]).await;
    let pid = server.pid();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(2);
    let body: Value = loop {
        let r = server.client.get(server.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break r.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/readyz still {} after SIGTERM", r.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["status"], "draining");
    let live = server.client.get(server.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK, "still alive while draining");
    let output = server.output.clone();
    let status = server.wait().await;
    assert!(status.success(), "{status:?}: {:?}", output.lock().unwrap());
}
