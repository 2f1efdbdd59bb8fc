//! What wraps every request: a tracing span carrying the request id (and, once known, the user and
//! channel), the HTTP metrics (`olive_http_requests_total{route,method,status}`,
//! `olive_http_request_duration_seconds`), the egress meter, and headers every response gets. The
//! `route` label is the matched route template, never the raw path, so label cardinality stays
//! bounded.
//!
//! Egress is metered as the body's bytes are sent ([`Metered`]), so a viewer who goes away
//! mid-part is charged what left, not the whole part. It is charged to a channel only when the
//! handler that served a channel's bytes says so ([`ChannelEgress`]): a request for a channel that
//! does not exist, or for a file it does not have, costs that id nothing. Bytes sent to another
//! node (an authenticated forwarded request) are counted where they leave for the viewer.

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
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;
use tracing::Instrument;

/// Set on a response whose body a channel caused (its live video, its replay), so the egress is
/// counted against that channel rather than the platform.
#[derive(Debug, Clone, Copy)]
pub struct ChannelEgress(pub ChannelId);

/// The request counter and latency histogram of each route, method and status, made once: building
/// a metric's key (its labels as strings, hashed and compared in the registry) on every request
/// cost more than the rest of a cached read's bookkeeping.
#[derive(Default)]
pub struct HttpMetrics {
    by_route: RwLock<HashMap<String, Vec<RouteMetrics>>>,
    /// `olive_egress_bytes_total{kind="media"}` and `{kind="other"}`.
    egress: std::sync::OnceLock<[metrics::Counter; 2]>,
}

struct RouteMetrics {
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

impl HttpMetrics {
    fn record(&self, route: &str, method: &Method, status: u16, elapsed: f64) {
        // Methods outside the standard set share one label, so made-up methods cannot grow it.
        let method = STANDARD_METHODS.iter().find(|m| *m == method).map_or("OTHER", Method::as_str);
        let this = |h: &&RouteMetrics| h.status == status && h.method == method;
        let record = |h: &RouteMetrics| {
            h.requests.increment(1);
            h.duration.record(elapsed);
        };
        if let Some(handles) = self.by_route.read().expect("http metrics poisoned").get(route) {
            if let Some(h) = handles.iter().find(this) {
                return record(h);
            }
        }
        let mut by_route = self.by_route.write().expect("http metrics poisoned");
        let handles = by_route.entry(route.to_owned()).or_default();
        if !handles.iter().any(|h| this(&h)) {
            let labels = [("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
            handles.push(RouteMetrics {
                method,
                status,
                requests: metrics::counter!("olive_http_requests_total", &labels),
                duration: metrics::histogram!("olive_http_request_duration_seconds", &labels[..2]),
            });
        }
        if let Some(h) = handles.iter().find(this) {
            record(h);
        }
    }

    fn egress(&self, media: bool, bytes: u64) {
        let [media_bytes, other_bytes] = self.egress.get_or_init(|| {
            ["media", "other"].map(|kind| metrics::counter!("olive_egress_bytes_total", "kind" => kind))
        });
        if media { media_bytes } else { other_bytes }.increment(bytes);
    }
}

static STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route_str = route.as_ref().map_or("unmatched", |p| p.as_str());
    // For the log only: metering waits for the handler to say whose bytes it served.
    let live_channel = route_str.starts_with("/live/{id}").then(|| path_channel(req.uri().path())).flatten();
    // Bytes sent to another node are counted where they leave for the viewer, not twice.
    let between_nodes = crate::peers::is_from_node(req.headers(), &state.settings.node_secret);
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        %request_id,
        method = %method,
        route = %route_str,
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
    let channel = response.extensions().get::<ChannelEgress>().map(|c| c.0).filter(|_| status.is_success());
    state.http_metrics.record(route_str, &method, status.as_u16(), elapsed.as_secs_f64());
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if method == Method::HEAD || between_nodes {
        return response;
    }
    let meter = EgressMeter { state: state.clone(), channel, sent: 0 };
    response.map(|body| axum::body::Body::new(Metered { body, meter }))
}

/// Counts a response's bytes as they are sent and charges them when the body is done (or dropped,
/// when the client went away).
struct Metered {
    body: axum::body::Body,
    meter: EgressMeter,
}

struct EgressMeter {
    state: AppState,
    channel: Option<ChannelId>,
    sent: u64,
}

impl Drop for EgressMeter {
    fn drop(&mut self) {
        if self.sent == 0 {
            return;
        }
        self.state.http_metrics.egress(self.channel.is_some(), self.sent);
        let amount = i64::try_from(self.sent).unwrap_or(i64::MAX);
        self.state.media.usage().add(Utc::now().date_naive(), self.channel, Meter::EgressBytes, amount);
    }
}

impl HttpBody for Metered {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.meter.sent += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The channel id in `/live/{id}/…`.
fn path_channel(path: &str) -> Option<ChannelId> {
    path.strip_prefix("/live/")?.split('/').next()?.parse().ok()
}
