//! The load generators against the real server, small: `olive bench chat` counts every message
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
            "--pin-every",
            "3",
            "--units",
            "20",
            "--buyers",
            "40",
            "--connections",
            "4",
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
    assert_eq!(report["checkout"]["created"], 20, "the sale sold out: {report}");
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
