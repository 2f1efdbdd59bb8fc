//! The router driven in-process with `oneshot`, no port bound: two "nodes" share one store and one
//! bus, as several `olive serve` processes share PostgreSQL and Redis.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use olive_api::{app, ApiSettings, AppState, Live};
use olive_bus::{Bus, MemoryBus};
use olive_media::thumbnail::Thumbnails;
use olive_objects::Objects;
use olive_realtime::hub::Hub;
use olive_store::Store;

use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

async fn shared_store() -> Arc<dyn Store> {
    Arc::new(olive_store_sqlite::test_support::temporary().await)
}

fn node(store: &Arc<dyn Store>, bus: &Arc<dyn Bus>) -> AppState {
    let media = Arc::new(olive_media::LiveMedia::new(Default::default()));
    let objects = Objects::in_memory();
    let thumbnails = Arc::new(Thumbnails::new(objects.clone(), store.clone()));
    let hub = Hub::new(store.clone(), bus.clone(), "test".into());
    let deals = olive_commerce::deal_desk::DealDesk::new(
        store.clone(),
        bus.clone(),
        "test".into(),
        Arc::new(chrono::Utc::now),
        Default::default(),
    );
    let live = Live { media, thumbnails, hub, deals };
    let state =
        AppState::new(store.clone(), objects, bus.clone(), ApiSettings::default(), live, None, Default::default());
    state.cache.spawn_listener();
    state
}

async fn get_json(state: &AppState, path: &str) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn json(method: &str, path: &str, token: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn admin_token(store: &Arc<dyn Store>, state: &AppState) -> String {
    olive_commerce::accounts::signup(
        store.as_ref(),
        olive_commerce::accounts::SignupInput {
            email: "admin@example.com".into(),
            password: secrecy::SecretString::from("correct horse battery"),
            display_name: None,
        },
        olive_core::Role::Admin,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let login = Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"email":"admin@example.com","password":"correct horse battery"}"#))
        .unwrap();
    let (status, body) = send(state, login).await;
    assert_eq!(status, StatusCode::OK);
    body["token"].as_str().unwrap().to_owned()
}

/// Eventually-consistent check: the other node's listener applies the invalidation asynchronously.
async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition not reached within a second");
}

#[tokio::test]
async fn a_write_on_one_node_invalidates_the_other_nodes_cache() {
    let store = shared_store().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let (a, b) = (node(&store, &bus), node(&store, &bus));
    let token = admin_token(&store, &a).await;

    let (status, created) = send(
        &a,
        json(
            "POST",
            "/api/v1/products",
            &token,
            serde_json::json!({"name": "Toner", "category": "skincare", "price_minor": 9000, "stock": 5}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();

    // Both nodes cache the detail.
    assert_eq!(get_json(&a, &format!("/api/v1/products/{id}")).await.1["stock"], 5);
    assert_eq!(get_json(&b, &format!("/api/v1/products/{id}")).await.1["stock"], 5);
    assert_eq!(get_json(&b, "/api/v1/channels").await.1["items"].as_array().unwrap().len(), 0);

    // Node A edits; node B stops serving the old bytes.
    let (status, _) =
        send(&a, json("PATCH", &format!("/api/v1/products/{id}"), &token, serde_json::json!({"stock": 2}))).await;
    assert_eq!(status, StatusCode::OK);
    eventually(|| {
        let b = b.clone();
        async move { get_json(&b, &format!("/api/v1/products/{id}")).await.1["stock"] == 2 }
    })
    .await;

    let (status, _) =
        send(&a, json("POST", "/api/v1/channels", &token, serde_json::json!({"title": "New show"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    eventually(|| {
        let b = b.clone();
        async move { get_json(&b, "/api/v1/channels").await.1["items"].as_array().unwrap().len() == 1 }
    })
    .await;
}

#[tokio::test]
async fn cached_reads_do_not_touch_the_database_twice() {
    let store = shared_store().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let a = node(&store, &bus);
    let first = a.cache.channel_list().await.unwrap();
    let second = a.cache.channel_list().await.unwrap();
    // The same allocation is handed out: the second read was served from memory.
    assert_eq!(first.as_ptr(), second.as_ptr());
}

fn authed(method: &str, path: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// Sessions are served from memory on every node, and a logout or a role change on one node is
/// honoured at once by the others, not after the cache's time-to-live.
#[tokio::test]
async fn a_logout_or_role_change_on_one_node_reaches_the_others_session_cache() {
    let store = shared_store().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::default());
    let (a, b) = (node(&store, &bus), node(&store, &bus));
    let admin = admin_token(&store, &a).await;
    let signup = Request::post("/api/v1/auth/signup")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"email":"shopper@example.com","password":"correct horse battery"}"#))
        .unwrap();
    let (status, _) = send(&a, signup).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let login = Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"email":"shopper@example.com","password":"correct horse battery"}"#))
        .unwrap();
    let (status, body) = send(&a, login).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["token"].as_str().unwrap().to_owned();
    let id = body["user"]["id"].as_i64().unwrap();

    // Node B caches the session.
    let (status, me) = send(&b, authed("GET", "/api/v1/me", &token)).await;
    assert_eq!((status, me["role"].as_str()), (StatusCode::OK, Some("viewer")));

    // A role change on A: B shows the new role.
    let (status, _) =
        send(&a, json("PATCH", &format!("/api/v1/users/{id}"), &admin, serde_json::json!({"role": "host"}))).await;
    assert_eq!(status, StatusCode::OK);
    eventually(|| {
        let (b, token) = (b.clone(), token.clone());
        async move { send(&b, authed("GET", "/api/v1/me", &token)).await.1["role"] == "host" }
    })
    .await;

    // A logout on A: B refuses the token.
    let (status, _) = send(&a, authed("POST", "/api/v1/auth/logout", &token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually(|| {
        let (b, token) = (b.clone(), token.clone());
        async move { send(&b, authed("GET", "/api/v1/me", &token)).await.0 == StatusCode::UNAUTHORIZED }
    })
    .await;
    assert_eq!(send(&a, authed("GET", "/api/v1/me", &token)).await.0, StatusCode::UNAUTHORIZED);
}
