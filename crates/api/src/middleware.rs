//! What wraps every request: a tracing span carrying the request id (and, once known, the user and
//! channel), the HTTP metrics (`olive_http_requests_total{route,method,status}`,
//! `olive_http_request_duration_seconds`), the egress meter, and headers every response gets. The
//! `route` label is the matched route template, never the raw path, so label cardinality stays
//! bounded.

use crate::state::AppState;
use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use olive_core::ChannelId;
use olive_store::Meter;
use std::time::Instant;
use tracing::Instrument;

/// Set on a response whose body a channel caused (its live video, its replay), so the egress is
/// counted against that channel rather than the platform.
#[derive(Debug, Clone, Copy)]
pub struct ChannelEgress(pub ChannelId);

pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route: String = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    // Live media names its channel in the path; other routes that serve a channel's bytes say so.
    let live_channel = route.starts_with("/live/{id}").then(|| path_channel(req.uri().path())).flatten();
    // Bytes sent to another node are counted where they leave for the viewer, not twice.
    let between_nodes = crate::peers::is_forwarded(req.headers());
    if let Some(channel) = live_channel {
        req.extensions_mut().insert(ChannelEgress(channel));
    }
    let span = tracing::info_span!(
        "request",
        %request_id,
        method = %method,
        route = %route,
        channel_id = live_channel.map(|c| c.0),
        user_id = tracing::field::Empty,
    );
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
    let channel = response.extensions().get::<ChannelEgress>().map(|c| c.0).or(live_channel);
    if method != Method::HEAD && !between_nodes {
        let bytes = response
            .body()
            .size_hint()
            .exact()
            .or_else(|| response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()));
        if let Some(bytes) = bytes.filter(|b| *b > 0) {
            let kind = if channel.is_some() { "media" } else { "other" };
            metrics::counter!("olive_egress_bytes_total", "kind" => kind).increment(bytes);
            let amount = i64::try_from(bytes).unwrap_or(i64::MAX);
            state.media.usage().add(Utc::now().date_naive(), channel, Meter::EgressBytes, amount);
        }
    }
    let labels = [("route", route), ("method", method.as_str().to_owned()), ("status", status.as_u16().to_string())];
    metrics::counter!("olive_http_requests_total", &labels).increment(1);
    metrics::histogram!("olive_http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The channel id in `/live/{id}/…`.
fn path_channel(path: &str) -> Option<ChannelId> {
    path.strip_prefix("/live/")?.split('/').next()?.parse().ok()
}
