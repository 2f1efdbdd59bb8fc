//! Admin view of accounts: list them and change roles.

use super::auth::require_role;
use crate::dto::{List, PageQuery, UserUpdate, UserView};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use olive_core::{Role, UserId};
use olive_store::Page;

#[utoipa::path(get, path = "/api/v1/users", tag = "admin", params(PageQuery),
    responses((status = 200, body = List<UserView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<List<UserView>>> {
    require_role(signed_in.user(), Role::Admin)?;
    let page = Page::new(q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let users = state.store.list_users(page).await.map_err(olive_commerce::CommerceError::from)?;
    Ok(ApiJson(List::page(users.iter().map(UserView::from).collect(), page)))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "admin", request_body = UserUpdate,
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<UserId>,
    ApiJson(change): ApiJson<UserUpdate>,
) -> ApiResult<ApiJson<UserView>> {
    require_role(signed_in.user(), Role::Admin)?;
    let user = state.store.set_user_role(id, change.role).await.map_err(olive_commerce::CommerceError::from)?;
    state.cache.invalidate_user(id).await;
    tracing::info!(user_id = %id, role = %change.role, by = %signed_in.user().id, "role changed");
    Ok(ApiJson(UserView::from(&user)))
}
