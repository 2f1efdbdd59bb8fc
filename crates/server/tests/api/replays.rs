//! Recordings and replays end to end: ffmpeg publishes a solid-colour test picture, the live is
//! recorded to object storage and becomes a replay that ffprobe and ffmpeg read back; thumbnails
//! are taken at the channel's interval and show the colour that was sent; a server killed with
//! SIGKILL mid-live leaves a replay of what it had stored. Skipped with a notice where ffmpeg is
//! not installed.

use crate::helpers::*;
use crate::live::{channel_with_key, ffprobe, have_ffmpeg};
use crate::s3::S3Server;
use crate::webhooks::{receiver, verify};
use olive_objects::{Objects, S3Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The colour the test picture is filled with, and what thumbnails must show.
const COLOUR: [u8; 3] = [0x33, 0x66, 0xcc];

/// Publishes `seconds` of a solid-colour 640x360 picture with a tone (encoded on the fly, 1 s
/// GOP), at real time; ffmpeg ends the stream cleanly when the time is up.
pub fn publish_colour(url: &str, seconds: u32) -> Child {
    let colour = format!("color=c=0x{:02x}{:02x}{:02x}:size=640x360:rate=25", COLOUR[0], COLOUR[1], COLOUR[2]);
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", &colour, "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt"])
        .args(["yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits until the channel has a listed replay, and returns it.
pub async fn wait_for_replay(server: &Server, channel: i64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list: Value = server.get_json(&format!("/api/v1/replays?channel_id={channel}")).await;
        if let Some(replay) = list["items"].as_array().and_then(|items| items.first()) {
            return replay.clone();
        }
        assert!(Instant::now() < deadline, "no replay of channel {channel} within {within:?}: {list}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn duration_of(url: &str) -> f64 {
    let out = ffprobe(&["-show_entries", "format=duration", "-of", "csv=p=0"], url).await;
    out.trim().parse().expect("a duration")
}

/// The decode-time steps between consecutive video frames, in milliseconds.
async fn frame_steps_ms(url: &str) -> Vec<i64> {
    let out = ffprobe(&["-select_streams", "v", "-show_entries", "packet=dts_time", "-of", "csv=p=0"], url).await;
    let times: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    times.windows(2).map(|w| ((w[1] - w[0]) * 1000.0).round() as i64).collect()
}

/// `ffmpeg -i URL -c copy` into an MP4; returns its duration.
async fn copy_out(url: &str, to: &Path) -> f64 {
    let out =
        Command::new("ffmpeg").args(["-v", "error", "-y", "-i", url, "-c", "copy"]).arg(to).output().await.unwrap();
    assert!(out.status.success(), "ffmpeg could not read {url}: {}", String::from_utf8_lossy(&out.stderr));
    duration_of(to.to_str().unwrap()).await
}

/// The thumbnails stored for a channel, oldest first, as (unix milliseconds, key).
async fn stored_thumbnails(bucket: &Objects, channel: i64) -> Vec<(i64, String)> {
    let keys = bucket.list(&format!("thumbnails/{channel}")).await.unwrap();
    let mut found: Vec<(i64, String)> = keys
        .into_iter()
        .filter_map(|key| Some((key.rsplit('/').next()?.strip_suffix(".jpg")?.parse().ok()?, key)))
        .collect();
    found.sort();
    found
}

/// The server's object store, as the test sees it.
fn file_bucket(server: &Server) -> Objects {
    let url = format!("file://{}", server.data_dir.path().join("objects").display());
    Objects::from_url(&url, &S3Settings::default()).unwrap()
}

fn mean_colour(jpeg: &[u8]) -> [f64; 3] {
    let picture = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).expect("a valid JPEG").to_rgb8();
    let n = f64::from(picture.width() * picture.height());
    let mut sum = [0f64; 3];
    for p in picture.pixels() {
        for c in 0..3 {
            sum[c] += f64::from(p[c]);
        }
    }
    sum.map(|s| s / n)
}

fn assert_colour(jpeg: &[u8]) {
    let mean = mean_colour(jpeg);
    for c in 0..3 {
        assert!((mean[c] - f64::from(COLOUR[c])).abs() < 10.0, "thumbnail colour {mean:?}, sent {COLOUR:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_becomes_a_replay_with_thumbnails() {
    if !have_ffmpeg() {
        return;
    }
    // The webhook receiver is on loopback.
    let server = Server::start_with(Db::Sqlite, &["--allow-private-webhooks"]).await;
    let bucket = file_bucket(&server);
    live_becomes_replay(&server, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_becomes_a_replay_with_thumbnails_on_s3() {
    if !have_ffmpeg() {
        return;
    }
    let Some(s3) = S3Server::start().await else { return };
    let url = s3.url("recordings-test");
    let args = ["--object-store-url", url.as_str(), "--allow-private-webhooks"];
    let server = Server::start_with_flags_and_env(Db::Sqlite, &args, &s3.env()).await;
    let bucket = Objects::from_url(&url, &s3.settings()).unwrap();
    live_becomes_replay(&server, &bucket).await;
    let local = server.data_dir.path().join("objects");
    assert!(!local.join("recordings").exists() && !local.join("thumbnails").exists(), "media went to the local disk");
}

/// Publishes 30 s and checks the replay, its playback and its thumbnails; `bucket` reads the
/// server's object store.
async fn live_becomes_replay(server: &Server, bucket: &Objects) {
    let host = server.create_user("replay-host@example.com", "host").await;
    let admin = server.create_user("replay-admin@example.com", "admin").await;
    let (hook, hits) = receiver(0).await;
    let created = admin.post("/api/v1/webhooks").json(&json!({ "url": hook, "events": ["replay.ready"] })).send();
    let created: Value = created.await.unwrap().json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (channel, key) = channel_with_key(&host, "Blue hour").await;
    for bad in [0, 301] {
        let r = host.patch(&format!("/api/v1/channels/{channel}")).json(&json!({ "thumbnail_interval_s": bad })).send();
        assert_eq!(error_code(r.await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    }
    let r = host.patch(&format!("/api/v1/channels/{channel}")).json(&json!({ "thumbnail_interval_s": 5 })).send();
    assert_eq!(r.await.unwrap().status(), StatusCode::OK);

    let started = Instant::now();
    let publisher = publish_colour(&format!("{}/{key}", server.rtmp), 30);
    // While it runs, the live thumbnail shows the picture.
    let deadline = Instant::now() + Duration::from_secs(20);
    let live_thumbnail = loop {
        let r = server.client.get(server.url(&format!("/live/{channel}/thumbnail.jpg"))).send().await.unwrap();
        if r.status() == StatusCode::OK {
            assert_eq!(r.headers()["content-type"], "image/jpeg");
            break r.bytes().await.unwrap();
        }
        assert!(Instant::now() < deadline, "no live thumbnail within 20 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_colour(&live_thumbnail);
    let out = tokio::time::timeout(Duration::from_secs(60), publisher.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
    let ended = Instant::now();
    eprintln!("published for {:.1} s", (ended - started).as_secs_f64());

    // Within 10 s of the end, the replay is listed.
    let replay = wait_for_replay(server, channel, Duration::from_secs(10)).await;
    eprintln!("replay listed {:.1} s after the end: {replay}", ended.elapsed().as_secs_f64());
    let id = replay["id"].as_i64().unwrap();
    assert_eq!(replay["status"], "ready");
    assert_eq!(replay["title"], "Blue hour");
    assert_eq!(replay["playback_url"], format!("/vod/{id}/master.m3u8"));
    let recorded_ms = replay["duration_ms"].as_i64().unwrap();
    assert!((28_000..=32_000).contains(&recorded_ms), "recorded {recorded_ms} ms of a 30 s live");

    // The VOD playlist is complete, and ffprobe and ffmpeg read it back.
    let playlist_url = server.url(&format!("/vod/{id}/index.m3u8"));
    let text = server.client.get(&playlist_url).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    // Without a ladder (this node has no transcode slots), the multivariant playlist names the
    // source alone, described from its init segment.
    let master =
        server.client.get(server.url(&format!("/vod/{id}/master.m3u8"))).send().await.unwrap().text().await.unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 1, "{master}");
    assert!(master.contains(",CODECS=\"avc1.") && master.contains("\nindex.m3u8\n"), "{master}");
    let probed = duration_of(&playlist_url).await;
    assert!((probed - 30.0).abs() <= 2.0, "ffprobe says the replay lasts {probed} s");
    let copied = copy_out(&playlist_url, &server.data_dir.path().join("replay.mp4")).await;
    assert!((copied - 30.0).abs() <= 2.0, "the copied replay lasts {copied} s");
    // Every frame keeps its own time: 25 fps is 40 ms apart (an RTMP reader that drops
    // timestamp deltas gives many frames one time).
    let steps = frame_steps_ms(&playlist_url).await;
    let regular = steps.iter().filter(|s| (39..=41).contains(*s)).count();
    assert!(regular * 100 >= steps.len() * 95, "frame steps in ms: {:?}", &steps[..steps.len().min(60)]);

    // Segments come with byte ranges.
    let segment = text.lines().find(|l| l.starts_with("seg-")).unwrap();
    let segment_url = server.url(&format!("/vod/{id}/{segment}"));
    let whole = server.client.get(&segment_url).send().await.unwrap();
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    let part = server.client.get(&segment_url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], format!("bytes 100-199/{}", whole.len()));
    assert_eq!(part.bytes().await.unwrap(), whole[100..200]);
    let tail = server.client.get(&segment_url).header("range", "bytes=-10").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap(), whole[whole.len() - 10..]);
    let past = server.client.get(&segment_url).header("range", format!("bytes={}-", whole.len() + 5)).send().await;
    let past = past.unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()["content-range"], format!("bytes */{}", whole.len()));

    // Thumbnails were taken at the interval, each a JPEG of the colour sent.
    let thumbnails = stored_thumbnails(bucket, channel).await;
    assert!((5..=8).contains(&thumbnails.len()), "{} thumbnails in a 30 s live at 5 s", thumbnails.len());
    for pair in thumbnails.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!((4_000..=6_500).contains(&gap), "thumbnails {gap} ms apart at a 5 s interval");
    }
    for (_, key) in &thumbnails {
        assert_colour(&bucket.get(key).await.unwrap().bytes);
    }
    let poster = server.client.get(server.url(replay["thumbnail_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(poster.status(), StatusCode::OK);
    assert_colour(&poster.bytes().await.unwrap());

    // Ranges that may be ignored get the whole file.
    for ignored in ["bytes=abc", "items=0-5", "bytes=0-1,5-6", "bytes=5-2"] {
        let r = server.client.get(&segment_url).header("range", ignored).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{ignored}");
        assert_eq!(r.bytes().await.unwrap().len(), whole.len(), "{ignored}");
    }
    for missing in ["seg-1.m4s", "init-9.mp4", "part-1-0.m4s", "seg-+1.m4s", "seg-1.m4s.bak", "..%2Findex.m3u8", "%00"]
    {
        let r = server.client.get(server.url(&format!("/vod/{id}/{missing}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
    }

    // Integrators hear of it, signed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let hit = loop {
        if let Some(hit) = hits.lock().unwrap().iter().find(|h| h.event == "replay.ready").cloned() {
            break hit;
        }
        assert!(Instant::now() < deadline, "no replay.ready webhook within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(verify(&secret, &hit.signature, &hit.body));
    let event: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!(event["data"]["replay_id"], id);
    assert_eq!(event["data"]["playback_url"], format!("/vod/{id}/master.m3u8"));

    // Finalisation and registration ran as jobs.
    let jobs: Value = admin.get("/api/v1/jobs?status=done").send().await.unwrap().json().await.unwrap();
    let kinds: Vec<&str> = jobs["items"].as_array().unwrap().iter().filter_map(|j| j["kind"].as_str()).collect();
    assert!(kinds.contains(&"recording.finalise") && kinds.contains(&"replay.register"), "{kinds:?}");
    // The bucket holds a playable copy of the playlist beside the segments.
    let stored = bucket.get(&format!("recordings/{id}/index.m3u8")).await.unwrap().bytes;
    assert_eq!(String::from_utf8_lossy(&stored), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_mid_live_leaves_a_replay_of_what_was_stored() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let host = server.create_user("crash-host@example.com", "host").await;
    let (channel, key) = channel_with_key(&host, "Power cut").await;
    let publisher = publish_colour(&format!("{}/{key}", server.rtmp), 120);
    let started = Instant::now();
    // Twenty seconds into the live, the server dies without a chance to close anything.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let server = server.crash_and_restart(&[]).await;
    eprintln!("killed {:.1} s into the live", started.elapsed().as_secs_f64());
    drop(publisher);
    let host = server.login("crash-host@example.com", PASSWORD).await;

    // On restart the partial recording is finalised from what was stored.
    let replay = wait_for_replay(&server, channel, Duration::from_secs(30)).await;
    let id = replay["id"].as_i64().unwrap();
    let recorded_ms = replay["duration_ms"].as_i64().unwrap();
    assert!(recorded_ms >= 16_000, "only {recorded_ms} ms of a 20 s live survived the crash");
    let playlist_url = server.url(&format!("/vod/{id}/index.m3u8"));
    let copied = copy_out(&playlist_url, &server.data_dir.path().join("crash.mp4")).await;
    assert!(copied >= 16.0, "ffmpeg read {copied} s of the crashed live");

    // Its host hides it: gone from the listing and from strangers, still there for the host.
    let hidden = host.patch(&format!("/api/v1/replays/{id}")).json(&json!({ "hidden": true })).send().await.unwrap();
    assert_eq!(hidden.status(), StatusCode::OK);
    let list: Value = server.get_json("/api/v1/replays").await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    let anonymous = server.client.get(server.url(&format!("/api/v1/replays/{id}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
    assert_eq!(server.client.get(&playlist_url).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(host.get(&format!("/api/v1/replays/{id}")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(host.get(&format!("/vod/{id}/index.m3u8")).send().await.unwrap().status(), StatusCode::OK);

    // Another host may neither show nor delete it; a shopper neither.
    let other = server.create_user("other-host@example.com", "host").await;
    let shopper = server.signup("replay-shopper@example.com").await;
    for who in [&other, &shopper] {
        let r = who.patch(&format!("/api/v1/replays/{id}")).json(&json!({ "hidden": false })).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(who.delete(&format!("/api/v1/replays/{id}")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    }
    let bad = host.patch(&format!("/api/v1/replays/{id}")).json(&json!({ "hidden": "yes" })).send().await.unwrap();
    assert_eq!(error_code(bad, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");

    // Deleting removes the replay and every object it stored.
    let bucket = file_bucket(&server);
    let recording = format!("recordings/{id}");
    assert!(bucket.list(&recording).await.unwrap().len() > 8);
    assert!(!stored_thumbnails(&bucket, channel).await.is_empty());
    assert_eq!(host.delete(&format!("/api/v1/replays/{id}")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(bucket.list(&recording).await.unwrap(), Vec::<String>::new(), "objects left behind");
    assert!(stored_thumbnails(&bucket, channel).await.is_empty());
    assert_eq!(host.get(&format!("/api/v1/replays/{id}")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(host.get(&format!("/vod/{id}/index.m3u8")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_stopped_by_sigterm_is_finalised_before_exit() {
    if !have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let host = server.create_user("sigterm-host@example.com", "host").await;
    let (_, key) = channel_with_key(&host, "Closing time").await;
    let _publisher = publish_colour(&format!("{}/{key}", server.rtmp), 120);
    let bucket = file_bucket(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while bucket.list("recordings").await.unwrap_or_default().len() < 4 {
        assert!(Instant::now() < deadline, "nothing recorded within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // SIGTERM mid-live: the process exits 0 with the recording closed and finalised.
    let (status, data_dir) = server.stop_keeping_data().await;
    assert!(status.success(), "olive exited with {status}");
    let url = format!("file://{}/objects", data_dir.path().display());
    let bucket = Objects::from_url(&url, &S3Settings::default()).unwrap();
    let keys = bucket.list("recordings").await.unwrap();
    let playlist = keys.iter().find(|k| k.ends_with("/index.m3u8"));
    let playlist = playlist.unwrap_or_else(|| panic!("no final playlist written before exit: {keys:?}"));
    let text = bucket.get(playlist).await.unwrap().bytes;
    assert!(String::from_utf8_lossy(&text).trim_end().ends_with("#EXT-X-ENDLIST"));
}
