//! Admin view of accounts: list them and change roles.

use crate::dto::{List, PageQuery, UserUpdate, UserView};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use olive_core::UserId;
use olive_store::Page;

#[utoipa::path(get, operation_id = "users_list", path = "/api/v1/users", tag = "admin", params(PageQuery),
    responses((status = 200, body = List<UserView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<List<UserView>>> {
    let page = Page::new(q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let users = olive_commerce::admin::users(state.store.as_ref(), signed_in.user(), page).await?;
    Ok(ApiJson(List::page(users.iter().map(UserView::from).collect(), page)))
}

#[utoipa::path(patch, operation_id = "users_update", path = "/api/v1/users/{id}", params(("id" = i64, Path, description = "the user's id")), tag = "admin", request_body = UserUpdate,
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    IdPath(id): IdPath<UserId>,
    ApiJson(change): ApiJson<UserUpdate>,
) -> ApiResult<ApiJson<UserView>> {
    let user = olive_commerce::accounts::set_role(state.store.as_ref(), signed_in.user(), id, change.role).await?;
    // Every node reads the account's sessions again, and its room sockets reconnect as the new role.
    state.cache.invalidate_user(id).await;
    Ok(ApiJson(UserView::from(&user)))
}
