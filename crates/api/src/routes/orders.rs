//! Orders: place (idempotent, stock-safe), list and read one's own, cancel.

use crate::dto::{List, OrderRequest, OrderView, PageQuery};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use olive_commerce::checkout::{self, Checkout, CheckoutRequest};
use olive_commerce::events::VisitorId;
use olive_commerce::orders;
use olive_core::OrderId;
use olive_store::Page;

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Forgets the cached details of products whose stock changed, here and (announced) on every node,
/// at once; the order's outbox job announces them again after a crash.
async fn stock_changed_here_and_there(state: &AppState, products: Vec<olive_core::ProductId>) {
    for product in products {
        state.cache.invalidate_product(product).await;
    }
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
    // The recommender hears of the purchase from the buyer's browser, when it says which.
    let visitor = crate::extract::cookie_value(&headers, crate::extract::VISITOR_COOKIE)
        .and_then(|v| VisitorId::parse(&v))
        .unwrap_or_else(|| VisitorId::of_user(signed_in.user()));
    let request = CheckoutRequest {
        buyer: signed_in.user(),
        visitor,
        items: &items,
        idempotency_key: key,
        channel: req.channel_id,
        deal: req.deal_id,
        now: Utc::now(),
    };
    match checkout::checkout(state.store.as_ref(), &state.deals, request).await? {
        Checkout::Created { order, stock_changed } => {
            stock_changed_here_and_there(&state, stock_changed).await;
            Ok((StatusCode::CREATED, ApiJson(OrderView::from(&order))).into_response())
        }
        Checkout::Replayed(order) => {
            Ok((StatusCode::OK, [("idempotent-replayed", "true")], ApiJson(OrderView::from(&order))).into_response())
        }
    }
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
    let products = order.items.iter().map(|i| i.product_id).collect();
    stock_changed_here_and_there(&state, products).await;
    Ok(ApiJson(OrderView::from(&order)))
}
