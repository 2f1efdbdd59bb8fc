//! Liveness, readiness and the Prometheus exposition.
//!
//! Metrics hold revenue and order counts, so they are served on a listener of their own
//! ([`crate::metrics_app`], `--metrics`, loopback by default) that no ingress routes to. On the
//! public listener `/metrics` answers only a direct local caller (a loopback peer with no
//! forwarding header: someone on the machine itself), and is not found for anyone else.
//! `/readyz` says which part is failing with a reason code; the raw error goes to the log only.

use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::net::SocketAddr;
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
    let failing: serde_json::Map<String, serde_json::Value> = [
        ("database", problem("database", db)),
        ("bus", problem("bus", bus)),
        ("object_store", problem("object_store", objects)),
    ]
    .into_iter()
    .filter_map(|(part, problem)| problem.map(|p| (part.to_owned(), json!(p))))
    .collect();
    if failing.is_empty() {
        (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "not_ready", "reason": failing}))).into_response()
    }
}

/// `GET /metrics` on the public listener: for a direct local caller only.
pub async fn metrics(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let headers: &HeaderMap = request.headers();
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"].iter().any(|h| headers.contains_key(*h));
    if !peer.is_some_and(|ip| ip.is_loopback()) || forwarded {
        return crate::error::ApiError::not_found("route").into_response();
    }
    exposition(state.metrics.as_ref())
}

fn exposition(handle: Option<&PrometheusHandle>) -> Response {
    match handle {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no metrics recorder installed").into_response(),
    }
}

/// The metrics listener's whole surface: `GET /metrics`.
pub fn metrics_router(handle: PrometheusHandle) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(move || async move { exposition(Some(&handle)) }))
}

/// One readiness probe's reason code, if it failed: `unavailable` or `timeout`. What went wrong is
/// logged, never sent: it may name hosts, users or paths.
fn problem<E: std::fmt::Display>(
    part: &'static str,
    probe: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> Option<&'static str> {
    match probe {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(part, error = %e, "not ready");
            Some("unavailable")
        }
        Err(_) => {
            tracing::warn!(part, "not ready: the probe timed out");
            Some("timeout")
        }
    }
}
