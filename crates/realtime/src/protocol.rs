//! The WebSocket messages of `GET /api/v1/channels/{id}/ws`, as CONTRACT.md fixes them: JSON text
//! frames, one object each, `type` first. Client frames are parsed strictly: an unknown type, an
//! unknown field or a frame over [`MAX_CLIENT_FRAME`] bytes is an error the client is told about,
//! and the connection stays open.

use chrono::{DateTime, Utc};
use olive_core::{DealId, ProductId, UserId};
use serde::{Deserialize, Serialize};

/// The largest text frame a client may send. A chat message is at most 300 characters (1,200
/// bytes of UTF-8) plus its envelope; anything larger is refused without being parsed.
pub const MAX_CLIENT_FRAME: usize = 4096;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Chat {
        text: String,
    },
    /// A struct variant so that unknown fields are refused here too (serde ignores them on unit
    /// variants of an internally tagged enum).
    Heart {},
}

/// Why a client frame was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frames are JSON text, not binary")]
    Binary,
    #[error("frame of {0} bytes is larger than {MAX_CLIENT_FRAME}")]
    TooLarge(usize),
    #[error("not a message: {0}")]
    Malformed(String),
}

impl ProtocolError {
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Binary => "binary_frame",
            ProtocolError::TooLarge(_) => "frame_too_large",
            ProtocolError::Malformed(_) => "invalid_message",
        }
    }
}

/// Parses one client text frame.
pub fn parse_client(frame: &str) -> Result<ClientMessage, ProtocolError> {
    if frame.len() > MAX_CLIENT_FRAME {
        return Err(ProtocolError::TooLarge(frame.len()));
    }
    serde_json::from_str(frame).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Who wrote a chat message, as viewers see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatAuthor {
    pub id: UserId,
    pub name: String,
}

/// The product card a pin shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedProduct {
    pub id: ProductId,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub image_url: Option<String>,
}

impl PinnedProduct {
    pub fn of(product: &olive_store::Product) -> Self {
        PinnedProduct {
            id: product.id,
            name: product.name.clone(),
            price_minor: product.price_minor,
            currency: product.currency.to_string(),
            image_url: product.images.first().map(|i| olive_commerce::catalogue::image_url(product.id, &i.object_key)),
        }
    }
}

/// A running deal as viewers are shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealCard {
    pub id: DealId,
    pub product: PinnedProduct,
    pub price_minor: i64,
    pub currency: String,
    pub listed: i64,
    pub remaining: i64,
    pub per_customer_limit: i64,
    pub ends_at: DateTime<Utc>,
}

impl DealCard {
    pub fn of(deal: &olive_store::Deal, product: &olive_store::Product, remaining: i64) -> Self {
        DealCard {
            id: deal.id,
            product: PinnedProduct::of(product),
            price_minor: deal.price_minor,
            currency: deal.currency.to_string(),
            listed: deal.listed,
            remaining,
            per_customer_limit: deal.per_customer,
            ends_at: deal.ends_at,
        }
    }

    /// The `deal` message, counting down from `now`.
    pub fn message(&self, now: DateTime<Utc>) -> ServerMessage {
        ServerMessage::Deal { deal: self.clone(), ends_in_ms: (self.ends_at - now).num_milliseconds().max(0) }
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Chat {
        id: i64,
        user: ChatAuthor,
        text: String,
        ts: DateTime<Utc>,
    },
    /// A message removed by a moderator: clients drop it from view.
    ChatDeleted {
        id: i64,
    },
    Viewers {
        count: u64,
    },
    /// `pts`: the moment on the stream's media timeline (the `EXT-X-PROGRAM-DATE-TIME` clock)
    /// the product was pinned at, so the card appears when the picture reaches it.
    Pin {
        product: PinnedProduct,
        pts: DateTime<Utc>,
    },
    Hearts {
        count: u64,
    },
    /// A running deal: its product card, price, stock and countdown (`ends_in_ms` from when the
    /// frame was made, so a client with a wrong clock still counts down right).
    Deal {
        #[serde(flatten)]
        deal: DealCard,
        ends_in_ms: i64,
    },
    /// Units left in the running deal, pushed as orders land.
    DealStock {
        id: DealId,
        remaining: i64,
        sold: i64,
    },
    DealEnded {
        id: DealId,
        sold: i64,
    },
    Error {
        code: String,
        message: String,
    },
}

impl ServerMessage {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerMessage::Error { code: code.to_owned(), message: message.into() }
    }

    /// The frame's text; serialised once and shared by every viewer it goes to.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_messages_parse_strictly() {
        assert_eq!(
            parse_client(r#"{"type":"chat","text":"안녕하세요"}"#),
            Ok(ClientMessage::Chat { text: "안녕하세요".into() })
        );
        assert_eq!(parse_client(r#"{"type":"heart"}"#), Ok(ClientMessage::Heart {}));
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"text":"no type"}"#,
            r#"{"type":"shout","text":"x"}"#,
            r#"{"type":"chat"}"#,
            r#"{"type":"chat","text":5}"#,
            r#"{"type":"chat","text":"x","admin":true}"#,
            r#"{"type":"heart","count":1000}"#,
        ] {
            assert!(matches!(parse_client(bad), Err(ProtocolError::Malformed(_))), "{bad:?}");
        }
        let huge = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(1 << 20));
        assert_eq!(parse_client(&huge).unwrap_err().code(), "frame_too_large");
    }

    #[test]
    fn server_messages_put_type_first() {
        let ts = DateTime::parse_from_rfc3339("2026-11-26T01:02:03Z").unwrap().with_timezone(&Utc);
        let chat = ServerMessage::Chat {
            id: 7,
            user: ChatAuthor { id: UserId(3), name: "민지".into() },
            text: "<script>alert(1)</script>".into(),
            ts,
        };
        assert_eq!(
            chat.to_json(),
            r#"{"type":"chat","id":7,"user":{"id":3,"name":"민지"},"text":"<script>alert(1)</script>","ts":"2026-11-26T01:02:03Z"}"#
        );
        assert_eq!(ServerMessage::Viewers { count: 12 }.to_json(), r#"{"type":"viewers","count":12}"#);
        assert_eq!(ServerMessage::Hearts { count: 3 }.to_json(), r#"{"type":"hearts","count":3}"#);
        assert_eq!(
            ServerMessage::error("rate_limited", "slow down").to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#
        );
        assert!(ServerMessage::ChatDeleted { id: 9 }.to_json().starts_with(r#"{"type":"chat_deleted""#));
        assert_eq!(
            ServerMessage::DealStock { id: DealId(4), remaining: 10, sold: 990 }.to_json(),
            r#"{"type":"deal_stock","id":4,"remaining":10,"sold":990}"#
        );
        let card = DealCard {
            id: DealId(4),
            product: PinnedProduct {
                id: ProductId(2),
                name: "쿠션".into(),
                price_minor: 20_000,
                currency: "KRW".into(),
                image_url: None,
            },
            price_minor: 15_000,
            currency: "KRW".into(),
            listed: 1000,
            remaining: 1000,
            per_customer_limit: 2,
            ends_at: ts + chrono::Duration::seconds(90),
        };
        let deal = card.message(ts);
        let json = deal.to_json();
        assert!(json.starts_with(r#"{"type":"deal","id":4,"product":{"id":2,"#), "{json}");
        assert!(json.ends_with(r#""ends_at":"2026-11-26T01:03:33Z","ends_in_ms":90000}"#), "{json}");
        // It crosses the bus as JSON and comes back the same.
        assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), deal);
        assert_eq!(
            ServerMessage::DealEnded { id: DealId(4), sold: 1000 }.to_json(),
            r#"{"type":"deal_ended","id":4,"sold":1000}"#
        );
    }

    proptest! {
        #[test]
        fn any_text_frame_parses_or_errors_without_panicking(frame in ".{0,600}") {
            let _ = parse_client(&frame);
        }

        #[test]
        fn chat_text_round_trips_whatever_it_holds(text in ".{0,300}") {
            let frame = serde_json::json!({"type": "chat", "text": text}).to_string();
            prop_assert_eq!(parse_client(&frame), Ok(ClientMessage::Chat { text }));
        }
    }
}
