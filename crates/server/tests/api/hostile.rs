//! Bad input gets a clear error and changes nothing: malformed and mistyped JSON, oversized
//! bodies, unknown routes, injection-shaped strings, junk images.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn malformed_and_mistyped_json() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let cases: [(&str, &str, StatusCode, &str); 5] = [
        ("{\"name\": ", "application/json", StatusCode::BAD_REQUEST, "malformed_json"),
        ("not json at all", "application/json", StatusCode::BAD_REQUEST, "malformed_json"),
        (
            "{\"name\": 5, \"category\": \"x\", \"price_minor\": 1}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "{\"name\": \"x\", \"category\": \"x\", \"price_minor\": -1}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        ("{\"name\": \"x\"}", "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (body, content_type, status, code) in cases {
        let r = admin.post("/api/v1/products").header("content-type", content_type).body(body).send().await.unwrap();
        assert_eq!(error_code(r, status).await, code, "{body}");
    }
    let unknown_field = admin
        .post("/api/v1/products")
        .json(&json!({"name": "x", "category": "x", "price_minor": 1, "id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown_field, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let listed: Value = server.get_json("/api/v1/products").await;
    assert!(listed["items"].as_array().unwrap().is_empty(), "nothing was created");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let huge = json!({"name": "x".repeat(200_000), "category": "x", "price_minor": 1});
    let r = admin.post("/api/v1/products").json(&huge).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::PAYLOAD_TOO_LARGE).await, "payload_too_large");
    let long_name = json!({"name": "x".repeat(201), "category": "x", "price_minor": 1});
    let r = admin.post("/api/v1/products").json(&long_name).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let product = server.product(&admin, "Big picture", 1).await;
    let r = admin
        .post(&format!("/api/v1/products/{product}/images"))
        .header("content-type", "image/png")
        .body(vec![0u8; 6 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, StatusCode::PAYLOAD_TOO_LARGE).await, "payload_too_large");
    let items: Vec<Value> = (0..60).map(|i| json!({"product_id": i, "quantity": 1})).collect();
    let r = admin
        .post("/api/v1/orders")
        .header("idempotency-key", "big")
        .json(&json!({ "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
}

#[tokio::test]
async fn unknown_routes_and_ids() {
    let server = Server::start().await;
    for path in [
        "/api/v1/nope",
        "/api/v2/channels",
        "/api/v1/products/abc",
        "/api/v1/products/99999",
        "/api/v1/channels/-1",
        "/media/products/1/..%2f..%2fetc.png",
        "/media/products/1/x.svg",
        "/api/v1/replays/abc",
        "/api/v1/replays/99999999999999999999999",
        "/api/v1/replays/1",
        "/api/v1/replays/1/chat",
        "/api/v1/channels/999/ws",
        "/vod/1/index.m3u8",
        "/vod/abc/seg-1.m4s",
        "/vod/1/..%2f..%2fetc%2fpasswd",
        "/vod/1/thumbnail.jpg",
        "/live/1/thumbnail.jpg",
        "/live/-1/thumbnail.jpg",
    ] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::NOT_FOUND).await, "not_found", "{path}");
    }
    // Query strings that do not parse are refused in the API's error format.
    for path in [
        "/api/v1/replays?limit=abc",
        "/api/v1/replays?channel_id=1e9",
        "/api/v1/replays?bogus=1",
        "/api/v1/replays/1/chat?after=x",
        "/api/v1/products?limit=99999999999999999999999",
        "/api/v1/products?offset=%ff",
    ] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::BAD_REQUEST).await, "invalid_query", "{path}");
    }
    // The room socket: no such channel, or not a WebSocket request.
    let host = server.create_user("ws-host@example.com", "host").await;
    let channel: serde_json::Value = host
        .post("/api/v1/channels")
        .json(&serde_json::json!({"title": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = server.client.get(server.url(&format!("/api/v1/channels/{}/ws", channel["id"]))).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::UPGRADE_REQUIRED).await, "websocket_required");
    let listed: serde_json::Value = server.get_json("/api/v1/replays?limit=100000&offset=-5").await;
    assert_eq!(listed["items"], serde_json::json!([]), "out-of-range paging is clamped");
    let r = server.client.delete(server.url("/api/v1/channels")).send().await.unwrap();
    assert_eq!(error_code(r, StatusCode::METHOD_NOT_ALLOWED).await, "method_not_allowed");
}

#[tokio::test]
async fn injection_shaped_strings_are_stored_verbatim() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let nasty = [
        "'; DROP TABLE products; --",
        "Robert'); DROP TABLE users;--",
        "1 OR 1=1",
        "<script>alert('x')</script>",
        "선크림 \" \\ % _ {{}} ${jndi:ldap://x}",
    ];
    for name in nasty {
        let r = admin
            .post("/api/v1/products")
            .json(&json!({"name": name, "brand": name, "category": name, "description": name, "price_minor": 1000}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{name}");
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let back: Value = server.get_json(&format!("/api/v1/products/{id}")).await;
        for field in ["name", "brand", "category", "description"] {
            assert_eq!(back[field], name, "{field}");
        }
        let by_category: Value = server
            .client
            .get(server.url("/api/v1/products"))
            .query(&[("category", name)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(by_category["items"].as_array().unwrap().len(), 1, "{name}");
    }
    let all: Value = server.get_json("/api/v1/products").await;
    assert_eq!(all["items"].as_array().unwrap().len(), nasty.len(), "the tables are all still there");
    // The page shell carries no catalogue text at all: the app renders names as text nodes (the
    // browser tests check a `<script>` product name shows as text).
    let home = server.client.get(server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains(r#"<div id="app">"#) && !home.contains("alert("), "{home}");
    // Control characters are refused rather than stored.
    let r = admin
        .post("/api/v1/products")
        .json(&json!({"name": "a\u{0}b", "category": "x", "price_minor": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
}

#[tokio::test]
async fn junk_images_are_refused_and_real_ones_served() {
    let server = Server::start().await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let product = server.product(&admin, "Pictured", 1).await;
    let path = format!("/api/v1/products/{product}/images");
    let svg =
        admin.post(&path).header("content-type", "image/svg+xml").body("<svg onload=alert(1)/>").send().await.unwrap();
    assert_eq!(error_code(svg, StatusCode::UNSUPPORTED_MEDIA_TYPE).await, "unsupported_media_type");
    let fake =
        admin.post(&path).header("content-type", "image/png").body("<svg onload=alert(1)/>").send().await.unwrap();
    assert_eq!(error_code(fake, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let png = tiny_png();
    let truncated = admin
        .post(&path)
        .header("content-type", "image/png")
        .body(png[..png.len() - 20].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(truncated, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field");
    let ok = admin.post(&path).header("content-type", "image/png").body(png.clone()).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let url = ok.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    let served = server.client.get(server.url(&url)).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers().get("content-type").unwrap(), "image/png");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png);
    let detail: Value = server.get_json(&format!("/api/v1/products/{product}")).await;
    assert_eq!(detail["images"][0]["url"], url.as_str());
}

/// A real 16×16 PNG made with the same codec the server uses.
pub fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([10, 200, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
