//! Orders: idempotency, the flash-sale race on both engines, cancellation, and privacy.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn buy(session: &Session, product: i64, quantity: i64, key: &str) -> reqwest::RequestBuilder {
    session
        .post("/api/v1/orders")
        .header("idempotency-key", key)
        .json(&json!({"items": [{"product_id": product, "quantity": quantity}]}))
}

#[tokio::test]
async fn the_same_key_and_body_make_one_order() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let buyer = server.signup("buyer@example.com").await;
    let product = server.product(&admin, "Cushion", 10).await;

    let first = buy(&buyer, product, 2, "checkout-1").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "placed");
    assert_eq!(first["total_minor"], 20_000);
    assert_eq!(first["total_display"], "₩20,000");

    let retry = buy(&buyer, product, 2, "checkout-1").send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers().get("idempotent-replayed").unwrap(), "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(server.stock(product).await, 8, "stock taken once");

    let other_body = buy(&buyer, product, 3, "checkout-1").send().await.unwrap();
    assert_eq!(error_code(other_body, StatusCode::UNPROCESSABLE_ENTITY).await, "idempotency_key_reused");
    let no_key = buyer
        .post("/api/v1/orders")
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(no_key, StatusCode::BAD_REQUEST).await, "idempotency_key_required");
    let too_many = buy(&buyer, product, 9, "checkout-2").send().await.unwrap();
    assert_eq!(error_code(too_many, StatusCode::CONFLICT).await, "out_of_stock");
    assert_eq!(server.stock(product).await, 8);
    let anon = server
        .client
        .post(server.url("/api/v1/orders"))
        .header("idempotency-key", "x")
        .json(&json!({"items": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
}

/// 200 buyers race for 10 units: exactly 10 orders, 190 refusals, stock 0.
async fn flash_sale(db: Db) {
    const BUYERS: usize = 200;
    let server = Server::start_with(db, &[]).await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let product = server.product(&admin, "Flash-sale sunscreen", 10).await;
    let signups = (0..BUYERS).map(|i| {
        let server = &server;
        async move { server.signup(&format!("buyer{i}@example.com")).await }
    });
    let buyers = futures::future::join_all(signups).await;
    let orders = buyers.iter().map(|b| async move { buy(b, product, 1, "flash").send().await.unwrap() });
    let responses = futures::future::join_all(orders).await;
    let (mut created, mut sold_out) = (0, 0);
    for r in responses {
        match r.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(error_code(r, StatusCode::CONFLICT).await, "out_of_stock");
                sold_out += 1;
            }
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!((created, sold_out), (10, BUYERS - 10));
    assert_eq!(server.stock(product).await, 0);
    let mut placed = 0;
    for b in &buyers {
        let mine: Value = b.get("/api/v1/orders").send().await.unwrap().json().await.unwrap();
        placed += mine["items"].as_array().unwrap().len();
    }
    assert_eq!(placed, 10, "no lost and no phantom orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_never_oversells_on_sqlite() {
    flash_sale(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_never_oversells_on_postgres() {
    let Some(db) = Db::postgres().await else { return };
    flash_sale(db).await;
}

#[tokio::test]
async fn cancelling_returns_stock_once() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let buyer = server.signup("c@example.com").await;
    let stranger = server.signup("d@example.com").await;
    let product = server.product(&admin, "Toner", 5).await;
    let order: Value = buy(&buyer, product, 3, "k").send().await.unwrap().json().await.unwrap();
    let id = order["id"].as_i64().unwrap();
    assert_eq!(server.stock(product).await, 2);

    let theirs = stranger.post(&format!("/api/v1/orders/{id}/cancel")).send().await.unwrap();
    assert_eq!(error_code(theirs, StatusCode::NOT_FOUND).await, "not_found");
    let cancelled = buyer.post(&format!("/api/v1/orders/{id}/cancel")).send().await.unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "cancelled");
    assert_eq!(server.stock(product).await, 5);
    let twice = buyer.post(&format!("/api/v1/orders/{id}/cancel")).send().await.unwrap();
    assert_eq!(error_code(twice, StatusCode::CONFLICT).await, "not_cancellable");
    assert_eq!(server.stock(product).await, 5);
}

#[tokio::test]
async fn nobody_sees_anothers_orders() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let alice = server.signup("alice@example.com").await;
    let bob = server.signup("bob@example.com").await;
    let product = server.product(&admin, "Mask", 50).await;
    let alices: Value = buy(&alice, product, 1, "a1").send().await.unwrap().json().await.unwrap();
    buy(&alice, product, 1, "a2").send().await.unwrap();
    let bobs: Value = buy(&bob, product, 1, "a1").send().await.unwrap().json().await.unwrap();
    assert_ne!(alices["id"], bobs["id"], "keys are per buyer");

    let mine: Value = alice.get("/api/v1/orders").send().await.unwrap().json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    let bob_list: Value = bob.get("/api/v1/orders").send().await.unwrap().json().await.unwrap();
    assert_eq!(bob_list["items"].as_array().unwrap().len(), 1);
    assert_eq!(bob_list["items"][0]["id"], bobs["id"]);

    // Guessing ids finds nothing: not even whether the order exists.
    let alice_id = alices["id"].as_i64().unwrap();
    for id in [alice_id, alice_id + 1, 999_999] {
        let r = bob.get(&format!("/api/v1/orders/{id}")).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::NOT_FOUND).await, "not_found");
    }
    assert_eq!(alice.get(&format!("/api/v1/orders/{alice_id}")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(admin.get(&format!("/api/v1/orders/{alice_id}")).send().await.unwrap().status(), StatusCode::OK);
}

/// Orders placed from a live's watch page count in its host's stats; cancelled ones and other
/// channels' do not, and nobody else may read them.
#[tokio::test]
async fn a_channels_orders_and_revenue_are_its_hosts_live_stats() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let host = server.create_user("host@example.com", "host").await;
    let other_host = server.create_user("other-host@example.com", "host").await;
    let buyer = server.signup("buyer@example.com").await;
    let product = server.product(&admin, "Cushion", 10).await;
    let (show, _) = crate::live::channel_with_key(&host, "Show").await;
    let (elsewhere, _) = crate::live::channel_with_key(&other_host, "Show").await;
    // A sale is credited to a channel that shows the product.
    for (who, channel) in [(&host, show), (&other_host, elsewhere)] {
        let lineup = who.put(&format!("/api/v1/channels/{channel}/lineup")).json(&json!({ "product_ids": [product] }));
        assert_eq!(lineup.send().await.unwrap().status(), StatusCode::OK);
    }
    let from = |channel: Value, key: &str| {
        buyer
            .post("/api/v1/orders")
            .header("idempotency-key", key)
            .json(&json!({"items": [{"product_id": product, "quantity": 1}], "channel_id": channel}))
    };
    for key in ["a", "b"] {
        assert_eq!(from(json!(show), key).send().await.unwrap().status(), StatusCode::CREATED);
    }
    let cancelled: Value = from(json!(show), "c").send().await.unwrap().json().await.unwrap();
    let id = cancelled["id"].as_i64().unwrap();
    assert_eq!(buyer.post(&format!("/api/v1/orders/{id}/cancel")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(from(json!(elsewhere), "d").send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(buy(&buyer, product, 1, "e").send().await.unwrap().status(), StatusCode::CREATED);

    let stats: Value = host.get(&format!("/api/v1/channels/{show}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["orders"], 2, "{stats}");
    assert_eq!(stats["revenue"], json!([{"currency": "KRW", "total_minor": 20_000, "total_display": "₩20,000"}]));
    assert_eq!(stats["viewers"], 0);
    let admin_view: Value =
        admin.get(&format!("/api/v1/channels/{elsewhere}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(admin_view["orders"], 1);
    let later: Value = host
        .get(&format!("/api/v1/channels/{show}/stats?since=2999-01-01T00:00:00Z"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((later["orders"].clone(), later["revenue"].clone()), (json!(0), json!([])));

    // Only its host and admins read them; bad input is named.
    let r = other_host.get(&format!("/api/v1/channels/{show}/stats")).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden");
    let r = buyer.get(&format!("/api/v1/channels/{show}/stats")).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden");
    let r = server.client.get(server.url(&format!("/api/v1/channels/{show}/stats"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for query in ["since=yesterday", "since=", "until=2020-01-01T00:00:00Z", &format!("since={}", "9".repeat(5000))] {
        let r = host.get(&format!("/api/v1/channels/{show}/stats?{query}")).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::BAD_REQUEST).await, "invalid_query", "{query}");
    }
    let r = host.get("/api/v1/channels/999999/stats").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // An order from a channel that does not exist, or with a channel that is not an id, is refused
    // and takes nothing.
    let r = from(json!(999_999), "f").send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    for bad in [json!("1"), json!(-1.5), json!({"id": 1}), json!(u64::MAX)] {
        let r = from(bad.clone(), "g").send().await.unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
    assert_eq!(server.stock(product).await, 10 - 2 - 1 - 1, "the cancelled unit came back; refusals took nothing");
}
