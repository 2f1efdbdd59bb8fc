//! Live deals: a host starts one on a line-up product, viewers see it in the room, buyers order it
//! through `POST /api/v1/orders` (see `routes::orders`), and it ends on time or when its host ends
//! it. The selling itself is `olive_commerce::deal_desk`'s.

use crate::dto::{DealRequestBody, DealView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, IdPath, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use olive_commerce::deals::DealRequest;
use olive_core::{ChannelId, DealId};

fn view(state: &AppState, deal: &olive_store::Deal) -> DealView {
    DealView::new(deal, state.deals.counts(deal.id))
}

#[utoipa::path(post, operation_id = "deals_start", path = "/api/v1/channels/{id}/deals", params(("id" = i64, Path, description = "the channel's id")), tag = "channels", request_body = DealRequestBody,
    responses((status = 201, body = DealView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "a deal already runs, or not enough stock", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(channel): IdPath<ChannelId>,
    ApiJson(req): ApiJson<DealRequestBody>,
) -> ApiResult<(StatusCode, ApiJson<DealView>)> {
    let req = DealRequest {
        product_id: req.product_id,
        price_minor: req.price_minor,
        quantity: req.quantity,
        per_customer_limit: req.per_customer_limit,
        duration_s: req.duration_s,
    };
    let deal = state.deals.start(signed_in.user(), channel, &req).await?;
    state.cache.invalidate_product(deal.product_id).await;
    Ok((StatusCode::CREATED, ApiJson(view(&state, &deal))))
}

/// The channel's running deal.
#[utoipa::path(get, operation_id = "deals_current", path = "/api/v1/channels/{id}/deal", params(("id" = i64, Path, description = "the channel's id")), tag = "channels",
    responses((status = 200, body = DealView), (status = 404, description = "no deal is running", body = ErrorBody)))]
pub async fn current(
    State(state): State<AppState>,
    IdPath(channel): IdPath<ChannelId>,
) -> ApiResult<ApiJson<DealView>> {
    let deal = olive_commerce::deals::running(state.store.as_ref(), channel).await?;
    let deal = deal.ok_or_else(|| ApiError::not_found("deal"))?;
    Ok(ApiJson(view(&state, &deal)))
}

#[utoipa::path(get, operation_id = "deals_detail", path = "/api/v1/deals/{id}", params(("id" = i64, Path, description = "the deal's id")), tag = "channels",
    responses((status = 200, body = DealView), (status = 404, body = ErrorBody)))]
pub async fn detail(State(state): State<AppState>, IdPath(id): IdPath<DealId>) -> ApiResult<ApiJson<DealView>> {
    let deal = olive_commerce::deals::deal(state.store.as_ref(), id).await?;
    Ok(ApiJson(view(&state, &deal)))
}

/// Ends a deal before its time. Orders already being written are still sold at the deal price;
/// the unsold units go back to the product's stock.
#[utoipa::path(post, operation_id = "deals_end", path = "/api/v1/deals/{id}/end", params(("id" = i64, Path, description = "the deal's id")), tag = "channels",
    responses((status = 200, body = DealView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<DealId>,
) -> ApiResult<ApiJson<DealView>> {
    let deal = state.deals.end(signed_in.user(), id).await?;
    state.cache.invalidate_product(deal.product_id).await;
    Ok(ApiJson(view(&state, &deal)))
}
