//! Forwarding live playback to the node that holds the live. A live's window is in the memory of
//! the node that ingests it; any other node asked for its playlist, parts or thumbnail sends the
//! same request to the owner found in the [`LiveRegistry`](olive_media::registry::LiveRegistry),
//! and streams the answer back as it arrives, so `_HLS_msn`/`_HLS_part` blocking reloads block on
//! the owner.
//!
//! What goes to the owner is rebuilt from parsed parts only ([`PeerPath`]): a channel id, a media
//! file name that [`MediaFile::parse`] accepted (written back by its `Display`), and the three
//! LL-HLS query parameters as numbers. Nothing a client wrote is pasted into the owner's URL, so a
//! path such as `/live/7/..\..\metrics` cannot reach another route on the owner.
//!
//! A forwarded request carries [`FORWARDED`] (the sender's name) and [`NODE_AUTH`] (the secret
//! every node of the deployment shares, [`NodeSecret`]). Only a request with the right secret is
//! treated as one from another node: it is never forwarded again (so a stale registry can cost a
//! 404 but never a loop) and its bytes are not metered as egress. A client that sends the headers
//! itself without the secret is an ordinary client.

use crate::error::ApiError;
use crate::state::AppState;
use arc_swap::ArcSwapOption;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use olive_core::ChannelId;
use olive_media::registry::Owner;
use olive_media::{MediaFile, RungName};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;

/// Marks a request one node sends another; its value is the sender's node name.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-olive-forwarded");
/// The shared node secret that proves [`FORWARDED`] true.
pub const NODE_AUTH: HeaderName = HeaderName::from_static("x-olive-node-auth");

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

/// The secret the nodes of one deployment share (from the bus, see
/// [`olive_bus::Bus::shared_secret`]); never logged. Until it is known (the bus was not reachable
/// yet) no request is taken for another node's and forwarded ones carry none: the owner then
/// treats them as a client's, which costs metering accuracy, not correctness.
#[derive(Clone, Default)]
pub struct NodeSecret(Arc<ArcSwapOption<SecretString>>);

impl NodeSecret {
    pub fn new(secret: SecretString) -> Self {
        let known = NodeSecret::default();
        known.learn(secret);
        known
    }

    /// A secret of this process alone (one node: nothing is forwarded to it).
    pub fn random() -> Self {
        NodeSecret::new(SecretString::from(olive_bus::random_secret()))
    }

    /// The secret, once read from the bus.
    pub fn learn(&self, secret: SecretString) {
        self.0.store(Some(Arc::new(secret)));
    }

    pub fn is_known(&self) -> bool {
        self.0.load().is_some()
    }

    /// Whether `presented` is this secret, compared in constant time.
    fn admits(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let Some(secret) = self.0.load_full() else { return false };
        let ours = secret.expose_secret().as_bytes();
        ours.len() == presented.len() && bool::from(ours.ct_eq(presented))
    }

    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        let secret = self.0.load_full()?;
        HeaderValue::from_str(secret.expose_secret()).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        })
    }
}

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_known() { "NodeSecret(…)" } else { "NodeSecret(not yet known)" })
    }
}

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

/// Whether this request came from another node of this deployment: it names its sender and
/// carries the node secret.
pub fn is_from_node(headers: &HeaderMap, secret: &NodeSecret) -> bool {
    headers.contains_key(&FORWARDED) && headers.get(&NODE_AUTH).is_some_and(|v| secret.admits(v.as_bytes()))
}

/// The node that holds `channel`, if it is not this one and `headers` are not already another
/// node's forwarded request.
pub async fn owner_elsewhere(state: &AppState, channel: ChannelId, headers: &HeaderMap) -> Option<Owner> {
    if is_from_node(headers, &state.settings.node_secret) {
        return None;
    }
    state.media.registry().owner(channel).await
}

/// The LL-HLS query parameters a playlist request may carry (RFC 8216bis §6.2.5), as numbers and
/// a flag: the only parts of a client's query that travel to the owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HlsQuery {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    pub skip: bool,
}

/// What may be asked of the node that holds a live, each part already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPath {
    /// The multivariant playlist of the live's ladder.
    Master(ChannelId),
    /// A rendition's media playlist: the source's (`None`) or a rung's.
    Playlist(ChannelId, Option<RungName>, HlsQuery),
    Media(ChannelId, Option<RungName>, MediaFile),
    Thumbnail(ChannelId),
}

impl PeerPath {
    /// The path and query sent to the owner, written from the parsed parts.
    pub fn render(&self) -> String {
        let folder = |channel: &ChannelId, rung: &Option<RungName>| match rung {
            Some(rung) => format!("/live/{channel}/{rung}"),
            None => format!("/live/{channel}"),
        };
        match self {
            PeerPath::Master(channel) => format!("/live/{channel}/master.m3u8"),
            PeerPath::Playlist(channel, rung, q) => {
                let mut params = Vec::new();
                if let Some(msn) = q.msn {
                    params.push(format!("_HLS_msn={msn}"));
                }
                if let Some(part) = q.part {
                    params.push(format!("_HLS_part={part}"));
                }
                if q.skip {
                    params.push("_HLS_skip=YES".to_owned());
                }
                let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
                format!("{}/index.m3u8{query}", folder(channel, rung))
            }
            PeerPath::Media(channel, rung, file) => format!("{}/{file}", folder(channel, rung)),
            PeerPath::Thumbnail(channel) => format!("/live/{channel}/thumbnail.jpg"),
        }
    }
}

/// Sends `path` to `owner` and streams its answer back.
pub async fn forward(state: &AppState, owner: &Owner, path: PeerPath) -> Result<Response, ApiError> {
    let mut request =
        state.peers.get(format!("{}{}", owner.url, path.render())).header(FORWARDED, state.settings.node.as_str());
    if let Some(secret) = state.settings.node_secret.header_value() {
        request = request.header(NODE_AUTH, secret);
    }
    let answer = request.send().await.map_err(|e| {
        tracing::warn!(node = owner.node, error = %e.without_url(), "the node holding a live did not answer");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_paths_are_written_from_parsed_parts() {
        let c = ChannelId(7);
        assert_eq!(PeerPath::Playlist(c, None, HlsQuery::default()).render(), "/live/7/index.m3u8");
        let blocking = HlsQuery { msn: Some(12), part: Some(3), skip: true };
        assert_eq!(
            PeerPath::Playlist(c, None, blocking).render(),
            "/live/7/index.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"
        );
        assert_eq!(
            PeerPath::Playlist(c, Some(RungName(480)), blocking).render(),
            "/live/7/480p/index.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"
        );
        assert_eq!(PeerPath::Media(c, None, MediaFile::Part(12, 3)).render(), "/live/7/part-12-3.m4s");
        assert_eq!(PeerPath::Media(c, Some(RungName(160)), MediaFile::Init(2)).render(), "/live/7/160p/init-2.mp4");
        assert_eq!(PeerPath::Master(c).render(), "/live/7/master.m3u8");
        assert_eq!(PeerPath::Thumbnail(c).render(), "/live/7/thumbnail.jpg");
    }

    #[test]
    fn only_the_node_secret_makes_a_request_another_nodes() {
        let secret = NodeSecret::new(SecretString::from("s3cret-s3cret"));
        let mut h = HeaderMap::new();
        h.insert(FORWARDED, HeaderValue::from_static("node-b"));
        assert!(!is_from_node(&h, &secret), "the name alone proves nothing");
        h.insert(NODE_AUTH, HeaderValue::from_static("s3cret-s3creT"));
        assert!(!is_from_node(&h, &secret));
        h.insert(NODE_AUTH, HeaderValue::from_static("s3cret"));
        assert!(!is_from_node(&h, &secret));
        h.insert(NODE_AUTH, HeaderValue::from_static("s3cret-s3cret"));
        assert!(is_from_node(&h, &secret));
        h.remove(FORWARDED);
        assert!(!is_from_node(&h, &secret));
        assert_eq!(format!("{secret:?}"), "NodeSecret(…)");
        let unknown = NodeSecret::default();
        h.insert(FORWARDED, HeaderValue::from_static("node-b"));
        assert!(!is_from_node(&h, &unknown), "nothing is proven before the secret is known");
        assert!(unknown.header_value().is_none());
    }
}
