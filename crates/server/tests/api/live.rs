//! Live video end to end: real ffmpeg publishing over RTMP, real ffprobe and ffmpeg reading the
//! LL-HLS playlist back, and the playlist checked against the LL-HLS rules. Skipped with a notice
//! where ffmpeg is not installed (CI installs it).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

pub fn have_ffmpeg() -> bool {
    let ok =
        std::process::Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("ffmpeg is not installed: skipping the live video test (apt-get install ffmpeg)");
    }
    ok
}

/// 12 s of 1280x720 30 fps H.264 with B-frames (2 s GOP) and 48 kHz AAC, encoded once per test
/// run and shared by the tests (encoding is the costliest step).
pub async fn clip(_dir: &Path) -> PathBuf {
    static CLIP: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    CLIP.get_or_init(|| encode_clip(std::env::temp_dir().join(format!("olive-test-clip-{}.flv", std::process::id()))))
        .await
        .clone()
}

async fn encode_clip(path: PathBuf) -> PathBuf {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i"])
        .args(["sine=frequency=440:sample_rate=48000", "-t", "12", "-c:v", "libx264", "-preset", "superfast"])
        .args(["-bf", "2", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "encoding the test clip failed: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// Publishes the clip in a loop at real time, as OBS would, until killed.
pub fn publish(clip: &Path, url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(clip)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Whether a publisher was turned away: ffmpeg exits with an error within 20 s.
async fn is_refused(publisher: Child) -> bool {
    let out = tokio::time::timeout(Duration::from_secs(20), publisher.wait_with_output()).await.expect("ffmpeg hung");
    !out.unwrap().status.success()
}

pub async fn channel_with_key(host: &Session, title: &str) -> (i64, String) {
    let c: Value =
        host.post("/api/v1/channels").json(&json!({ "title": title })).send().await.unwrap().json().await.unwrap();
    (c["id"].as_i64().unwrap(), c["stream_key"].as_str().unwrap().to_owned())
}

async fn playlist(server: &Server, channel: i64, query: &str) -> (StatusCode, String) {
    let r = server.client.get(server.url(&format!("/live/{channel}/index.m3u8{query}"))).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Waits until the channel's playlist lists at least `segments` complete segments.
async fn wait_for_segments(server: &Server, channel: i64, segments: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, text) = playlist(server, channel, "").await;
        if status == StatusCode::OK && text.matches("#EXTINF:").count() >= segments {
            return text;
        }
        assert!(Instant::now() < deadline, "channel {channel} never reached {segments} segments: {status} {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split([':', ',']).find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Checks the LL-HLS rules of RFC 8216bis on one playlist; returns the preload hint's (msn, part).
fn check_ll_hls(text: &str) -> (u64, u32) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let target: f64 =
        lines.iter().find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:")).expect("target").parse().unwrap();
    let part_inf = lines.iter().find(|l| l.starts_with("#EXT-X-PART-INF:")).expect("part-inf");
    let part_target: f64 = attr(part_inf, "PART-TARGET").unwrap().parse().unwrap();
    let control = lines.iter().find(|l| l.starts_with("#EXT-X-SERVER-CONTROL:")).expect("server-control");
    assert!(control.contains("CAN-BLOCK-RELOAD=YES"));
    let hold_back: f64 = attr(control, "PART-HOLD-BACK").unwrap().parse().unwrap();
    assert!(hold_back >= 3.0 * part_target, "PART-HOLD-BACK {hold_back} < 3 × {part_target}");
    let mut msn: u64 = lines.iter().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
    assert!(lines.iter().any(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:")));
    assert!(lines.iter().any(|l| l.starts_with("#EXT-X-MAP:URI=")));

    let mut last_part: Option<(u64, u32)> = None;
    let mut last_was_segment = false;
    let mut pending_extinf: Option<f64> = None;
    for line in &lines {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let duration: f64 = attr(rest, "DURATION").unwrap().parse().unwrap();
            assert!(duration <= part_target + 1e-9, "part of {duration} s exceeds PART-TARGET {part_target}");
            let uri = attr(rest, "URI").unwrap().trim_matches('"');
            let (m, i) = uri.strip_prefix("part-").unwrap().strip_suffix(".m4s").unwrap().split_once('-').unwrap();
            let here = (m.parse::<u64>().unwrap(), i.parse::<u32>().unwrap());
            if let Some(prev) = last_part {
                let follows = (here.0 == prev.0 && here.1 == prev.1 + 1) || (here.0 > prev.0 && here.1 == 0);
                assert!(follows, "parts out of order: {prev:?} then {here:?}");
            }
            last_part = Some(here);
            last_was_segment = false;
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').parse().unwrap();
            assert!(d.round() <= target, "segment of {d} s exceeds TARGETDURATION {target}");
            pending_extinf = Some(d);
        } else if let Some(uri) = line.strip_prefix("seg-") {
            assert!(pending_extinf.take().is_some(), "segment URI without EXTINF");
            let n: u64 = uri.strip_suffix(".m4s").unwrap().parse().unwrap();
            assert_eq!(n, msn, "segments must be numbered consecutively from EXT-X-MEDIA-SEQUENCE");
            msn += 1;
            last_was_segment = true;
        }
    }
    let hint = lines.iter().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:")).expect("preload hint");
    assert!(hint.contains("TYPE=PART"));
    let uri = attr(hint, "URI").unwrap().trim_matches('"');
    let (m, i) = uri.strip_prefix("part-").unwrap().strip_suffix(".m4s").unwrap().split_once('-').unwrap();
    let hinted = (m.parse::<u64>().unwrap(), i.parse::<u32>().unwrap());
    let last = last_part.expect("parts listed");
    let expected = if last_was_segment { (last.0 + 1, 0) } else { (last.0, last.1 + 1) };
    assert_eq!(hinted, expected, "the preload hint must name the next part");
    hinted
}

/// What `ffprobe -v error ARGS URL` prints, asserting it succeeds.
pub async fn ffprobe(args: &[&str], url: &str) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(url).output().await.unwrap();
    assert!(out.status.success(), "ffprobe failed on {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn probe(url: &str) -> String {
    ffprobe(&["-show_entries", "stream=codec_name,width,height", "-of", "compact"], url).await
}

async fn copy_ten_seconds(url: &str, to: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i", url, "-t", "10", "-c", "copy"])
        .arg(to)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffmpeg -c copy from {url}: {stderr}");
    let duration = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1"])
        .arg(to)
        .output()
        .await
        .unwrap();
    let seconds: f64 = String::from_utf8_lossy(&duration.stdout).trim().parse().unwrap();
    assert!((9.5..=10.6).contains(&seconds), "copied {seconds} s instead of 10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_channels_publish_and_play_back_as_ll_hls() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let host = server.create_user("host@example.com", "host").await;
    let work = tempfile::tempdir().unwrap();
    let clip = clip(work.path()).await;
    let mut channels = Vec::new();
    let mut publishers = Vec::new();
    for title in ["Skincare", "Make-up", "Hair"] {
        let (id, key) = channel_with_key(&host, title).await;
        publishers.push(publish(&clip, &format!("{}/{key}", server.rtmp)));
        channels.push(id);
    }
    for &id in &channels {
        wait_for_segments(&server, id, 3).await;
    }

    // Status, health and the channel list reflect the lives.
    let list: Value = server.get_json("/api/v1/channels").await;
    assert!(list["items"].as_array().unwrap().iter().all(|c| c["status"] == "live"), "{list}");
    let detail: Value = server.get_json(&format!("/api/v1/channels/{}", channels[0])).await;
    assert_eq!(detail["health"]["width"], 1280);
    assert!(detail["health"]["video_codec"].as_str().unwrap().starts_with("avc1.64"), "High profile H.264");
    assert_eq!(detail["health"]["audio_codec"], "mp4a.40.2");
    let fps = detail["health"]["fps"].as_f64().unwrap();
    assert!((25.0..=35.0).contains(&fps), "fps {fps}");
    assert_eq!(detail["health"]["keyframe_interval_ms"], 2000);

    // ffprobe and ffmpeg read every channel back, side by side.
    let checks = channels.iter().map(|&id| {
        let url = server.url(&format!("/live/{id}/index.m3u8"));
        let out = work.path().join(format!("copy-{id}.mp4"));
        async move {
            let streams = probe(&url).await;
            assert!(streams.contains("codec_name=h264|width=1280|height=720"), "{streams}");
            assert!(streams.contains("codec_name=aac"), "{streams}");
            copy_ten_seconds(&url, &out).await;
        }
    });
    futures::future::join_all(checks).await;

    // The playlists keep the LL-HLS rules, and blocking reload returns the hinted part.
    for &id in &channels {
        let (status, text) = playlist(&server, id, "").await;
        assert_eq!(status, StatusCode::OK);
        let (msn, part) = check_ll_hls(&text);
        let started = Instant::now();
        let (status, blocked) = playlist(&server, id, &format!("?_HLS_msn={msn}&_HLS_part={part}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            blocked.contains(&format!("part-{msn}-{part}.m4s")),
            "the blocking reload did not wait for {msn}.{part}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        check_ll_hls(&blocked);
        let part_bytes =
            server.client.get(server.url(&format!("/live/{id}/part-{msn}-{part}.m4s"))).send().await.unwrap();
        assert_eq!(part_bytes.status(), StatusCode::OK);
        assert_eq!(part_bytes.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(part_bytes.headers()["access-control-allow-origin"], "*");
        let (_, delta) = playlist(&server, id, "?_HLS_skip=YES").await;
        assert!(delta.starts_with("#EXTM3U"));
        let (too_far, _) = playlist(&server, id, &format!("?_HLS_msn={}", msn + 10)).await;
        assert_eq!(too_far, StatusCode::BAD_REQUEST);
    }
    for mut p in publishers {
        let _ = p.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_keys_and_second_publishers_are_refused() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let host = server.create_user("host@example.com", "host").await;
    let work = tempfile::tempdir().unwrap();
    let clip = clip(work.path()).await;
    let (id, key) = channel_with_key(&host, "Keys").await;

    let wrong = publish(&clip, &format!("{}/live_not-a-real-key", server.rtmp));
    assert!(is_refused(wrong).await, "a wrong key must be refused");

    // A rotated key stops working at once.
    let rotated: Value =
        host.post(&format!("/api/v1/channels/{id}/stream-key")).send().await.unwrap().json().await.unwrap();
    let old = publish(&clip, &format!("{}/{key}", server.rtmp));
    assert!(is_refused(old).await, "a rotated key must be refused");
    let (status, _) = playlist(&server, id, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no live window without a publisher");

    let new_key = rotated["stream_key"].as_str().unwrap();
    let _first = publish(&clip, &format!("{}/{new_key}", server.rtmp));
    wait_for_segments(&server, id, 1).await;
    let second = publish(&clip, &format!("{}/{new_key}", server.rtmp));
    assert!(is_refused(second).await, "a second publisher on a live channel must be refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reconnecting_broadcaster_continues_the_playlist() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let host = server.create_user("host@example.com", "host").await;
    let work = tempfile::tempdir().unwrap();
    let clip = clip(work.path()).await;
    let (id, key) = channel_with_key(&host, "Reconnect").await;
    let url = format!("{}/{key}", server.rtmp);

    let mut first = publish(&clip, &url);
    let before = wait_for_segments(&server, id, 2).await;
    let first_msn: u64 =
        before.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
    first.kill().await.unwrap(); // a dropped connection, not a clean stop
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, during) = playlist(&server, id, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!during.contains("#EXT-X-ENDLIST"), "the window waits for the broadcaster");

    let _second = publish(&clip, &url);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let (_, text) = playlist(&server, id, "").await;
        if text.contains("#EXT-X-DISCONTINUITY")
            && text.split("#EXT-X-DISCONTINUITY").nth(1).unwrap().contains("#EXTINF")
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no continued playlist: {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let msn: u64 = after.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
    assert_eq!(msn, first_msn, "the same playlist goes on");
    assert!(after.contains("#EXT-X-MAP:URI=\"init-2.mp4\""), "the new session brings its own init segment");
    check_ll_hls(&after);
    let status: Value = server.get_json(&format!("/api/v1/channels/{id}")).await;
    assert_eq!(status["status"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_on_the_rtmp_port_never_hurts_the_server() {
    let server = Server::start().await;
    let addr = server.rtmp.trim_start_matches("rtmp://").trim_end_matches("/live").to_owned();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else { continue };
        let len = [1, 7, 1537, 3073, 5000, 20_000][round % 6];
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 {
            bytes[0] = 3; // a plausible RTMP version byte, then junk
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&bytes)).await;
        if round % 5 == 0 {
            drop(stream); // abrupt close mid-handshake
        }
    }
    // The inputs kept from fuzzing the RTMP session, as real connections.
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/rtmp_session");
    for entry in std::fs::read_dir(kept).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&bytes)).await;
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink))
                .await;
    }
    // A client that sends part of a handshake and half-closes is let go at once (scuffle-rtmp alone
    // would spin on it forever).
    let mut half = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half.write_all(&[3, 0, 0]).await.unwrap();
    half.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_end(&mut half, &mut sink)).await;
    assert!(closed.is_ok(), "the server kept a half-closed handshake open");
    // Connections that say nothing are timed out, not kept forever.
    let idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(idle);
    assert_eq!(server.client.get(server.url("/livez")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(server.client.get(server.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    // And a real publisher still gets in.
    if have_ffmpeg() {
        let host = server.create_user("host@example.com", "host").await;
        let work = tempfile::tempdir().unwrap();
        let clip = clip(work.path()).await;
        let (id, key) = channel_with_key(&host, "After the storm").await;
        let _p = publish(&clip, &format!("{}/{key}", server.rtmp));
        wait_for_segments(&server, id, 1).await;
    }
}
