//! Which node holds each live channel. A live's window lives in the memory of the node whose RTMP
//! listener took the broadcaster, so the other nodes must know where to send its viewers. The node
//! takes a lease `live:{channel}` on the bus ([`olive_bus::Leases`]) naming itself and the URL it
//! answers on, before it accepts the publish, and renews it every [`HEARTBEAT`] while the window
//! is open (publishing or waiting out the reconnect grace). A second node asked to publish the
//! same channel sees the lease and refuses. A node that dies stops renewing: its leases run out
//! after [`LEASE_TTL`], and [`orphans`](LiveRegistry::orphans) finds the channels the database
//! still shows live that nobody holds, so they can be shown offline until the broadcaster
//! reconnects (to any node).
//!
//! Lookups for playback are cached for [`OWNER_CACHE`], so a crowd polling a live elsewhere costs
//! the bus one read per channel per second, not one per request. It serves no HTTP itself.

use olive_bus::Bus;
use olive_core::ChannelId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a lease outlives its last renewal: how long a dead node's lives still look held.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often a node renews the leases of its lives.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// How long a looked-up owner is trusted.
pub const OWNER_CACHE: Duration = Duration::from_secs(1);

/// Another node that holds a live: its name and the base URL its HTTP listener answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub node: String,
    pub url: String,
}

impl Owner {
    /// `"{node} {url}"`, where the URL must be a bare origin (`http://10.0.0.7:8080`): playback
    /// paths are appended to it, so a holder with a path, query or credentials is not believed.
    fn parse(holder: &str) -> Option<Owner> {
        let (node, url) = holder.split_once(' ')?;
        let parsed = url::Url::parse(url).ok()?;
        let bare = matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_some()
            && parsed.path() == "/"
            && parsed.query().is_none()
            && parsed.fragment().is_none()
            && parsed.username().is_empty()
            && parsed.password().is_none();
        if !bare || node.is_empty() {
            tracing::warn!(holder, "a live's lease names no usable node URL; ignored");
            return None;
        }
        Some(Owner { node: node.to_owned(), url: parsed.origin().ascii_serialization() })
    }
}

/// The channel is held by another node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {0} holds the channel")]
pub struct HeldElsewhere(pub String);

pub struct LiveRegistry {
    bus: Arc<dyn Bus>,
    node: String,
    /// `"{node} {url}"`, what this node's leases hold.
    holder: String,
    /// Channels this node holds.
    held: Mutex<HashSet<ChannelId>>,
    owners: Mutex<HashMap<ChannelId, (Option<Owner>, Instant)>>,
}

fn key(channel: ChannelId) -> String {
    format!("live:{channel}")
}

impl LiveRegistry {
    /// `url` is where other nodes reach this node's HTTP listener (`http://10.0.0.7:8080`).
    pub fn new(bus: Arc<dyn Bus>, node: &str, url: &str) -> Self {
        LiveRegistry {
            bus,
            node: node.to_owned(),
            holder: format!("{node} {}", url.trim_end_matches('/')),
            held: Mutex::default(),
            owners: Mutex::default(),
        }
    }

    /// One process on its own (the memory bus): every live is its own.
    pub fn single_node() -> Self {
        LiveRegistry::new(Arc::new(olive_bus::MemoryBus::default()), "local", "http://127.0.0.1")
    }

    /// Takes the channel for this node. Refused when another node holds it. If the bus cannot be
    /// reached the live goes ahead (a broadcaster is not turned away for the bus's sake) and the
    /// heartbeat takes the lease once it can.
    pub async fn claim(&self, channel: ChannelId) -> Result<(), HeldElsewhere> {
        match self.bus.leases().acquire(&key(channel), &self.holder, LEASE_TTL).await {
            Ok(Some(other)) => {
                let node = Owner::parse(&other).map_or(other, |o| o.node);
                return Err(HeldElsewhere(node));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(channel_id = %channel, error = %e, "could not take the live's lease; going ahead"),
        }
        self.held.lock().expect("held set poisoned").insert(channel);
        Ok(())
    }

    /// Gives the channel up (its window ended).
    pub async fn release(&self, channel: ChannelId) {
        self.held.lock().expect("held set poisoned").remove(&channel);
        if let Err(e) = self.bus.leases().release(&key(channel), &self.holder).await {
            tracing::warn!(channel_id = %channel, error = %e, "could not release the live's lease; it will run out");
        }
    }

    pub fn holds(&self, channel: ChannelId) -> bool {
        self.held.lock().expect("held set poisoned").contains(&channel)
    }

    /// The other node that holds `channel`, if any (`None` as well when this node holds it).
    pub async fn owner(&self, channel: ChannelId) -> Option<Owner> {
        let now = Instant::now();
        if let Some((owner, at)) = self.owners.lock().expect("owner cache poisoned").get(&channel) {
            if now.duration_since(*at) < OWNER_CACHE {
                return owner.clone();
            }
        }
        let owner = match self.bus.leases().holder(&key(channel)).await {
            Ok(holder) => holder.filter(|h| *h != self.holder).as_deref().and_then(Owner::parse),
            Err(e) => {
                tracing::warn!(channel_id = %channel, error = %e, "could not look up a live's node");
                None
            }
        };
        let mut owners = self.owners.lock().expect("owner cache poisoned");
        owners.retain(|_, (_, at)| now.duration_since(*at) < OWNER_CACHE);
        owners.insert(channel, (owner.clone(), now));
        owner
    }

    /// Renews every lease this node holds, once. A lease found in another node's hands means two
    /// nodes took the same live (possible only while the bus was unreachable); it is logged.
    pub async fn renew(&self) {
        let held: Vec<ChannelId> = self.held.lock().expect("held set poisoned").iter().copied().collect();
        for channel in held {
            match self.bus.leases().acquire(&key(channel), &self.holder, LEASE_TTL).await {
                Ok(None) => {}
                Ok(Some(other)) => {
                    tracing::error!(channel_id = %channel, other, "another node holds this node's live")
                }
                Err(e) => tracing::warn!(channel_id = %channel, error = %e, "could not renew a live's lease"),
            }
        }
    }

    /// Renews this node's leases every [`HEARTBEAT`], forever.
    pub async fn heartbeat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.renew().await;
        }
    }

    /// Of `live` (channels the database shows live), those nobody holds, each now held for a
    /// moment by this node's sweeper so that no other node sweeps it too and no broadcaster takes
    /// it meanwhile. The caller marks them offline, then calls [`end_sweep`](Self::end_sweep).
    pub async fn orphans(&self, live: &[ChannelId]) -> Vec<ChannelId> {
        let sweeper = format!("{} sweeper", self.node);
        let mut orphans = Vec::new();
        for &channel in live {
            if self.holds(channel) {
                continue;
            }
            match self.bus.leases().acquire(&key(channel), &sweeper, LEASE_TTL).await {
                Ok(None) => orphans.push(channel),
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(channel_id = %channel, error = %e, "could not check a live's lease"),
            }
        }
        orphans
    }

    /// Lets go of a channel taken by [`orphans`](Self::orphans).
    pub async fn end_sweep(&self, channel: ChannelId) {
        let _ = self.bus.leases().release(&key(channel), &format!("{} sweeper", self.node)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_believed_only_with_a_bare_origin() {
        let owner = Owner::parse("node-a http://10.0.0.7:8080").unwrap();
        assert_eq!(owner, Owner { node: "node-a".into(), url: "http://10.0.0.7:8080".into() });
        assert_eq!(Owner::parse("node-a http://10.0.0.7:8080/").unwrap().url, "http://10.0.0.7:8080");
        for bad in [
            "node-a",
            "node-a http://10.0.0.7:8080/metrics",
            "node-a http://10.0.0.7:8080?x=1",
            "node-a http://u:p@10.0.0.7:8080",
            "node-a file:///etc/passwd",
            "node-a not a url",
            " http://10.0.0.7",
        ] {
            assert_eq!(Owner::parse(bad), None, "{bad}");
        }
    }

    fn two_nodes() -> (LiveRegistry, LiveRegistry) {
        let bus: Arc<dyn Bus> = Arc::new(olive_bus::MemoryBus::default());
        (LiveRegistry::new(bus.clone(), "a", "http://a:8080/"), LiveRegistry::new(bus, "b", "http://b:8080"))
    }

    #[tokio::test(start_paused = true)]
    async fn one_node_holds_a_live_and_the_others_find_it() {
        let (a, b) = two_nodes();
        let ch = ChannelId(7);
        a.claim(ch).await.unwrap();
        a.claim(ch).await.expect("a reconnect to the same node continues");
        assert_eq!(b.claim(ch).await, Err(HeldElsewhere("a".into())));
        assert_eq!(b.owner(ch).await, Some(Owner { node: "a".into(), url: "http://a:8080".into() }));
        assert_eq!(a.owner(ch).await, None, "a node never sends its own viewers away");
        a.release(ch).await;
        assert_eq!(b.owner(ch).await.map(|o| o.node), Some("a".into()), "looked up less than a second ago");
        tokio::time::advance(OWNER_CACHE).await;
        assert_eq!(b.owner(ch).await, None);
        b.claim(ch).await.expect("released, so free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_nodes_lives_run_out_and_are_swept_once() {
        let (a, b) = two_nodes();
        let (kept, dead) = (ChannelId(1), ChannelId(2));
        a.claim(kept).await.unwrap();
        a.claim(dead).await.unwrap();
        for _ in 0..5 {
            tokio::time::advance(HEARTBEAT).await;
            a.renew().await;
        }
        assert!(b.orphans(&[kept, dead]).await.is_empty(), "renewed leases outlive their ttl");
        // Node a stops renewing `dead` (as if it died holding it).
        a.held.lock().unwrap().remove(&dead);
        tokio::time::advance(LEASE_TTL).await;
        a.renew().await;
        assert_eq!(b.orphans(&[kept, dead]).await, vec![dead]);
        assert!(a.orphans(&[kept, dead]).await.is_empty(), "b is sweeping it");
        assert!(b.claim(dead).await.is_err(), "nobody takes it while it is swept");
        b.end_sweep(dead).await;
        b.claim(dead).await.expect("the broadcaster may come back to any node");
    }
}
