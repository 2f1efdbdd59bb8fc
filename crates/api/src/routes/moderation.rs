//! Chat moderation routes for a channel's host and admins: delete a message, mute or ban a user,
//! lift it. Each change is recorded by `olive-commerce` and announced to every node's room.

use crate::dto::ChatRestrictionRequest;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, SignedIn};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use olive_commerce::moderation::{self, Restriction};
use olive_core::{ChannelId, UserId};

fn ids<A: std::str::FromStr, B: std::str::FromStr>(a: &str, b: &str) -> Result<(A, B), ApiError> {
    let not_found = || ApiError::not_found("resource");
    Ok((a.parse().map_err(|_| not_found())?, b.parse().map_err(|_| not_found())?))
}

/// Deletes a chat message; every viewer is told to drop it.
#[utoipa::path(delete, operation_id = "moderation_delete_message", path = "/api/v1/channels/{id}/chat/{message_id}", params(("id" = i64, Path, description = "the channel's id"), ("message_id" = i64, Path, description = "the chat message's id")), tag = "channels",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_message(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((channel, message)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (channel, message): (ChannelId, i64) = ids(&channel, &message)?;
    if moderation::delete_message(state.store.as_ref(), signed_in.user(), channel, message, Utc::now()).await? {
        state.hub.message_deleted(channel, message).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Mutes (`{"mute_minutes": N}`) or bans (`{"ban": true}`) a user in the channel's chat.
#[utoipa::path(put, operation_id = "moderation_restrict", path = "/api/v1/channels/{id}/chat/restrictions/{user_id}", params(("id" = i64, Path, description = "the channel's id"), ("user_id" = i64, Path, description = "the restricted user's id")), tag = "channels",
    request_body = ChatRestrictionRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn restrict(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((channel, user)): Path<(String, String)>,
    ApiJson(req): ApiJson<ChatRestrictionRequest>,
) -> ApiResult<StatusCode> {
    let (channel, user): (ChannelId, UserId) = ids(&channel, &user)?;
    let restriction = match (req.ban, req.mute_minutes) {
        (true, None) => Restriction::Ban,
        (false, Some(minutes)) => Restriction::Mute { minutes },
        _ => return Err(ApiError::invalid("ban", "give either \"ban\": true or \"mute_minutes\"")),
    };
    moderation::restrict(state.store.as_ref(), signed_in.user(), channel, user, restriction, Utc::now()).await?;
    state.hub.moderation_changed(channel).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a user's mute or ban.
#[utoipa::path(delete, operation_id = "moderation_lift", path = "/api/v1/channels/{id}/chat/restrictions/{user_id}", params(("id" = i64, Path, description = "the channel's id"), ("user_id" = i64, Path, description = "the restricted user's id")), tag = "channels",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn lift(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((channel, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (channel, user): (ChannelId, UserId) = ids(&channel, &user)?;
    if !moderation::lift(state.store.as_ref(), signed_in.user(), channel, user).await? {
        return Err(ApiError::not_found("restriction"));
    }
    state.hub.moderation_changed(channel).await;
    Ok(StatusCode::NO_CONTENT)
}
