//! Channels: the public list (from the in-memory cache) and detail, and what a host does with
//! their own channel — create, edit, rotate the stream key, set the line-up.

use crate::dto::{
    ChannelCreate, ChannelStats, ChannelUpdate, ChannelView, ChannelWithKey, Lineup, List, PinCreated, PinRequest,
    RevenueView, StatsQuery, StreamKeyView,
};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use olive_commerce::channels::{self, ChannelChanges, ChannelInput};
use olive_commerce::screen;
use olive_core::{ChannelId, Money};
use olive_media::PinRange;

#[utoipa::path(get, operation_id = "channels_list", path = "/api/v1/channels", tag = "channels",
    responses((status = 200, body = List<ChannelView>)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    let body = state.cache.channel_list().await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(get, operation_id = "channels_detail", path = "/api/v1/channels/{id}", params(("id" = i64, Path, description = "the channel's id")), tag = "channels",
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    IdPath(id): IdPath<ChannelId>,
) -> ApiResult<ApiJson<ChannelView>> {
    let channel = channels::channel(state.store.as_ref(), id).await?;
    let mut view = ChannelView::from(&channel);
    view.health = state.media.health(id);
    if state.media.is_publishing(id) {
        view.ladder = Some(state.media.ladders().status(id));
    }
    view.viewers = state.hub.viewers(id);
    view.labels = screen::now(state.store.as_ref(), id).await?;
    // Its host's studio shows the chat rules and where to stream to.
    if viewer.user().is_some_and(|user| channels::can_manage(user, &channel)) {
        view.chat_banned_words = Some(channel.chat_banned_words.clone());
        view.ingest_url = Some(state.settings.ingest_url.clone());
    }
    Ok(ApiJson(view))
}

#[utoipa::path(post, operation_id = "channels_create", path = "/api/v1/channels", tag = "channels", request_body = ChannelCreate,
    responses((status = 201, body = ChannelWithKey), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(req): ApiJson<ChannelCreate>,
) -> ApiResult<(StatusCode, ApiJson<ChannelWithKey>)> {
    let input = ChannelInput { title: req.title, description: req.description, scheduled_at: req.scheduled_at };
    let (channel, key) = channels::create_channel(state.store.as_ref(), signed_in.user(), input, Utc::now()).await?;
    state.cache.invalidate_channels().await;
    let body = ChannelWithKey {
        channel: ChannelView::from(&channel),
        stream_key: key.expose().to_owned(),
        ingest_url: state.settings.ingest_url.clone(),
    };
    Ok((StatusCode::CREATED, ApiJson(body)))
}

#[utoipa::path(patch, operation_id = "channels_update", path = "/api/v1/channels/{id}", params(("id" = i64, Path, description = "the channel's id")), tag = "channels", request_body = ChannelUpdate,
    responses((status = 200, body = ChannelView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ChannelId>,
    ApiJson(req): ApiJson<ChannelUpdate>,
) -> ApiResult<ApiJson<ChannelView>> {
    let changes = ChannelChanges {
        title: req.title,
        description: req.description,
        scheduled_at: req.scheduled_at,
        kind: req.kind,
        thumbnail_interval_s: req.thumbnail_interval_s,
        chat_slow_mode_s: req.chat_slow_mode_s,
        chat_banned_words: req.chat_banned_words,
    };
    let chat_rules = changes.chat_slow_mode_s.is_some() || changes.chat_banned_words.is_some();
    let channel = channels::update_channel(state.store.as_ref(), signed_in.user(), id, changes, Utc::now()).await?;
    state.cache.invalidate_channels().await;
    if chat_rules {
        state.hub.moderation_changed(id).await;
    }
    let mut view = ChannelView::from(&channel);
    view.chat_banned_words = Some(channel.chat_banned_words.clone());
    Ok(ApiJson(view))
}

#[utoipa::path(post, operation_id = "channels_rotate_key", path = "/api/v1/channels/{id}/stream-key", params(("id" = i64, Path, description = "the channel's id")), tag = "channels",
    responses((status = 200, body = StreamKeyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ChannelId>,
) -> ApiResult<ApiJson<StreamKeyView>> {
    let key = channels::rotate_stream_key(state.store.as_ref(), signed_in.user(), id).await?;
    Ok(ApiJson(StreamKeyView { stream_key: key.expose().to_owned(), ingest_url: state.settings.ingest_url.clone() }))
}

/// Pins a product now: viewers get `{"type":"pin","product","pts"}` and the live playlist an
/// `EXT-X-DATERANGE` at `pts`, the media time of the part being produced.
#[utoipa::path(post, operation_id = "channels_pin", path = "/api/v1/channels/{id}/pin", params(("id" = i64, Path, description = "the channel's id")), tag = "channels", request_body = PinRequest,
    responses((status = 201, body = PinCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pin(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ChannelId>,
    ApiJson(req): ApiJson<PinRequest>,
) -> ApiResult<(StatusCode, ApiJson<PinCreated>)> {
    let now = Utc::now();
    let live = state.media.channel(id);
    // On the media timeline when live; the wall clock otherwise.
    let pts = live.as_ref().and_then(|l| l.media_now()).unwrap_or(now);
    let (pin, product) = channels::pin(state.store.as_ref(), signed_in.user(), id, req.product_id, pts, now).await?;
    state.media.add_pin(id, PinRange { id: pin.id, product_id: product.id.0, start: pts });
    state.hub.pinned(id, &product, pts).await;
    metrics::counter!("olive_pins_total", "channel" => id.to_string()).increment(1);
    Ok((StatusCode::CREATED, ApiJson(PinCreated { id: pin.id, product_id: product.id, pts })))
}

/// The host's live stats: viewers now, orders and revenue since the live started (or `since`).
#[utoipa::path(get, operation_id = "channels_stats", path = "/api/v1/channels/{id}/stats", tag = "channels", params(("id" = i64, Path, description = "the channel's id"), StatsQuery),
    responses((status = 200, body = ChannelStats), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ChannelId>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<ApiJson<ChannelStats>> {
    let since = q
        .since
        .or_else(|| state.media.health(id).map(|h| h.started_at))
        .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
    let sales = channels::sales(state.store.as_ref(), signed_in.user(), id, since).await?;
    let mut revenue: Vec<RevenueView> = sales
        .revenue
        .into_iter()
        .map(|(currency, total_minor)| RevenueView {
            currency,
            total_minor,
            total_display: Money::new(total_minor, currency).to_string(),
        })
        .collect();
    revenue.sort_by_key(|r| std::cmp::Reverse(r.total_minor));
    Ok(ApiJson(ChannelStats { since, viewers: state.hub.viewers(id), orders: sales.orders, revenue }))
}

#[utoipa::path(put, operation_id = "channels_set_lineup", path = "/api/v1/channels/{id}/lineup", params(("id" = i64, Path, description = "the channel's id")), tag = "channels", request_body = Lineup,
    responses((status = 200, body = Lineup), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_lineup(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ChannelId>,
    ApiJson(req): ApiJson<Lineup>,
) -> ApiResult<ApiJson<Lineup>> {
    let product_ids = channels::set_lineup(state.store.as_ref(), signed_in.user(), id, req.product_ids).await?;
    Ok(ApiJson(Lineup { product_ids }))
}

#[utoipa::path(get, operation_id = "channels_lineup", path = "/api/v1/channels/{id}/lineup", params(("id" = i64, Path, description = "the channel's id")), tag = "channels",
    responses((status = 200, body = Lineup), (status = 404, body = ErrorBody)))]
pub async fn lineup(State(state): State<AppState>, IdPath(id): IdPath<ChannelId>) -> ApiResult<ApiJson<Lineup>> {
    let product_ids = channels::lineup(state.store.as_ref(), id).await?;
    Ok(ApiJson(Lineup { product_ids }))
}
