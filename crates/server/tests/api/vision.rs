//! Thumbnail labelling end to end: a live of a still picture is labelled once (its unchanged
//! thumbnails are skipped), the channel and its replay show what was on screen, and a live that
//! started after the recommender's training reaches the shopper who bought what it shows. Needs
//! the model and pictures `tools/vision/prepare.sh` makes, in `OLIVE_TEST_VISION_DIR` (CI sets it).

use crate::feed::buy;
use crate::helpers::*;
use crate::live::{channel_with_key, clip, have_ffmpeg, publish};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("OLIVE_TEST_VISION_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!(
            "OLIVE_TEST_VISION_DIR is not set: skipping the labelling test (tools/vision/prepare.sh makes the folder)"
        );
    }
    dir
}

/// 12 s of a still picture as H.264 (2 s GOP) with silent AAC.
async fn still_clip(picture: &Path, out: &Path) {
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i"])
        .arg(picture)
        .args(["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", "12", "-vf", "scale=1080:720"])
        .args(["-c:v", "libx264", "-preset", "superfast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .args(["-shortest", "-f", "flv"])
        .arg(out)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "encoding {} failed", picture.display());
}

fn ids(feed: &Value) -> Vec<i64> {
    feed["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn a_new_live_is_labelled_once_and_reaches_the_shopper_who_bought_what_it_shows() {
    let Some(dir) = fixtures() else { return };
    if !have_ffmpeg() {
        return;
    }
    let _turn = CPU_HEAVY.lock().await;
    let model = dir.join("efficientnet-lite0.onnx");
    let server = Server::start_with(Db::Sqlite, &["--vision-model", model.to_str().unwrap()]).await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let host = server.create_user("host@example.com", "host").await;
    let product = |name: &'static str, category: &'static str| server.product_in(&admin, name, category, 100);
    let (beans, drip) = (product("Espresso beans", "coffee").await, product("Drip bags", "coffee").await);
    let (serum, toner) = (product("Serum", "skincare").await, product("Toner", "skincare").await);

    // A skincare show is on air and popular; one shopper buys coffee.
    let (skincare, skincare_key) = channel_with_key(&host, "Skincare show").await;
    let r = host
        .put(&format!("/api/v1/channels/{skincare}/lineup"))
        .json(&json!({"product_ids": [serum, toner]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let test_pattern = clip(server.data_dir.path()).await;
    let _skincare_live = publish(&test_pattern, &format!("{}/{skincare_key}", server.rtmp));
    for n in 0..4 {
        let fan = server.signup(&format!("skin{n}@example.com")).await;
        let watched =
            json!({"events": [{"type": "watch", "target": {"kind": "channel", "id": skincare}, "seconds": 600}]});
        assert_eq!(
            fan.post("/api/v1/events").json(&watched).send().await.unwrap().status(),
            reqwest::StatusCode::ACCEPTED
        );
        buy(&fan, serum, "a").await;
        buy(&fan, toner, "b").await;
    }
    let coffee_lover = server.signup("coffee@example.com").await;
    buy(&coffee_lover, beans, "a").await;
    buy(&coffee_lover, drip, "b").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = std::process::Command::new(BIN)
        .args(["reco", "train", "--data-dir"])
        .arg(server.data_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // After the training, a café live starts, with no line-up: only its picture says what it is.
    let (cafe, cafe_key) = channel_with_key(&host, "Morning café").await;
    let r =
        host.patch(&format!("/api/v1/channels/{cafe}")).json(&json!({"thumbnail_interval_s": 1})).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let coffee_clip = server.data_dir.path().join("coffee.flv");
    still_clip(&dir.join("samples/coffee.png"), &coffee_clip).await;
    let cafe_live = publish(&coffee_clip, &format!("{}/{cafe_key}", server.rtmp));
    let deadline = Instant::now() + Duration::from_secs(90);
    let labels = loop {
        let channel = server.get_json(&format!("/api/v1/channels/{cafe}")).await;
        if channel["labels"].as_array().is_some_and(|l| !l.is_empty()) {
            break channel["labels"].clone();
        }
        if Instant::now() >= deadline {
            let logs = server.output.lock().unwrap().join("\n");
            panic!("the café live was never labelled: {channel}\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(labels[0]["name"], "espresso", "{labels}");
    assert_eq!(labels[0]["category"], "coffee", "{labels}");
    assert!(labels[0]["confidence"].as_f64().unwrap() > 0.3, "{labels}");
    let listed = server.get_json("/api/v1/channels").await;
    let listed_cafe = listed["items"].as_array().unwrap().iter().find(|c| c["id"] == cafe).unwrap().clone();
    assert_eq!(listed_cafe["labels"][0]["name"], "espresso", "the channel list shows it too: {listed_cafe}");

    // The coffee lover's feed (once the server has loaded the snapshot, within seconds) puts the café
    // live first, and says why; the skincare fans' does not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let feed = loop {
        let feed: Value = coffee_lover.get("/api/v1/feed").send().await.unwrap().json().await.unwrap();
        if feed["trained_at"] != Value::Null {
            break feed;
        }
        assert!(Instant::now() < deadline, "the snapshot was never loaded: {feed}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(ids(&feed)[0], cafe, "{feed}");
    let reason = feed["items"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("coffee") || reason.contains("espresso"), "{reason}");
    let fan = server.login("skin0@example.com", PASSWORD).await;
    let feed: Value = fan.get("/api/v1/feed").send().await.unwrap().json().await.unwrap();
    assert_eq!(ids(&feed)[0], skincare, "{feed}");

    // Six more seconds of the same picture: a thumbnail at each keyframe (every 2 s), none labelled again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(cafe_live);
    let deadline = Instant::now() + Duration::from_secs(90);
    let replay = loop {
        let replays = server.get_json(&format!("/api/v1/replays?channel_id={cafe}")).await;
        if let Some(first) = replays["items"].as_array().unwrap().first() {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "the café live never became a replay");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(replay["labels"][0]["name"], "espresso", "{replay}");
    let detail = server.get_json(&format!("/api/v1/replays/{}", replay["id"])).await;
    let cost = &detail["labelling"];
    assert!(cost["thumbnails"].as_i64().unwrap() >= 3, "{cost}");
    assert_eq!(cost["labelled"], 1, "the same picture is labelled once: {cost}");
    assert!(cost["cpu_ms"].as_i64().unwrap() > 0, "{cost}");
    assert!(cost["image_service_usd"].as_f64().unwrap() < cost["video_service_usd"].as_f64().unwrap(), "{cost}");
}

#[tokio::test]
async fn without_a_model_labelling_is_off_and_says_so() {
    let server = Server::start().await;
    let logs = server.output.lock().unwrap().join("\n");
    assert_eq!(logs.matches("thumbnail labelling is off").count(), 1, "{logs}");
    // A model named on the command line that is not there stops the start with a clear error.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0", "--vision-model", "/nonexistent/m.onnx"])
        .arg("--data-dir")
        .arg(server.data_dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let printed = String::from_utf8_lossy(&out.stderr);
    assert!(printed.contains("/nonexistent/m.onnx") && printed.contains("does not exist"), "{printed}");
}

fn vision_label(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new(BIN).args(["vision", "label"]).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn olive_vision_label_names_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let broken_model = dir.path().join("model.onnx");
    std::fs::write(&broken_model, b"\x08\x07 no protobuf here \xff").unwrap();
    let (ok, out) = vision_label(&["--model".as_ref(), broken_model.as_os_str(), garbage.as_os_str()]);
    assert!(!ok && out.contains("could not be loaded") && out.contains("model.onnx"), "{out}");
    let (ok, out) = vision_label(&["--model".as_ref(), broken_model.as_os_str()]);
    assert!(!ok && out.contains("PICTURES"), "pictures are required: {out}");

    let Some(fixtures) = fixtures() else { return };
    let model = fixtures.join("efficientnet-lite0.onnx");
    let coffee = fixtures.join("samples/coffee.png");
    let (ok, out) =
        vision_label(&["--model".as_ref(), model.as_os_str(), "--repeat".as_ref(), "3".as_ref(), coffee.as_os_str()]);
    assert!(ok, "{out}");
    assert!(out.contains("967 espresso (coffee)"), "{out}");
    assert!(out.contains("per picture: median"), "{out}");
    let (ok, out) = vision_label(&["--model".as_ref(), model.as_os_str(), coffee.as_os_str(), garbage.as_os_str()]);
    assert!(!ok && out.contains("garbage.jpg") && out.contains("could not be read"), "{out}");
    let (ok, out) =
        vision_label(&["--model".as_ref(), model.as_os_str(), "--repeat".as_ref(), "0".as_ref(), coffee.as_os_str()]);
    assert!(!ok && out.contains("--repeat"), "{out}");
}
