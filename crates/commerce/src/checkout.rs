//! Checkout: the one way an order is placed. The request is checked once (its idempotency key and
//! its lines, merged and sorted as the engines lock them), then sold through the running deal on
//! its product, if any (its owner holds the deal's units: see [`crate::deal_desk`]), or taken
//! from the catalogue's stock. Either way the order's transaction also writes its purchase events
//! and its outbox (the `order.placed` job: see [`olive_store::ORDER_PLACED_JOB`]), so nothing the
//! order sets off is lost to a crash after it commits. What a caller does with its own memory (a
//! read cache) is told in [`Checkout::Created::stock_changed`].

use crate::deal_book::Refusal;
use crate::deal_desk::{DealDesk, DealPurchase};
use crate::events::VisitorId;
use crate::orders::{check_idempotency_key, normalise_lines, request_hash};
use crate::{CommerceError, Result};
use chrono::{DateTime, Utc};
use olive_core::{ChannelId, DealId, ProductId};
use olive_store::{ChannelStore, NewOrder, Order, OrderLine, PlacedOrder, Store, StoreError, User};

/// What a buyer asks for.
pub struct CheckoutRequest<'a> {
    pub buyer: &'a User,
    /// The browser it comes from (its purchase events are recorded under it).
    pub visitor: VisitorId,
    pub items: &'a [(ProductId, i64)],
    pub idempotency_key: &'a str,
    /// The live it was placed from: the host's sales figures count it, if the channel could have
    /// sold it (it is live, or shows one of the products).
    pub channel: Option<ChannelId>,
    /// The deal whose card the buyer pressed: refused if it is not the one running now.
    pub deal: Option<DealId>,
    pub now: DateTime<Utc>,
}

/// What checkout did.
#[derive(Debug)]
pub enum Checkout {
    Created {
        order: Order,
        /// Products whose catalogue stock the order took: a cache of them is stale now.
        stock_changed: Vec<ProductId>,
    },
    /// The same request (key and lines) was answered before: the same order again.
    Replayed(Order),
}

/// Places an order; see the module documentation.
pub async fn checkout(store: &dyn Store, deals: &DealDesk, request: CheckoutRequest<'_>) -> Result<Checkout> {
    let started = std::time::Instant::now();
    let placed = place(store, deals, &request).await;
    metrics::histogram!("olive_checkout_duration_seconds").record(started.elapsed().as_secs_f64());
    let result = match &placed {
        Ok(Checkout::Created { order, .. }) => {
            tracing::info!(order_id = %order.id, user_id = %request.buyer.id, total = order.total_minor, "order placed");
            let currency = order.currency.code();
            metrics::counter!("olive_revenue_total", "currency" => currency).increment(order.total_minor.max(0) as u64);
            "created"
        }
        Ok(Checkout::Replayed(_)) => "replayed",
        Err(e) => outcome(e),
    };
    metrics::counter!("olive_orders_total", "result" => result).increment(1);
    placed
}

async fn place(store: &dyn Store, deals: &DealDesk, request: &CheckoutRequest<'_>) -> Result<Checkout> {
    let key = check_idempotency_key(request.idempotency_key)?;
    let lines = normalise_lines(request.items)?;
    match deals.checkout(request.buyer, &lines, &key, request.deal, request.now).await? {
        Some(DealPurchase::Created(order)) => return Ok(Checkout::Created { order, stock_changed: Vec::new() }),
        Some(DealPurchase::Replayed(order)) => return Ok(Checkout::Replayed(order)),
        None => {}
    }
    if let Some(channel) = request.channel {
        credited_channel(store, channel, &lines).await?;
    }
    let new = NewOrder {
        user_id: request.buyer.id,
        idempotency_key: key,
        request_hash: request_hash(&lines),
        lines,
        channel_id: request.channel,
        visitor: request.visitor.as_str().to_owned(),
        created_at: request.now,
    };
    Ok(match store.place_order(new).await? {
        PlacedOrder::Created(order) => {
            let stock_changed = order.items.iter().map(|i| i.product_id).collect();
            Checkout::Created { order, stock_changed }
        }
        PlacedOrder::Replayed(order) => Checkout::Replayed(order),
    })
}

/// A sale is credited to a channel (its host's stats, attribution) only if the order could have
/// come from it: the channel is live, or one of the order's products is in its line-up.
async fn credited_channel(store: &dyn ChannelStore, channel: ChannelId, lines: &[OrderLine]) -> Result<()> {
    let found = match store.channel(channel).await {
        Err(StoreError::NotFound(_)) => return Err(CommerceError::invalid("channel_id", "no such channel")),
        other => other?,
    };
    if found.status == olive_store::ChannelStatus::Live {
        return Ok(());
    }
    let lineup = store.lineup(channel).await?;
    if lines.iter().any(|l| lineup.contains(&l.product_id)) {
        return Ok(());
    }
    Err(CommerceError::invalid("channel_id", "the channel is not live and shows none of the order's products"))
}

/// The `result` label of `olive_orders_total` for a refused checkout.
fn outcome(e: &CommerceError) -> &'static str {
    match e {
        CommerceError::OutOfStock(_) | CommerceError::Deal(Refusal::SoldOut | Refusal::NotEnough { .. }) => {
            "out_of_stock"
        }
        CommerceError::Deal(Refusal::LimitReached { .. }) => "limit_reached",
        CommerceError::Invalid { .. } | CommerceError::IdempotencyKeyReused | CommerceError::Deal(_) => "invalid",
        CommerceError::ProductUnavailable(_) => "unavailable",
        CommerceError::Busy => "busy",
        _ => "error",
    }
}
