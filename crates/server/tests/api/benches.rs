//! The load generators against the real server, small: `olive bench http` times every answer and
//! fails on any error, `olive bench chat` counts every message
//! every viewer got, `olive bench checkout` sells exactly the deal's units and checks the server's
//! count, and `olive bench mixed` holds a 30 s peak of every workload at once with no error, no
//! lost message and no unit oversold (the CI variant of the load day). Their figures at scale are
//! in bench/RESULTS.md; here they must simply be right.

use crate::helpers::*;
use serde_json::Value;

async fn bench(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("bench").args(args).arg("--json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    assert!(out.status.success(), "olive bench {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_chat_counts_every_delivery() {
    let server = Server::start().await;
    let host = server.create_user("bench-chat-host@example.com", "host").await;
    let channel = crate::live::channel_with_key(&host, "Bench").await.0.to_string();
    let report = bench(
        &[
            "chat",
            "--url",
            &server.base,
            "--channel",
            &channel,
            "--viewers",
            "20",
            "--chatters",
            "2",
            "--rate",
            "2",
            "--hearts",
            "10",
            "--duration",
            "3",
            "--sources",
            "2",
        ],
        &[],
    )
    .await;
    assert_eq!(report["viewers"], 20);
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent >= 4, "{report}");
    assert_eq!(report["refused"], 0);
    assert_eq!(report["delivered"].as_u64(), Some(sent * 20), "{report}");
    assert_eq!(report["lost"], 0);
    assert!(report["hearts_sent"].as_u64().unwrap() >= 20, "a burst a second: {report}");
    assert_eq!(report["hearts_lost"], 0, "every viewer saw every heart counted: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_checkout_sells_exactly_the_units() {
    let server = Server::start().await;
    server.create_user("bench-admin@example.com", "admin").await;
    let report = bench(
        &[
            "checkout",
            "--url",
            &server.base,
            "--admin-email",
            "bench-admin@example.com",
            "--units",
            "30",
            "--buyers",
            "8",
            "--per-customer",
            "5",
            "--connections",
            "4",
            "--duration",
            "2",
        ],
        &[("OLIVE_BENCH_ADMIN_PASSWORD", PASSWORD)],
    )
    .await;
    assert_eq!((report["created"].as_i64(), report["server_sold"].as_i64()), (Some(30), Some(30)), "{report}");
    assert_eq!(report["oversold"], 0);
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["attempts"].as_u64().unwrap() > 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_checkout_at_a_rate_paces_its_attempts_and_refuses_a_bad_rate() {
    let server = Server::start().await;
    server.create_user("bench-rate-admin@example.com", "admin").await;
    let env = [("OLIVE_BENCH_ADMIN_PASSWORD", PASSWORD)];
    // `--rate=VALUE`, so that clap hands even "-5" to the bench as the rate.
    let args = |rate: &str| -> Vec<String> {
        ["checkout", "--url", &server.base, "--admin-email", "bench-rate-admin@example.com", "--units", "10"]
            .into_iter()
            .chain(["--buyers", "20", "--connections", "4", "--duration", "2"])
            .map(str::to_owned)
            .chain([format!("--rate={rate}")])
            .collect()
    };
    let report = bench(&args("100").iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_eq!(report["rate"], 100.0);
    let attempts = report["attempts"].as_u64().unwrap();
    // 100 a second for 2 s, on a schedule: neither faster nor (on an idle server) much slower.
    assert!((150..=200).contains(&attempts), "{attempts} attempts at 100/s for 2 s: {report}");
    assert_eq!((report["created"].as_i64(), report["oversold"].as_i64()), (Some(10), Some(0)), "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    for bad in ["0", "-5", "NaN", "inf", "fast"] {
        let out = tokio::process::Command::new(BIN).arg("bench").args(args(bad)).envs(env).output().await.unwrap();
        assert!(!out.status.success(), "--rate {bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("rate"), "--rate {bad}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_http_loads_each_read_path_in_turn() {
    let server = Server::start().await;
    let admin = server.create_user("bench-http-admin@example.com", "admin").await;
    let product = server.product(&admin, "Cushion", 5).await;
    let detail = format!("/api/v1/products/{product}");
    let pid = server.pid().to_string();
    let report = bench(
        &[
            "http",
            "--url",
            &server.base,
            "--path",
            &format!("/api/v1/feed,/api/v1/channels,{detail}"),
            "--connections",
            "4",
            "--duration",
            "1",
            "--server-pid",
            &pid,
        ],
        &[],
    )
    .await;
    let paths = report["paths"].as_array().unwrap();
    let names: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(names, ["/api/v1/feed", "/api/v1/channels", detail.as_str()]);
    for p in paths {
        assert_eq!(p["errors"], 0, "{p}");
        assert!(p["requests"].as_u64().unwrap() > 10, "{p}");
        assert!(p["megabytes_per_second"].as_f64().unwrap() > 0.0, "{p}");
        let latency = &p["latency"];
        assert_eq!(latency["count"], p["requests"], "every answer timed: {p}");
        assert!(latency["p50_ms"].as_f64() <= latency["p99_ms"].as_f64(), "{p}");
        assert!(p["server_cpu_percent"].as_f64().unwrap() > 0.0, "{p}");
    }
}

#[tokio::test]
async fn bench_http_fails_on_errors_and_refuses_bad_targets() {
    let server = Server::start().await;
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(BIN).arg("bench").arg("http").args(&args).output().await.unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let base = server.base.clone();
    let with = |extra: &[&str]| {
        let mut args = vec!["--url".to_owned(), base.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // A path the server answers 404 counts every answer as an error, and the run fails.
    let (ok, err) = run(with(&["--path", "/api/v1/products/999999", "--connections", "2", "--duration", "1"])).await;
    assert!(!ok && err.contains("404"), "{err}");
    // Nothing listening: connection errors, not a hang.
    let (ok, err) = run(vec![
        "--url".into(),
        format!("http://127.0.0.1:{}", free_port()),
        "--duration".into(),
        "1".into(),
        "--path".into(),
        "/livez".into(),
    ])
    .await;
    assert!(!ok && err.contains("connect"), "{err}");
    for (extra, says) in [
        (&["--path", "api/v1/channels"][..], "must start with /"),
        (&["--path", "/a b"][..], "\"/a b\""),
        (&["--connections", "0"][..], "--connections must be positive"),
        (&["--duration", "0"][..], "--duration must be positive"),
    ] {
        let (ok, err) = run(with(extra)).await;
        assert!(!ok && err.contains(says), "{extra:?}: {err}");
    }
    let (ok, err) = run(vec!["--url".into(), "http://10.1.2.3:80".into()]).await;
    assert!(!ok && err.contains("non-loopback"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_mixed_holds_a_short_peak() {
    if !crate::live::have_ffmpeg() {
        return;
    }
    let _cpu = CPU_HEAVY.lock().await;
    let server = Server::start().await;
    server.create_user("mixed-admin@example.com", "admin").await;
    let clip = crate::live::clip(server.data_dir.path()).await;
    let rtmp = server.rtmp.clone();
    let out = tempfile::tempdir().unwrap();
    let report = bench(
        &[
            "mixed",
            "--url",
            &server.base,
            "--rtmp",
            &rtmp,
            "--admin-email",
            "mixed-admin@example.com",
            "--input",
            clip.to_str().unwrap(),
            "--channels",
            "3",
            "--hls-viewers",
            "30",
            "--chat-viewers",
            "50",
            "--chatters",
            "3",
            "--chat-rate",
            "3",
            "--hearts",
            "30",
            "--pin-every",
            "3",
            "--units",
            "20",
            "--buyers",
            "40",
            "--connections",
            "4",
            "--sale-rate",
            "200",
            "--duration",
            "30",
            "--server-pid",
            &server.pid().to_string(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[("OLIVE_BENCH_ADMIN_PASSWORD", PASSWORD)],
    )
    .await;
    assert_eq!((report["errors"].as_u64(), report["lost_messages"].as_u64()), (Some(0), Some(0)), "{report}");
    assert_eq!(report["oversold"], 0);
    assert_eq!(report["lost_hearts"], 0, "every viewer's hearts total adds up: {report}");
    assert!(report["chat"]["hearts_sent"].as_u64().unwrap() >= 30 * 28, "heart bursts every second: {report}");
    assert_eq!(report["checkout"]["created"], 20, "the sale sold out: {report}");
    assert!(report["checkout"]["attempts"].as_u64().unwrap() <= 200 * 30, "the sale kept its pace: {report}");
    assert!(report["hls"]["parts"].as_u64().unwrap() > 30 * 30, "every viewer kept up: {report}");
    assert!(report["chat"]["delivered"].as_u64().unwrap() >= 50 * 80, "messages reached the room: {report}");
    assert!(report["pins"]["pins"].as_u64().unwrap() >= 3 * 9, "{report}");
    assert_eq!(report["publish"]["failed"], 0);
    assert!(report["server_cpu_percent"].as_f64().is_some());
    // Latency second by second, and its plots beside the report.
    for (i, workload) in ["hls", "chat", "pins", "checkout"].iter().enumerate() {
        let timeline = &report["timelines"][i];
        assert_eq!(timeline["workload"], *workload);
        assert_eq!(timeline["seconds"].as_array().unwrap().len(), 30);
        let svg = std::fs::read_to_string(out.path().join(format!("latency-{workload}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "a plot of {workload}");
    }
    let written: Value = serde_json::from_slice(&std::fs::read(out.path().join("mixed.json")).unwrap()).unwrap();
    assert_eq!(written["checkout"]["created"], 20);
}
