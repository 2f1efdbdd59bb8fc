//! `GET /api/v1/channels/{id}/ws`: a viewer's WebSocket into a channel's live room. Anonymous
//! viewers receive everything; chat needs a signed-in account (cookie or bearer token, read before
//! the upgrade). A frame the room refuses is answered with `{"type":"error",…}` on this socket only,
//! and the connection stays open.
//!
//! Writing coalesces: the hub's relays hand each viewer one batch of frames per tick, and the writer
//! puts the whole batch into the socket's buffer before one flush, so a busy room costs one wake-up
//! and one write per viewer per tick, not one per message. A viewer whose socket cannot keep up
//! misses batches rather than slowing anyone else.

use crate::error::{ApiError, ApiResult};
use crate::extract::{IdPath, Viewer};
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use olive_core::ChannelId;
use olive_realtime::hub::{Frame, Hub, HubError, Seat};
use olive_realtime::protocol::{parse_client, ClientMessage, ServerMessage, MAX_CLIENT_FRAME};
use olive_store::User;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames larger than this close the connection (WebSocket status 1009); smaller ones that are
/// still too large for a message get an error frame.
const MAX_WS_MESSAGE: usize = 2 * 1024 * 1024;
/// Per-socket buffers (tungstenite's defaults are 128 KiB each).
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 16 * 1024;

pub async fn socket(
    State(state): State<AppState>,
    viewer: Viewer,
    IdPath(channel): IdPath<ChannelId>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let (first, seat) = state.hub.join(channel, Utc::now()).await.map_err(|e| match e {
        HubError::NoSuchChannel => ApiError::not_found("channel"),
        e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()),
    })?;
    let upgrade =
        upgrade.map_err(|e| ApiError::new(StatusCode::UPGRADE_REQUIRED, "websocket_required", e.body_text()))?;
    let user = viewer.user().cloned();
    let hub = state.hub.clone();
    Ok(upgrade
        // Small buffers: most viewers only listen, and an idle socket should cost kilobytes.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_upgrade(move |socket| session(socket, hub, user, channel, first, seat)))
}

fn text(frame: Frame) -> Message {
    // Frames are JSON written by serde_json: valid UTF-8.
    Message::Text(Utf8Bytes::try_from(frame).unwrap_or_default())
}

fn error(code: &str, message: impl Into<String>) -> Frame {
    Frame::from(ServerMessage::error(code, message).to_json())
}

async fn session(
    socket: WebSocket,
    hub: Arc<Hub>,
    user: Option<User>,
    channel: ChannelId,
    first: Vec<Frame>,
    mut seat: Seat,
) {
    let (mut sink, mut stream) = socket.split();
    let (direct, mut replies) = mpsc::channel::<Frame>(16);
    // The seat lives as long as the writer: leaving the room is the writer ending.
    let writer = async move {
        for frame in first {
            sink.feed(text(frame)).await?;
        }
        sink.flush().await?;
        loop {
            tokio::select! {
                reply = replies.recv() => match reply {
                    Some(frame) => sink.feed(text(frame)).await?,
                    None => return Ok(()),
                },
                batch = seat.batches.recv() => match batch {
                    Some(batch) => {
                        for frame in batch.iter() {
                            sink.feed(text(frame.clone())).await?;
                        }
                    }
                    None => return Ok(()),
                },
            }
            sink.flush().await?;
        }
    };
    let reader = async move {
        while let Some(Ok(message)) = stream.next().await {
            let reply = match message {
                Message::Text(t) => match parse_client(t.as_str()) {
                    Ok(ClientMessage::Chat { text }) => match hub.chat(channel, user.as_ref(), &text, Utc::now()).await
                    {
                        Ok(()) => None,
                        Err(e) => Some(error(e.code(), e.to_string())),
                    },
                    Ok(ClientMessage::Heart {}) => {
                        hub.heart(channel);
                        None
                    }
                    Err(e) => Some(error(e.code(), e.to_string())),
                },
                Message::Binary(b) if b.len() > MAX_CLIENT_FRAME => {
                    Some(error("frame_too_large", "frames are JSON text"))
                }
                Message::Binary(_) => Some(error("binary_frame", "frames are JSON text, not binary")),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => None,
            };
            if let Some(reply) = reply {
                // A client that sends faster than it reads loses replies, not the connection.
                let _ = direct.try_send(reply);
            }
        }
    };
    let outcome: Result<(), axum::Error> = tokio::select! {
        done = writer => done,
        () = reader => Ok(()),
    };
    if let Err(e) = outcome {
        tracing::debug!(channel_id = %channel, error = %e, "websocket ended");
    }
}
