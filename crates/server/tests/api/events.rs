//! `POST /api/v1/events` and the purchases the order path records: visitors get a first-party id,
//! signed-in visitors' events carry their account, and bad batches are refused whole.

use crate::helpers::*;
use olive_store::{EventKind, EventStore, TargetKind};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn stored(server: &Server) -> Vec<olive_store::Event> {
    let path = server.data_dir.path().join("olive.db");
    let store = olive_store_sqlite::open(&format!("sqlite://{}", path.display())).await.unwrap();
    store.events_after(0, 1000).await.unwrap()
}

fn visitor_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("olive_visitor="))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

fn batch() -> Value {
    json!({"events": [
        {"type": "view", "target": {"kind": "channel", "id": 1}},
        {"type": "watch", "target": {"kind": "channel", "id": 1}, "seconds": 61.5},
        {"type": "cart", "target": {"kind": "product", "id": 3}, "quantity": 2},
        {"type": "heart", "target": {"kind": "replay", "id": 4}},
    ]})
}

#[tokio::test]
async fn visitors_report_events_and_purchases_are_recorded() {
    let server = Server::start().await;
    // The first page gives the browser its visitor id; its events carry it.
    let page = reqwest::Client::new().get(server.url("/")).send().await.unwrap();
    let cookie = visitor_cookie(&page).expect("the shell sets a visitor id");
    assert!(page.headers().get_all(header::SET_COOKIE).iter().any(|c| c.to_str().unwrap().contains("HttpOnly")));
    let anonymous = reqwest::Client::new();
    let r = anonymous
        .post(server.url("/api/v1/events"))
        .header(header::COOKIE, &cookie)
        .json(&batch())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(visitor_cookie(&r).is_none(), "a known visitor keeps their id");
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 4);

    // An API client with no cookie is given one.
    let r = anonymous.post(server.url("/api/v1/events")).json(&batch()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let other = visitor_cookie(&r).expect("a new visitor id");
    assert_ne!(other, cookie);

    // A signed-in visitor's events carry their account.
    let admin = server.create_user("admin@example.com", "admin").await;
    let product = server.product(&admin, "Cushion", 10).await;
    let buyer = server.signup("buyer@example.com").await;
    let r = buyer.post("/api/v1/events").header(header::COOKIE, &cookie).json(&batch()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // And their purchases are recorded by the order path.
    let r = buyer
        .post("/api/v1/orders")
        .header("idempotency-key", "k1")
        .json(&json!({"items": [{"product_id": product, "quantity": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let visitor = cookie.trim_start_matches("olive_visitor=");
    let mut events = stored(&server).await;
    for _ in 0..50 {
        if events.iter().any(|e| e.kind == EventKind::Purchase) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = stored(&server).await;
    }
    assert_eq!(events.len(), 13, "{events:#?}");
    let first = &events[..4];
    assert!(first.iter().all(|e| e.visitor == visitor && e.user_id.is_none()));
    assert_eq!((first[1].kind, first[1].value), (EventKind::Watch, 61.5));
    assert_eq!(
        (first[2].kind, first[2].target, first[2].target_id, first[2].value),
        (EventKind::Cart, TargetKind::Product, 3, 2.0)
    );
    assert!(events[8..12].iter().all(|e| e.user_id.map(|u| u.0) == Some(buyer.id())));
    let purchase = events.iter().find(|e| e.kind == EventKind::Purchase).unwrap();
    assert_eq!((purchase.target_id, purchase.value, purchase.user_id.map(|u| u.0)), (product, 3.0, Some(buyer.id())));
    assert_eq!(purchase.visitor, format!("user-{}", buyer.id()), "no browser id: the account's");
}

#[tokio::test]
async fn bad_batches_are_refused_whole_and_floods_slowed() {
    let server = Server::start().await;
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(server.url("/api/v1/events")).json(&body).send();
    let one = |event: Value| json!({"events": [{"type": "view", "target": {"kind": "product", "id": 1}}, event]});
    let refused: Vec<(Value, StatusCode)> = vec![
        (json!({"events": []}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"events": vec![json!({"type": "view", "target": {"kind": "product", "id": 1}}); 51]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (one(json!({"type": "purchase", "target": {"kind": "product", "id": 1}})), StatusCode::UNPROCESSABLE_ENTITY),
        (one(json!({"type": "teleport", "target": {"kind": "product", "id": 1}})), StatusCode::UNPROCESSABLE_ENTITY),
        (one(json!({"type": "view", "target": {"kind": "user", "id": 1}})), StatusCode::UNPROCESSABLE_ENTITY),
        (one(json!({"type": "view", "target": {"kind": "product", "id": 0}})), StatusCode::UNPROCESSABLE_ENTITY),
        (one(json!({"type": "view", "target": {"kind": "product", "id": -5}})), StatusCode::UNPROCESSABLE_ENTITY),
        (one(json!({"type": "watch", "target": {"kind": "channel", "id": 1}})), StatusCode::UNPROCESSABLE_ENTITY),
        (
            one(json!({"type": "watch", "target": {"kind": "channel", "id": 1}, "seconds": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            one(json!({"type": "watch", "target": {"kind": "channel", "id": 1}, "seconds": 86400})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            one(json!({"type": "cart", "target": {"kind": "product", "id": 1}, "quantity": 1.5})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            one(json!({"type": "cart", "target": {"kind": "product", "id": 1}, "quantity": 1e9})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            one(json!({"type": "view", "target": {"kind": "product", "id": 1}, "user_id": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"events": "all of them"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!([1, 2, 3]), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, status) in refused {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), status, "{body}");
        let code = r.json::<Value>().await.unwrap()["error"]["code"].as_str().unwrap().to_owned();
        assert!(!code.is_empty(), "{body}");
    }
    let r = client
        .post(server.url("/api/v1/events"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"events\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let huge = format!(
        "{{\"events\": [{}]}}",
        vec!["{\"type\":\"view\",\"target\":{\"kind\":\"product\",\"id\":1}}"; 2000].join(",")
    );
    let r = client
        .post(server.url("/api/v1/events"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A forged visitor cookie is replaced, not trusted.
    let r = client
        .post(server.url("/api/v1/events"))
        .header(header::COOKIE, "olive_visitor=../../etc/passwd")
        .json(&one(json!({"type": "click", "target": {"kind": "product", "id": 2}})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let fresh = visitor_cookie(&r).expect("a new id for a forged one");
    assert_eq!(stored(&server).await.len(), 2, "only the accepted batch was kept");

    // One visitor flooding: twenty batches at once, then they are slowed.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = client
            .post(server.url("/api/v1/events"))
            .header(header::COOKIE, &fresh)
            .json(&batch())
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count() >= 19, "{statuses:?}");
}
