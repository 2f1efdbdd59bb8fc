//! An order's effects outside the database, drained from its outbox: the jobs its own transaction
//! queued ([`olive_store::ORDER_PLACED_JOB`], [`olive_store::STOCK_CHANGED_JOB`]), so a crash
//! between the order's commit and these effects delays them and loses none.
//!
//! - Every node's read cache forgets the products whose stock changed (a message on the bus's
//!   cache topic; the node that took the order forgot its own copy at once).
//! - Registered webhooks get `order.placed`, written as the API shows the order.
//!
//! Both are idempotent, as at-least-once delivery needs: forgetting twice costs a cache miss, and
//! a delivery's id names the order so a redone job queues none twice.

use crate::webhooks::publish;
use crate::{Handler, JobError};
use async_trait::async_trait;
use olive_bus::Bus;
use olive_core::ProductId;
use olive_store::{Job, OrderPlacedNotice, StockChangedNotice, Store, StoreError};
use std::sync::Arc;

/// Tells every node that these products changed.
async fn announce(bus: &dyn Bus, products: &[ProductId]) -> Result<(), JobError> {
    for product in products {
        bus.publish(olive_bus::topics::CACHE_INVALIDATE, olive_bus::topics::CacheNotice::Product(product.0).to_bytes())
            .await
            .map_err(|e| JobError::Retry(format!("announcing product {product}: {e}")))?;
    }
    Ok(())
}

fn notice<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    serde_json::from_str(&job.payload).map_err(|e| JobError::Permanent(format!("bad {} payload: {e}", job.kind)))
}

/// Runs an [`olive_store::ORDER_PLACED_JOB`]. `view` writes the order as the API shows it
/// (`GET /api/v1/orders/{id}`), which is the webhook event's `data`.
pub struct OrderPlaced {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    view: fn(&olive_store::Order) -> serde_json::Value,
}

impl OrderPlaced {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, view: fn(&olive_store::Order) -> serde_json::Value) -> Self {
        OrderPlaced { store, bus, view }
    }
}

#[async_trait]
impl Handler for OrderPlaced {
    fn kind(&self) -> &'static str {
        olive_store::ORDER_PLACED_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let notice: OrderPlacedNotice = notice(job)?;
        announce(self.bus.as_ref(), &notice.stock_changed).await?;
        let order = match self.store.order(notice.order_id).await {
            Ok(order) => order,
            Err(StoreError::NotFound(_)) => return Err(JobError::Permanent("the order is gone".into())),
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        let event_id = format!("order.placed/{}", order.id);
        publish(self.store.as_ref(), "order.placed", &event_id, (self.view)(&order), order.created_at)
            .await
            .map(drop)
            .map_err(|e| JobError::Retry(e.to_string()))
    }
}

/// Runs a [`olive_store::STOCK_CHANGED_JOB`].
pub struct StockChanged {
    bus: Arc<dyn Bus>,
}

impl StockChanged {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        StockChanged { bus }
    }
}

#[async_trait]
impl Handler for StockChanged {
    fn kind(&self) -> &'static str {
        olive_store::STOCK_CHANGED_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let notice: StockChangedNotice = notice(job)?;
        announce(self.bus.as_ref(), &notice.products).await
    }
}
