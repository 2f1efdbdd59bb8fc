//! Webhooks end to end: an admin registers a receiver, an order is placed, and the receiver — down
//! for its first two deliveries — gets the event on the third try, signed.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Hit {
    pub at: Instant,
    pub signature: String,
    pub event: String,
    pub body: String,
    pub answered: u16,
}

/// A receiver on loopback that fails its first `failures` requests with 500.
pub async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Hit>>>) {
    receiver_with(failures, false).await
}

/// As [`receiver`]; with `hang_first`, the first request is held open without an answer.
async fn receiver_with(failures: usize, hang_first: bool) -> (String, Arc<Mutex<Vec<Hit>>>) {
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let record = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let first = record.lock().unwrap().is_empty();
                if hang_first && first {
                    record.lock().unwrap().push(Hit {
                        at: Instant::now(),
                        signature: String::new(),
                        event: "held".into(),
                        body: body.clone(),
                        answered: 0,
                    });
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    return AxumStatus::OK;
                }
                let mut hits = record.lock().unwrap();
                let answered = if hits.len() < failures { AxumStatus::INTERNAL_SERVER_ERROR } else { AxumStatus::OK };
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                hits.push(Hit {
                    at: Instant::now(),
                    signature: header("olive-signature"),
                    event: header("olive-event"),
                    body,
                    answered: answered.as_u16(),
                });
                answered
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), hits)
}

pub fn verify(secret: &str, signature: &str, body: &str) -> bool {
    let Some((t, v1)) = signature.strip_prefix("t=").and_then(|s| s.split_once(",v1=")) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == v1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_webhooks_are_signed_retried_and_delivered() {
    let (url, hits) = receiver(2).await;
    // The receivers are on loopback, which only an operator's flag allows.
    let server = Server::start_with(Db::Sqlite, &["--allow-private-webhooks"]).await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let buyer = server.signup("buyer@example.com").await;

    // Only admins manage webhooks, and only sensible ones.
    let denied = buyer.post("/api/v1/webhooks").json(&json!({ "url": url })).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    for bad in [
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "not a url"}),
        json!({"url": url, "events": ["order.eaten"]}),
    ] {
        let r = admin.post("/api/v1/webhooks").json(&bad).send().await.unwrap();
        assert_eq!(error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_field", "{bad}");
    }
    let created =
        admin.post("/api/v1/webhooks").json(&json!({ "url": url, "events": ["order.placed"] })).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    let listed = admin.get("/api/v1/webhooks").send().await.unwrap().text().await.unwrap();
    assert!(listed.contains(&url) && !listed.contains(&secret), "the secret is shown once");

    let product = server.product(&admin, "Hooked serum", 5).await;
    let order: Value = buyer
        .post("/api/v1/orders")
        .header("idempotency-key", "hook-1")
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(40);
    let delivered = loop {
        let seen = hits.lock().unwrap().clone();
        if seen.iter().any(|h| h.answered == 200) {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "no successful delivery: {seen:?}\n{}",
            server.output.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(delivered.iter().map(|h| h.answered).collect::<Vec<_>>(), vec![500, 500, 200]);
    // Backed off: about 2 s, then about 4 s, between attempts.
    assert!(delivered[1].at - delivered[0].at >= Duration::from_millis(1500));
    assert!(delivered[2].at - delivered[1].at >= Duration::from_millis(3500));
    for hit in &delivered {
        assert_eq!(hit.event, "order.placed");
        assert_eq!(hit.body, delivered[0].body, "every attempt carries the same event");
        assert!(verify(&secret, &hit.signature, &hit.body), "signature must verify: {}", hit.signature);
        assert!(!verify("whsec_wrong", &hit.signature, &hit.body));
    }
    let body: Value = serde_json::from_str(&delivered[2].body).unwrap();
    assert_eq!(body["type"], "order.placed");
    assert_eq!(body["data"]["id"], order["id"]);
    assert_eq!(body["id"], format!("order.placed/{}", order["id"]));

    let done: Value = admin.get("/api/v1/jobs?status=done").send().await.unwrap().json().await.unwrap();
    let job =
        done["items"].as_array().unwrap().iter().find(|j| j["kind"] == "webhook.deliver").expect("the delivery job");
    assert_eq!(job["attempts"], 3);
    assert!(job["last_error"].as_str().unwrap().contains("500"), "the last failure is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_cut_off_by_a_crash_is_redone_after_restart() {
    let (url, hits) = receiver_with(0, true).await;
    let server = Server::start_with(Db::Sqlite, &["--job-lease-secs", "2", "--allow-private-webhooks"]).await;
    let admin = server.create_user("admin@example.com", "admin").await;
    let buyer = server.signup("buyer@example.com").await;
    admin.post("/api/v1/webhooks").json(&json!({ "url": url })).send().await.unwrap();
    let product = server.product(&admin, "Crash-proof toner", 3).await;
    let placed = buyer
        .post("/api/v1/orders")
        .header("idempotency-key", "crash-1")
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::CREATED);

    // The worker is mid-delivery (the receiver holds the request) when the server dies.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hits.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the first delivery never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server = server.crash_and_restart(&["--job-lease-secs", "2", "--allow-private-webhooks"]).await;

    // Once the dead worker's lease runs out, the restarted server delivers the event again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let redone = loop {
        if let Some(hit) = hits.lock().unwrap().iter().find(|h| h.answered == 200).cloned() {
            break hit;
        }
        assert!(Instant::now() < deadline, "the job was not redone after the crash");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(redone.event, "order.placed");
    assert_eq!(redone.body, hits.lock().unwrap()[0].body, "the same event, redone");
    let done: Value =
        admin_session(&server).await.get("/api/v1/jobs?status=done").send().await.unwrap().json().await.unwrap();
    assert_eq!(done["items"][0]["attempts"], 2, "the crashed attempt counts");
}

/// A fresh admin session on a restarted server (the old bearer token is in the same database).
async fn admin_session(server: &Server) -> Session {
    server.login("admin@example.com", PASSWORD).await
}
