//! What the dashboards and alerts read really exists: a real Prometheus (Debian's `prometheus`)
//! scrapes a running `olive serve --demo` on loopback while a host is live, a shopper chats and
//! buys, and the host pins; then every Grafana panel query in `deploy/grafana/dashboards` and the
//! value of every alert rule in `deploy/prometheus/alerts.yml` (the expression before its
//! threshold) must return series through Prometheus's query API. Skipped with a notice where
//! Prometheus or ffmpeg is not installed (CI installs both).

use crate::helpers::*;
use crate::live::{channel_with_key, have_ffmpeg};
use crate::replays::publish_colour;
use crate::room;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/server sits two levels down").to_owned()
}

fn have_prometheus() -> bool {
    let ok = std::process::Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("prometheus is not installed: skipping the scrape test (apt-get install prometheus)");
    }
    ok
}

/// The `expr` of every alert rule, block scalars (`expr: |`) included.
fn alert_expressions(rules: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut alert = String::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alert = name.trim().to_owned();
        } else if let Some(expr) = trimmed.strip_prefix("expr:") {
            let expr = expr.trim();
            if expr == "|" {
                let mut block = Vec::new();
                let indent = line.len() - line.trim_start().len();
                while let Some(next) = lines.peek() {
                    if next.trim().is_empty() || next.len() - next.trim_start().len() <= indent {
                        break;
                    }
                    block.push(next.trim().to_owned());
                    lines.next();
                }
                out.push((alert.clone(), block.join(" ")));
            } else {
                out.push((alert.clone(), expr.to_owned()));
            }
        }
    }
    out
}

/// An alert's value: its expression without the trailing `OP NUMBER` threshold.
fn alert_value(expr: &str) -> &str {
    let expr = expr.trim_end();
    let number_start = expr.trim_end_matches(|c: char| c.is_ascii_digit() || ".e+-".contains(c)).len();
    let before = expr[..number_start].trim_end();
    for op in [">=", "<=", "==", "!=", ">", "<"] {
        if let Some(value) = before.strip_suffix(op) {
            return value.trim_end();
        }
    }
    panic!("alert expression {expr:?} does not end in a comparison with a number");
}

/// Every panel query of every dashboard, named by dashboard and panel.
fn panel_queries() -> Vec<(String, String)> {
    let dir = root().join("deploy/grafana/dashboards");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let name = format!("{} / {}", dashboard["title"].as_str().unwrap(), panel["title"].as_str().unwrap());
                out.push((name, target["expr"].as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

struct Prometheus {
    _child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

async fn start_prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: olive\n    static_configs:\n      - targets: ['{target}']\n",
        root().join("deploy/prometheus/alerts.yml").display()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");
    Prometheus { _child: child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
}

impl Prometheus {
    /// The instant query's result vector; panics on a query Prometheus refuses.
    async fn query(&self, client: &reqwest::Client, expr: &str) -> Vec<Value> {
        let r = client.get(format!("{}/api/v1/query", self.url)).query(&[("query", expr)]).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "Prometheus refused {expr:?}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn every_dashboard_query_and_alert_value_has_series_from_a_real_scrape() {
    if !have_prometheus() || !have_ffmpeg() {
        return;
    }
    let alerts = alert_expressions(&std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap());
    assert!(alerts.len() >= 12, "{alerts:?}");
    let panels = panel_queries();
    assert!(panels.len() >= 30, "{} panel queries", panels.len());

    let server = Server::start_with(Db::Sqlite, &["--demo"]).await;
    // A host goes live, a shopper watches, chats and buys, the host pins what is sold.
    let host = server.create_user("obs-host@example.com", "host").await;
    let (channel, key) = channel_with_key(&host, "Observed").await;
    let _publisher = publish_colour(&format!("{}/{key}", server.rtmp), 60);
    let shopper = server.create_user("obs-shopper@example.com", "viewer").await;
    let mut socket = room::connect(&server, channel, Some(&shopper.token)).await;
    let products: Value = server.get_json("/api/v1/products").await;
    let product = products["items"][0]["id"].as_i64().unwrap();
    let lineup = host.put(&format!("/api/v1/channels/{channel}/lineup")).json(&json!({ "product_ids": [product] }));
    assert_eq!(lineup.send().await.unwrap().status(), StatusCode::OK);
    let pinned = host.post(&format!("/api/v1/channels/{channel}/pin")).json(&json!({ "product_id": product })).send();
    assert_eq!(pinned.await.unwrap().status(), StatusCode::CREATED);
    room::send(&mut socket, json!({"type": "chat", "text": "is it waterproof?"})).await;
    let order = json!({"items": [{"product_id": product, "quantity": 1}], "channel_id": channel});
    let placed = shopper.post("/api/v1/orders").header("Idempotency-Key", "obs-1").json(&order).send();
    assert_eq!(placed.await.unwrap().status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.client.get(server.url(&format!("/live/{channel}/index.m3u8"))).send().await.unwrap().status()
        != StatusCode::OK
    {
        assert!(Instant::now() < deadline, "the live never started");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Prometheus scrapes the metrics listener, as the manifests have it.
    let target = server.metrics.trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let prometheus = start_prometheus(&target).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut checks: Vec<(String, String)> =
        alerts.iter().map(|(name, expr)| (format!("alert {name}"), alert_value(expr).to_owned())).collect();
    checks.extend(panels);
    // Scrapes every second; rates need two samples, and the slowest gauges refresh every 15 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if client.get(format!("{}/-/ready", prometheus.url)).send().await.is_err() {
            assert!(Instant::now() < deadline, "Prometheus never became ready");
            continue;
        }
        let mut missing = Vec::new();
        for (name, expr) in &checks {
            if prometheus.query(&client, expr).await.is_empty() {
                missing.push(format!("{name}: {expr}"));
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
    };
    assert!(missing.is_empty(), "no series from a real scrape for:\n{}", missing.join("\n"));
    // Every series of a busy node is described as Prometheus's own lint wants.
    let scrape = client.get(&server.metrics).send().await.unwrap().text().await.unwrap();
    promtool_checks(&scrape).await;
    // The key series, by name, and the scrape itself.
    for expr in [
        "up{job=\"olive\"} == 1",
        "olive_channels_live == 1",
        &format!("olive_ingest_bitrate_bps{{channel=\"{channel}\"}} > 0"),
        &format!("olive_viewers{{channel=\"{channel}\"}} >= 1"),
        "olive_orders_total{result=\"created\"} == 1",
        &format!("olive_chat_messages_total{{channel=\"{channel}\"}} == 1"),
        "olive_budget_spent_ratio >= 0",
    ] {
        assert_eq!(prometheus.query(&client, expr).await.len(), 1, "{expr}");
    }
    // Prometheus loaded the alert rules and none fires on this healthy node.
    let rules: Value =
        client.get(format!("{}/api/v1/rules", prometheus.url)).send().await.unwrap().json().await.unwrap();
    let loaded: usize =
        rules["data"]["groups"].as_array().unwrap().iter().map(|g| g["rules"].as_array().unwrap().len()).sum();
    assert_eq!(loaded, alerts.len());
    let firing = prometheus.query(&client, "ALERTS{alertstate=\"firing\"}").await;
    assert!(firing.is_empty(), "alerts firing on a healthy node: {firing:?}");
}

#[test]
fn alert_values_drop_only_the_threshold() {
    assert_eq!(alert_value("up{job=\"olive\"} == 0"), "up{job=\"olive\"}");
    assert_eq!(alert_value("a / on(x) b < 300000"), "a / on(x) b");
    assert_eq!(alert_value("max(r) / max(e) > 1.2"), "max(r) / max(e)");
    let rules = "      - alert: A\n        expr: |\n          x\n            / y > 1\n        for: 1m\n      - alert: B\n        expr: z < 2\n";
    assert_eq!(
        alert_expressions(rules),
        [("A".to_owned(), "x / y > 1".to_owned()), ("B".to_owned(), "z < 2".to_owned())]
    );
}
