//! Hot reads served from memory: the channel list and product detail, kept as ready-to-send JSON
//! bytes so a cache hit costs a map lookup and a reference-count increment; and the user behind
//! each session token, so a signed-in request (a flash sale's thousands of "buy" presses a second)
//! does not ask the database who is calling. A session's user is kept for [`SESSION_TTL`] at most;
//! logging out and role changes are announced and forgotten at once on every node, and the room
//! sockets opened with them are closed ([`SessionSockets`]).
//!
//! Correctness rule: every write that changes what these bodies show calls `invalidate_*`, which
//! forgets the local copy and announces it on the bus topic [`TOPIC`] so every other node forgets
//! it too. A generation counter per cache stops a slow fill (read from the database before a write)
//! from storing its stale result after the write's invalidation. An announcement can still be lost
//! (the writing node dies between its commit and the announcement, or a node's bus subscription
//! drops a message), so a cached channel list or product is also read again once it is
//! [`FRESHNESS`] old: that bounds how long any node can show what the database no longer says.

use crate::dto::{ChannelView, List, ProductView};
use crate::session_sockets::SessionSockets;
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use olive_bus::topics::CacheNotice;
use olive_bus::Bus;
use olive_commerce::accounts::{self, SessionToken};
use olive_commerce::CommerceError;
use olive_core::{ProductId, UserId};
use olive_realtime::hub::Hub;
use olive_store::{ChannelStatus, ProductStatus, Store, User};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The bus topic carrying invalidations: `channels` or `product:<id>`.
pub const TOPIC: &str = olive_bus::topics::CACHE_INVALIDATE;
/// Above this many cached products the map is emptied rather than grown.
const MAX_PRODUCTS: usize = 100_000;
/// How long a session's user is served from memory before the store is asked again (and so how
/// long past its expiry a session may still be honoured, at most).
pub const SESSION_TTL: Duration = Duration::from_secs(10);
/// Above this many cached sessions the map is emptied rather than grown.
const MAX_SESSIONS: usize = 200_000;
/// How long a cached channel list or product body is served before the store is read again, even
/// if no invalidation came.
pub const FRESHNESS: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct CachedProduct {
    pub status: ProductStatus,
    pub body: Bytes,
}

pub struct ReadCache {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    /// Viewer counts shown in the channel list.
    hub: Arc<Hub>,
    /// The list, the hub's viewer-count version it was built with, and when it was read.
    channels: ArcSwapOption<(u64, Bytes, Instant)>,
    channels_generation: AtomicU64,
    /// Each product's body, and when it was read.
    products: RwLock<HashMap<ProductId, (CachedProduct, Instant)>>,
    products_generation: AtomicU64,
    /// Session hash → its user, and when they were read.
    sessions: RwLock<HashMap<[u8; 32], (User, Instant)>>,
    sessions_generation: AtomicU64,
    /// Room sockets to close when their session ends or their user changes.
    sockets: Arc<SessionSockets>,
    /// [`FRESHNESS`], shorter in tests.
    freshness: Duration,
}

impl ReadCache {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, hub: Arc<Hub>) -> Self {
        ReadCache {
            store,
            bus,
            hub,
            channels: ArcSwapOption::empty(),
            channels_generation: AtomicU64::new(0),
            products: RwLock::new(HashMap::new()),
            products_generation: AtomicU64::new(0),
            sessions: RwLock::new(HashMap::new()),
            sessions_generation: AtomicU64::new(0),
            sockets: Arc::default(),
            freshness: FRESHNESS,
        }
    }

    /// The signed-in room sockets this cache closes when their identity changes.
    pub fn sockets(&self) -> &Arc<SessionSockets> {
        &self.sockets
    }

    /// `GET /api/v1/channels` as JSON bytes, with live viewer counts (rebuilt when they change,
    /// at most once per viewer-count exchange).
    pub async fn channel_list(&self) -> Result<Bytes, CommerceError> {
        let counts = self.hub.counts_version();
        if let Some(cached) = self.channels.load_full() {
            if cached.0 == counts && cached.2.elapsed() < self.freshness {
                return Ok(cached.1.clone());
            }
        }
        let generation = self.channels_generation.load(Ordering::Acquire);
        let read_at = Instant::now();
        let channels = self.store.list_channels().await?;
        let mut items = Vec::with_capacity(channels.len());
        for c in &channels {
            let mut view = ChannelView::from(c);
            view.viewers = self.hub.viewers(c.id);
            if c.status == ChannelStatus::Live {
                view.labels = olive_commerce::screen::now(self.store.as_ref(), c.id).await?;
            }
            items.push(view);
        }
        let body =
            Bytes::from(serde_json::to_vec(&List { items, next_offset: None }).expect("channel views serialise"));
        if self.channels_generation.load(Ordering::Acquire) == generation {
            self.channels.store(Some(Arc::new((counts, body.clone(), read_at))));
        }
        Ok(body)
    }

    /// `GET /api/v1/products/{id}` as JSON bytes, with the status so callers can hide drafts.
    pub async fn product(&self, id: ProductId) -> Result<CachedProduct, CommerceError> {
        if let Some((hit, read_at)) = self.products.read().expect("product cache poisoned").get(&id) {
            if read_at.elapsed() < self.freshness {
                return Ok(hit.clone());
            }
        }
        let generation = self.products_generation.load(Ordering::Acquire);
        let read_at = Instant::now();
        let product = self.store.product(id).await?;
        let body = Bytes::from(serde_json::to_vec(&ProductView::from(&product)).expect("product views serialise"));
        let entry = CachedProduct { status: product.status, body };
        if self.products_generation.load(Ordering::Acquire) == generation {
            let mut map = self.products.write().expect("product cache poisoned");
            if map.len() >= MAX_PRODUCTS {
                map.clear();
            }
            map.insert(id, (entry.clone(), read_at));
        }
        Ok(entry)
    }

    /// The user signed in with `token`, if the session is live.
    pub async fn session_user(&self, token: &SessionToken, now: DateTime<Utc>) -> Result<Option<User>, CommerceError> {
        let hash = token.hash();
        if let Some((user, read_at)) = self.sessions.read().expect("session cache poisoned").get(&hash.0) {
            if read_at.elapsed() < SESSION_TTL {
                return Ok(Some(user.clone()));
            }
        }
        let generation = self.sessions_generation.load(Ordering::Acquire);
        let user = accounts::session_user(self.store.as_ref(), token, now).await?;
        let mut map = self.sessions.write().expect("session cache poisoned");
        match &user {
            Some(user) if self.sessions_generation.load(Ordering::Acquire) == generation => {
                if map.len() >= MAX_SESSIONS {
                    map.clear();
                }
                map.insert(hash.0, (user.clone(), Instant::now()));
            }
            _ => {
                map.remove(&hash.0);
            }
        }
        Ok(user)
    }

    /// A session just started, for `user`.
    pub fn remember_session(&self, token: &SessionToken, user: &User) {
        let mut map = self.sessions.write().expect("session cache poisoned");
        if map.len() >= MAX_SESSIONS {
            map.clear();
        }
        map.insert(token.hash().0, (user.clone(), Instant::now()));
    }

    /// A session ended: no node may honour it from memory.
    pub async fn invalidate_session(&self, token: &SessionToken) {
        self.invalidate(CacheNotice::Session(token.hash().0)).await;
    }

    /// A user changed (their role): every node reads their sessions again.
    pub async fn invalidate_user(&self, id: UserId) {
        self.invalidate(CacheNotice::User(id.0)).await;
    }

    pub async fn invalidate_channels(&self) {
        self.invalidate(CacheNotice::Channels).await;
    }

    pub async fn invalidate_product(&self, id: ProductId) {
        self.invalidate(CacheNotice::Product(id.0)).await;
    }

    /// Forgets here at once, and tells every other node.
    async fn invalidate(&self, notice: CacheNotice) {
        self.apply(Some(notice));
        if let Err(e) = self.bus.publish(TOPIC, notice.to_bytes()).await {
            // Other nodes keep a stale copy until their next invalidation; say so loudly.
            tracing::warn!(error = %e, "could not announce a cache invalidation");
        }
    }

    /// Forgets what a notice names; an unreadable message (`None`) forgets everything.
    fn apply(&self, notice: Option<CacheNotice>) {
        match notice {
            Some(CacheNotice::Channels) => {
                self.channels_generation.fetch_add(1, Ordering::AcqRel);
                self.channels.store(None);
            }
            Some(CacheNotice::Product(id)) => {
                self.products_generation.fetch_add(1, Ordering::AcqRel);
                self.products.write().expect("product cache poisoned").remove(&ProductId(id));
            }
            Some(CacheNotice::Session(hash)) => {
                self.sessions_generation.fetch_add(1, Ordering::AcqRel);
                self.sessions.write().expect("session cache poisoned").remove(&hash);
                self.sockets.session_ended(&hash);
            }
            Some(CacheNotice::User(id)) => {
                self.sessions_generation.fetch_add(1, Ordering::AcqRel);
                self.sessions.write().expect("session cache poisoned").retain(|_, (u, _)| u.id != UserId(id));
                self.sockets.user_changed(UserId(id));
            }
            None => self.forget_all(),
        }
    }

    fn forget_all(&self) {
        self.channels_generation.fetch_add(1, Ordering::AcqRel);
        self.channels.store(None);
        self.products_generation.fetch_add(1, Ordering::AcqRel);
        self.products.write().expect("product cache poisoned").clear();
        self.sessions_generation.fetch_add(1, Ordering::AcqRel);
        self.sessions.write().expect("session cache poisoned").clear();
    }

    /// Applies invalidations announced by any node until the bus closes. A listener that fell
    /// behind forgets everything, since it cannot know what it missed.
    pub fn spawn_listener(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        let mut subscription = self.bus.subscribe(TOPIC);
        tokio::spawn(async move {
            while let Some(message) = subscription.recv().await {
                match message {
                    Ok(bytes) => cache.apply(CacheNotice::parse(&bytes)),
                    Err(_missed) => cache.forget_all(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olive_store::{NewProduct, ProductPatch, ProductStatus};

    fn title_of(body: &Bytes) -> String {
        let view: serde_json::Value = serde_json::from_slice(body).expect("a product body");
        view["name"].as_str().expect("a name").to_owned()
    }

    #[tokio::test]
    async fn a_product_changed_without_an_announcement_is_read_again_once_its_copy_is_stale() {
        let store: Arc<dyn Store> = Arc::new(olive_store_sqlite::test_support::temporary().await);
        let bus: Arc<dyn Bus> = Arc::new(olive_bus::MemoryBus::default());
        let hub = Hub::new(store.clone(), bus.clone(), "node".into());
        let new = NewProduct {
            name: "Mug".into(),
            brand: "Olive".into(),
            category: "kitchen".into(),
            description: String::new(),
            price_minor: 1200,
            currency: Default::default(),
            stock: 5,
            status: ProductStatus::Active,
            created_at: Utc::now(),
        };
        let product = store.create_product(new).await.expect("created");
        let mut cache = ReadCache::new(store.clone(), bus, hub);
        cache.freshness = Duration::from_millis(300);
        assert_eq!(title_of(&cache.product(product.id).await.expect("read").body), "Mug");
        // Another node's edit whose announcement never came.
        let patch = ProductPatch { name: Some("Big mug".into()), ..ProductPatch::default() };
        store.update_product(product.id, patch).await.expect("updated");
        assert_eq!(title_of(&cache.product(product.id).await.expect("read").body), "Mug", "served from memory");
        tokio::time::sleep(cache.freshness + Duration::from_millis(50)).await;
        assert_eq!(title_of(&cache.product(product.id).await.expect("read").body), "Big mug");
    }
}
