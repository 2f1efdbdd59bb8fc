//! Adaptive bitrate end to end: a real ffmpeg publishes a 720p stream with B-frames, the node
//! encodes its ladder, and the result is read back as players and tools would: the playlists by a
//! third-party parser in strict mode (hls-parser, from the web app's packages), every rung by
//! ffprobe at its declared size, and the parts of every rendition by ffprobe to check that they
//! begin at the same media times.

use crate::helpers::*;
use crate::live::{channel_with_key, clip, have_ffmpeg, publish};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::process::Command;

const RUNGS: [&str; 3] = ["480p", "360p", "160p"];

fn check_hls_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/tools/check-hls.mjs")
}

/// Runs the strict third-party parser over `urls`; returns what it read of each.
async fn check_playlists(urls: &[String]) -> Vec<Value> {
    let out = Command::new("node").arg(check_hls_script()).args(urls).output().await.expect("node runs");
    assert!(
        out.status.success(),
        "hls-parser refused a playlist: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn text(server: &Server, path: &str) -> String {
    let r = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// Waits until the channel's multivariant playlist lists `n` renditions.
async fn master_with(server: &Server, channel: i64, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let r = server.client.get(server.url(&format!("/live/{channel}/master.m3u8"))).send().await.unwrap();
        if r.status() == StatusCode::OK {
            let text = r.text().await.unwrap();
            if text.matches("#EXT-X-STREAM-INF").count() == n {
                return text;
            }
            assert!(Instant::now() < deadline, "the master playlist never listed {n} renditions:\n{text}");
        } else {
            assert!(Instant::now() < deadline, "no master playlist: {}", r.status());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The (segment, [(part index, duration text)]) of the playlist's complete segments that list parts.
fn parts_by_segment(playlist: &str) -> Vec<(u64, Vec<(u32, String)>)> {
    let mut out: Vec<(u64, Vec<(u32, String)>)> = Vec::new();
    let mut open: Vec<(u32, String)> = Vec::new();
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            let (duration, uri) = rest.split_once(",URI=\"part-").unwrap();
            let name = uri.split('"').next().unwrap().trim_end_matches(".m4s");
            let (_, index) = name.split_once('-').unwrap();
            open.push((index.parse().unwrap(), duration.to_owned()));
        } else if let Some(seg) = line.strip_prefix("seg-") {
            let msn = seg.trim_end_matches(".m4s").parse().unwrap();
            if !open.is_empty() {
                out.push((msn, std::mem::take(&mut open)));
            }
        }
    }
    out
}

/// The first video stream's `width,height` as ffprobe reads it from `url`.
async fn probed_size(url: &str) -> Option<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned)
}

/// The init segment and `part` of the rendition at `folder`, as one file ffprobe can read.
async fn fetch_part(server: &Server, folder: &str, playlist: &str, msn: u64, index: u32) -> Vec<u8> {
    fetch_media(server, folder, playlist, &format!("part-{msn}-{index}.m4s")).await
}

/// The playlist's latest init segment and its media file `name`, as one file ffprobe can read.
async fn fetch_media(server: &Server, folder: &str, playlist: &str, name: &str) -> Vec<u8> {
    let init = playlist.lines().rev().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).unwrap().trim_end_matches('"');
    let mut bytes = server
        .client
        .get(server.url(&format!("{folder}/{init}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let media = server.client.get(server.url(&format!("{folder}/{name}"))).send().await.unwrap();
    assert_eq!(media.status(), StatusCode::OK, "{folder}/{name}");
    bytes.extend_from_slice(&media.bytes().await.unwrap());
    bytes
}

/// The presentation times (90 kHz) of the video samples of a fetched part.
async fn video_pts(part: &[u8]) -> Vec<i64> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), part).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "packet=pts", "-of", "csv=p=0"])
        .arg(file.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "ffprobe could not read a part");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[tokio::test]
async fn a_standard_live_plays_as_a_ladder_whose_rungs_line_up() {
    if !have_ffmpeg() {
        return;
    }
    // Encoders take the machine's cores: not beside the browser tests and the benchmarks.
    let _turn = CPU_HEAVY.lock().await;
    let server = Server::start_with(Db::Sqlite, &["--transcode-slots", "2"]).await;
    let host = server.create_user("ladder-host@example.com", "host").await;
    let (id, key) = channel_with_key(&host, "Ladder").await;
    let channel: Value = server.get_json(&format!("/api/v1/channels/{id}")).await;
    assert_eq!(channel["type"], "standard", "channels get a ladder by default");
    assert_eq!(channel["playback_url"], format!("/live/{id}/master.m3u8"));
    let clip = clip(server.data_dir.path()).await;
    let _publisher = publish(&clip, &format!("{}/{key}", server.rtmp));

    let master = master_with(&server, id, 4).await;
    let base = server.url(&format!("/live/{id}"));
    let mut urls =
        vec![format!("{base}/master.m3u8"), format!("{base}/index.m3u8"), format!("{base}/index.m3u8?_HLS_skip=YES")];
    for rung in RUNGS {
        urls.push(format!("{base}/{rung}/index.m3u8"));
        urls.push(format!("{base}/{rung}/index.m3u8?_HLS_skip=YES"));
    }
    // Give every rung a few segments, so delta updates skip some.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let read = check_playlists(&urls).await;
    let variants = read[0]["variants"].as_array().unwrap();
    let shapes: Vec<(i64, i64)> = variants
        .iter()
        .map(|v| (v["resolution"]["width"].as_i64().unwrap(), v["resolution"]["height"].as_i64().unwrap()))
        .collect();
    assert_eq!(shapes, vec![(1280, 720), (854, 480), (640, 360), (284, 160)], "{master}");
    for v in variants {
        assert_eq!(v["audio"], json!(["audio"]), "every variant names the shared audio group: {v}");
        assert!(v["codecs"].as_str().unwrap().contains("mp4a.40.2"), "{v}");
        assert!(v["averageBandwidth"].as_i64().unwrap() <= v["bandwidth"].as_i64().unwrap());
        assert_eq!(v["frameRate"], 30);
    }
    for media in &read[1..] {
        assert_eq!(media["renditionReports"].as_array().unwrap().len(), 3, "reports of the other renditions: {media}");
        assert!(media["parts"].as_u64().unwrap() > 0, "{media}");
    }

    // ffprobe plays every rung at the size the multivariant playlist declares.
    for (rung, (w, h)) in RUNGS.iter().zip([(854, 480), (640, 360), (284, 160)]) {
        assert_eq!(probed_size(&format!("{base}/{rung}/index.m3u8")).await, Some(format!("{w},{h}")), "{rung}");
    }

    // The same segment in every rendition: the same parts, the same durations, and the same
    // media times (every rung's parts start together, a segment's exactly at the source's IDR
    // frame).
    // The playlists are read together; the segments every rendition has completed are compared
    // part by part (parts stay in the window longer than they are listed, and each playlist lists
    // them for its last few segments only).
    let complete = |playlist: &str, msn: u64| playlist.contains(&format!("\nseg-{msn}.m4s\n"));
    let (source, rung_playlists, source_parts) = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let source = text(&server, &format!("/live/{id}/index.m3u8")).await;
            let mut rung_playlists = Vec::new();
            for rung in RUNGS {
                rung_playlists.push(text(&server, &format!("/live/{id}/{rung}/index.m3u8")).await);
            }
            let mut listed: Vec<(u64, Vec<(u32, String)>)> = Vec::new();
            for playlist in std::iter::once(&source).chain(&rung_playlists) {
                for (msn, parts) in parts_by_segment(playlist) {
                    if !listed.iter().any(|(m, _)| *m == msn) {
                        listed.push((msn, parts));
                    }
                }
            }
            listed.retain(|(msn, _)| complete(&source, *msn) && rung_playlists.iter().all(|p| complete(p, *msn)));
            listed.sort_by_key(|(msn, _)| *msn);
            if listed.len() >= 2 {
                break (source, rung_playlists, listed);
            }
            assert!(Instant::now() < deadline, "no two segments completed by every rendition");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (mut checked, mut listed_alike) = (0, 0);
    // Every part of the two newest such segments is fetched first (the window slides on while
    // ffprobe reads them), then compared.
    let mut fetched = Vec::new();
    for (msn, parts) in source_parts.iter().rev().take(2) {
        // Where a rung lists the segment's parts too (its listing trails the source's by a part
        // or so), they are the source's; every part can be fetched either way.
        for (rung, playlist) in RUNGS.iter().zip(&rung_playlists) {
            if let Some((_, theirs)) = parts_by_segment(playlist).into_iter().find(|(m, _)| m == msn) {
                assert_eq!(&theirs, parts, "{rung}'s parts of segment {msn} are the source's");
                listed_alike += 1;
            }
        }
        let mut source_bytes = Vec::new();
        for (index, _) in parts {
            source_bytes.push(fetch_part(&server, &format!("/live/{id}"), &source, *msn, *index).await);
        }
        let mut rung_bytes = Vec::new();
        for (rung, playlist) in RUNGS.iter().zip(&rung_playlists) {
            let mut each = Vec::new();
            for (index, _) in parts {
                each.push(fetch_part(&server, &format!("/live/{id}/{rung}"), playlist, *msn, *index).await);
            }
            rung_bytes.push(each);
        }
        fetched.push((*msn, source_bytes, rung_bytes));
    }
    for (msn, source_bytes, rung_bytes) in &fetched {
        let mut source_starts = Vec::new();
        for part in source_bytes {
            source_starts.push(*video_pts(part).await.iter().min().unwrap());
        }
        let mut rung_starts: Vec<Vec<i64>> = Vec::new();
        for (rung, parts) in RUNGS.iter().zip(rung_bytes) {
            let mut starts = Vec::new();
            for part in parts {
                let pts = video_pts(part).await;
                assert!(pts.windows(2).all(|w| w[0] < w[1]), "{rung} has no B-frames");
                starts.push(pts[0]);
            }
            rung_starts.push(starts);
        }
        for starts in &rung_starts[1..] {
            assert_eq!(starts, &rung_starts[0], "every rung's parts of segment {msn} start at the same media times");
        }
        assert_eq!(rung_starts[0][0], source_starts[0], "segment {msn} opens on the same IDR frame");
        // Within a part, the source's B-frames are reordered: its first shown frame may be one
        // that a rung shows at the end of its previous part (x264's two B-frames: up to 3 frames).
        for (rung, source) in rung_starts[0].iter().zip(&source_starts) {
            assert!((rung - source).abs() <= 9000, "part starts {rung} and {source} are more than 3 frames apart");
        }
        checked += 1;
    }
    assert_eq!(checked, 2);
    assert!(listed_alike >= RUNGS.len(), "every rung lists a segment's parts as the source does");

    // The live's thumbnail comes from the pictures the encoder decodes anyway.
    let thumb = server.client.get(server.url(&format!("/live/{id}/thumbnail.jpg"))).send().await.unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    let jpeg = thumb.bytes().await.unwrap();
    let picture = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((picture.width(), picture.height()), (640, 360));

    // The studio sees the ladder's health; the node its slots.
    let detail: Value = host.get(&format!("/api/v1/channels/{id}")).send().await.unwrap().json().await.unwrap();
    let ladder = &detail["ladder"];
    assert_eq!(ladder["running"], true, "{detail}");
    assert!(ladder["fallback"].is_null());
    let rungs = ladder["health"]["rungs"].as_array().unwrap();
    assert_eq!(rungs.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), RUNGS);
    for r in rungs {
        assert!(r["fps"].as_f64().unwrap() > 20.0, "{r}");
        assert!(r["encoder_lag_ms"].as_i64().unwrap() < 1000, "{r}");
    }
    let scrape = server.client.get(&server.metrics).send().await.unwrap().text().await.unwrap();
    assert!(scrape.contains("olive_transcode_slots{state=\"used\"} 1"), "{scrape}");
    assert!(scrape.contains("olive_transcode_slots{state=\"free\"} 1"));

    // A host chooses the type; only the two there are.
    let r = host.patch(&format!("/api/v1/channels/{id}")).json(&json!({"type": "basic"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "basic");
    let r = host.patch(&format!("/api/v1/channels/{id}")).json(&json!({"type": "premium"})).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let viewer = server.create_user("ladder-viewer@example.com", "viewer").await;
    let r = viewer.patch(&format!("/api/v1/channels/{id}")).json(&json!({"type": "standard"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_live_without_a_ladder_plays_basic_and_says_why() {
    if !have_ffmpeg() {
        return;
    }
    // Encoders take the machine's cores: not beside the browser tests and the benchmarks.
    let _turn = CPU_HEAVY.lock().await;
    // The test servers offer no transcode slot unless asked.
    let server = Server::start().await;
    let host = server.create_user("basic-host@example.com", "host").await;
    let (standard, key) = channel_with_key(&host, "Wants a ladder").await;
    let (basic, basic_key) = channel_with_key(&host, "Source only").await;
    let r = host.patch(&format!("/api/v1/channels/{basic}")).json(&json!({"type": "basic"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let clip = clip(server.data_dir.path()).await;
    let _a = publish(&clip, &format!("{}/{key}", server.rtmp));
    let _b = publish(&clip, &format!("{}/{basic_key}", server.rtmp));
    for id in [standard, basic] {
        let master = master_with(&server, id, 1).await;
        assert!(master.contains("RESOLUTION=1280x720") && master.contains("\nindex.m3u8\n"), "{master}");
    }
    let detail: Value = host.get(&format!("/api/v1/channels/{standard}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["ladder"]["running"], false);
    assert_eq!(detail["ladder"]["fallback"]["code"], "no_slot", "{detail}");
    let detail: Value = host.get(&format!("/api/v1/channels/{basic}")).send().await.unwrap().json().await.unwrap();
    assert!(detail["ladder"]["fallback"].is_null(), "a basic channel wanted no ladder: {detail}");
    let scrape = server.client.get(&server.metrics).send().await.unwrap().text().await.unwrap();
    assert!(scrape.contains("olive_ladder_fallbacks_total{reason=\"no_slot\"} 1"), "{scrape}");
    let r = server.client.get(server.url(&format!("/live/{standard}/480p/index.m3u8"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "no rung without a ladder");
    for bad in [
        "/live/1/0480p/index.m3u8",
        "/live/1/480/index.m3u8",
        "/live/1/480p/..%2Findex.m3u8",
        "/live/1/99999p/init-1.mp4",
    ] {
        let r = server.client.get(server.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

/// A source as encoders send it in the wild, encoded once for the test.
struct Case {
    name: &'static str,
    /// ffmpeg's arguments after its inputs.
    input: String,
    encode: &'static [&'static str],
    /// The rungs the ladder should make, with their sizes.
    rungs: &'static [(&'static str, u32, u32)],
    audio: bool,
}

async fn encode_case(case: &Case, dir: &std::path::Path, seconds: u32) -> PathBuf {
    let path = dir.join(format!("{}.flv", case.name));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i", &case.input]);
    if case.audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac", "-b:a", "64k"]);
    }
    let out = cmd
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast"])
        .args(case.encode)
        .args(["-f", "flv"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}: {}", case.name, String::from_utf8_lossy(&out.stderr));
    path
}

/// Odd sizes, 60 fps, no audio, a long gap between keyframes and corrupted NAL units: each is
/// made into a ladder (or plays as basic, saying why) without a panic, and what is played parses.
#[tokio::test]
async fn hostile_sources_make_ladders_or_say_why() {
    if !have_ffmpeg() {
        return;
    }
    // Encoders take the machine's cores: not beside the browser tests and the benchmarks.
    let _turn = CPU_HEAVY.lock().await;
    let cases = [
        Case {
            name: "laptop-1366x768",
            input: "testsrc2=size=1366x768:rate=30".into(),
            encode: &["-g", "60", "-pix_fmt", "yuv420p"],
            rungs: &[("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360), ("160p", 284, 160)],
            audio: true,
        },
        Case {
            name: "odd-853x480",
            input: "testsrc2=size=853x480:rate=30".into(),
            // An odd width needs chroma at full resolution (x264's 4:2:0 wants even sides).
            encode: &["-g", "60", "-pix_fmt", "yuv444p"],
            rungs: &[("360p", 640, 360), ("160p", 284, 160)],
            audio: true,
        },
        Case {
            name: "sixty-fps",
            input: "testsrc2=size=640x360:rate=60".into(),
            encode: &["-g", "120", "-bf", "3", "-pix_fmt", "yuv420p"],
            rungs: &[("160p", 284, 160)],
            audio: true,
        },
        Case {
            name: "no-audio",
            input: "testsrc2=size=640x360:rate=30".into(),
            encode: &["-g", "60", "-pix_fmt", "yuv420p"],
            rungs: &[("160p", 284, 160)],
            audio: false,
        },
        Case {
            name: "keyframes-11s-apart",
            input: "testsrc2=size=640x360:rate=30".into(),
            encode: &["-g", "330", "-keyint_min", "330", "-sc_threshold", "0", "-pix_fmt", "yuv420p"],
            rungs: &[("160p", 284, 160)],
            audio: true,
        },
    ];
    let server = Server::start_with(Db::Sqlite, &["--transcode-slots", "6"]).await;
    let host = server.create_user("hostile-source@example.com", "host").await;
    let dir = tempfile::tempdir().unwrap();
    let mut live = Vec::new();
    for case in &cases {
        let clip = encode_case(case, dir.path(), 14).await;
        let (id, key) = channel_with_key(&host, case.name).await;
        live.push((case, id, crate::live::publish(&clip, &format!("{}/{key}", server.rtmp))));
    }
    // Corrupted NAL units: a stream with bytes of its video packets flipped on the way.
    let (corrupt_id, corrupt_key) = channel_with_key(&host, "corrupted").await;
    let plain = Case {
        name: "corrupted",
        input: "testsrc2=size=640x360:rate=30".into(),
        encode: &["-g", "60", "-pix_fmt", "yuv420p"],
        rungs: &[],
        audio: true,
    };
    let corrupt_clip = encode_case(&plain, dir.path(), 40).await;
    let _corrupt = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(&corrupt_clip)
        .args(["-c", "copy", "-bsf:v", "noise=amount=2000", "-f", "flv", &format!("{}/{corrupt_key}", server.rtmp)])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    tokio::time::sleep(Duration::from_secs(12)).await;
    for (case, id, _publisher) in &live {
        let master = master_with(&server, *id, case.rungs.len() + 1).await;
        assert_eq!(master.contains("#EXT-X-MEDIA:TYPE=AUDIO"), case.audio, "{}: {master}", case.name);
        let base = server.url(&format!("/live/{id}"));
        let mut urls = vec![format!("{base}/master.m3u8"), format!("{base}/index.m3u8")];
        urls.extend(case.rungs.iter().map(|(rung, _, _)| format!("{base}/{rung}/index.m3u8")));
        check_playlists(&urls).await;
        for (rung, w, h) in case.rungs {
            assert!(master.contains(&format!("RESOLUTION={w}x{h}")), "{}: {master}", case.name);
            let size = probed_size(&format!("{base}/{rung}/index.m3u8")).await;
            assert_eq!(size, Some(format!("{w},{h}")), "{} {rung}", case.name);
        }
        let detail: Value = host.get(&format!("/api/v1/channels/{id}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(detail["ladder"]["running"], true, "{}: {detail}", case.name);
    }
    // The corrupted stream plays its source and either its ladder or a reason; nothing panicked.
    let detail: Value = host.get(&format!("/api/v1/channels/{corrupt_id}")).send().await.unwrap().json().await.unwrap();
    let ladder = &detail["ladder"];
    assert!(ladder["running"] == true || !ladder["fallback"].is_null(), "{detail}");
    check_playlists(&[server.url(&format!("/live/{corrupt_id}/index.m3u8"))]).await;
    let r = server.client.get(server.url("/livez")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!server.output.lock().unwrap().iter().any(|l| l.contains("panicked")), "a panic in the log");
}

/// `first` then `second` as one FLV file, the second's timestamps following the first's: its own
/// sequence headers arrive mid-stream, as when OBS changes its output resolution.
fn joined_flv(first: &std::path::Path, second: &std::path::Path, out: &std::path::Path) {
    use olive_media_mux::flv_stream::{self, TagKind, TagReader};
    let tags = |path: &std::path::Path| {
        let mut reader = TagReader::new(16 << 20);
        reader.push(&std::fs::read(path).unwrap());
        std::iter::from_fn(move || reader.next_tag().unwrap()).filter(|t| t.kind != TagKind::Script).collect::<Vec<_>>()
    };
    let (a, b) = (tags(first), tags(second));
    let offset = a.iter().map(|t| t.timestamp).max().unwrap() + 33;
    let mut bytes = flv_stream::header(true).to_vec();
    for t in &a {
        bytes.extend_from_slice(&flv_stream::tag(t.kind, t.timestamp, &t.payload));
    }
    for t in &b {
        bytes.extend_from_slice(&flv_stream::tag(t.kind, t.timestamp + offset, &t.payload));
    }
    std::fs::write(out, bytes).unwrap();
}

/// The size of the first video stream of an MP4 file made of `bytes`, and its number of frames.
async fn probed_file(bytes: &[u8]) -> (String, usize) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_packets"])
        .args(["-show_entries", "stream=width,height,nb_read_packets", "-of", "csv=p=0"])
        .arg(file.path())
        .output()
        .await
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_owned();
    let fields: Vec<&str> = line.split(',').collect();
    assert_eq!(fields.len(), 3, "ffprobe read {line:?}");
    (format!("{}x{}", fields[0], fields[1]), fields[2].parse().unwrap_or(0))
}

/// A broadcaster changes its resolution mid-stream (a new sequence header): the source rendition
/// goes on after a discontinuity under a new init segment at the new size, and the ladder keeps
/// its rungs at their sizes, on through the change.
#[tokio::test]
async fn a_new_resolution_mid_stream_keeps_the_ladder_going() {
    if !have_ffmpeg() {
        return;
    }
    let _turn = CPU_HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let case = |name, input: &str| Case {
        name,
        input: input.into(),
        encode: &["-g", "30", "-pix_fmt", "yuv420p"],
        rungs: &[],
        audio: true,
    };
    let small = encode_case(&case("small", "testsrc2=size=640x360:rate=30"), dir.path(), 6).await;
    let large = encode_case(&case("large", "testsrc2=size=854x480:rate=30"), dir.path(), 6).await;
    let joined = dir.path().join("joined.flv");
    joined_flv(&small, &large, &joined);

    let server = Server::start_with(Db::Sqlite, &["--transcode-slots", "1"]).await;
    let host = server.create_user("new-resolution@example.com", "host").await;
    let (id, key) = channel_with_key(&host, "new resolution").await;
    let _publisher = publish(&joined, &format!("{}/{key}", server.rtmp));
    master_with(&server, id, 2).await;
    let base = format!("/live/{id}");
    // Wait until the window holds both sizes, each under its own init segment.
    let deadline = Instant::now() + Duration::from_secs(40);
    let source = loop {
        let source = text(&server, &format!("{base}/index.m3u8")).await;
        let maps: std::collections::BTreeSet<&str> =
            source.lines().filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).collect();
        if maps.len() >= 2 && source.contains("#EXT-X-DISCONTINUITY\n") {
            break source;
        }
        assert!(Instant::now() < deadline, "no change of init in the source playlist:\n{source}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut sizes = std::collections::BTreeSet::new();
    for map in source.lines().filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")) {
        let init =
            server.client.get(server.url(&format!("{base}/{}", map.trim_end_matches('"')))).send().await.unwrap();
        let (size, _) = probed_file(&init.bytes().await.unwrap()).await;
        sizes.insert(size);
    }
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), ["640x360", "854x480"], "{source}");

    // The rung was planned from the first size and keeps it, on past the change.
    let change = source.lines().position(|l| l == "#EXT-X-DISCONTINUITY").unwrap();
    // The first segment after the change, whether it is complete yet (a `seg-` line) or still
    // being cut (its `part-{msn}-{i}` lines).
    let changed_at: u64 = source
        .lines()
        .skip(change)
        .find_map(|l| {
            let name = l.strip_prefix("seg-").or_else(|| l.split("URI=\"part-").nth(1))?;
            name.split(['.', '-']).next()?.parse().ok()
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let rung = loop {
        let rung = text(&server, &format!("{base}/160p/index.m3u8")).await;
        let last = rung
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("seg-"))
            .and_then(|s| s.trim_end_matches(".m4s").parse::<u64>().ok());
        if last.is_some_and(|msn| msn > changed_at) {
            break rung;
        }
        assert!(Instant::now() < deadline, "the rung stopped at the change (segment {changed_at}):\n{rung}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let file = fetch_media(&server, &format!("{base}/160p"), &rung, &format!("seg-{}.m4s", changed_at + 1)).await;
    let (size, frames) = probed_file(&file).await;
    assert_eq!(size, "284x160");
    assert!(frames >= 15, "a segment after the change holds {frames} frames");
    check_playlists(&[
        server.url(&format!("{base}/master.m3u8")),
        server.url(&format!("{base}/index.m3u8")),
        server.url(&format!("{base}/160p/index.m3u8")),
    ])
    .await;
    let detail: Value = host.get(&format!("/api/v1/channels/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["ladder"]["running"], true, "{detail}");
    assert_eq!(detail["ladder"]["health"]["restarts"], 0, "{detail}");
}

/// A `standard` live's replay keeps its ladder: a VOD multivariant playlist names the source and
/// every rung, each rung's playlist follows the source's line for line, and ffprobe reads each
/// rung at its size for the whole length of the show.
#[tokio::test]
async fn a_replay_keeps_the_ladder() {
    if !have_ffmpeg() {
        return;
    }
    let _turn = CPU_HEAVY.lock().await;
    let server = Server::start_with(Db::Sqlite, &["--transcode-slots", "1"]).await;
    let host = server.create_user("replay-ladder@example.com", "host").await;
    let (channel, key) = channel_with_key(&host, "Ladder replay").await;
    let clip = clip(server.data_dir.path()).await;
    // The 12 s clip once, ending cleanly: the live ends at once and becomes a replay.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-f", "flv", &format!("{}/{key}", server.rtmp)])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay = crate::replays::wait_for_replay(&server, channel, Duration::from_secs(20)).await;
    let id = replay["id"].as_i64().unwrap();
    assert_eq!(replay["playback_url"], format!("/vod/{id}/master.m3u8"));

    let master = text(&server, &format!("/vod/{id}/master.m3u8")).await;
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), RUNGS.len() + 1, "{master}");
    assert!(master.contains("RESOLUTION=1280x720") && master.contains("RESOLUTION=854x480"), "{master}");
    assert!(master.contains("#EXT-X-MEDIA:TYPE=AUDIO"), "{master}");
    let base = server.url(&format!("/vod/{id}"));
    let mut urls = vec![format!("{base}/master.m3u8"), format!("{base}/index.m3u8")];
    urls.extend(RUNGS.iter().map(|rung| format!("{base}/{rung}/index.m3u8")));
    check_playlists(&urls).await;

    let source = text(&server, &format!("/vod/{id}/index.m3u8")).await;
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("#EXTINF") || l.starts_with("seg-") || *l == "#EXT-X-DISCONTINUITY")
            .map(str::to_owned)
            .collect()
    };
    let source_duration = crate::replays::duration_of(&format!("{base}/index.m3u8")).await;
    for (rung, size) in RUNGS.iter().zip(["854,480", "640,360", "284,160"]) {
        let playlist = text(&server, &format!("/vod/{id}/{rung}/index.m3u8")).await;
        assert_eq!(lines(&playlist), lines(&source), "{rung} follows the source:\n{playlist}");
        assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.trim_end().ends_with("#EXT-X-ENDLIST"));
        // Only the first segment may be a gap: the encoder may still be starting then.
        let mut lines_after_gap = playlist.split("#EXT-X-GAP\n").skip(1);
        let first = playlist.lines().find(|l| l.starts_with("seg-")).unwrap();
        assert!(lines_after_gap.all(|rest| rest.starts_with(first)), "{rung} has a gap past its start:\n{playlist}");
        let url = format!("{base}/{rung}/index.m3u8");
        assert_eq!(probed_size(&url).await.as_deref(), Some(size), "{rung}");
        let duration = crate::replays::duration_of(&url).await;
        assert!((duration - source_duration).abs() < 2.5, "{rung} lasts {duration} s, the source {source_duration} s");
    }
    for bad in [
        &format!("/vod/{id}/999p/index.m3u8"),
        &format!("/vod/{id}/480p/part-1-0.m4s"),
        &format!("/vod/{id}/%2e%2e/index.m3u8"),
    ] {
        let r = server.client.get(server.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

/// The channel's ladder status on `server` once `ready` holds for it (within 60 s).
async fn ladder_when(server: &Server, host: &Session, channel: i64, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail: Value =
            host.get(&format!("/api/v1/channels/{channel}")).send().await.unwrap().json().await.unwrap();
        if ready(&detail["ladder"]) {
            return detail["ladder"].clone();
        }
        assert!(Instant::now() < deadline, "on {}: {}", server.base, detail["ladder"]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A rung playlist read through `server` lists parts up to at least `msn` (the live goes on).
async fn rung_reaches(server: &Server, channel: i64, rung: &str, msn: u64) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let playlist = text(server, &format!("/live/{channel}/{rung}/index.m3u8")).await;
        if parts_by_segment(&playlist).iter().any(|(m, _)| *m >= msn) {
            return;
        }
        assert!(Instant::now() < deadline, "{rung} never reached segment {msn} through {}:\n{playlist}", server.base);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The newest complete segment the playlist lists.
fn last_segment(playlist: &str) -> u64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("seg-")?.strip_suffix(".m4s")?.parse().ok())
        .max()
        .expect("a segment")
}

/// Three nodes on one PostgreSQL database and one Redis. Node A ingests but has no transcode
/// slot; node B has one. A `standard` live published to A gets its ladder made on B, and plays
/// through either node. B is then killed (`kill -9`): A plays the source alone until node C, with
/// a free slot, takes the ladder over once B's lease has run out, and the rungs go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ladder_is_made_on_another_node_and_taken_over_when_it_dies() {
    if !have_ffmpeg() {
        return;
    }
    let Some(db) = Db::postgres().await else { return };
    let Ok(redis) = std::env::var("OLIVE_TEST_REDIS_URL") else {
        eprintln!("OLIVE_TEST_REDIS_URL is not set: skipping the ladder placement test");
        return;
    };
    let _turn = CPU_HEAVY.lock().await;
    let bus = format!("{redis}#ladders-{}", std::process::id());
    let start = |name: &'static str, slots: &'static str| {
        let (db, bus) = (db.clone(), bus.clone());
        async move { Server::start_with(db, &["--bus-url", &bus, "--node-id", name, "--transcode-slots", slots]).await }
    };
    let a = start("node-a", "0").await;
    let b = start("node-b", "1").await;
    let host = a.create_user("placed-host@example.com", "host").await;
    let (id, key) = channel_with_key(&host, "Placed ladder").await;
    let clip = clip(a.data_dir.path()).await;
    let _publisher = publish(&clip, &format!("{}/{key}", a.rtmp));

    // The ladder is made on B: A's studio says so, B's slot is taken, A's were none.
    let ladder = ladder_when(&a, &host, id, |l| l["running"] == true).await;
    assert_eq!(ladder["health"]["encoder_node"], "node-b", "{ladder}");
    assert!(ladder["fallback"].is_null(), "{ladder}");
    let scrape = |server: &Server| {
        let (client, url) = (server.client.clone(), server.metrics.clone());
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(scrape(&b).await.contains("olive_transcode_slots{state=\"used\"} 1"), "B encodes it");
    assert!(scrape(&a).await.contains("olive_transcode_slots{state=\"used\"} 0"), "A has no slot");

    // It plays through either node: the same renditions, each rung at its size.
    for node in [&a, &b] {
        let master = master_with(node, id, 4).await;
        for rung in RUNGS {
            assert!(master.contains(&format!("\n{rung}/index.m3u8")), "{master}");
        }
    }
    let urls: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|n| {
            let base = n.url(&format!("/live/{id}"));
            let master = format!("{base}/master.m3u8");
            RUNGS.iter().map(move |r| format!("{base}/{r}/index.m3u8")).chain([master])
        })
        .collect();
    check_playlists(&urls).await;
    // Once every rung has a few segments, ffprobe reads each at its size through either node.
    let now = last_segment(&text(&a, &format!("/live/{id}/index.m3u8")).await);
    for rung in RUNGS {
        rung_reaches(&b, id, rung, now + 2).await;
    }
    for (node, rung, size) in [(&a, "480p", "854,480"), (&b, "160p", "284,160")] {
        let url = node.url(&format!("/live/{id}/{rung}/index.m3u8"));
        assert_eq!(probed_size(&url).await.as_deref(), Some(size), "{rung} through {}", node.base);
    }
    // Only another node (proven by the node secret) may link as an encoder.
    for forged in [None, Some("not-the-secret")] {
        let mut r =
            a.client.get(a.url(&format!("/internal/ladders/{id}/encoder"))).header("x-olive-forwarded", "node-x");
        if let Some(secret) = forged {
            r = r.header("x-olive-node-auth", secret);
        }
        let r = r.header("connection", "upgrade").header("upgrade", "websocket").header("sec-websocket-version", "13");
        let r = r.header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{forged:?}");
    }
    // The encoding node's CPU is charged to the channel where its live is.
    let cpu = ladder_when(&a, &host, id, |l| l["health"]["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.0).await;
    assert!(cpu["health"]["cpu_seconds"].as_f64().unwrap() > 0.0);

    // B dies. Nobody else has a slot: the live plays its source alone and says so.
    kill_9(&b);
    let ladder = ladder_when(&a, &host, id, |l| l["running"] == false).await;
    assert!(ladder["health"].is_null() || ladder["health"]["running"] == false, "{ladder}");
    let ladder = ladder_when(&a, &host, id, |l| l["fallback"]["code"] == "no_free_node").await;
    assert!(ladder["fallback"]["detail"].is_null(), "{ladder}");
    let master = master_with(&a, id, 1).await;
    assert!(master.contains("\nindex.m3u8"), "the source plays on: {master}");

    // C comes with a free slot and takes the ladder over once B's lease has run out.
    let c = start("node-c", "1").await;
    let ladder = ladder_when(&a, &host, id, |l| l["running"] == true && l["health"]["encoder_node"] == "node-c").await;
    assert!(ladder["fallback"].is_null(), "{ladder}");
    assert_eq!(ladder["health"]["restarts"], 1, "one restart, for B's death: {ladder}");
    let now = last_segment(&text(&a, &format!("/live/{id}/index.m3u8")).await);
    for rung in RUNGS {
        rung_reaches(&c, id, rung, now + 1).await;
    }
    assert_eq!(probed_size(&c.url(&format!("/live/{id}/360p/index.m3u8"))).await.as_deref(), Some("640,360"));
    assert!(scrape(&c).await.contains("olive_transcode_slots{state=\"used\"} 1"), "C encodes it");
}
