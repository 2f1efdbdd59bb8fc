//! What the bus topic `stream-events` carries: a channel went live or offline. The node that
//! ingests the live publishes it; every node's webhook relay reads it. The message is JSON,
//! `{"type":"stream.started"|"stream.ended","channel_id":…,"at":…}`, typed here on both sides so a
//! publisher and a reader cannot disagree on it.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_core::ChannelId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamEventKind {
    #[serde(rename = "stream.started")]
    Started,
    #[serde(rename = "stream.ended")]
    Ended,
}

impl StreamEventKind {
    /// The event's name, as webhooks know it.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamEventKind::Started => "stream.started",
            StreamEventKind::Ended => "stream.ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "type")]
    pub kind: StreamEventKind,
    pub channel_id: ChannelId,
    pub at: DateTime<Utc>,
}

impl StreamEvent {
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a stream event serialises"))
    }

    /// The event a message carries; `None` for anything else on the topic.
    pub fn parse(message: &[u8]) -> Option<StreamEvent> {
        serde_json::from_slice(message).ok()
    }

    /// A name for the event, the same wherever it is read: its webhook deliveries' id.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind.as_str(), self.channel_id, self.at.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_one() {
        let event = StreamEvent { kind: StreamEventKind::Started, channel_id: ChannelId(7), at: Utc::now() };
        let bytes = event.to_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with(r#"{"type":"stream.started","channel_id":7,"at":""#), "{text}");
        assert_eq!(StreamEvent::parse(&bytes), Some(event));
        for bad in [
            &b""[..],
            b"{}",
            b"not json",
            br#"{"type":"stream.paused","channel_id":7,"at":"2026-12-07T00:00:00Z"}"#,
            br#"{"type":"stream.ended","channel_id":"x","at":"2026-12-07T00:00:00Z"}"#,
            &[0xff; 64],
        ] {
            assert_eq!(StreamEvent::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
