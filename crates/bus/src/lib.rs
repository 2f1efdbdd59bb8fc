//! The event bus: topics carrying small byte messages, fire-and-forget, to every subscriber on every
//! node. The in-process engine (`memory://`) is the default; the Redis engine (`redis://`, in
//! [`redis_bus`]) carries the same topics between nodes over Redis pub/sub. Used for cache
//! invalidation, stream events and live rooms (chat, hearts, viewer counts, pins). It must never be
//! the only copy of anything: lost messages cost freshness, not data.
//!
//! Beside topics, a bus keeps [`Leases`]: named claims with a time to live, which a holder renews
//! while it is alive (a live channel's ingesting node, a deal's owner). On one node they are a map
//! in memory; on Redis every node sees the same ones, and a node that dies loses its claims when
//! they run out.

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("unsupported bus URL: expected memory://, redis://host:port or rediss://host:port")]
    UnsupportedUrl(String),
    #[error("bus error: {0}")]
    Backend(String),
}

/// The topics Olive uses, in one place so publishers and subscribers agree.
pub mod topics {
    /// Read-cache invalidations: `channels` or `product:<id>`.
    pub const CACHE_INVALIDATE: &str = "cache-invalidate";
    /// Stream lifecycle events as JSON: `{"type":"stream.started"|"stream.ended","channel_id":…}`.
    pub const STREAM_EVENTS: &str = "stream-events";
    /// Each node's round-trip probe, `<node> <sequence>`: how long the bus takes to deliver.
    pub const PROBE: &str = "probe";
    /// A node's live needs its ladder encoded elsewhere, as JSON: `{"channel":…,"node":…}`.
    pub const LADDERS_WANTED: &str = "ladders-wanted";

    /// What a [`CACHE_INVALIDATE`] message says changed; on the wire `channels`, `product:<id>`,
    /// `session:<64 hex digits of its hash>` or `user:<id>`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CacheNotice {
        /// The channel list (a channel went live or offline, its screen was labelled).
        Channels,
        /// A product's details (its stock, price or status).
        Product(i64),
        /// A session ended.
        Session([u8; 32]),
        /// An account changed (its role).
        User(i64),
    }

    impl CacheNotice {
        pub fn to_bytes(&self) -> bytes::Bytes {
            match self {
                CacheNotice::Channels => bytes::Bytes::from_static(b"channels"),
                CacheNotice::Product(id) => bytes::Bytes::from(format!("product:{id}")),
                CacheNotice::Session(hash) => {
                    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                    bytes::Bytes::from(format!("session:{hex}"))
                }
                CacheNotice::User(id) => bytes::Bytes::from(format!("user:{id}")),
            }
        }

        /// The notice a message carries; `None` for anything else (a reader then forgets all).
        pub fn parse(message: &[u8]) -> Option<CacheNotice> {
            let text = std::str::from_utf8(message).ok()?;
            if text == "channels" {
                return Some(CacheNotice::Channels);
            }
            let (kind, value) = text.split_once(':')?;
            match kind {
                "product" => value.parse().ok().map(CacheNotice::Product),
                "user" => value.parse().ok().map(CacheNotice::User),
                "session" => unhex(value).map(CacheNotice::Session),
                _ => None,
            }
        }
    }

    fn unhex(text: &str) -> Option<[u8; 32]> {
        let mut hash = [0u8; 32];
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(hash)
    }
}

/// A subscription: messages published on its topic after it was made.
pub struct Subscription {
    rx: broadcast::Receiver<Bytes>,
}

impl Subscription {
    /// The next message; `None` once the bus is gone. A subscriber that fell behind skips what it
    /// missed (and learns how much through the returned count) rather than blocking publishers.
    pub async fn recv(&mut self) -> Option<Result<Bytes, u64>> {
        match self.rx.recv().await {
            Ok(b) => Some(Ok(b)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                metrics::counter!("olive_bus_lagged_messages_total").increment(n);
                Some(Err(n))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    fn engine(&self) -> &'static str;
    async fn publish(&self, topic: &str, message: Bytes) -> Result<(), BusError>;
    fn subscribe(&self, topic: &str) -> Subscription;
    async fn ping(&self) -> Result<(), BusError>;
    /// Rate limits every node shares, or `None` when this bus is one process's own (its callers
    /// keep their limits in memory).
    fn shared_limits(&self) -> Option<&dyn SharedLimits> {
        None
    }
    /// Claims every node sees (on one node: this process's own).
    fn leases(&self) -> &dyn Leases;
    /// A secret every node on this bus reads the same (the first node to ask makes it, 256 random
    /// bits as hex), with which one node proves a request to another genuine. Whoever can read
    /// the bus's store is trusted anyway. On one node: this process's own.
    async fn shared_secret(&self) -> Result<String, BusError>;
}

/// 32 random bytes as 64 hex digits.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Named claims with a time to live. A holder is any string (a node names itself and says where
/// it answers); the lease is its until it releases it or stops renewing it for `ttl`.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes `key` for `holder` (or renews it if `holder` has it). `Ok(None)` when taken,
    /// `Ok(Some(other))` when `other` holds it.
    async fn acquire(&self, key: &str, holder: &str, ttl: std::time::Duration) -> Result<Option<String>, BusError>;
    /// Extends `holder`'s lease; `false` when it is no longer `holder`'s (it ran out, and perhaps
    /// someone else took it).
    async fn renew(&self, key: &str, holder: &str, ttl: std::time::Duration) -> Result<bool, BusError>;
    /// Gives the lease up if `holder` has it.
    async fn release(&self, key: &str, holder: &str) -> Result<(), BusError>;
    /// Who holds `key` now.
    async fn holder(&self, key: &str) -> Result<Option<String>, BusError>;
}

/// A rate limit shared by every node (GCRA, the schedule kept with the bus).
#[async_trait]
pub trait SharedLimits: Send + Sync {
    /// Takes one send from `key`'s allowance: `burst` at once, then one per `period`. `Ok(None)`
    /// when allowed (and counted), `Ok(Some(wait))` when not.
    async fn take(
        &self,
        key: &str,
        period: std::time::Duration,
        burst: u32,
    ) -> Result<Option<std::time::Duration>, BusError>;
}

/// Opens the bus a URL names. A Redis bus connects in the background (it must be called inside a
/// Tokio runtime); `ping` tells whether it is reachable. `redis://user:password@host:port` signs
/// in (Redis ACLs, or `redis://:password@…` for `requirepass`), and `rediss://` speaks TLS, checking
/// the server's certificate against the system's authorities or against `ca` (PEM) when given.
pub fn from_url(url: &str, ca: Option<&[u8]>) -> Result<Arc<dyn Bus>, BusError> {
    match url {
        "memory://" | "memory:" => Ok(Arc::new(MemoryBus::default())),
        other if other.starts_with("redis://") || other.starts_with("rediss://") => {
            Ok(Arc::new(redis_bus::RedisBus::open(other, ca)?))
        }
        other => Err(BusError::UnsupportedUrl(other.to_owned())),
    }
}

pub mod redis_bus;

/// One process's bus: a bounded broadcast channel per topic.
#[derive(Default)]
pub struct MemoryBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    leases: MemoryLeases,
    secret: std::sync::OnceLock<String>,
}

/// One process's leases: holder and expiry by key, on Tokio's clock (so tests can pause it).
#[derive(Default)]
pub struct MemoryLeases {
    held: Mutex<HashMap<String, (String, tokio::time::Instant)>>,
}

impl MemoryBus {
    const CAPACITY: usize = 1024;

    fn sender(&self, topic: &str) -> broadcast::Sender<Bytes> {
        let mut topics = self.topics.lock().expect("bus topic map poisoned");
        topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(Self::CAPACITY).0).clone()
    }
}

impl MemoryLeases {
    /// The map without the leases that ran out.
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, tokio::time::Instant)>> {
        let now = tokio::time::Instant::now();
        let mut held = self.held.lock().expect("lease map poisoned");
        held.retain(|_, (_, until)| *until > now);
        held
    }
}

#[async_trait]
impl Leases for MemoryLeases {
    async fn acquire(&self, key: &str, holder: &str, ttl: std::time::Duration) -> Result<Option<String>, BusError> {
        let mut held = self.live();
        match held.get(key) {
            Some((other, _)) if other != holder => Ok(Some(other.clone())),
            _ => {
                held.insert(key.to_owned(), (holder.to_owned(), tokio::time::Instant::now() + ttl));
                Ok(None)
            }
        }
    }

    async fn renew(&self, key: &str, holder: &str, ttl: std::time::Duration) -> Result<bool, BusError> {
        let mut held = self.live();
        match held.get_mut(key) {
            Some((h, until)) if h == holder => {
                *until = tokio::time::Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), BusError> {
        let mut held = self.live();
        if held.get(key).is_some_and(|(h, _)| h == holder) {
            held.remove(key);
        }
        Ok(())
    }

    async fn holder(&self, key: &str) -> Result<Option<String>, BusError> {
        Ok(self.live().get(key).map(|(h, _)| h.clone()))
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn engine(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, topic: &str, message: Bytes) -> Result<(), BusError> {
        // No subscribers is not an error: nobody needed to hear it.
        let _ = self.sender(topic).send(message);
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> Subscription {
        Subscription { rx: self.sender(topic).subscribe() }
    }

    async fn shared_secret(&self) -> Result<String, BusError> {
        Ok(self.secret.get_or_init(random_secret).clone())
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn leases(&self) -> &dyn Leases {
        &self.leases
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn cache_notices_round_trip_and_strangers_are_none() {
        use super::topics::CacheNotice;
        for notice in
            [CacheNotice::Channels, CacheNotice::Product(42), CacheNotice::Session([7; 32]), CacheNotice::User(3)]
        {
            assert_eq!(CacheNotice::parse(&notice.to_bytes()), Some(notice));
        }
        assert_eq!(&CacheNotice::Product(42).to_bytes()[..], b"product:42");
        let hash: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(CacheNotice::parse(&CacheNotice::Session(hash).to_bytes()), Some(CacheNotice::Session(hash)));
        for bad in ["00".to_owned(), "g".repeat(64), "é".repeat(32), "0".repeat(65)] {
            assert_eq!(CacheNotice::parse(format!("session:{bad}").as_bytes()), None, "{bad:?}");
        }
        for bad in [&b""[..], b"product:", b"product:x", b"session:abc", b"user:-", b"channel", b"\xff\xfe", b"other:1"]
        {
            assert_eq!(CacheNotice::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    use super::*;

    #[tokio::test]
    async fn subscribers_get_messages_of_their_topic_only() {
        let bus = from_url("memory://", None).unwrap();
        let mut a = bus.subscribe("a");
        let mut a2 = bus.subscribe("a");
        let mut b = bus.subscribe("b");
        bus.publish("a", Bytes::from_static(b"1")).await.unwrap();
        bus.publish("b", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(a.recv().await.unwrap().unwrap(), "1");
        assert_eq!(a2.recv().await.unwrap().unwrap(), "1");
        assert_eq!(b.recv().await.unwrap().unwrap(), "2");
    }

    #[tokio::test]
    async fn slow_subscribers_skip_instead_of_blocking() {
        let bus = MemoryBus::default();
        let mut slow = bus.subscribe("t");
        for i in 0..(MemoryBus::CAPACITY + 10) {
            bus.publish("t", Bytes::from(i.to_string())).await.unwrap();
        }
        assert_eq!(slow.recv().await.unwrap(), Err(10));
        assert_eq!(slow.recv().await.unwrap().unwrap(), "10");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_is_its_holders_until_released_or_run_out() {
        let bus = MemoryBus::default();
        let leases = bus.leases();
        let ttl = std::time::Duration::from_secs(10);
        assert_eq!(leases.acquire("live:1", "a", ttl).await.unwrap(), None);
        assert_eq!(leases.acquire("live:1", "b", ttl).await.unwrap(), Some("a".into()));
        assert_eq!(leases.acquire("live:1", "a", ttl).await.unwrap(), None, "the holder takes it again");
        assert!(!leases.renew("live:1", "b", ttl).await.unwrap());
        tokio::time::advance(std::time::Duration::from_secs(6)).await;
        assert!(leases.renew("live:1", "a", ttl).await.unwrap());
        tokio::time::advance(std::time::Duration::from_secs(6)).await;
        assert_eq!(leases.holder("live:1").await.unwrap(), Some("a".into()), "renewed, so still held");
        leases.release("live:1", "b").await.unwrap();
        assert_eq!(leases.holder("live:1").await.unwrap(), Some("a".into()), "only the holder releases");
        tokio::time::advance(std::time::Duration::from_secs(11)).await;
        assert_eq!(leases.holder("live:1").await.unwrap(), None, "ran out");
        assert!(!leases.renew("live:1", "a", ttl).await.unwrap(), "a lease that ran out is not renewed");
        assert_eq!(leases.acquire("live:1", "b", ttl).await.unwrap(), None);
        leases.release("live:1", "b").await.unwrap();
        assert_eq!(leases.holder("live:1").await.unwrap(), None);
    }

    #[test]
    fn unknown_url_is_refused() {
        assert!(matches!(from_url("kafka://x", None), Err(BusError::UnsupportedUrl(_))));
    }
}
