//! Liveness, readiness and the Prometheus exposition.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

pub async fn livez() -> &'static str {
    "ok"
}

/// 200 when the database, the bus and the object store all answer within a second; 503 while
/// the server drains before stopping.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        let reason = json!({"server": "draining: stopping after SIGTERM"});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "draining", "reason": reason})))
            .into_response();
    }
    let limit = Duration::from_secs(1);
    let (db, bus, objects) = tokio::join!(
        tokio::time::timeout(limit, state.store.ping()),
        tokio::time::timeout(limit, state.bus.ping()),
        tokio::time::timeout(limit, state.objects.ping()),
    );
    let failing: serde_json::Map<String, serde_json::Value> =
        [("database", problem(db)), ("bus", problem(bus)), ("object_store", problem(objects))]
            .into_iter()
            .filter_map(|(part, problem)| problem.map(|p| (part.to_owned(), json!(p))))
            .collect();
    if failing.is_empty() {
        (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response()
    } else {
        tracing::warn!(?failing, "not ready");
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "not_ready", "reason": failing}))).into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no metrics recorder installed").into_response(),
    }
}

/// What went wrong with one readiness probe, if anything.
fn problem<E: std::fmt::Display>(probe: Result<Result<(), E>, tokio::time::error::Elapsed>) -> Option<String> {
    match probe {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out".to_owned()),
    }
}
