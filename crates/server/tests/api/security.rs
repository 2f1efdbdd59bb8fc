//! The rules that keep one user from another's account, a host from giving the shop away, and
//! an outsider from the operator's data: sign-up and login limits that cannot be turned against an
//! owner, metering only what was served, deal floors, readiness without internals, caches and
//! thumbnails that forget, sessions that end everywhere, secrets kept out of logs, webhooks that
//! stay outside the network, WebSocket origins, and orders that are what the buyer asked for.

use crate::helpers::*;
use crate::live::{channel_with_key, have_ffmpeg};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn from_address(last: u8) -> reqwest::Client {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 3, last));
    reqwest::Client::builder().local_address(ip).build().unwrap()
}

async fn signup_from(client: &reqwest::Client, node: &Server, email: &str) -> (StatusCode, Value) {
    let body = json!({"email": email, "password": PASSWORD});
    let r = patiently(|| client.post(node.url("/api/v1/auth/signup")).json(&body).send()).await;
    (r.status(), r.json().await.unwrap())
}

async fn login_from(client: &reqwest::Client, node: &Server, email: &str, password: &str) -> StatusCode {
    let body = json!({"email": email, "password": password});
    patiently(|| client.post(node.url("/api/v1/auth/login")).json(&body).send()).await.status()
}

/// Point 2: sign-ups are throttled per address, and a taken address is answered as a new one
/// after as much work (the hash is made before the address is looked at).
#[tokio::test]
async fn signups_are_throttled_per_address_and_a_taken_address_looks_new() {
    let node = Server::start_with(Db::Sqlite, &["--signup-limit", "3"]).await;
    let here = from_address(2);
    for n in 0..3 {
        assert_eq!(signup_from(&here, &node, &format!("s{n}@example.com")).await.0, StatusCode::ACCEPTED);
    }
    let body = json!({"email": "s9@example.com", "password": PASSWORD});
    let refused = here.post(node.url("/api/v1/auth/signup")).json(&body).send().await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");
    assert_eq!(signup_from(&from_address(3), &node, "s9@example.com").await.0, StatusCode::ACCEPTED);

    // The same answer and about the same time for a taken address as for a new one.
    let mut new_times = Vec::new();
    let mut taken_times = Vec::new();
    for n in 0..5u8 {
        let client = from_address(10 + n);
        let started = Instant::now();
        let (status, new) = signup_from(&client, &node, &format!("t{n}@example.com")).await;
        new_times.push(started.elapsed());
        let started = Instant::now();
        let (same, taken) = signup_from(&client, &node, "s0@example.com").await;
        taken_times.push(started.elapsed());
        assert_eq!((status, same), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
        assert_eq!(new["next"], taken["next"]);
    }
    new_times.sort();
    taken_times.sort();
    let (new, taken) = (new_times[2], taken_times[2]);
    eprintln!("sign-up medians: new address {new:?}, taken address {taken:?}");
    assert!(taken * 2 >= new, "a taken address answered much faster ({taken:?} vs {new:?}): it skipped the hash");
}

/// Point 4: failing on someone's account from elsewhere does not lock its owner out: failures
/// count per account and address, and the account-wide limit spares addresses it signed in from.
#[tokio::test]
async fn failed_logins_elsewhere_cannot_lock_the_owner_out() {
    let node = Server::start().await;
    node.signup("owner@example.com").await;
    let owner = from_address(2);
    assert_eq!(login_from(&owner, &node, "owner@example.com", PASSWORD).await, StatusCode::OK);
    // One guesser from one address: locked out after five failures.
    let guesser = from_address(3);
    for _ in 0..5 {
        assert_eq!(login_from(&guesser, &node, "owner@example.com", "guess guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&guesser, &node, "owner@example.com", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    // Many guessers from many addresses: the account is closed to new addresses…
    for n in 0..50u8 {
        login_from(&from_address(100 + n), &node, "owner@example.com", "guess guess").await;
    }
    assert_eq!(
        login_from(&from_address(200), &node, "owner@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …but not to the owner, from where they signed in before.
    assert_eq!(login_from(&owner, &node, "owner@example.com", PASSWORD).await, StatusCode::OK);
}

/// Point 5: requests for a channel that does not exist, or for a file a channel does not have,
/// write no usage for that id.
#[tokio::test]
async fn unknown_channels_and_missing_files_are_not_metered() {
    let node = Server::start().await;
    let host = node.create_user("meter-host@example.com", "host").await;
    let (channel, _) = channel_with_key(&host, "Quiet").await;
    for path in [
        "/live/424242/index.m3u8".to_owned(),
        "/live/424242/part-1-0.m4s".to_owned(),
        "/live/424242/thumbnail.jpg".to_owned(),
        format!("/live/{channel}/part-1-0.m4s"),
        format!("/live/{channel}/seg-9.m4s"),
        format!("/live/{channel}/thumbnail.jpg"),
    ] {
        let r = node.client.get(node.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (status, data) = node.stop_keeping_data().await;
    assert!(status.success());
    let url = format!("sqlite://{}", data.path().join("olive.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let charged: Vec<i64> =
        sqlx::query_scalar("SELECT DISTINCT channel_id FROM usage_daily").fetch_all(&pool).await.unwrap();
    assert!(!charged.contains(&424242), "a channel that does not exist was charged: {charged:?}");
    assert!(!charged.contains(&channel), "a channel was charged for files it does not have: {charged:?}");
}

/// Point 7: a host may put only products on sale in a line-up, may not price a deal below the
/// floor or list more than is in stock; an admin may go lower.
#[tokio::test]
async fn hosts_cannot_sell_anything_for_nothing() {
    let node = Server::start().await;
    let admin = node.create_user("floor-admin@example.com", "admin").await;
    let host = node.create_user("floor-host@example.com", "host").await;
    let product = node.product(&admin, "Cushion", 5).await;
    let draft: Value = admin
        .post("/api/v1/products")
        .json(&json!({"name": "Unreleased", "category": "skincare", "price_minor": 10_000, "status": "draft"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (channel, _) = channel_with_key(&host, "Floors").await;
    let lineup =
        |ids: Vec<i64>| host.put(&format!("/api/v1/channels/{channel}/lineup")).json(&json!({"product_ids": ids}));
    let r = lineup(vec![product, draft["id"].as_i64().unwrap()]).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let r = lineup(vec![product, 999_999]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(lineup(vec![product]).send().await.unwrap().status(), StatusCode::OK);

    let deal = |who: &Session, price: i64, quantity: i64| {
        who.post(&format!("/api/v1/channels/{channel}/deals")).json(&json!({
            "product_id": product, "price_minor": price, "quantity": quantity,
            "per_customer_limit": 1, "duration_s": 30
        }))
    };
    for (price, quantity) in [(0, 1), (999, 1)] {
        let r = deal(&host, price, quantity).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field", "{price} x {quantity}");
    }
    let r = deal(&host, 1_000, 6).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::CONFLICT).await, "out_of_stock", "more units than in stock");
    let by_admin = deal(&admin, 0, 5).send().await.unwrap();
    assert_eq!(by_admin.status(), StatusCode::CREATED, "an admin may give units away");
}

/// Point 9: readiness names the failing part with a code, never the backend's own words.
#[tokio::test]
async fn readiness_says_what_failed_without_saying_how() {
    let node = Server::start_with(Db::Sqlite, &["--bus-url", "redis://127.0.0.1:1"]).await;
    let r = node.client.get(node.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    let code = body["reason"]["bus"].as_str().unwrap_or_default().to_owned();
    assert!(["unavailable", "timeout"].contains(&code.as_str()), "{body}");
    assert_eq!(body, json!({"status": "not_ready", "reason": {"bus": code}}), "a code, not the backend's message");
}

/// Point 12: changing the password or signing out everywhere ends the other sessions and closes
/// their room sockets; a logout closes that session's socket; a role change closes the user's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_end_everywhere_and_their_sockets_close() {
    let node = Server::start().await;
    let admin = node.create_user("sessions-admin@example.com", "admin").await;
    let host = node.create_user("sessions-host@example.com", "host").await;
    let (channel, _) = channel_with_key(&host, "Sessions").await;
    let phone = node.signup("sessions@example.com").await;
    let laptop = node.login("sessions@example.com", PASSWORD).await;
    let mut phone_socket = crate::room::connect(&node, channel, Some(&phone.token)).await;
    let mut laptop_socket = crate::room::connect(&node, channel, Some(&laptop.token)).await;

    let change = json!({"current_password": "not it at all", "new_password": "a brand new password"});
    let r = laptop.post("/api/v1/me/password").json(&change).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::UNAUTHORIZED).await, "invalid_credentials");
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new password"});
    assert_eq!(laptop.post("/api/v1/me/password").json(&change).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(phone.get("/api/v1/me").send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "the phone is out");
    assert_eq!(laptop.get("/api/v1/me").send().await.unwrap().status(), StatusCode::OK, "this session goes on");
    assert!(socket_closes(&mut phone_socket).await, "the phone's room socket stayed signed in");
    let old = node.client.post(node.url("/api/v1/auth/login"));
    let old = old.json(&json!({"email": "sessions@example.com", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let tablet = node.login("sessions@example.com", "a brand new password").await;

    // A role change closes the user's sockets (they come back as what they now are).
    let mut tablet_socket = crate::room::connect(&node, channel, Some(&tablet.token)).await;
    let r = admin.patch(&format!("/api/v1/users/{}", tablet.id())).json(&json!({"role": "host"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(socket_closes(&mut tablet_socket).await, "a socket kept its old role");
    assert!(socket_closes(&mut laptop_socket).await, "every socket of the user closes");
    // An admin cannot demote themselves by a slip.
    let r = admin.patch(&format!("/api/v1/users/{}", admin.id())).json(&json!({"role": "viewer"})).send().await;
    assert_eq!(error_code(r.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");

    // Signing out everywhere ends every session, this one too.
    let mut socket = crate::room::connect(&node, channel, Some(&tablet.token)).await;
    assert_eq!(tablet.post("/api/v1/auth/logout-all").send().await.unwrap().status(), StatusCode::NO_CONTENT);
    for session in [&tablet, &laptop] {
        assert_eq!(session.get("/api/v1/me").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert!(socket_closes(&mut socket).await);
    // A plain logout closes that session's socket.
    let again = node.login("sessions@example.com", "a brand new password").await;
    let mut socket = crate::room::connect(&node, channel, Some(&again.token)).await;
    assert_eq!(again.post("/api/v1/auth/logout").send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(socket_closes(&mut socket).await);
}

/// Whether the server closes the socket within 5 s (other frames are skipped).
async fn socket_closes(socket: &mut crate::room::Socket) -> bool {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Point 16: a WebSocket upgrade from another site's page is refused; our own page and clients
/// that send no Origin are not.
#[tokio::test]
async fn websocket_upgrades_from_another_sites_pages_are_refused() {
    let node = Server::start().await;
    let host = node.create_user("origin-host@example.com", "host").await;
    let (channel, _) = channel_with_key(&host, "Origins").await;
    let url = node.url(&format!("/api/v1/channels/{channel}/ws")).replace("http://", "ws://");
    let upgrade = |origin: Option<&str>| {
        let mut request = url.clone().into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    match upgrade(Some("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("another site's page got a socket: {:?}", other.map(|_| ())),
    }
    upgrade(Some(&node.base)).await.expect("our own page");
    upgrade(None).await.expect("a client without Origin");
}

/// Point 13: the stream key never reaches the logs, even at debug level (ffmpeg sends it in
/// releaseStream and FCPublish, which the RTMP library logs as unknown commands).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_keys_never_reach_the_logs() {
    if !have_ffmpeg() {
        return;
    }
    let node = Server::start_with_flags_and_env(Db::Sqlite, &[], &[("RUST_LOG", "debug")]).await;
    let host = node.create_user("key-host@example.com", "host").await;
    let (_, key) = channel_with_key(&host, "Secret key").await;
    let publisher = crate::replays::publish_colour(&format!("{}/{key}", node.rtmp), 3);
    let out = tokio::time::timeout(Duration::from_secs(30), publisher.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = node.output.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.contains("publishing started")), "the publish was logged");
    let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(&key)).collect();
    assert!(leaked.is_empty(), "the stream key is in the logs: {leaked:?}");
    assert!(lines.iter().any(|l| l.contains("rtmp command ignored")), "the unknown commands were logged by name");
}

/// Point 14: webhooks may not point inside the network unless the operator allows it, and a
/// webhook URL (it carries the receiver's token) is kept out of logs and job errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_stay_outside_the_network_and_keep_their_urls_secret() {
    let node = Server::start().await;
    let admin = node.create_user("hooks-admin@example.com", "admin").await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost:8080/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
    ] {
        let r = admin.post("/api/v1/webhooks").json(&json!({ "url": url })).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field", "{url}");
    }
    let r = admin.post("/api/v1/webhooks").json(&json!({"url": "https://hooks.example.com/services/T0/tok-public"}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::CREATED, "a public name is fine");
    drop(node);

    // Allowed by the operator: a receiver on loopback that always fails.
    let node = Server::start_with(Db::Sqlite, &["--allow-private-webhooks", "--job-lease-secs", "2"]).await;
    let admin = node.create_user("hooks-admin@example.com", "admin").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 65536];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    let secret_url = format!("http://127.0.0.1:{port}/hooks/tok-very-secret?key=also-secret");
    let r = admin.post("/api/v1/webhooks").json(&json!({ "url": secret_url })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let buyer = node.signup("hooks-buyer@example.com").await;
    let product = node.product(&admin, "Hooked", 3).await;
    let order = json!({"items": [{"product_id": product, "quantity": 1}]});
    let r = buyer.post("/api/v1/orders").header("idempotency-key", "hook-1").json(&order).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let jobs: Value = admin.get("/api/v1/jobs").send().await.unwrap().json().await.unwrap();
        let delivery = jobs["items"].as_array().unwrap().iter().find(|j| j["kind"] == "webhook.deliver").cloned();
        if let Some(error) = delivery.as_ref().and_then(|j| j["last_error"].as_str().map(str::to_owned)) {
            break error;
        }
        assert!(Instant::now() < deadline, "no failed delivery recorded: {jobs}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(failed.contains(&format!("http://127.0.0.1:{port}/…")), "{failed}");
    assert!(!failed.contains("tok-very-secret") && !failed.contains("also-secret"), "{failed}");
    let lines = node.output.lock().unwrap().clone();
    let leaked: Vec<&String> = lines.iter().filter(|l| l.contains("tok-very-secret")).collect();
    assert!(leaked.is_empty(), "the webhook URL is in the logs: {leaked:?}");
}

/// Point 11: a replay's media is cached for minutes, not a year, so hiding it takes effect; and
/// a channel's last live thumbnail is not served once the live has ended and its replay is hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hidden_replays_leave_caches_and_ended_lives_keep_no_thumbnail() {
    if !have_ffmpeg() {
        return;
    }
    let node = Server::start().await;
    let host = node.create_user("cache-host@example.com", "host").await;
    let (channel, key) = channel_with_key(&host, "Cached").await;
    let publisher = crate::replays::publish_colour(&format!("{}/{key}", node.rtmp), 8);
    let thumb = format!("/live/{channel}/thumbnail.jpg");
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.client.get(node.url(&thumb)).send().await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the live never had a thumbnail");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), publisher.wait_with_output()).await;
    let replay = crate::replays::wait_for_replay(&node, channel, Duration::from_secs(40)).await;
    let id = replay["id"].as_i64().unwrap();
    let segment = node.client.get(node.url(&format!("/vod/{id}/seg-{}.m4s", first_segment(&node, id).await)));
    let segment = segment.send().await.unwrap();
    assert_eq!(segment.status(), StatusCode::OK);
    assert_eq!(segment.headers()["cache-control"], "public, max-age=300");

    let r = host.patch(&format!("/api/v1/replays/{id}")).json(&json!({"hidden": true})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = node.client.get(node.url(&thumb)).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::NOT_FOUND).await, "not_found", "a hidden show's picture is still served");
}

/// The first segment a replay's playlist names.
async fn first_segment(node: &Server, replay: i64) -> String {
    let playlist = node.client.get(node.url(&format!("/vod/{replay}/index.m3u8"))).send().await.unwrap();
    let text = playlist.text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("seg-")).expect("a segment").to_owned();
    line.trim_start_matches("seg-").trim_end_matches(".m4s").to_owned()
}

/// Point 17: an order for a deal that has ended is refused with `deal_ended` rather than sold at
/// the usual price; an order is credited only to a channel that could have sold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_are_what_the_buyer_asked_for() {
    let node = Server::start().await;
    let admin = node.create_user("intent-admin@example.com", "admin").await;
    let host = node.create_user("intent-host@example.com", "host").await;
    let buyer = node.signup("intent-buyer@example.com").await;
    let product = node.product(&admin, "Serum", 10).await;
    let other = node.product(&admin, "Toner", 10).await;
    let (channel, _) = channel_with_key(&host, "Intent").await;
    let r = host.put(&format!("/api/v1/channels/{channel}/lineup")).json(&json!({"product_ids": [product]}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    let deal =
        json!({"product_id": product, "price_minor": 5_000, "quantity": 5, "per_customer_limit": 2, "duration_s": 30});
    let started: Value =
        host.post(&format!("/api/v1/channels/{channel}/deals")).json(&deal).send().await.unwrap().json().await.unwrap();
    let deal_id = started["id"].as_i64().unwrap();
    let buy = |body: Value, key: &str| buyer.post("/api/v1/orders").header("idempotency-key", key).json(&body).send();
    let in_deal = json!({"items": [{"product_id": product, "quantity": 1}], "deal_id": deal_id});
    let bought: Value = buy(in_deal.clone(), "d-1").await.unwrap().json().await.unwrap();
    assert_eq!(bought["total_minor"], 5_000);
    assert_eq!(host.post(&format!("/api/v1/deals/{deal_id}/end")).send().await.unwrap().status(), StatusCode::OK);
    let late = buy(in_deal, "d-2").await.unwrap();
    assert_eq!(error_code(late, StatusCode::CONFLICT).await, "deal_ended", "not the full price instead");
    let plain: Value =
        buy(json!({"items": [{"product_id": product, "quantity": 1}]}), "d-3").await.unwrap().json().await.unwrap();
    assert_eq!(plain["total_minor"], 10_000, "asked again, at the usual price");

    // Credited channels: one that shows the product (live or not), not any channel at all.
    let credited = json!({"items": [{"product_id": product, "quantity": 1}], "channel_id": channel});
    assert_eq!(buy(credited, "c-1").await.unwrap().status(), StatusCode::CREATED);
    for (items, key) in [(json!([{"product_id": other, "quantity": 1}]), "c-2")] {
        let r = buy(json!({"items": items, "channel_id": channel}), key).await.unwrap();
        assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    }
    let r = buy(json!({"items": [{"product_id": other, "quantity": 1}], "channel_id": 987_654}), "c-3").await.unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
}
