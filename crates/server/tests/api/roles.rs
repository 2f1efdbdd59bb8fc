//! Who may do what: roles on every route and ownership of channels.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn only_admins_edit_the_catalogue() {
    let server = Server::start().await;
    let shopper = server.signup("shopper@example.com").await;
    let host = server.create_user("host@example.com", "host").await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let body = json!({"name": "Serum", "category": "skincare", "price_minor": 25_000, "stock": 3});

    let anon = server.client.post(server.url("/api/v1/products")).json(&body).send().await.unwrap();
    assert_eq!(error_code(anon, StatusCode::UNAUTHORIZED).await, "unauthenticated");
    for who in [&shopper, &host] {
        let r = who.post("/api/v1/products").json(&body).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden");
    }
    let created = admin.post("/api/v1/products").json(&body).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let product: Value = created.json().await.unwrap();
    assert_eq!(product["price_display"], "₩25,000");
    assert_eq!(product["currency"], "KRW");
    let id = product["id"].as_i64().unwrap();

    let patch = shopper.patch(&format!("/api/v1/products/{id}")).json(&json!({"stock": 999})).send().await.unwrap();
    assert_eq!(patch.status(), StatusCode::FORBIDDEN);
    let patch = admin.patch(&format!("/api/v1/products/{id}")).json(&json!({"stock": 7})).send().await.unwrap();
    assert_eq!(patch.status(), StatusCode::OK);
    assert_eq!(server.stock(id).await, 7, "the cached detail was invalidated by the edit");

    // Drafts are invisible to the public.
    admin.patch(&format!("/api/v1/products/{id}")).json(&json!({"status": "draft"})).send().await.unwrap();
    let hidden = server.client.get(server.url(&format!("/api/v1/products/{id}"))).send().await.unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert_eq!(admin.get(&format!("/api/v1/products/{id}")).send().await.unwrap().status(), StatusCode::OK);
    let listed: Value = server.get_json("/api/v1/products").await;
    assert!(listed["items"].as_array().unwrap().is_empty());

    // Admin-only user management and job queue.
    assert_eq!(shopper.get("/api/v1/users").send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(host.get("/api/v1/jobs?status=dead").send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let dead: Value = admin.get("/api/v1/jobs?status=dead").send().await.unwrap().json().await.unwrap();
    assert!(dead["items"].as_array().unwrap().is_empty());
    let bad = admin.get("/api/v1/jobs?status=zombie").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let users: Value = admin.get("/api/v1/users").send().await.unwrap().json().await.unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 3);
    let promote =
        shopper.patch(&format!("/api/v1/users/{}", shopper.id())).json(&json!({"role": "admin"})).send().await.unwrap();
    assert_eq!(promote.status(), StatusCode::FORBIDDEN, "nobody promotes themselves");
}

#[tokio::test]
async fn hosts_manage_only_their_own_channels() {
    let server = Server::start().await;
    let viewer = server.signup("v@example.com").await;
    let host_a = server.create_user("a@example.com", "host").await;
    let host_b = server.create_user("b@example.com", "host").await;
    let admin = server.create_user("root@example.com", "admin").await;

    let denied = viewer.post("/api/v1/channels").json(&json!({"title": "Mine"})).send().await.unwrap();
    assert_eq!(error_code(denied, StatusCode::FORBIDDEN).await, "forbidden");

    let created = host_a
        .post("/api/v1/channels")
        .json(&json!({"title": "A's show", "description": "glow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let channel: Value = created.json().await.unwrap();
    let id = channel["id"].as_i64().unwrap();
    assert_eq!(channel["status"], "offline");
    assert!(channel["ingest_url"].as_str().unwrap().starts_with("rtmp://"));

    let product = server.product(&admin, "Lip tint", 5).await;
    for (method, path, body) in [
        ("PATCH", format!("/api/v1/channels/{id}"), json!({"title": "hijacked"})),
        ("POST", format!("/api/v1/channels/{id}/stream-key"), json!({})),
        ("PUT", format!("/api/v1/channels/{id}/lineup"), json!({"product_ids": [product]})),
    ] {
        let request = match method {
            "PATCH" => host_b.patch(&path),
            "POST" => host_b.post(&path),
            _ => host_b.put(&path),
        };
        let r = request.json(&body).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden", "{method} {path}");
    }
    let title: Value = server.get_json(&format!("/api/v1/channels/{id}")).await;
    assert_eq!(title["title"], "A's show");

    // The owner and admins may.
    let own = host_a
        .put(&format!("/api/v1/channels/{id}/lineup"))
        .json(&json!({"product_ids": [product, product]}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let lineup: Value = server.get_json(&format!("/api/v1/channels/{id}/lineup")).await;
    assert_eq!(lineup["product_ids"], json!([product]));
    let by_admin =
        admin.patch(&format!("/api/v1/channels/{id}")).json(&json!({"title": "Renamed"})).send().await.unwrap();
    assert_eq!(by_admin.status(), StatusCode::OK);
    let list: Value = server.get_json("/api/v1/channels").await;
    assert_eq!(list["items"][0]["title"], "Renamed", "the cached channel list was invalidated");
    let unknown_product = host_a
        .put(&format!("/api/v1/channels/{id}/lineup"))
        .json(&json!({"product_ids": [987654]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown_product, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
}

#[tokio::test]
async fn stream_keys_rotate_and_are_never_listed() {
    let server = Server::start().await;
    let host = server.create_user("h@example.com", "host").await;
    let channel: Value =
        host.post("/api/v1/channels").json(&json!({"title": "Keys"})).send().await.unwrap().json().await.unwrap();
    let id = channel["id"].as_i64().unwrap();
    let first = channel["stream_key"].as_str().unwrap().to_owned();
    assert!(first.starts_with("live_") && first.len() >= 37, "{first}");

    let rotated: Value =
        host.post(&format!("/api/v1/channels/{id}/stream-key")).send().await.unwrap().json().await.unwrap();
    let second = rotated["stream_key"].as_str().unwrap();
    assert_ne!(first, second);

    for path in ["/api/v1/channels".to_owned(), format!("/api/v1/channels/{id}")] {
        let text = host.get(&path).send().await.unwrap().text().await.unwrap();
        assert!(!text.contains("stream_key") && !text.contains(second) && !text.contains(&first), "{path}: {text}");
    }
    let missing = host.post("/api/v1/channels/424242/stream-key").send().await.unwrap();
    assert_eq!(error_code(missing, StatusCode::NOT_FOUND).await, "not_found");
}
