//! Forwarding live playback to the node that holds the live. A live's window is in the memory of
//! the node that ingests it; any other node asked for its playlist, parts or thumbnail sends the
//! same request (path and query, so `_HLS_msn`/`_HLS_part` blocking reloads block on the owner)
//! to the owner found in the [`LiveRegistry`](olive_media::registry::LiveRegistry), and streams
//! the answer back as it arrives. A forwarded request carries [`FORWARDED`], and a node never
//! forwards such a request again, so a stale registry can cost a 404 but never a loop.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, StatusCode, Uri};
use axum::response::Response;
use olive_core::ChannelId;
use olive_media::registry::Owner;
use std::time::Duration;

/// Marks a request one node sends another; its value is the sender's node name.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-olive-forwarded");

/// The longest a forwarded request may take: a blocking reload waits up to three target
/// durations on the owner, then the answer streams back.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The answer's headers worth passing on.
const PASSED: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CACHE_CONTROL,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::AGE,
];

/// The HTTP client nodes use between themselves: pooled connections, no redirects, a bounded
/// wait.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("a client with these settings builds")
}

/// Whether this request came from another node.
pub fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(&FORWARDED)
}

/// The node that holds `channel`, if it is not this one and `headers` are not already a
/// forwarded request's.
pub async fn owner_elsewhere(state: &AppState, channel: ChannelId, headers: &HeaderMap) -> Option<Owner> {
    if is_forwarded(headers) {
        return None;
    }
    state.media.registry().owner(channel).await
}

/// Sends `uri` to `owner` and streams its answer back.
pub async fn forward(state: &AppState, owner: &Owner, uri: &Uri) -> Result<Response, ApiError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = state
        .peers
        .get(format!("{}{path}", owner.url))
        .header(FORWARDED, state.settings.node.as_str())
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(node = owner.node, error = %e, "the node holding a live did not answer");
            ApiError::new(StatusCode::BAD_GATEWAY, "node_unreachable", "the node serving this live did not answer")
        })?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in PASSED {
        if let Some(value) = answer.headers().get(&name) {
            response = response.header(name, value.as_bytes());
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "node_unreachable", e.to_string()))
}
