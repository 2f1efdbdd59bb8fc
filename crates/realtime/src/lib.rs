//! The real-time core of a channel's room, without sockets, tasks or clocks: what a WebSocket
//! client may send and what it is sent ([`protocol`]), whether a chat message is let in
//! ([`chat`]: its text, the channel's banned words, the sender's rate limit, slow mode, mutes and
//! bans), hearts counted between ticks ([`hearts`]) and how fast one connection may send anything
//! ([`pace`]). Time is an argument everywhere, so every
//! rule is a unit test with a made-up clock. [`hub`] is the thin async driver: the rooms of this
//! node, fed from the bus and the store; the WebSocket itself is served by `olive-api`.

pub mod chat;
pub mod hearts;
pub mod hub;
pub mod pace;
pub mod protocol;
