//! Replays: the JSON resource (list, detail, hide, delete). Playback lives in `vod`.

use crate::dto::{ChatUserView, List, ReplayChatPage, ReplayChatView, ReplayUpdate, ReplayView};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use olive_commerce::{replays, screen};
use olive_core::{ChannelId, ReplayId};
use olive_store::Page;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReplayListQuery {
    /// Only this channel's replays.
    pub channel_id: Option<ChannelId>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Replays ready to watch, newest first.
#[utoipa::path(get, operation_id = "replays_list", path = "/api/v1/replays", tag = "replays", params(ReplayListQuery),
    responses((status = 200, body = List<ReplayView>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReplayListQuery>,
) -> ApiResult<ApiJson<List<ReplayView>>> {
    let page = Page::new(q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let found = replays::list(state.store.as_ref(), q.channel_id, page).await?;
    let mut items = Vec::with_capacity(found.len());
    for replay in &found {
        let pictures = replays::pictures(state.store.as_ref(), replay).await?;
        items.push(ReplayView::with_pins(replay, &replays::pins(state.store.as_ref(), replay).await?, &pictures));
    }
    Ok(ApiJson(List::page(items, page)))
}

/// One replay; hidden and unfinished ones only for their host and admins.
#[utoipa::path(get, operation_id = "replays_detail", path = "/api/v1/replays/{id}", params(("id" = i64, Path, description = "the replay's id")), tag = "replays",
    responses((status = 200, body = ReplayView), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    IdPath(id): IdPath<ReplayId>,
) -> ApiResult<ApiJson<ReplayView>> {
    let replay = replays::visible(state.store.as_ref(), viewer.user(), id).await?;
    let pins = replays::pins(state.store.as_ref(), &replay).await?;
    let pictures = replays::pictures(state.store.as_ref(), &replay).await?;
    let mut view = ReplayView::with_pins(&replay, &pins, &pictures);
    view.labelling = Some(screen::cost(&replay, &pictures));
    Ok(ApiJson(view))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReplayChatQuery {
    /// Messages after this id (the last one of the previous page).
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

/// The chat of a replay, oldest first, each message with its offset into the replay.
#[utoipa::path(get, operation_id = "replays_chat", path = "/api/v1/replays/{id}/chat", tag = "replays", params(("id" = i64, Path, description = "the replay's id"), ReplayChatQuery),
    responses((status = 200, body = ReplayChatPage), (status = 404, body = ErrorBody)))]
pub async fn chat(
    State(state): State<AppState>,
    viewer: Viewer,
    IdPath(id): IdPath<ReplayId>,
    ApiQuery(q): ApiQuery<ReplayChatQuery>,
) -> ApiResult<ApiJson<ReplayChatPage>> {
    let replay = replays::visible(state.store.as_ref(), viewer.user(), id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 200);
    let messages = replays::chat(state.store.as_ref(), &replay, q.after.unwrap_or(0), limit).await?;
    let next = (messages.len() as i64 == limit).then(|| messages.last().map(|m| m.id)).flatten();
    let items = messages
        .into_iter()
        .map(|m| ReplayChatView {
            id: m.id,
            user: ChatUserView { id: m.user_id, name: m.author },
            offset_ms: (m.created_at - replay.started_at).num_milliseconds().max(0),
            text: m.text,
            ts: m.created_at,
        })
        .collect();
    Ok(ApiJson(ReplayChatPage { items, next_after: next }))
}

/// Hides or shows a replay (its host, admins).
#[utoipa::path(patch, operation_id = "replays_update", path = "/api/v1/replays/{id}", params(("id" = i64, Path, description = "the replay's id")), tag = "replays", request_body = ReplayUpdate,
    responses((status = 200, body = ReplayView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ReplayId>,
    ApiJson(req): ApiJson<ReplayUpdate>,
) -> ApiResult<ApiJson<ReplayView>> {
    let replay = replays::set_hidden(state.store.as_ref(), signed_in.user(), id, req.hidden).await?;
    Ok(ApiJson(ReplayView::from(&replay)))
}

/// Deletes a replay and its recording, segments and thumbnails included (its host, admins).
#[utoipa::path(delete, operation_id = "replays_delete", path = "/api/v1/replays/{id}", params(("id" = i64, Path, description = "the replay's id")), tag = "replays",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "still recording", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<ReplayId>,
) -> ApiResult<StatusCode> {
    let freed = replays::delete(state.store.as_ref(), &state.objects, signed_in.user(), id).await?;
    let day = chrono::Utc::now().date_naive();
    state.media.usage().add(day, Some(freed.channel), olive_store::Meter::StoredBytes, -freed.bytes);
    Ok(StatusCode::NO_CONTENT)
}
