//! Orders: place (idempotent, stock-safe), list and read one's own, cancel.

use crate::dto::{List, OrderRequest, OrderView, PageQuery};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use olive_commerce::deal_book::Refusal;
use olive_commerce::deal_desk::DealPurchase;
use olive_commerce::{events, orders, CommerceError};
use olive_core::OrderId;
use olive_store::{Order, Page, PlacedOrder};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Forget cached product details whose stock an order changed.
async fn stock_changed(state: &AppState, order: &Order) {
    for item in &order.items {
        state.cache.invalidate_product(item.product_id).await;
    }
}

fn count(result: &'static str) {
    metrics::counter!("olive_orders_total", "result" => result).increment(1);
}

#[utoipa::path(post, operation_id = "orders_place", path = "/api/v1/orders", tag = "orders", request_body = OrderRequest,
    params(("Idempotency-Key" = String, Header, description = "Same key and same body return the same order")),
    responses((status = 201, body = OrderView), (status = 200, description = "a replay of an earlier request", body = OrderView),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn place(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    ApiJson(req): ApiJson<OrderRequest>,
) -> ApiResult<Response> {
    let key = headers.get(IDEMPOTENCY_HEADER).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "idempotency_key_required", "send an Idempotency-Key header")
    })?;
    let key = key.to_str().map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
    let items: Vec<_> = req.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    let started = std::time::Instant::now();
    let placed = place_order(&state, &signed_in, &headers, &items, key, req.channel_id, req.deal_id).await;
    metrics::histogram!("olive_checkout_duration_seconds").record(started.elapsed().as_secs_f64());
    placed
}

/// Places the order through the deal owner (for a deal's product, or the deal the buyer named)
/// or the store.
async fn place_order(
    state: &AppState,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    items: &[(olive_core::ProductId, i64)],
    key: &str,
    channel: Option<olive_core::ChannelId>,
    deal: Option<olive_core::DealId>,
) -> ApiResult<Response> {
    let state = state.clone();
    let now = Utc::now();
    match state.deals.checkout(signed_in.user(), items, key, deal, now).await {
        Ok(Some(DealPurchase::Created(order))) => return Ok(created(&state, order, signed_in.user(), headers).await),
        Ok(Some(DealPurchase::Replayed(order))) => return Ok(replayed(&order)),
        Ok(None) => {}
        Err(e) => {
            count(outcome(&e));
            return Err(e.into());
        }
    }
    match orders::place_order(state.store.as_ref(), signed_in.user(), items, key, channel, now).await {
        Ok(PlacedOrder::Created(order)) => {
            stock_changed(&state, &order).await;
            Ok(created(&state, order, signed_in.user(), headers).await)
        }
        Ok(PlacedOrder::Replayed(order)) => Ok(replayed(&order)),
        Err(e) => {
            count(outcome(&e));
            Err(e.into())
        }
    }
}

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

async fn created(state: &AppState, order: Order, buyer: &olive_store::User, headers: &HeaderMap) -> Response {
    count("created");
    let currency = order.currency.code();
    metrics::counter!("olive_revenue_total", "currency" => currency).increment(order.total_minor.max(0) as u64);
    // The recommender hears of the purchase, from the buyer's browser when it says which.
    let visitor = crate::extract::cookie_value(headers, crate::extract::VISITOR_COOKIE)
        .and_then(|v| events::VisitorId::parse(&v))
        .unwrap_or_else(|| events::VisitorId::of_user(buyer));
    let (store, buyer_for_events, order_for_events) = (state.store.clone(), buyer.clone(), order.clone());
    tokio::spawn(
        async move { events::purchased(store.as_ref(), &visitor, &buyer_for_events, &order_for_events).await },
    );
    // Its `order.placed` webhook was queued in the order's own transaction (see `olive_store::ORDER_PLACED_JOB`).
    (StatusCode::CREATED, ApiJson(OrderView::from(&order))).into_response()
}

fn replayed(order: &Order) -> Response {
    count("replayed");
    (StatusCode::OK, [("idempotent-replayed", "true")], ApiJson(OrderView::from(order))).into_response()
}

#[utoipa::path(get, operation_id = "orders_mine", path = "/api/v1/orders", tag = "orders", params(PageQuery),
    responses((status = 200, body = List<OrderView>), (status = 401, body = ErrorBody)))]
pub async fn mine(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<List<OrderView>>> {
    let page = Page::new(q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let orders = orders::my_orders(state.store.as_ref(), signed_in.user(), page).await?;
    Ok(ApiJson(List::page(orders.iter().map(OrderView::from).collect(), page)))
}

#[utoipa::path(get, operation_id = "orders_detail", path = "/api/v1/orders/{id}", params(("id" = i64, Path, description = "the order's id")), tag = "orders",
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<OrderId>,
) -> ApiResult<ApiJson<OrderView>> {
    let order = orders::order_for(state.store.as_ref(), signed_in.user(), id).await?;
    Ok(ApiJson(OrderView::from(&order)))
}

#[utoipa::path(post, operation_id = "orders_cancel", path = "/api/v1/orders/{id}/cancel", params(("id" = i64, Path, description = "the order's id")), tag = "orders",
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<OrderId>,
) -> ApiResult<ApiJson<OrderView>> {
    let order = orders::cancel_order(state.store.as_ref(), signed_in.user(), id, Utc::now()).await?;
    stock_changed(&state, &order).await;
    Ok(ApiJson(OrderView::from(&order)))
}
