//! The web app in a real browser: runs `web/e2e/` (Node's test runner driving Debian's Chromium
//! through playwright-core) against the real binary with demo content, while the script publishes
//! a live with ffmpeg. Runs when `OLIVE_TEST_CHROMIUM` names a Chromium executable (`.ci/run` sets
//! it); otherwise it prints a notice and passes. The screenshots land in `docs/screenshots/`.

use crate::helpers::*;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

fn chromium() -> Option<String> {
    let path = std::env::var("OLIVE_TEST_CHROMIUM").ok().filter(|p| !p.is_empty());
    if path.is_none() {
        eprintln!("OLIVE_TEST_CHROMIUM is not set: skipping the browser tests (apt-get install chromium, then set it to /usr/bin/chromium)");
    }
    path
}

/// The password printed for a demo account (`<role> <email> <password>`).
fn demo_password(server: &Server, email: &str) -> String {
    let output = server.output.lock().unwrap();
    let line = output.iter().find(|l| l.contains(email)).unwrap_or_else(|| panic!("{email} not printed"));
    line.split_whitespace().last().unwrap().to_owned()
}

/// Runs one file of `web/e2e/` against `server` (started with `--demo`), streaming its report.
async fn browser_test(server: &Server, chromium: &str, file: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let mut node = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", &format!("e2e/{file}")])
        .current_dir(repo.join("web"))
        .env("OLIVE_URL", &server.base)
        .env("OLIVE_RTMP", &server.rtmp)
        .env("OLIVE_HOST_EMAIL", "host@olive.test")
        .env("OLIVE_HOST_PASSWORD", demo_password(server, "host@olive.test"))
        .env("OLIVE_ADMIN_EMAIL", "admin@olive.test")
        .env("OLIVE_ADMIN_PASSWORD", demo_password(server, "admin@olive.test"))
        .env("OLIVE_SCREENSHOTS", repo.join("docs/screenshots"))
        .env("OLIVE_CHROMIUM", chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (apt-get install nodejs npm)");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut report = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            println!("{line}");
            report.push(line);
        }
        node.wait().await.unwrap()
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(360), run).await.expect("the browser tests hung");
    assert!(status.success(), "the browser tests failed:\n{}", report.join("\n"));
}

#[tokio::test]
async fn a_shopper_watches_chats_and_buys_in_a_real_browser() {
    let Some(chromium) = chromium() else { return };
    assert!(crate::live::have_ffmpeg(), "the browser tests publish with ffmpeg");
    let _turn = CPU_HEAVY.lock().await;
    let server = Server::start_with(Db::Sqlite, &["--demo"]).await;
    browser_test(&server, &chromium, "live-shopping.test.mjs").await;
}

/// A `standard` live's ladder played by hls.js under a throttled network (one transcode slot).
#[tokio::test]
async fn adaptive_bitrate_in_a_real_browser() {
    let Some(chromium) = chromium() else { return };
    assert!(crate::live::have_ffmpeg(), "the browser tests publish with ffmpeg");
    let _turn = CPU_HEAVY.lock().await;
    let server = Server::start_with(Db::Sqlite, &["--demo", "--transcode-slots", "1"]).await;
    browser_test(&server, &chromium, "adaptive-bitrate.test.mjs").await;
}
