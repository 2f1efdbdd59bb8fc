//! Live deals end to end: a host starts one, viewers see its card, countdown and stock in the
//! room, buyers race for it through `POST /api/v1/orders`, and exactly the listed units are sold
//! at the deal price — also across a `kill -9` in the middle of the sale.

use crate::helpers::*;
use crate::room::{connect, next, next_of};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// A host's channel with `product` in its line-up.
async fn show(host: &Session, product: i64) -> i64 {
    let (channel, _) = crate::live::channel_with_key(host, "Flash sale").await;
    let r = host
        .put(&format!("/api/v1/channels/{channel}/lineup"))
        .json(&json!({ "product_ids": [product] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    channel
}

fn deal(product: i64, quantity: i64, per_customer: i64, duration_s: i64) -> Value {
    json!({"product_id": product, "price_minor": 7_000, "quantity": quantity,
           "per_customer_limit": per_customer, "duration_s": duration_s})
}

async fn buy(buyer: &Session, product: i64, quantity: i64, key: &str) -> reqwest::Response {
    buyer
        .post("/api/v1/orders")
        .header("idempotency-key", key)
        .json(&json!({"items": [{"product_id": product, "quantity": quantity}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_sells_exactly_what_is_listed() {
    let server = Server::start().await;
    let admin = server.create_user("deal-admin@example.com", "admin").await;
    let host = server.create_user("deal-host@example.com", "host").await;
    let other_host = server.create_user("deal-other@example.com", "host").await;
    let product = server.product(&admin, "Cushion", 30).await;
    let spare = server.product(&admin, "Mist", 5).await;
    let channel = show(&host, product).await;
    let mut viewer = connect(&server, channel, None).await;

    // Bad requests change nothing.
    let path = format!("/api/v1/channels/{channel}/deals");
    for (body, status, code) in [
        (deal(product, 20, 2, 5), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (deal(product, 20, 2, 1201), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (deal(product, 0, 2, 60), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (deal(product, 31, 2, 60), StatusCode::CONFLICT, "out_of_stock"),
        (deal(spare, 1, 1, 60), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (
            json!({"product_id": product, "price_minor": 10_001, "quantity": 1, "per_customer_limit": 1, "duration_s": 60}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (json!({"product_id": product, "quantity": 1}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (
            json!({"product_id": product, "price_minor": 1, "quantity": 1, "per_customer_limit": 1, "duration_s": 60, "x": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"product_id": product, "price_minor": "1e999", "quantity": 1, "per_customer_limit": 1, "duration_s": 60}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"product_id": product, "price_minor": 1, "quantity": i64::MAX, "per_customer_limit": 1, "duration_s": i64::MAX}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ] {
        let r = host.post(&path).json(&body).send().await.unwrap();
        assert_eq!(error_code(r, status).await, code, "{body}");
    }
    let r = host.post(&path).header("content-type", "application/json").body("{\"product_id\":").send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::BAD_REQUEST).await, "malformed_json");
    let huge = format!("{{\"product_id\":{product},\"pad\":\"{}\"}}", "a".repeat(1 << 20));
    let r = host.post(&path).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = other_host.post(&path).json(&deal(product, 20, 2, 60)).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden");
    let r = server.client.post(server.url(&path)).json(&deal(product, 20, 2, 60)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.stock(product).await, 30);
    let r = server.client.get(server.url(&format!("/api/v1/channels/{channel}/deal"))).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::NOT_FOUND).await, "not_found");

    // The deal starts: its units leave the product's stock and viewers see the card.
    let r = host.post(&path).json(&deal(product, 20, 2, 60)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let started: Value = r.json().await.unwrap();
    let id = started["id"].as_i64().unwrap();
    assert_eq!((started["listed"].as_i64(), started["remaining"].as_i64()), (Some(20), Some(20)));
    assert_eq!(started["status"], "running");
    assert_eq!(server.stock(product).await, 10);
    let card = next_of(&mut viewer, "deal", Duration::from_secs(5)).await;
    assert_eq!(
        (card["id"].as_i64(), card["remaining"].as_i64(), card["price_minor"].as_i64()),
        (Some(id), Some(20), Some(7_000))
    );
    assert_eq!(card["product"]["name"], "Cushion");
    let ends_in = card["ends_in_ms"].as_i64().unwrap();
    assert!((55_000..=60_000).contains(&ends_in), "countdown {ends_in} ms");
    let r = host.post(&path).json(&deal(product, 1, 1, 60)).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::CONFLICT).await, "deal_running");
    // A viewer who joins now is shown the running deal.
    let mut late = connect(&server, channel, None).await;
    assert_eq!(next_of(&mut late, "deal", Duration::from_secs(5)).await["id"].as_i64(), Some(id));

    // 15 buyers, 3 attempts each, at once: 45 asks for 20 units at most 2 a customer.
    let mut buyers = Vec::new();
    for i in 0..15 {
        buyers.push(server.signup(&format!("flash-{i}@example.com")).await);
    }
    let mut tasks = Vec::new();
    for (i, b) in buyers.iter().enumerate() {
        for attempt in 0..3 {
            let (b, key) = (b.clone(), format!("flash-{i}-{attempt}"));
            tasks.push(tokio::spawn(async move {
                let r = buy(&b, product, 1, &key).await;
                let status = r.status();
                (status, (i, key), r.json::<Value>().await.unwrap())
            }));
        }
    }
    let mut created = Vec::new();
    for t in tasks {
        let (status, key, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => created.push((key, body)),
            StatusCode::CONFLICT => {
                let code = body["error"]["code"].as_str().unwrap();
                assert!(code == "out_of_stock" || code == "deal_limit_reached", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 20, "exactly the listed units are sold");
    for (_, order) in &created {
        assert_eq!(order["items"][0]["unit_price_minor"], 7_000);
        assert_eq!(order["total_minor"], 7_000);
    }
    let stock = next_of(&mut viewer, "deal_stock", Duration::from_secs(5)).await;
    assert_eq!(stock["id"].as_i64(), Some(id));
    let mut remaining = stock["remaining"].as_i64().unwrap();
    while remaining > 0 {
        remaining = next_of(&mut viewer, "deal_stock", Duration::from_secs(5)).await["remaining"].as_i64().unwrap();
    }
    let now: Value = server.get_json(&format!("/api/v1/deals/{id}")).await;
    assert_eq!((now["sold"].as_i64(), now["remaining"].as_i64()), (Some(20), Some(0)));

    // Retrying a sold request gives the same order; the same key for another body is refused.
    let ((i, key), first) = &created[0];
    let who = &buyers[*i];
    let again = buy(who, product, 1, key).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let r = buy(who, product, 2, key).await;
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "idempotency_key_reused");
    // A deal's product is bought on its own.
    let r = buyers[0]
        .post("/api/v1/orders")
        .header("idempotency-key", "mixed")
        .json(&json!({"items": [{"product_id": product, "quantity": 1}, {"product_id": spare, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");

    // The host ends it: nothing was unsold, viewers are told, and the product sells at its price.
    let r = other_host.post(&format!("/api/v1/deals/{id}/end")).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden");
    let ended: Value = host.post(&format!("/api/v1/deals/{id}/end")).send().await.unwrap().json().await.unwrap();
    assert_eq!((ended["status"].as_str(), ended["sold"].as_i64()), (Some("ended"), Some(20)));
    let end = next_of(&mut viewer, "deal_ended", Duration::from_secs(5)).await;
    assert_eq!((end["id"].as_i64(), end["sold"].as_i64()), (Some(id), Some(20)));
    assert_eq!(server.stock(product).await, 10);
    let r = buy(&buyers[0], product, 1, "after-the-deal").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["items"][0]["unit_price_minor"], 10_000);
    let mine: Value = buyers[0].get("/api/v1/orders").send().await.unwrap().json().await.unwrap();
    let deal_orders = created.iter().filter(|((i, _), _)| *i == 0).count();
    assert_eq!(mine["items"].as_array().unwrap().len(), deal_orders + 1, "their deal orders and this one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_runs_out_of_time_and_gives_back_the_unsold() {
    let server = Server::start().await;
    let admin = server.create_user("timed-admin@example.com", "admin").await;
    let host = server.create_user("timed-host@example.com", "host").await;
    let product = server.product(&admin, "Serum", 12).await;
    let channel = show(&host, product).await;
    let buyer = server.signup("timed-buyer@example.com").await;
    let r =
        host.post(&format!("/api/v1/channels/{channel}/deals")).json(&deal(product, 5, 5, 10)).send().await.unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let mut viewer = connect(&server, channel, None).await;
    assert_eq!(buy(&buyer, product, 2, "timed-1").await.status(), StatusCode::CREATED);
    let end = next_of(&mut viewer, "deal_ended", Duration::from_secs(15)).await;
    assert_eq!((end["id"].as_i64(), end["sold"].as_i64()), (Some(id), Some(2)));
    assert_eq!(server.stock(product).await, 10, "the 3 unsold units are back on sale");
    let r = buy(&buyer, product, 1, "timed-2").await;
    assert_eq!(r.json::<Value>().await.unwrap()["items"][0]["unit_price_minor"], 10_000, "no deal price after the end");
}

/// `kill -9` while buyers race: after the restart the deal resumes from the orders that were
/// committed, and in the end exactly the listed units are sold — none twice, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_survives_a_crash_without_overselling() {
    let server = Server::start().await;
    let admin = server.create_user("crash-admin@example.com", "admin").await;
    let host = server.create_user("crash-host@example.com", "host").await;
    let product = server.product(&admin, "Toner", 100).await;
    let channel = show(&host, product).await;
    let buyer = server.signup("crash-buyer@example.com").await;
    let r = host
        .post(&format!("/api/v1/channels/{channel}/deals"))
        .json(&deal(product, 60, 100, 300))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(server.stock(product).await, 40);

    // Buyers keep buying while the server is killed.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let b = buyer.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), buy(&b, product, 1, &format!("crash-{i}-{n}"))).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let server = server.crash_and_restart(&[]).await;
    for t in tasks {
        let _ = t.await;
    }
    let buyer = server.login("crash-buyer@example.com", PASSWORD).await;
    let resumed: Value = server.get_json(&format!("/api/v1/deals/{id}")).await;
    let sold = resumed["sold"].as_i64().unwrap();
    let orders = |v: &Value| v["items"].as_array().unwrap().len() as i64;
    let mine: Value = buyer.get("/api/v1/orders?limit=100").send().await.unwrap().json().await.unwrap();
    assert_eq!(orders(&mine), sold, "the deal's count is exactly its committed orders");
    assert_eq!(resumed["remaining"].as_i64(), Some(60 - sold));

    // The rest sells, and not one more.
    let mut n = 0;
    loop {
        let r = buy(&buyer, product, 1, &format!("after-crash-{n}")).await;
        n += 1;
        match r.status() {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => {
                assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "out_of_stock");
                break;
            }
            other => panic!("unexpected {other}"),
        }
        assert!(n <= 60, "sold more than listed");
    }
    let mine: Value = buyer.get("/api/v1/orders?limit=100").send().await.unwrap().json().await.unwrap();
    assert_eq!(orders(&mine), 60);
    let host = server.login("crash-host@example.com", PASSWORD).await;
    let ended: Value = host.post(&format!("/api/v1/deals/{id}/end")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ended["sold"].as_i64(), Some(60));
    assert_eq!(server.stock(product).await, 40);
}

/// Two nodes on one PostgreSQL and Redis: a deal started on node A is shown on node B, orders
/// placed through B are sold by A's owner at the deal price, and the two nodes together sell
/// exactly what was listed. Ending it through B stops A's owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deal_started_on_one_node_sells_on_every_node() {
    let Some(db) = Db::postgres().await else { return };
    let Ok(redis) = std::env::var("OLIVE_TEST_REDIS_URL") else {
        eprintln!("OLIVE_TEST_REDIS_URL is not set: skipping the two-node deal test");
        return;
    };
    let bus = format!("{redis}#deal-nodes-{}", std::process::id());
    let a = Server::start_with(db.clone(), &["--bus-url", &bus, "--node-id", "node-a"]).await;
    let b = Server::start_with(db, &["--bus-url", &bus, "--node-id", "node-b"]).await;
    let admin = a.create_user("nodes-admin@example.com", "admin").await;
    let host = a.create_user("nodes-host@example.com", "host").await;
    let product = a.product(&admin, "Ampoule", 20).await;
    let channel = show(&host, product).await;
    let mut viewer_b = connect(&b, channel, None).await;
    let r = host.post(&format!("/api/v1/channels/{channel}/deals")).json(&deal(product, 6, 10, 60)).send().await;
    let id = r.unwrap().json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(next_of(&mut viewer_b, "deal", Duration::from_secs(5)).await["id"].as_i64(), Some(id));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let on_b = b.signup("nodes-buyer-b@example.com").await;
    let on_a = a.signup("nodes-buyer-a@example.com").await;
    let mut tasks = Vec::new();
    for n in 0..10 {
        let buyer = if n % 3 == 0 { on_a.clone() } else { on_b.clone() };
        tasks.push(tokio::spawn(async move {
            let r = buy(&buyer, product, 1, &format!("nodes-{n}")).await;
            (r.status(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => {
                created += 1;
                assert_eq!(body["items"][0]["unit_price_minor"], 7_000, "the deal price on either node");
            }
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "out_of_stock"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 6, "exactly what was listed, over both nodes");
    let mut remaining = -1;
    while remaining != 0 {
        remaining = next_of(&mut viewer_b, "deal_stock", Duration::from_secs(5)).await["remaining"].as_i64().unwrap();
    }
    // A retry through B is answered with the same order.
    let first = buy(&on_b, product, 1, "nodes-1").await;
    assert!(first.status() == StatusCode::OK || first.status() == StatusCode::CONFLICT);

    // The host ends it through node B; node A's owner stops and viewers on B are told.
    let host_b = b.login("nodes-host@example.com", PASSWORD).await;
    let ended: Value = host_b.post(&format!("/api/v1/deals/{id}/end")).send().await.unwrap().json().await.unwrap();
    assert_eq!((ended["status"].as_str(), ended["sold"].as_i64()), (Some("ended"), Some(6)));
    assert_eq!(next_of(&mut viewer_b, "deal_ended", Duration::from_secs(5)).await["id"].as_i64(), Some(id));
    // Told once, though both nodes took part in ending it.
    let quiet_until = std::time::Instant::now() + Duration::from_millis(1500);
    while let Some(frame) = next(&mut viewer_b, quiet_until.saturating_duration_since(std::time::Instant::now())).await
    {
        assert_ne!(frame["type"], "deal_ended", "the end is announced once");
    }
    let r = buy(&on_a, product, 1, "nodes-after").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["items"][0]["unit_price_minor"], 10_000);
    assert_eq!(b.stock(product).await, 13, "20 - 6 sold in the deal - 1 after");
}
