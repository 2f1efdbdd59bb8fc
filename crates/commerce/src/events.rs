//! Shopper events for the recommender: what the web app reports (watching, viewing, clicking,
//! adding to cart, hearts), checked and paced, and the purchases the order path records itself.
//! Visitors are told apart by a first-party id the server gives each browser; a signed-in
//! visitor's events also carry their account.

use crate::{CommerceError, Result};
use chrono::{DateTime, Utc};
use olive_core::ratelimit::{KeyedLimiter, Quota};
use olive_core::AddressKey;
use olive_store::{EventKind, EventStore, NewEvent, TargetKind, User};
use rand::RngCore;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Events in one batch, at most.
pub const MAX_BATCH: usize = 50;
/// Longest watch one event may report (the app reports every minute or so).
pub const MAX_WATCH_SECONDS: f64 = 3600.0;
/// Largest quantity a cart event may carry.
pub const MAX_QUANTITY: f64 = 100.0;

/// One event as a client reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedEvent {
    pub kind: EventKind,
    pub target: TargetKind,
    pub target_id: i64,
    /// Watch seconds for `watch`, quantity for `cart`; ignored otherwise.
    pub value: Option<f64>,
}

/// A browser's first-party id: 16 random bytes, base64url (22 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisitorId(String);

impl VisitorId {
    pub fn generate() -> VisitorId {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        use base64::Engine;
        VisitorId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A visitor id as a browser presents it back; anything else is `None` (a new one is given).
    pub fn parse(text: &str) -> Option<VisitorId> {
        (text.len() == 22 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| VisitorId(text.to_owned()))
    }

    /// The id for a signed-in buyer who has no browser id (an API client).
    pub fn of_user(user: &User) -> VisitorId {
        VisitorId::of_user_id(user.id)
    }

    pub fn of_user_id(user: olive_core::UserId) -> VisitorId {
        VisitorId(format!("user-{user}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Paces reports, in memory on each node: each visitor's, and each client address's, since a
/// client that drops its cookie is a new visitor on every request and could otherwise flood the
/// recommender with made-up taste.
pub struct EventPace {
    per_visitor: Mutex<KeyedLimiter<VisitorId>>,
    per_address: Mutex<KeyedLimiter<AddressKey>>,
}

impl Default for EventPace {
    fn default() -> Self {
        EventPace {
            // Twenty batches at once, then one every 500 ms: far above what the app sends.
            per_visitor: Mutex::new(KeyedLimiter::new(Quota::new(20, Duration::from_millis(500)), 100_000)),
            // A hundred at once, then twenty a second: a household or an office of viewers.
            per_address: Mutex::new(KeyedLimiter::new(Quota::new(100, Duration::from_millis(50)), 100_000)),
        }
    }
}

/// Who reports a batch: the browser, its account if signed in, and the client address.
pub struct Reporter<'a> {
    pub visitor: &'a VisitorId,
    pub user: Option<&'a User>,
    pub address: AddressKey,
}

/// Checks a client's batch, paces the visitor and its address, and appends it. Purchases are
/// refused here: only the order path records them.
pub async fn report(
    store: &dyn EventStore,
    pace: &EventPace,
    reporter: Reporter<'_>,
    batch: Vec<ReportedEvent>,
    now: DateTime<Utc>,
    clock: Instant,
) -> Result<usize> {
    let Reporter { visitor, user, address } = reporter;
    if batch.is_empty() {
        return Err(CommerceError::invalid("events", "send at least one event"));
    }
    if batch.len() > MAX_BATCH {
        return Err(CommerceError::invalid("events", format!("at most {MAX_BATCH} events per batch")));
    }
    let mut events = Vec::with_capacity(batch.len());
    for (n, e) in batch.into_iter().enumerate() {
        let bad = |what: &str| CommerceError::invalid("events", format!("event {n}: {what}"));
        if e.target_id <= 0 {
            return Err(bad("target.id must be a positive id"));
        }
        let value = match e.kind {
            EventKind::Purchase => {
                return Err(bad("purchases are recorded when orders are placed"));
            }
            EventKind::Watch => match e.value {
                Some(s) if s.is_finite() && s > 0.0 && s <= MAX_WATCH_SECONDS => s,
                _ => return Err(bad(&format!("seconds must be above 0 and at most {MAX_WATCH_SECONDS}"))),
            },
            EventKind::Cart => match e.value {
                None => 1.0,
                Some(q) if q.is_finite() && (1.0..=MAX_QUANTITY).contains(&q) && q.fract() == 0.0 => q,
                Some(_) => return Err(bad(&format!("quantity must be a whole number from 1 to {MAX_QUANTITY}"))),
            },
            _ => 1.0,
        };
        events.push(NewEvent {
            visitor: visitor.as_str().to_owned(),
            user_id: user.map(|u| u.id),
            kind: e.kind,
            target: e.target,
            target_id: e.target_id,
            value,
            at: now,
        });
    }
    pace.per_address
        .lock()
        .expect("pace poisoned")
        .check(&address, clock)
        .map_err(|retry| CommerceError::RateLimited(retry.0))?;
    pace.per_visitor
        .lock()
        .expect("pace poisoned")
        .check(visitor, clock)
        .map_err(|retry| CommerceError::RateLimited(retry.0))?;
    store.record_events(&events).await?;
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_ids_are_random_and_parse_strictly() {
        let a = VisitorId::generate();
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, VisitorId::generate());
        assert_eq!(VisitorId::parse(a.as_str()), Some(a));
        for bad in ["", "short", &"a".repeat(23), "aaaaaaaaaaaaaaaaaaaa=!", "ááááááááááá", "aaaaaaaaaaaaaaaaaaaa\n\n"]
        {
            assert_eq!(VisitorId::parse(bad), None, "{bad:?}");
        }
    }
}
