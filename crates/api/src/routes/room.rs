//! `GET /api/v1/channels/{id}/ws`: a viewer's WebSocket into a channel's live room. Anonymous
//! viewers receive everything; chat needs a signed-in account (cookie or bearer token, read before
//! the upgrade). A frame the room refuses is answered with `{"type":"error",…}` on this socket only,
//! and the connection stays open.
//!
//! Writing coalesces: after the first frames, the room's relay writes each tick's frames to the
//! connection itself (one flush per tick, not per message, and without waking a task per viewer).
//! What a slow socket cannot take waits for the next tick, up to 1,024 frames; past that the oldest
//! are skipped, so nobody else is slowed.
//!
//! What a client may do: an upgrade from another site's page (an `Origin` that is not ours) is
//! refused, as a cookie would otherwise sign it in; a frame larger than the protocol allows
//! ([`MAX_CLIENT_FRAME`]) closes the connection; every frame is paced ([`ClientPace`]); and a
//! signed-in socket closes when its session ends or its user changes ([`crate::session_sockets`]).

use crate::error::{ApiError, ApiResult};
use crate::extract::{csrf_refused, origin_matches};
use crate::extract::{IdPath, Viewer};
use crate::session_sockets::Registration;
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use chrono::Utc;
use futures::stream::SplitSink;
use futures::Sink;
use futures::{SinkExt, StreamExt};
use olive_core::ChannelId;
use olive_realtime::hub::{Frame, Hub, HubError, Numbered, Offer, Outlet, Seat};
use olive_realtime::pace::{ClientPace, FrameKind, Verdict};
use olive_realtime::protocol::{parse_client, ClientMessage, ServerMessage, MAX_CLIENT_FRAME};
use olive_store::User;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Per-socket buffers (tungstenite's defaults are 128 KiB each). A client frame larger than the
/// protocol's [`MAX_CLIENT_FRAME`] closes the connection (WebSocket status 1009).
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 16 * 1024;

pub async fn socket(
    State(state): State<AppState>,
    viewer: Viewer,
    IdPath(channel): IdPath<ChannelId>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Browsers always send Origin on a WebSocket upgrade; other clients may leave it out.
    if headers.contains_key(header::ORIGIN) && !origin_matches(&headers, &state.settings) {
        return Err(csrf_refused());
    }
    let (first, seat) = state.hub.join(channel, Utc::now()).await.map_err(|e| match e {
        HubError::NoSuchChannel => ApiError::not_found("channel"),
        e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()),
    })?;
    let upgrade =
        upgrade.map_err(|e| ApiError::new(StatusCode::UPGRADE_REQUIRED, "websocket_required", e.body_text()))?;
    let identity = viewer.0.as_ref().map(|a| state.cache.sockets().register(a.user.id, a.token.hash().0));
    let user = viewer.user().cloned();
    let hub = state.hub.clone();
    Ok(upgrade
        // Small buffers: most viewers only listen, and an idle socket should cost kilobytes.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| session(socket, hub, user, identity, channel, first, seat)))
}

fn text(frame: Frame) -> Message {
    // Frames are JSON written by serde_json: valid UTF-8.
    Message::Text(Utf8Bytes::try_from(frame).unwrap_or_default())
}

fn error(code: &str, message: impl Into<String>) -> Frame {
    Frame::from(ServerMessage::error(code, message).to_json())
}

/// Frames a connection may hold back (it cannot take them yet) before it skips the oldest.
const BACKLOG: usize = 1024;

/// A viewer's connection, written by its room's relay and, for replies, by its own session; never
/// with waiting: what the socket cannot take now stays in `backlog` for the next write.
struct Connection {
    sink: SplitSink<WebSocket, Message>,
    backlog: VecDeque<Message>,
    /// The room frame number last taken.
    last: u64,
    closed: bool,
}

impl Connection {
    fn push(&mut self, message: Message) {
        self.backlog.push_back(message);
        if self.backlog.len() > BACKLOG {
            let extra = self.backlog.len() - BACKLOG;
            self.backlog.drain(..extra);
            olive_realtime::hub::skipped(extra as u64);
        }
    }

    /// Writes what the socket takes now; `false` once the connection is gone.
    fn pump(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        while !self.backlog.is_empty() {
            match Pin::new(&mut self.sink).poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return false,
                // Full for now: the rest goes with the next write.
                Poll::Pending => return true,
            }
            let message = self.backlog.pop_front().expect("the backlog is not empty");
            if Pin::new(&mut self.sink).start_send(message).is_err() {
                return false;
            }
        }
        !matches!(Pin::new(&mut self.sink).poll_flush(&mut cx), Poll::Ready(Err(_)))
    }
}

/// The relay's handle on a connection.
struct SocketOutlet(Arc<Mutex<Connection>>);

impl Outlet for SocketOutlet {
    fn offer(&mut self, frames: &[Numbered]) -> Offer {
        let mut connection = self.0.lock().expect("connection poisoned");
        if connection.closed {
            return Offer::Closed;
        }
        for (number, frame) in frames {
            if *number > connection.last {
                connection.last = *number;
                connection.push(text(frame.clone()));
            }
        }
        if connection.pump() {
            Offer::Taken
        } else {
            connection.closed = true;
            Offer::Closed
        }
    }
}

async fn session(
    socket: WebSocket,
    hub: Arc<Hub>,
    user: Option<User>,
    identity: Option<Registration>,
    channel: ChannelId,
    first: Vec<Frame>,
    mut seat: Seat,
) {
    let (mut sink, mut stream) = socket.split();
    let written = async {
        for frame in first {
            sink.feed(text(frame)).await?;
        }
        sink.flush().await
    };
    if let Err(e) = written.await {
        tracing::debug!(channel_id = %channel, error = %e, "websocket ended");
        return;
    }
    let connection = Arc::new(Mutex::new(Connection { sink, backlog: VecDeque::new(), last: 0, closed: false }));
    seat.attach(Box::new(SocketOutlet(connection.clone())));
    let reply = |frame: Frame| {
        let mut connection = connection.lock().expect("connection poisoned");
        // A client that sends faster than it reads loses replies, not the connection.
        connection.push(text(frame));
        if !connection.pump() {
            connection.closed = true;
        }
    };
    let mut pace = ClientPace::default();
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let (kind, parsed) = match message {
                Message::Text(t) => match parse_client(t.as_str()) {
                    Ok(m @ ClientMessage::Chat { .. }) => (FrameKind::Chat, Ok(m)),
                    Ok(m @ ClientMessage::Heart {}) => (FrameKind::Heart, Ok(m)),
                    Err(e) => (FrameKind::Invalid, Err(error(e.code(), e.to_string()))),
                },
                Message::Binary(_) => {
                    (FrameKind::Invalid, Err(error("binary_frame", "frames are JSON text, not binary")))
                }
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            match pace.admit(kind, std::time::Instant::now()) {
                Verdict::Handle => {}
                Verdict::Drop => continue,
                Verdict::Close => {
                    return Some(CloseFrame { code: close_code::POLICY, reason: "too many frames".into() })
                }
            }
            let answer = match parsed {
                Ok(ClientMessage::Chat { text }) => match hub.chat(channel, user.as_ref(), &text, Utc::now()).await {
                    Ok(()) => None,
                    Err(e) => Some(error(e.code(), e.to_string())),
                },
                Ok(ClientMessage::Heart {}) => {
                    hub.heart(channel);
                    None
                }
                Err(refusal) => Some(refusal),
            };
            if let Some(frame) = answer {
                reply(frame);
            }
        }
        None
    };
    let signed_out = async {
        match &identity {
            Some(registration) => registration.closed().await,
            None => std::future::pending().await,
        }
        Some(CloseFrame { code: close_code::POLICY, reason: "signed out or changed: reconnect".into() })
    };
    let close = tokio::select! {
        close = reader => close,
        close = signed_out => close,
    };
    if let Some(close) = close {
        let mut connection = connection.lock().expect("connection poisoned");
        connection.push(Message::Close(Some(close)));
        connection.pump();
    }
    // The relay forgets the connection at its next write; the seat is left here.
    connection.lock().expect("connection poisoned").closed = true;
    drop(seat);
}
