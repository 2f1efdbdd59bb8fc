//! What every handler can reach: the engines, the read cache, the login throttle and the settings
//! that shape cookies and origin checks.

use crate::cache::ReadCache;
use metrics_exporter_prometheus::PrometheusHandle;
use olive_bus::Bus;
use olive_commerce::accounts::{AccountLimits, AccountThrottle};
use olive_commerce::deal_desk::DealDesk;
use olive_media::thumbnail::Thumbnails;
use olive_media::LiveMedia;
use olive_objects::Objects;
use olive_realtime::hub::Hub;
use olive_store::Store;
use std::sync::Arc;

/// HTTP behaviour chosen by configuration.
#[derive(Debug, Clone, Default)]
pub struct ApiSettings {
    /// The origin browsers see, e.g. `https://shop.example.com`. When it is `https`, session
    /// cookies get `Secure` and the `__Host-` prefix. When unset, the request's `Host` is trusted
    /// as the origin and cookies are not `Secure` (plain-HTTP local use).
    pub public_origin: Option<String>,
    pub account_limits: AccountLimits,
    /// Where encoders publish, e.g. `rtmp://127.0.0.1:1935/live`; shown with stream keys.
    pub ingest_url: String,
    /// This node's name among several.
    pub node: String,
    /// Proxies whose `X-Forwarded-For` names the client (a load balancer in front); from anyone
    /// else the header is ignored and the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What proves a request came from another node of this deployment.
    pub node_secret: crate::peers::NodeSecret,
    /// Where webhooks may be registered to point.
    pub webhook_targets: olive_jobs::webhooks::WebhookTargets,
}

impl ApiSettings {
    pub fn behind_tls(&self) -> bool {
        self.public_origin.as_deref().is_some_and(|o| o.starts_with("https://"))
    }

    /// The session cookie's name: `__Host-` prefixed behind TLS.
    pub fn cookie_name(&self) -> &'static str {
        if self.behind_tls() {
            "__Host-olive_session"
        } else {
            "olive_session"
        }
    }
}

/// What serves live channels: video windows, thumbnails, rooms, deals.
pub struct Live {
    pub media: Arc<LiveMedia>,
    pub thumbnails: Arc<Thumbnails>,
    pub hub: Arc<Hub>,
    pub deals: Arc<DealDesk>,
}

/// Cloned for every request (each extractor and middleware takes its own), so it is one
/// reference count around [`Shared`], not one per engine.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub objects: Objects,
    pub bus: Arc<dyn Bus>,
    pub cache: Arc<ReadCache>,
    /// Sign-up and login throttling.
    pub throttle: Arc<AccountThrottle>,
    /// The newest recommender snapshot this node has loaded (none until one is trained).
    pub recommendations: Arc<arc_swap::ArcSwapOption<olive_commerce::recommendations::Snapshot>>,
    /// Paces each visitor's event reports.
    pub event_pace: Arc<olive_commerce::events::EventPace>,
    pub settings: Arc<ApiSettings>,
    /// Every channel's live window.
    pub media: Arc<LiveMedia>,
    /// Every live channel's newest thumbnail.
    pub thumbnails: Arc<Thumbnails>,
    /// This node's live rooms (chat, hearts, viewers).
    pub hub: Arc<Hub>,
    /// The owners of the deals running on this node.
    pub deals: Arc<DealDesk>,
    /// Renders `/metrics`; absent when no recorder was installed (unit tests).
    pub metrics: Option<PrometheusHandle>,
    /// Set once the server was asked to stop: `/readyz` answers 503 so traffic moves elsewhere.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Unit prices for the cost report.
    pub prices: olive_commerce::cost::Prices,
    /// The client for requests to other nodes (live playback held elsewhere).
    pub peers: reqwest::Client,
    /// Each route's request metrics, registered once.
    pub(crate) http_metrics: crate::middleware::HttpMetrics,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        objects: Objects,
        bus: Arc<dyn Bus>,
        settings: ApiSettings,
        live: Live,
        metrics: Option<PrometheusHandle>,
        prices: olive_commerce::cost::Prices,
    ) -> Self {
        let Live { media, thumbnails, hub, deals } = live;
        let cache = Arc::new(ReadCache::new(store.clone(), bus.clone(), hub.clone()));
        AppState(Arc::new(Shared {
            throttle: Arc::new(AccountThrottle::new(settings.account_limits)),
            event_pace: Arc::default(),
            recommendations: Arc::default(),
            store,
            objects,
            bus,
            cache,
            settings: Arc::new(settings),
            media,
            thumbnails,
            hub,
            deals,
            metrics,
            draining: Arc::default(),
            prices,
            peers: crate::peers::client(),
            http_metrics: Default::default(),
        }))
    }
}
