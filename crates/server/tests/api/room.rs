//! The live room over real WebSockets: what anonymous and signed-in viewers receive, chat as text,
//! hearts counted per tick, viewer counts, history on join, and hostile frames answered with an
//! error while the connection and everyone else carry on.

use crate::helpers::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(server: &Server, channel: i64, token: Option<&str>) -> Socket {
    let url = server.url(&format!("/api/v1/channels/{channel}/ws")).replace("http://", "ws://");
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.expect("websocket upgrade").0
}

/// The next JSON frame, waiting at most `within`.
pub async fn next(socket: &mut Socket, within: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(within, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).expect("frames are JSON")),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("unexpected frame or end: {other:?}"),
            Err(_) => return None,
        }
    }
}

/// Frames until one of `kind` arrives (within `within`), skipping others.
pub async fn next_of(socket: &mut Socket, kind: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = next(socket, left).await.unwrap_or_else(|| panic!("no {kind} frame within {within:?}"));
        if frame["type"] == kind {
            return frame;
        }
    }
}

pub async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_hearts_and_viewers_over_websockets() {
    let server = Server::start().await;
    let host = server.create_user("room-host@example.com", "host").await;
    let (channel, _) = crate::live::channel_with_key(&host, "Room").await;
    let shopper = server.signup("room-shopper@example.com").await;

    // An anonymous viewer gets the viewer count on join, and may not chat.
    let mut anonymous = connect(&server, channel, None).await;
    let first = next(&mut anonymous, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first["type"], "viewers");
    send(&mut anonymous, json!({"type": "chat", "text": "hello"})).await;
    let refused = next_of(&mut anonymous, "error", Duration::from_secs(5)).await;
    assert_eq!(refused["code"], "sign_in_required");

    // A signed-in shopper chats; both see it, as text.
    let mut chatter = connect(&server, channel, Some(&shopper.token)).await;
    let text = "<script>alert('x')</script> 안녕하세요 👋";
    send(&mut chatter, json!({"type": "chat", "text": text})).await;
    for socket in [&mut anonymous, &mut chatter] {
        let chat = next_of(socket, "chat", Duration::from_secs(5)).await;
        assert_eq!(chat["text"], text);
        assert_eq!(chat["user"]["id"], shopper.id());
        assert!(chat["id"].as_i64().unwrap() > 0 && chat["ts"].is_string());
    }

    // Hearts arrive as counts per tick, not one frame per heart.
    for _ in 0..10 {
        send(&mut chatter, json!({"type": "heart"})).await;
    }
    let mut hearts = 0;
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while hearts < 10 && Instant::now() < deadline {
        if let Some(frame) = next(&mut anonymous, Duration::from_secs(1)).await {
            if frame["type"] == "hearts" {
                hearts += frame["count"].as_u64().unwrap();
                frames += 1;
            }
        }
    }
    assert_eq!(hearts, 10);
    assert!(frames < 10, "{frames} frames for 10 hearts");

    // The viewer count covers both sockets.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let viewers = next_of(&mut anonymous, "viewers", Duration::from_secs(5)).await;
        if viewers["count"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "viewer count never reached 2: {viewers}");
    }

    let detail: Value = server.get_json(&format!("/api/v1/channels/{channel}")).await;
    assert_eq!(detail["viewers"], 2, "the channel API counts them too");
    let list: Value = server.get_json("/api/v1/channels").await;
    let listed = list["items"].as_array().unwrap().iter().find(|c| c["id"] == channel).unwrap().clone();
    assert_eq!(listed["viewers"], 2, "and so does the (cached) channel list");

    // Hostile frames get an error; the connection and the room carry on (a frame over the
    // protocol's size closes the connection: see the end).
    let cases: Vec<(Message, &str)> = vec![
        (Message::Binary(vec![0u8, 159, 146, 150].into()), "binary_frame"),
        (Message::Text("{not json".into()), "invalid_message"),
        (Message::Text(r#"{"type":"chat","text":"x","admin":true}"#.into()), "invalid_message"),
        (Message::Text(r#"{"type":"shout"}"#.into()), "invalid_message"),
        (Message::Text(json!({"type": "chat", "text": "가".repeat(301)}).to_string().into()), "message_too_long"),
        (Message::Text(json!({"type": "chat", "text": " \n\t "}).to_string().into()), "empty_message"),
    ];
    for (frame, code) in cases {
        chatter.send(frame).await.unwrap();
        let error = next_of(&mut chatter, "error", Duration::from_secs(5)).await;
        assert_eq!(error["code"], code);
    }

    // A hundred messages in a burst from one user: a few get through, the rest are refused (and past
    // the connection's pace, dropped unanswered).
    tokio::time::sleep(Duration::from_secs(3)).await; // let the earlier messages' quota refill
    for i in 0..100 {
        send(&mut chatter, json!({"type": "chat", "text": format!("flood {i}")})).await;
    }
    send(&mut anonymous, json!({"type": "heart"})).await; // still answered
    let mut flood = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while let Some(frame) = next(&mut anonymous, until.saturating_duration_since(Instant::now())).await {
        if frame["type"] == "chat" {
            flood += 1;
        }
    }
    assert!((3..=5).contains(&flood), "{flood} flood messages got through");

    // A frame larger than the protocol allows closes that connection only.
    let huge = json!({"type": "chat", "text": "x".repeat(1 << 20)}).to_string();
    let _ = chatter.send(Message::Text(huge.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match chatter.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    });
    assert!(closed.await.unwrap_or(false), "a 1 MiB frame left the connection open");
    send(&mut anonymous, json!({"type": "heart"})).await;
    assert_eq!(next_of(&mut anonymous, "hearts", Duration::from_secs(5)).await["count"], 1, "the room carries on");

    // A late joiner gets the recent chat first, oldest first.
    let mut late = connect(&server, channel, None).await;
    let history = next(&mut late, Duration::from_secs(5)).await.unwrap();
    assert_eq!(history["type"], "chat");
    assert_eq!(history["text"], text);

    // No room for channels that do not exist.
    let url = server.url("/api/v1/channels/99999/ws").replace("http://", "ws://");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_moderate_the_chat() {
    let server = Server::start().await;
    let host = server.create_user("mod-host@example.com", "host").await;
    let (channel, _) = crate::live::channel_with_key(&host, "Moderated").await;
    let shopper = server.signup("mod-shopper@example.com").await;
    let troll = server.signup("mod-troll@example.com").await;
    let mut watcher = connect(&server, channel, None).await;
    let mut chatter = connect(&server, channel, Some(&shopper.token)).await;
    let mut trolling = connect(&server, channel, Some(&troll.token)).await;
    let mut hosting = connect(&server, channel, Some(&host.token)).await;
    let chat = |text: &str| json!({"type": "chat", "text": text});

    // A deleted message disappears for everyone, and from the history.
    send(&mut trolling, chat("buy followers at example.com")).await;
    let id = next_of(&mut watcher, "chat", Duration::from_secs(5)).await["id"].as_i64().unwrap();
    let r = shopper.delete(&format!("/api/v1/channels/{channel}/chat/{id}")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN, "only the host and admins moderate");
    let r = host.delete(&format!("/api/v1/channels/{channel}/chat/{id}")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    assert_eq!(next_of(&mut watcher, "chat_deleted", Duration::from_secs(5)).await["id"], id);
    let r = host.delete(&format!("/api/v1/channels/{channel}/chat/999999")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);

    // Slow mode spaces a viewer's messages; the host is not slowed.
    let r = host.patch(&format!("/api/v1/channels/{channel}")).json(&json!({"chat_slow_mode_s": 30})).send().await;
    let view: Value = r.unwrap().json().await.unwrap();
    assert_eq!(view["chat_slow_mode_s"], 30);
    send(&mut chatter, chat("first")).await;
    assert_eq!(next_of(&mut watcher, "chat", Duration::from_secs(5)).await["text"], "first");
    send(&mut chatter, chat("second")).await;
    assert_eq!(next_of(&mut chatter, "error", Duration::from_secs(5)).await["code"], "slow_mode");
    send(&mut hosting, chat("welcome")).await;
    send(&mut hosting, chat("everyone")).await;
    assert_eq!(next_of(&mut watcher, "chat", Duration::from_secs(5)).await["text"], "welcome");
    assert_eq!(next_of(&mut watcher, "chat", Duration::from_secs(5)).await["text"], "everyone");

    // Banned words, in any case.
    let words = json!({"chat_slow_mode_s": 0, "chat_banned_words": ["스팸", "Scam"]});
    let view: Value =
        host.patch(&format!("/api/v1/channels/{channel}")).json(&words).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["chat_banned_words"], json!(["스팸", "Scam"]));
    let public: Value = server.get_json(&format!("/api/v1/channels/{channel}")).await;
    assert!(public.get("chat_banned_words").is_none(), "the list is not shown to everyone");
    send(&mut chatter, chat("이건 스팸이에요")).await;
    assert_eq!(next_of(&mut chatter, "error", Duration::from_secs(5)).await["code"], "banned_word");
    send(&mut chatter, chat("total SCAM")).await;
    assert_eq!(next_of(&mut chatter, "error", Duration::from_secs(5)).await["code"], "banned_word");

    // Mutes end (or are lifted); bans hold.
    let restrict = |user: i64| format!("/api/v1/channels/{channel}/chat/restrictions/{user}");
    let r = host.put(&restrict(shopper.id())).json(&json!({"mute_minutes": 5})).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    send(&mut chatter, chat("hello?")).await;
    assert_eq!(next_of(&mut chatter, "error", Duration::from_secs(5)).await["code"], "muted");
    assert_eq!(host.delete(&restrict(shopper.id())).send().await.unwrap().status(), reqwest::StatusCode::NO_CONTENT);
    send(&mut chatter, chat("back again")).await;
    assert_eq!(next_of(&mut watcher, "chat", Duration::from_secs(5)).await["text"], "back again");
    let r = host.put(&restrict(troll.id())).json(&json!({"ban": true})).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NO_CONTENT);
    send(&mut trolling, chat("let me in")).await;
    assert_eq!(next_of(&mut trolling, "error", Duration::from_secs(5)).await["code"], "banned");

    // Bad requests are refused with reasons.
    for bad in [
        json!({}),
        json!({"ban": true, "mute_minutes": 5}),
        json!({"mute_minutes": 0}),
        json!({"mute_minutes": 99999999}),
    ] {
        let r = host.put(&restrict(shopper.id())).json(&bad).send().await.unwrap();
        assert_eq!(error_code(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field", "{bad}");
    }
    let r = host.put(&restrict(host.id())).json(&json!({"ban": true})).send().await.unwrap();
    assert_eq!(error_code(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let r = shopper.put(&restrict(troll.id())).json(&json!({"ban": true})).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let r = host.put(&restrict(999_999)).json(&json!({"ban": true})).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    let too_many: Vec<String> = (0..201).map(|i| format!("w{i}")).collect();
    let r =
        host.patch(&format!("/api/v1/channels/{channel}")).json(&json!({"chat_banned_words": too_many})).send().await;
    assert_eq!(error_code(r.unwrap(), reqwest::StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");

    // A late joiner's history leaves out what was deleted.
    let mut late = connect(&server, channel, None).await;
    let first = next(&mut late, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first["text"], "first");
}

/// Where the live playlist's media ends now: the program date-time of the last segment plus the
/// parts listed after it.
fn media_end(playlist: &str) -> chrono::DateTime<chrono::Utc> {
    let mut end = None;
    for line in playlist.lines() {
        if let Some(pdt) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            end = Some(chrono::DateTime::parse_from_rfc3339(pdt).unwrap().with_timezone(&chrono::Utc));
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            let seconds: f64 = rest.split(',').next().unwrap().parse().unwrap();
            end = end.map(|e| e + chrono::Duration::milliseconds((seconds * 1000.0).round() as i64));
        }
    }
    end.expect("a program date-time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pin_lands_on_the_media_timeline_and_in_the_replay() {
    if !crate::live::have_ffmpeg() {
        return;
    }
    let server = Server::start().await;
    let admin = server.create_user("pin-admin@example.com", "admin").await;
    let host = server.create_user("pin-host@example.com", "host").await;
    let product = server.product(&admin, "Cushion foundation", 10).await;
    let (channel, key) = crate::live::channel_with_key(&host, "Pins").await;
    let _publisher = crate::replays::publish_colour(&format!("{}/{key}", server.rtmp), 14);
    let mut viewer = connect(&server, channel, None).await;
    let shopper = server.signup("pin-shopper@example.com").await;
    let mut chatter = connect(&server, channel, Some(&shopper.token)).await;
    let playlist_url = server.url(&format!("/live/{channel}/index.m3u8"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = server.client.get(&playlist_url).send().await.unwrap();
        if r.status() == reqwest::StatusCode::OK && r.text().await.unwrap().matches("#EXTINF").count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the live never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    send(&mut chatter, json!({"type": "chat", "text": "what a colour"})).await;
    next_of(&mut viewer, "chat", Duration::from_secs(5)).await;

    // Pin between two reads of the playlist: the pin's moment is where the media was.
    let before = media_end(&server.client.get(&playlist_url).send().await.unwrap().text().await.unwrap());
    let r = host.post(&format!("/api/v1/channels/{channel}/pin")).json(&json!({"product_id": product})).send().await;
    let pinned: Value = r.unwrap().json().await.unwrap();
    let text = server.client.get(&playlist_url).send().await.unwrap().text().await.unwrap();
    let after = media_end(&text);
    let pts =
        chrono::DateTime::parse_from_rfc3339(pinned["pts"].as_str().unwrap()).unwrap().with_timezone(&chrono::Utc);
    let slack = chrono::Duration::milliseconds(2);
    assert!(
        before - slack <= pts && pts <= after + slack,
        "pts {pts} outside the media read around it: {before} .. {after}"
    );
    assert!(after - before <= chrono::Duration::milliseconds(1000), "the reads were more than two parts apart");

    // Viewers get the card with that moment; the playlist carries it as timed metadata.
    let pin = next_of(&mut viewer, "pin", Duration::from_secs(5)).await;
    assert_eq!(pin["product"]["id"], product);
    assert_eq!(pin["product"]["name"], "Cushion foundation");
    assert_eq!(pin["pts"], pinned["pts"]);
    let start = pts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let daterange =
        format!("#EXT-X-DATERANGE:ID=\"pin-{}\",CLASS=\"com.olive.pin\",START-DATE=\"{start}\"", pinned["id"]);
    assert!(text.contains(&daterange), "{text}");
    // A viewer who joins later is shown the pinned product at once.
    let mut late = connect(&server, channel, None).await;
    assert_eq!(next_of(&mut late, "pin", Duration::from_secs(5)).await["product"]["id"], product);

    // Bad pins are refused.
    let stranger = server.create_user("pin-stranger@example.com", "host").await;
    let r =
        stranger.post(&format!("/api/v1/channels/{channel}/pin")).json(&json!({"product_id": product})).send().await;
    assert_eq!(r.unwrap().status(), reqwest::StatusCode::FORBIDDEN);
    let r = host.post(&format!("/api/v1/channels/{channel}/pin")).json(&json!({"product_id": 99999})).send().await;
    assert_eq!(error_code(r.unwrap(), reqwest::StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");

    // The replay's product timeline has it, at its offset into the replay.
    let replay = crate::replays::wait_for_replay(&server, channel, Duration::from_secs(40)).await;
    let started = chrono::DateTime::parse_from_rfc3339(replay["started_at"].as_str().unwrap()).unwrap();
    // The chat sent during the live is kept with the replay.
    let id = replay["id"].as_i64().unwrap();
    let chat: Value = server.get_json(&format!("/api/v1/replays/{id}/chat")).await;
    assert_eq!(chat["items"][0]["text"], "what a colour");
    assert!(chat["items"][0]["offset_ms"].as_i64().unwrap() > 0);
    assert_eq!(chat["next_after"], Value::Null);
    assert_eq!(replay["pins"][0]["product_id"], product);
    let offset = replay["pins"][0]["offset_ms"].as_i64().unwrap();
    assert_eq!(offset, (pts - started.with_timezone(&chrono::Utc)).num_milliseconds());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_rooms_over_redis() {
    let Some(db) = Db::postgres().await else { return };
    let Ok(redis) = std::env::var("OLIVE_TEST_REDIS_URL") else {
        eprintln!("OLIVE_TEST_REDIS_URL is not set: skipping the two-node test");
        return;
    };
    // A bus name of its own, so that nothing else on this Redis joins in.
    let bus = format!("{redis}#two-nodes-{}", std::process::id());
    let a = Server::start_with(db.clone(), &["--bus-url", &bus, "--node-id", "node-a"]).await;
    let b = Server::start_with(db, &["--bus-url", &bus, "--node-id", "node-b"]).await;
    let host = a.create_user("two-nodes-host@example.com", "host").await;
    let (channel, _) = crate::live::channel_with_key(&host, "Everywhere").await;
    let shopper = a.signup("two-nodes-shopper@example.com").await;

    let mut on_a = connect(&a, channel, Some(&shopper.token)).await;
    let mut on_b = connect(&b, channel, None).await;
    // Chat sent on node A arrives on node B, in order.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3 {
        send(&mut on_a, json!({"type": "chat", "text": format!("from a {i}")})).await;
    }
    for i in 0..3 {
        let chat = next_of(&mut on_b, "chat", Duration::from_secs(10)).await;
        assert_eq!(chat["text"], format!("from a {i}"));
    }
    // Hearts tapped on B reach A.
    send(&mut on_b, json!({"type": "heart"})).await;
    assert_eq!(next_of(&mut on_a, "hearts", Duration::from_secs(5)).await["count"], 1);
    // Each node counts both viewers.
    for socket in [&mut on_a, &mut on_b] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if next_of(socket, "viewers", Duration::from_secs(10)).await["count"] == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the viewer count never summed both nodes");
        }
    }
    let detail: Value = b.get_json(&format!("/api/v1/channels/{channel}")).await;
    assert_eq!(detail["viewers"], 2);
    // A moderator on A bans; the ban holds on B too.
    let troll = b.signup("two-nodes-troll@example.com").await;
    let mut trolling = connect(&b, channel, Some(&troll.token)).await;
    let r =
        host.put(&format!("/api/v1/channels/{channel}/chat/restrictions/{}", troll.id())).json(&json!({"ban": true}));
    assert_eq!(r.send().await.unwrap().status(), reqwest::StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut trolling, json!({"type": "chat", "text": "hi"})).await;
    assert_eq!(next_of(&mut trolling, "error", Duration::from_secs(5)).await["code"], "banned");
    // One chatter on both nodes has one allowance: a burst of 3 on A leaves nothing for B.
    let fast = a.signup("two-nodes-fast@example.com").await;
    let (mut fast_a, mut fast_b) =
        (connect(&a, channel, Some(&fast.token)).await, connect(&b, channel, Some(&fast.token)).await);
    for i in 0..3 {
        send(&mut fast_a, json!({"type": "chat", "text": format!("fast {i}")})).await;
    }
    // (A joiner is sent the recent history first.)
    while next_of(&mut fast_b, "chat", Duration::from_secs(5)).await["text"] != "fast 2" {}
    send(&mut fast_b, json!({"type": "chat", "text": "one more from b"})).await;
    assert_eq!(next_of(&mut fast_b, "error", Duration::from_secs(5)).await["code"], "rate_limited");
}
