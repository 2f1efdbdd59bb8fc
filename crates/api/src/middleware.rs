//! What wraps every request: a tracing span carrying the request id, the HTTP metrics
//! (`olive_http_requests_total{route,method,status}`, `olive_http_request_duration_seconds`), and
//! headers every response gets. The `route` label is the matched route template, never the raw
//! path, so label cardinality stays bounded.

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route: String = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let span = tracing::info_span!("request", %request_id, method = %method, route = %route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), latency_ms = elapsed.as_secs_f64() * 1e3, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), latency_ms = elapsed.as_secs_f64() * 1e3, "request done");
        }
    });
    let labels = [("route", route), ("method", method.as_str().to_owned()), ("status", status.as_u16().to_string())];
    metrics::counter!("olive_http_requests_total", &labels).increment(1);
    metrics::histogram!("olive_http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
