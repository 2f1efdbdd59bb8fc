//! The owners of the running deals on this node: one task per deal holds its [`DealBook`] in
//! memory, so a flash sale's thousands of attempts per second are answered without a database
//! row per attempt. The task takes attempts from a bounded queue, answers refusals at once, and
//! writes the held orders in batches (everything that arrived while the previous batch was
//! written, group-commit style), one transaction each, then confirms or releases every hold.
//! The store's confirmed deal orders are the durable log: a restarted node reopens each of its
//! deals from them, and the store refuses a batch that would sell more than listed, so even two
//! owners cannot oversell.
//!
//! Across nodes, a deal is owned by one node at a time: the one that holds its lease `deal:{id}`
//! on the bus ([`olive_bus::Leases`]), first the node it was started on. The others learn of it on
//! the bus topic [`DEAL_NEWS`] (and from the store when they start) and forward an order for its
//! product to the owner over [`DEAL_ORDERS`]; the owner answers on [`DEAL_ANSWERS`] with the
//! order's id (read back from the shared store) or the refusal. The bus may lose a message: the
//! buyer then gets `busy` after [`FORWARD_TIMEOUT`] and may retry with the same `Idempotency-Key`.
//!
//! The owner renews its leases every [`HEARTBEAT`]. If it dies, its leases run out after
//! [`LEASE_TTL`] and the first node to notice takes the deal over: it reopens the book from the
//! committed orders, exactly as a restarted owner would, and announces itself. Holds the dead
//! owner had not written were never sold; their buyers' retries are answered by the new owner (a
//! key already written is answered with its order). An owner that finds its lease in another
//! node's hands stops owning the deal without ending it.
//!
//! It never reads a clock itself: the clock is given at construction and the time of each
//! attempt comes with it.

use crate::deal_book::{Admission, DealBook, DealCounts, DealTerms, Hold, Refusal};
use crate::deals::{plan, DealRequest};
use crate::orders::request_hash;
use crate::{CommerceError, Result};
use chrono::{DateTime, Utc};
use olive_bus::Bus;
use olive_core::{ChannelId, DealId, OrderId, ProductId};
use olive_store::{Deal, DealOrderOutcome, DealStatus, NewDealOrder, Order, OrderLine, Store, StoreError, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Attempts waiting for a deal's owner before new ones are turned away (503, try again).
pub const QUEUE: usize = 8192;
/// Orders written in one transaction at most.
pub const MAX_BATCH: usize = 512;
/// Deals starting and ending, for the nodes that do not own them.
pub const DEAL_NEWS: &str = "deal-news";
/// Orders forwarded to a deal's owner, and its answers.
pub const DEAL_ORDERS: &str = "deal-orders";
pub const DEAL_ANSWERS: &str = "deal-answers";
/// How long a node waits for a deal's owner to answer a forwarded order.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a deal's lease outlives its owner's last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often owners renew their leases and the others look for deals nobody owns.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

fn lease(deal: DealId) -> String {
    format!("deal:{deal}")
}

/// What nodes tell each other about deals.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Started {
        deal: DealId,
        product: ProductId,
        node: String,
    },
    Ended {
        deal: DealId,
        product: ProductId,
    },
    Order {
        id: u64,
        from: String,
        to: String,
        buyer: olive_core::UserId,
        line: WireLine,
        key: String,
        now: DateTime<Utc>,
    },
    Answer {
        id: u64,
        to: String,
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WireLine {
    product: ProductId,
    quantity: i64,
}

/// An owner's answer to a forwarded order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Created(OrderId),
    Replayed(OrderId),
    Refused(Refusal),
    KeyReused,
    Busy,
    /// The owner has no such deal (any more): sell it the ordinary way.
    NotHere,
    Unavailable,
}

/// A deal another node owns.
#[derive(Debug, Clone)]
struct Remote {
    deal: DealId,
    node: String,
}

/// How the time is read (`Utc::now` in the server, a fixed clock in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What a buyer got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealPurchase {
    Created(Order),
    /// The same request was answered before: the same order again.
    Replayed(Order),
}

/// What viewers are told about deals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealNews {
    Started(Deal),
    /// Units left after orders landed.
    Stock {
        deal: DealId,
        channel: ChannelId,
        counts: DealCounts,
    },
    Ended(Deal),
}

enum Command {
    Buy {
        buyer: olive_core::UserId,
        quantity: i64,
        key: String,
        now: DateTime<Utc>,
        reply: Reply,
    },
    End {
        reply: oneshot::Sender<()>,
    },
    /// Another node owns the deal now: stop answering, end nothing.
    Abandon,
}

type Reply = oneshot::Sender<Result<DealPurchase>>;

/// A running deal owned here.
#[derive(Clone)]
struct Owned {
    deal: Deal,
    commands: mpsc::Sender<Command>,
    counts: Arc<Mutex<DealCounts>>,
}

pub struct DealDesk {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    node: String,
    clock: Clock,
    running: Mutex<HashMap<ProductId, Owned>>,
    /// Deals other nodes own, by product.
    remote: Mutex<HashMap<ProductId, Remote>>,
    /// Forwarded orders waiting for their owner's answer.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    next_forward: std::sync::atomic::AtomicU64,
    news: broadcast::Sender<DealNews>,
    rules: crate::deals::DealRules,
}

impl DealDesk {
    /// A desk holding hosts' deals to `rules`.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        node: String,
        clock: Clock,
        rules: crate::deals::DealRules,
    ) -> Arc<Self> {
        Arc::new(DealDesk {
            store,
            bus,
            node,
            clock,
            running: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            next_forward: std::sync::atomic::AtomicU64::new(0),
            news: broadcast::channel(1024).0,
            rules,
        })
    }

    async fn tell(&self, wire: &Wire) {
        let topic = match wire {
            Wire::Started { .. } | Wire::Ended { .. } => DEAL_NEWS,
            Wire::Order { .. } => DEAL_ORDERS,
            Wire::Answer { .. } => DEAL_ANSWERS,
        };
        let bytes = bytes::Bytes::from(serde_json::to_vec(wire).expect("deal messages serialise"));
        if let Err(e) = self.bus.publish(topic, bytes).await {
            tracing::warn!(error = %e, topic, "could not publish a deal message");
        }
    }

    /// Serves the other nodes until the bus closes: learns of their deals, answers the orders
    /// they forward to deals owned here, and hands their answers to the orders forwarded from here.
    pub async fn serve(self: Arc<Self>) {
        let mut news = self.bus.subscribe(DEAL_NEWS);
        let mut orders = self.bus.subscribe(DEAL_ORDERS);
        let mut answers = self.bus.subscribe(DEAL_ANSWERS);
        loop {
            let message = tokio::select! {
                m = news.recv() => m,
                m = orders.recv() => m,
                m = answers.recv() => m,
            };
            let Some(message) = message else { return };
            let Ok(bytes) = message else {
                tracing::warn!("deal messages were lost: this node fell behind the bus");
                continue;
            };
            let Ok(wire) = serde_json::from_slice::<Wire>(&bytes) else { continue };
            match wire {
                Wire::Started { deal, product, node } if node != self.node => {
                    self.remote.lock().expect("remote poisoned").insert(product, Remote { deal, node });
                }
                Wire::Ended { deal, product } => {
                    self.forget_remote(product, deal);
                    // Ended from another node (its host was served there): the owner here stops.
                    let owned = self.running.lock().expect("deals poisoned").get(&product).cloned();
                    if let Some(owned) = owned.filter(|o| o.deal.id == deal) {
                        let (reply, _) = oneshot::channel();
                        let _ = owned.commands.try_send(Command::End { reply });
                    }
                }
                Wire::Order { id, from, to, buyer, line, key, now } if to == self.node => {
                    let desk = self.clone();
                    tokio::spawn(async move {
                        let line = OrderLine { product_id: line.product, quantity: line.quantity };
                        let outcome = match desk.buy_here(buyer, &line, &key, now).await {
                            None => Outcome::NotHere,
                            Some(Ok(DealPurchase::Created(order))) => Outcome::Created(order.id),
                            Some(Ok(DealPurchase::Replayed(order))) => Outcome::Replayed(order.id),
                            Some(Err(CommerceError::Deal(refusal))) => Outcome::Refused(refusal),
                            Some(Err(CommerceError::IdempotencyKeyReused)) => Outcome::KeyReused,
                            Some(Err(CommerceError::Busy)) => Outcome::Busy,
                            Some(Err(_)) => Outcome::Unavailable,
                        };
                        desk.tell(&Wire::Answer { id, to: from, outcome }).await;
                    });
                }
                Wire::Answer { id, to, outcome } if to == self.node => {
                    if let Some(waiter) = self.waiting.lock().expect("waiting poisoned").remove(&id) {
                        let _ = waiter.send(outcome);
                    }
                }
                _ => {}
            }
        }
    }

    /// Forgets another node's deal on `product`, if it is still the one known.
    fn forget_remote(&self, product: ProductId, deal: DealId) {
        let mut remote = self.remote.lock().expect("remote poisoned");
        if remote.get(&product).is_some_and(|r| r.deal == deal) {
            remote.remove(&product);
        }
    }

    /// Forwards an order to the node that owns the deal on its product, and waits for the answer.
    async fn forward(
        &self,
        remote: Remote,
        buyer: olive_core::UserId,
        line: &OrderLine,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<Result<DealPurchase>> {
        let id = self.next_forward.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("waiting poisoned").insert(id, tx);
        let wire = Wire::Order {
            id,
            from: self.node.clone(),
            to: remote.node.clone(),
            buyer,
            line: WireLine { product: line.product_id, quantity: line.quantity },
            key: key.to_owned(),
            now,
        };
        self.tell(&wire).await;
        let outcome = tokio::time::timeout(FORWARD_TIMEOUT, rx).await;
        self.waiting.lock().expect("waiting poisoned").remove(&id);
        let outcome = match outcome {
            Ok(Ok(outcome)) => outcome,
            _ => {
                tracing::warn!(deal_id = %remote.deal, owner = %remote.node, "a deal's owner did not answer a forwarded order");
                return Some(Err(CommerceError::Busy));
            }
        };
        let read = |id: OrderId| async move { self.store.order(id).await.map_err(CommerceError::from) };
        Some(match outcome {
            Outcome::Created(id) => read(id).await.map(DealPurchase::Created),
            Outcome::Replayed(id) => read(id).await.map(DealPurchase::Replayed),
            Outcome::Refused(refusal) => Err(CommerceError::Deal(refusal)),
            Outcome::KeyReused => Err(CommerceError::IdempotencyKeyReused),
            Outcome::Busy => Err(CommerceError::Busy),
            Outcome::NotHere => {
                self.forget_remote(line.product_id, remote.deal);
                return None;
            }
            Outcome::Unavailable => {
                Err(CommerceError::Storage(StoreError::Backend("the deal's owner could not answer".into())))
            }
        })
    }

    /// Deal news from this node's owners.
    pub fn subscribe(&self) -> broadcast::Receiver<DealNews> {
        self.news.subscribe()
    }

    /// Starts a deal on a channel's line-up product and its owner here.
    pub async fn start(self: &Arc<Self>, actor: &User, channel: ChannelId, req: &DealRequest) -> Result<Deal> {
        let now = (self.clock)();
        let new = plan(self.store.as_ref(), actor, channel, req, &self.rules, &self.node, now).await?;
        let deal = self.store.start_deal(new).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => CommerceError::DealRunning,
            e => e.into(),
        })?;
        tracing::info!(deal_id = %deal.id, channel_id = %channel, product_id = %deal.product_id,
            listed = deal.listed, price = deal.price_minor, ends_at = %deal.ends_at, "deal started");
        if let Err(e) = self.bus.leases().acquire(&lease(deal.id), &self.node, LEASE_TTL).await {
            tracing::warn!(deal_id = %deal.id, error = %e, "could not take the deal's lease; the heartbeat will");
        }
        self.own(deal.clone(), DealBook::open(terms(&deal), &[]));
        let _ = self.news.send(DealNews::Started(deal.clone()));
        self.tell(&Wire::Started { deal: deal.id, product: deal.product_id, node: self.node.clone() }).await;
        Ok(deal)
    }

    /// Ends a deal before its time (its host or an admin). Orders already held are still sold.
    pub async fn end(&self, actor: &User, id: DealId) -> Result<Deal> {
        let deal = self.store.deal(id).await?;
        crate::channels::managed(self.store.as_ref(), actor, deal.channel_id).await?;
        let owned = self.running.lock().expect("deals poisoned").get(&deal.product_id).cloned();
        match owned {
            Some(owned) if owned.deal.id == id => {
                let (reply, done) = oneshot::channel();
                if owned.commands.send(Command::End { reply }).await.is_ok() {
                    let _ = done.await;
                }
                Ok(self.store.deal(id).await?)
            }
            // Not owned here (its owner's node is gone, or it already ended): end it in the store.
            _ => {
                let ended = self.store.end_deal(id, (self.clock)()).await?;
                let _ = self.news.send(DealNews::Ended(ended.clone()));
                self.tell(&Wire::Ended { deal: ended.id, product: ended.product_id }).await;
                Ok(ended)
            }
        }
    }

    /// Takes up the running deals after a start: those nobody owns (this node's own after a
    /// restart, or a dead node's) are reopened here, ending those whose time passed meanwhile;
    /// the others are known as remote.
    pub async fn resume(self: &Arc<Self>) -> Result<()> {
        for deal in self.store.running_deals(None).await? {
            self.adopt(deal).await?;
        }
        Ok(())
    }

    /// Owns `deal` here if its lease is free (or already this node's), else learns its owner.
    async fn adopt(self: &Arc<Self>, deal: Deal) -> Result<()> {
        let holder = match self.bus.leases().acquire(&lease(deal.id), &self.node, LEASE_TTL).await {
            Ok(holder) => holder,
            Err(e) => {
                // Its first owner's until the heartbeat can read the lease.
                tracing::warn!(deal_id = %deal.id, error = %e, "could not read a deal's lease");
                (deal.node != self.node).then(|| deal.node.clone())
            }
        };
        if let Some(node) = holder {
            self.remote.lock().expect("remote poisoned").insert(deal.product_id, Remote { deal: deal.id, node });
            return Ok(());
        }
        self.forget_remote(deal.product_id, deal.id);
        if (self.clock)() >= deal.ends_at {
            let ended = self.store.end_deal(deal.id, (self.clock)()).await?;
            tracing::info!(deal_id = %deal.id, sold = ended.sold, "deal ended while its owner was down");
            let _ = self.news.send(DealNews::Ended(ended.clone()));
            self.tell(&Wire::Ended { deal: ended.id, product: ended.product_id }).await;
            let _ = self.bus.leases().release(&lease(deal.id), &self.node).await;
            return Ok(());
        }
        let sales = self.store.deal_sales(deal.id).await?;
        let book = DealBook::open(terms(&deal), &sales);
        tracing::info!(deal_id = %deal.id, sold = book.counts().sold, first_owner = deal.node, "deal owned here");
        self.own(deal.clone(), book);
        self.tell(&Wire::Started { deal: deal.id, product: deal.product_id, node: self.node.clone() }).await;
        Ok(())
    }

    /// Renews the leases of the deals owned here and takes over those nobody owns, every
    /// [`HEARTBEAT`], forever.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.watch_once().await;
        }
    }

    async fn watch_once(self: &Arc<Self>) {
        let owned: Vec<Owned> = self.running.lock().expect("deals poisoned").values().cloned().collect();
        for owned in owned {
            match self.bus.leases().acquire(&lease(owned.deal.id), &self.node, LEASE_TTL).await {
                Ok(None) => {}
                Ok(Some(other)) => {
                    tracing::error!(deal_id = %owned.deal.id, other, "another node took this node's deal; letting go");
                    let _ = owned.commands.send(Command::Abandon).await;
                }
                Err(e) => tracing::warn!(deal_id = %owned.deal.id, error = %e, "could not renew a deal's lease"),
            }
        }
        let remote: Vec<(ProductId, Remote)> =
            self.remote.lock().expect("remote poisoned").iter().map(|(p, r)| (*p, r.clone())).collect();
        for (product, r) in remote {
            match self.bus.leases().holder(&lease(r.deal)).await {
                Ok(Some(node)) if node != r.node => {
                    self.remote.lock().expect("remote poisoned").insert(product, Remote { deal: r.deal, node });
                }
                Ok(Some(_)) => {}
                Ok(None) => match self.store.deal(r.deal).await {
                    Ok(deal) if deal.status == DealStatus::Running => {
                        tracing::warn!(deal_id = %r.deal, owner = r.node, "a deal's owner stopped renewing it; taking over");
                        if let Err(e) = self.adopt(deal).await {
                            tracing::warn!(deal_id = %r.deal, error = %e, "could not take a deal over");
                        }
                    }
                    Ok(_) => self.forget_remote(product, r.deal),
                    Err(e) => tracing::warn!(deal_id = %r.deal, error = %e, "could not read a deal"),
                },
                Err(e) => tracing::warn!(deal_id = %r.deal, error = %e, "could not read a deal's lease"),
            }
        }
    }

    /// A deal's counts if it is owned here.
    pub fn counts(&self, id: DealId) -> Option<DealCounts> {
        let running = self.running.lock().expect("deals poisoned");
        let owned = running.values().find(|o| o.deal.id == id)?;
        let counts = *owned.counts.lock().expect("counts poisoned");
        Some(counts)
    }

    /// Whether a deal on `product` runs anywhere this node knows of.
    pub fn has_deal(&self, product: ProductId) -> bool {
        self.running.lock().expect("deals poisoned").contains_key(&product)
            || self.remote.lock().expect("remote poisoned").contains_key(&product)
    }

    /// The deal running on `product`, here or on another node, if any.
    pub fn running_deal(&self, product: ProductId) -> Option<DealId> {
        if let Some(owned) = self.running.lock().expect("deals poisoned").get(&product) {
            return Some(owned.deal.id);
        }
        self.remote.lock().expect("remote poisoned").get(&product).map(|r| r.deal)
    }

    /// The deal side of a checkout (see [`crate::checkout`]), for lines and a key already checked.
    /// `None`: the order is an ordinary one (no deal runs on its products and the buyer named
    /// none). A buyer who named a deal (`expected`, the card they pressed "buy" on) or whose
    /// product's deal ends while they order is told `deal_ended`, never sold the product at its
    /// full price instead: they may ask again, knowing the price.
    pub async fn checkout(
        &self,
        buyer: &User,
        lines: &[OrderLine],
        key: &str,
        expected: Option<DealId>,
        now: DateTime<Utc>,
    ) -> Result<Option<DealPurchase>> {
        let running: Vec<DealId> = lines.iter().filter_map(|l| self.running_deal(l.product_id)).collect();
        if running.is_empty() && expected.is_none() {
            return Ok(None);
        }
        let [line] = lines else {
            return Err(CommerceError::invalid("items", "a deal's product is ordered on its own"));
        };
        match (expected, self.running_deal(line.product_id)) {
            (Some(named), Some(now_running)) if named != now_running => {
                return Err(CommerceError::Deal(Refusal::Ended))
            }
            (Some(_), None) => return Err(CommerceError::Deal(Refusal::Ended)),
            _ => {}
        }
        match self.buy(buyer, line, key, now).await {
            // The deal ended between the look and the purchase.
            None => Err(CommerceError::Deal(Refusal::Ended)),
            Some(result) => result.map(Some),
        }
    }

    /// Buys a running deal's product, from its owner here or on another node: `None` when no
    /// deal runs on it (the order is an ordinary one). `Refusal::Ended` comes back for a deal whose
    /// time is up.
    pub async fn buy(
        &self,
        buyer: &User,
        line: &OrderLine,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<Result<DealPurchase>> {
        if let Some(result) = self.buy_here(buyer.id, line, key, now).await {
            return Some(result);
        }
        let remote = self.remote.lock().expect("remote poisoned").get(&line.product_id).cloned()?;
        self.forward(remote, buyer.id, line, key, now).await
    }

    /// Buys from a deal owned by this node; `None` when none runs here on the product.
    async fn buy_here(
        &self,
        buyer: olive_core::UserId,
        line: &OrderLine,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<Result<DealPurchase>> {
        let owned = self.running.lock().expect("deals poisoned").get(&line.product_id).cloned()?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Buy { buyer, quantity: line.quantity, key: key.to_owned(), now, reply };
        match owned.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Some(Err(CommerceError::Busy)),
            Err(mpsc::error::TrySendError::Closed(_)) => return None,
        }
        match answer.await {
            Ok(result) => Some(result),
            // The owner stopped (the deal ended) before answering.
            Err(_) => Some(Err(CommerceError::Deal(Refusal::Ended))),
        }
    }

    fn own(self: &Arc<Self>, deal: Deal, book: DealBook) {
        let (commands, queue) = mpsc::channel(QUEUE);
        let counts = Arc::new(Mutex::new(book.counts()));
        self.running
            .lock()
            .expect("deals poisoned")
            .insert(deal.product_id, Owned { deal: deal.clone(), commands, counts: counts.clone() });
        let owner = Owner { desk: self.clone(), deal, book, counts, abandoned: false };
        tokio::spawn(owner.run(queue));
    }
}

/// Answers every command left in a closed queue: buyers get `refusal`, enders their reply.
fn drain_refusing(queue: &mut mpsc::Receiver<Command>, refusal: impl Fn() -> CommerceError) {
    while let Ok(command) = queue.try_recv() {
        match command {
            Command::Buy { reply, .. } => {
                let _ = reply.send(Err(refusal()));
            }
            Command::End { reply } => {
                let _ = reply.send(());
            }
            Command::Abandon => {}
        }
    }
}

fn terms(deal: &Deal) -> DealTerms {
    DealTerms { listed: deal.listed, per_customer: deal.per_customer, ends_at: deal.ends_at }
}

/// A hold being written, and everyone waiting for its answer.
struct Pending {
    hold: Hold,
    replies: Vec<Reply>,
}

struct Owner {
    desk: Arc<DealDesk>,
    deal: Deal,
    book: DealBook,
    counts: Arc<Mutex<DealCounts>>,
    /// Another node owns the deal now.
    abandoned: bool,
}

impl Owner {
    async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let left = (self.deal.ends_at - (self.desk.clock)()).to_std().unwrap_or(Duration::ZERO);
        let deadline = tokio::time::sleep(left);
        tokio::pin!(deadline);
        let mut enders: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            let mut batch: Vec<Pending> = Vec::new();
            tokio::select! {
                command = queue.recv() => match command {
                    Some(command) => self.take(command, &mut batch, &mut enders),
                    None => return,
                },
                _ = &mut deadline, if !self.book.is_over((self.desk.clock)()) => self.book.close(),
            }
            // Everything else already waiting joins this batch.
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(command) => self.take(command, &mut batch, &mut enders),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.write(batch).await;
            }
            if self.abandoned {
                self.let_go(queue, enders);
                return;
            }
            if self.book.is_over((self.desk.clock)()) && self.book.is_settled() {
                self.finish(queue, enders).await;
                return;
            }
        }
    }

    fn take(&mut self, command: Command, batch: &mut Vec<Pending>, enders: &mut Vec<oneshot::Sender<()>>) {
        let (buyer, quantity, key, now, reply) = match command {
            Command::Buy { buyer, quantity, key, now, reply } => (buyer, quantity, key, now, reply),
            Command::End { reply } => {
                self.book.close();
                enders.push(reply);
                return;
            }
            Command::Abandon => {
                self.abandoned = true;
                return;
            }
        };
        let hash = request_hash(&[OrderLine { product_id: self.deal.product_id, quantity }]);
        match self.book.try_hold(buyer, quantity, &key, &hash, now) {
            Ok(Admission::Held(hold)) => batch.push(Pending { hold, replies: vec![reply] }),
            Ok(Admission::InFlight(id)) => match batch.iter_mut().find(|p| p.hold.id == id) {
                Some(pending) => pending.replies.push(reply),
                None => {
                    let _ = reply.send(Err(CommerceError::Busy));
                }
            },
            Ok(Admission::Sold(order)) => {
                let store = self.desk.store.clone();
                tokio::spawn(async move {
                    let _ = reply.send(store.order(order).await.map(DealPurchase::Replayed).map_err(Into::into));
                });
            }
            Err(refusal) => {
                let _ = reply.send(Err(CommerceError::Deal(refusal)));
            }
        }
    }

    /// Writes a batch of held orders in one transaction, then answers each.
    async fn write(&mut self, batch: Vec<Pending>) {
        let created_at = (self.desk.clock)();
        let orders: Vec<NewDealOrder> = batch
            .iter()
            .map(|p| NewDealOrder {
                user_id: p.hold.user,
                idempotency_key: p.hold.key.clone(),
                request_hash: p.hold.request_hash.clone(),
                quantity: p.hold.quantity,
                // The deal's book holds no browser: the purchase is the buyer account's.
                visitor: crate::events::VisitorId::of_user_id(p.hold.user).as_str().to_owned(),
                created_at,
            })
            .collect();
        let started = std::time::Instant::now();
        let written = self.desk.store.record_deal_orders(self.deal.id, &orders).await;
        tracing::debug!(deal_id = %self.deal.id, orders = orders.len(), took_ms = started.elapsed().as_secs_f64() * 1e3,
            ok = written.is_ok(), "deal batch written");
        match written {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    self.answer(pending, outcome);
                }
            }
            Err(e) => {
                let refusal = match e {
                    StoreError::DealNotRunning(_) => Some(Refusal::Ended),
                    StoreError::OutOfStock(_) => Some(Refusal::SoldOut),
                    _ => None,
                };
                tracing::warn!(deal_id = %self.deal.id, error = %e, orders = batch.len(), "a deal batch was not written");
                for pending in batch {
                    self.book.release(pending.hold.id);
                    for reply in pending.replies {
                        let answer = match refusal {
                            Some(r) => CommerceError::Deal(r),
                            None => CommerceError::Storage(StoreError::Backend(e.to_string())),
                        };
                        let _ = reply.send(Err(answer));
                    }
                }
                match refusal {
                    Some(Refusal::Ended) => self.book.close(),
                    // The store sold more than this book knew (another owner): start again from it.
                    Some(_) => self.reopen().await,
                    None => {}
                }
            }
        }
        self.publish_counts();
    }

    fn answer(&mut self, pending: Pending, outcome: DealOrderOutcome) {
        match outcome {
            DealOrderOutcome::Created(order) => {
                self.book.confirm(pending.hold.id, order.id);
                for reply in pending.replies {
                    let _ = reply.send(Ok(DealPurchase::Created(order.clone())));
                }
            }
            DealOrderOutcome::OverLimit { bought } => {
                // The database knows of purchases this owner did not (another owner's, before a
                // failover): the hold goes back and the buyer is told the limit.
                self.book.release(pending.hold.id);
                let refusal = Refusal::LimitReached { limit: self.deal.per_customer, taken: bought };
                for reply in pending.replies {
                    let _ = reply.send(Err(CommerceError::Deal(refusal)));
                }
            }
            DealOrderOutcome::Existing { order_id, request_hash } => {
                // The key named an earlier order: this request takes nothing.
                self.book.release(pending.hold.id);
                let same = request_hash == pending.hold.request_hash;
                let store = self.desk.store.clone();
                tokio::spawn(async move {
                    let earlier = if same { Some(store.order(order_id).await) } else { None };
                    for reply in pending.replies {
                        let _ = reply.send(match &earlier {
                            Some(Ok(order)) => Ok(DealPurchase::Replayed(order.clone())),
                            Some(Err(e)) => Err(CommerceError::Storage(StoreError::Backend(e.to_string()))),
                            None => Err(CommerceError::IdempotencyKeyReused),
                        });
                    }
                });
            }
        }
    }

    /// Forgets the deal in this node's running deals (if it is still this one there).
    fn disown(&self) {
        let mut running = self.desk.running.lock().expect("deals poisoned");
        if running.get(&self.deal.product_id).is_some_and(|o| o.deal.id == self.deal.id) {
            running.remove(&self.deal.product_id);
        }
    }

    /// Stops owning the deal (another node does now) without ending it: whatever still waits
    /// here is told to try again, and the retry reaches the new owner.
    fn let_go(self, mut queue: mpsc::Receiver<Command>, enders: Vec<oneshot::Sender<()>>) {
        self.disown();
        queue.close();
        drain_refusing(&mut queue, || CommerceError::Busy);
        for ender in enders {
            let _ = ender.send(());
        }
        tracing::warn!(deal_id = %self.deal.id, "deal no longer owned here");
    }

    async fn reopen(&mut self) {
        match self.desk.store.deal_sales(self.deal.id).await {
            Ok(sales) => {
                let closed = self.book.is_over((self.desk.clock)());
                self.book = DealBook::open(terms(&self.deal), &sales);
                if closed {
                    self.book.close();
                }
            }
            Err(e) => tracing::error!(deal_id = %self.deal.id, error = %e, "could not reread a deal's sales"),
        }
    }

    fn publish_counts(&self) {
        let counts = self.book.counts();
        let mut shown = self.counts.lock().expect("counts poisoned");
        if *shown != counts {
            *shown = counts;
            let _ = self.desk.news.send(DealNews::Stock { deal: self.deal.id, channel: self.deal.channel_id, counts });
        }
    }

    /// The deal is over and every hold answered: end it in the store (its unsold units go back on
    /// sale), stop owning it, and tell viewers.
    async fn finish(self, mut queue: mpsc::Receiver<Command>, enders: Vec<oneshot::Sender<()>>) {
        // Ended through another node already (which told everyone): end quietly.
        let told = matches!(self.desk.store.deal(self.deal.id).await, Ok(d) if d.status == DealStatus::Ended);
        let mut wait = Duration::from_millis(100);
        let ended = loop {
            match self.desk.store.end_deal(self.deal.id, (self.desk.clock)()).await {
                Ok(ended) => break ended,
                Err(e) => {
                    tracing::warn!(deal_id = %self.deal.id, error = %e, "could not end a deal; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        };
        self.disown();
        queue.close();
        drain_refusing(&mut queue, || CommerceError::Deal(Refusal::Ended));
        tracing::info!(deal_id = %ended.id, sold = ended.sold, listed = ended.listed, "deal ended");
        let _ = self.desk.bus.leases().release(&lease(ended.id), &self.desk.node).await;
        if !told {
            self.desk.tell(&Wire::Ended { deal: ended.id, product: ended.product_id }).await;
            let _ = self.desk.news.send(DealNews::Ended(ended));
        }
        for ender in enders {
            let _ = ender.send(());
        }
    }
}
