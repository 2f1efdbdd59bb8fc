//! The transport of a ladder encoded on another node ([`olive_media::ladder::remote`]): one
//! WebSocket per ladder, opened by the encoding node to the node that ingests the live, as
//! playback forwarding reaches it (its URL from the live's lease, the node secret in the
//! headers).
//!
//! - The ingesting node answers `GET /internal/ladders/{channel}/encoder` ([`encoder_link`]) only
//!   to a request proven another node's, and only while the ladder waits for an encoder. It sends
//!   the job as the first (text) message, then the source as binary messages, then the text
//!   `end` when the source ends; every binary message it receives is an encoder message.
//! - Every node with an encoder runs [`take_ladders`]: it listens for ladders wanted on the bus,
//!   and for each one it has a free slot for, takes the lease `ladder:{channel}`, links, runs the
//!   encoder, renews the lease while it runs and gives both back when it ends.
//!
//! Each direction has its own task, so a slow encoder input never holds up its output.

use crate::error::ApiError;
use crate::extract::IdPath;
use crate::peers::{is_from_node, FORWARDED, NODE_AUTH};
use crate::state::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use olive_core::ChannelId;
use olive_media::ladder::remote::{self, EncoderJob, LinkEnds, Wanted};
use olive_media::registry::{HEARTBEAT, LEASE_TTL};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

/// The text message that says the source ended.
const END: &str = "end";
/// How long the encoding node waits for source bytes before it takes the ingesting node for gone
/// (a live sends about thirty frames a second).
const SOURCE_SILENCE: Duration = Duration::from_secs(30);

/// `GET /internal/ladders/{channel}/encoder`: another node links as the encoder of a ladder of
/// this node's that waits for one.
pub async fn encoder_link(
    State(state): State<AppState>,
    IdPath(channel): IdPath<ChannelId>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !is_from_node(&headers, &state.settings.node_secret) {
        return Err(ApiError::not_found("ladder"));
    }
    let node = headers.get(&FORWARDED).and_then(|v| v.to_str().ok()).unwrap_or("another node").to_owned();
    let ends = state.media.ladders().link(channel, &node).ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "ladder_not_waiting", "this ladder does not wait for an encoder")
    })?;
    Ok(upgrade
        .max_message_size(remote::MAX_MESSAGE)
        .max_frame_size(remote::MAX_MESSAGE)
        .on_upgrade(move |socket| ingesting_side(socket, ends)))
}

/// Pumps one link on the ingesting node until either side ends it.
async fn ingesting_side(socket: WebSocket, ends: LinkEnds) {
    let LinkEnds { job, mut source, messages } = ends;
    let (mut out, mut inbound) = socket.split();
    let job = serde_json::to_string(&job).expect("a job serialises");
    let sending = async move {
        out.send(Message::Text(job.into())).await?;
        while let Some(chunk) = source.recv().await {
            out.send(Message::Binary(chunk)).await?;
        }
        out.send(Message::Text(END.into())).await?;
        // The encoder flushes its rungs after the end: keep the socket open for them.
        std::future::pending::<()>().await;
        Ok::<(), axum::Error>(())
    };
    let receiving = async move {
        while let Some(Ok(message)) = inbound.next().await {
            let goes_on = match message {
                Message::Binary(bytes) => messages.send(bytes).await.is_ok(),
                Message::Close(_) => false,
                _ => true,
            };
            if !goes_on {
                return;
            }
        }
    };
    tokio::select! {
        _ = sending => {}
        () = receiving => {}
    }
}

/// Takes ladders other nodes want encoded, while this node has free slots; forever.
pub async fn take_ladders(state: AppState) {
    let ladders = state.media.ladders().clone();
    let Some(node) = ladders.node().map(str::to_owned) else { return };
    let encoding: Arc<Mutex<HashSet<ChannelId>>> = Arc::default();
    let mut wanted = state.bus.subscribe(remote::LADDERS_WANTED);
    while let Some(message) = wanted.recv().await {
        let Ok(message) = message else { continue };
        let Ok(wanted) = serde_json::from_slice::<Wanted>(&message) else {
            tracing::warn!("a malformed ladder announcement was ignored");
            continue;
        };
        let channel = wanted.channel;
        if wanted.node == node || encoding.lock().expect("encoding set poisoned").contains(&channel) {
            continue;
        }
        let Ok(slot) = ladders.reserve() else { continue };
        let lease = remote::lease_key(channel);
        match state.bus.leases().acquire(&lease, &node, LEASE_TTL).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(e) => {
                tracing::warn!(channel_id = %channel, error = %e, "could not take a ladder's lease");
                continue;
            }
        }
        let Some(owner) = state.media.registry().owner(channel).await else {
            let _ = state.bus.leases().release(&lease, &node).await;
            continue;
        };
        encoding.lock().expect("encoding set poisoned").insert(channel);
        let (state, node, encoding) = (state.clone(), node.clone(), encoding.clone());
        tokio::spawn(async move {
            tracing::info!(channel_id = %channel, node = owner.node, "encoding another node's ladder");
            match encode_for(&state, &node, channel, &owner.url).await {
                Ok(()) => tracing::info!(channel_id = %channel, "another node's ladder ended"),
                Err(why) => {
                    tracing::warn!(channel_id = %channel, reason = %why, "encoding another node's ladder stopped")
                }
            }
            let _ = state.bus.leases().release(&lease, &node).await;
            encoding.lock().expect("encoding set poisoned").remove(&channel);
            drop(slot);
        });
    }
}

/// Links to the node at `owner_url` as the encoder of `channel`'s ladder and runs it to the end.
async fn encode_for(state: &AppState, node: &str, channel: ChannelId, owner_url: &str) -> Result<(), String> {
    use tungstenite::client::IntoClientRequest;
    let url = format!("{}/internal/ladders/{channel}/encoder", owner_url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(FORWARDED, node.parse().map_err(|_| "the node name is not a header value")?);
    let secret = state.settings.node_secret.header_value().ok_or("the node secret is not known yet")?;
    request.headers_mut().insert(NODE_AUTH, secret);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(remote::MAX_MESSAGE))
        .max_frame_size(Some(remote::MAX_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let (socket, _) = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "the ingesting node did not answer in 5 s".to_owned())?
        .map_err(|e| format!("could not link to the ingesting node: {e}"))?;
    let (mut out, mut inbound) = socket.split();
    let job = match tokio::time::timeout(Duration::from_secs(5), inbound.next()).await {
        Ok(Some(Ok(tungstenite::Message::Text(text)))) => EncoderJob::parse(&text)?,
        _ => return Err("the ingesting node sent no job".into()),
    };
    if job.channel != channel {
        return Err(format!("the ingesting node sent the job of channel {}", job.channel));
    }
    let (input_tx, input) = mpsc::channel::<Bytes>(64);
    let (messages, mut outgoing) = mpsc::channel::<Bytes>(64);
    let ladders = state.media.ladders().clone();
    let encoder =
        tokio::spawn(async move { olive_media::ladder::encode_for_peer(&ladders, &job, input, messages).await });
    let receiving = async move {
        // `None` once the source ended, or once the encoder stopped reading it (it ended, and
        // its last message is on its way).
        let mut input = Some(input_tx);
        let mut source_ended = false;
        loop {
            match tokio::time::timeout(SOURCE_SILENCE, inbound.next()).await {
                Err(_) if !source_ended => return Err("the ingesting node went silent".to_owned()),
                Err(_) => {}
                Ok(Some(Ok(tungstenite::Message::Binary(chunk)))) => {
                    if source_ended {
                        return Err("the ingesting node sent source bytes after their end".into());
                    }
                    if let Some(to) = &input {
                        if to.send(chunk).await.is_err() {
                            input = None;
                        }
                    }
                }
                Ok(Some(Ok(tungstenite::Message::Text(text)))) if text.as_str() == END => {
                    source_ended = true;
                    input = None;
                }
                Ok(Some(Ok(tungstenite::Message::Close(_)))) | Ok(None) => {
                    return Err("the ingesting node closed the link".to_owned())
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(format!("the link broke: {e}")),
            }
        }
    };
    let sending = async move {
        while let Some(message) = outgoing.recv().await {
            if out.send(tungstenite::Message::Binary(message)).await.is_err() {
                return;
            }
        }
        let _ = out.close().await;
    };
    let renewing = async {
        let lease = remote::lease_key(channel);
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        loop {
            tick.tick().await;
            match state.bus.leases().acquire(&lease, node, LEASE_TTL).await {
                Ok(None) => {}
                Ok(Some(other)) => return format!("node {other} took the ladder's lease"),
                Err(e) => tracing::warn!(channel_id = %channel, error = %e, "could not renew a ladder's lease"),
            }
        }
    };
    let abort = encoder.abort_handle();
    let ended = tokio::select! {
        // The encoder finished and its last message went out.
        () = sending => Ok(()),
        received = receiving => received,
        lost = renewing => Err(lost),
    };
    abort.abort();
    ended
}
