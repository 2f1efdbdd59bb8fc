//! Webhook endpoints, managed by admins. Deliveries go through the job queue (`olive-jobs`).

use super::auth::require_role;
use crate::dto::{List, WebhookCreate, WebhookView, WebhookWithSecret};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, IdPath, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use olive_commerce::CommerceError;
use olive_core::Role;
use olive_jobs::webhooks::{self, WebhookError};

fn webhook_error(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Invalid { field, message } => ApiError::invalid(field, message),
        WebhookError::Store(e) => CommerceError::from(e).into(),
    }
}

#[utoipa::path(post, operation_id = "webhooks_create", path = "/api/v1/webhooks", tag = "admin", request_body = WebhookCreate,
    responses((status = 201, body = WebhookWithSecret), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(req): ApiJson<WebhookCreate>,
) -> ApiResult<(StatusCode, ApiJson<WebhookWithSecret>)> {
    require_role(signed_in.user(), Role::Admin)?;
    let targets = state.settings.webhook_targets;
    let webhook = webhooks::register(state.store.as_ref(), &req.url, req.events, targets, Utc::now())
        .await
        .map_err(webhook_error)?;
    tracing::info!(webhook_id = webhook.id, url = %webhooks::redacted(&webhook.url), "webhook registered");
    Ok((StatusCode::CREATED, ApiJson(WebhookWithSecret { webhook: (&webhook).into(), secret: webhook.secret.clone() })))
}

#[utoipa::path(get, operation_id = "webhooks_list", path = "/api/v1/webhooks", tag = "admin",
    responses((status = 200, body = List<WebhookView>), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<ApiJson<List<WebhookView>>> {
    let all = olive_commerce::admin::webhooks(state.store.as_ref(), signed_in.user()).await?;
    Ok(ApiJson(List { items: all.iter().map(WebhookView::from).collect(), next_offset: None }))
}

#[utoipa::path(delete, operation_id = "webhooks_delete", path = "/api/v1/webhooks/{id}", params(("id" = i64, Path, description = "the webhook's id")), tag = "admin",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<i64>,
) -> ApiResult<StatusCode> {
    olive_commerce::admin::delete_webhook(state.store.as_ref(), signed_in.user(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
