//! The background job queue as admins see it.

use crate::dto::{JobView, List};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use olive_store::{JobStatus, Page};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// `queued`, `running`, `done` or `dead` (the dead letters).
    pub status: Option<JobStatus>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Background jobs, newest first; `?status=dead` lists the dead letters.
#[utoipa::path(get, operation_id = "jobs_list", path = "/api/v1/jobs", tag = "admin", params(JobQuery),
    responses((status = 200, body = List<JobView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<ApiJson<List<JobView>>> {
    let page = Page::new(q.limit.unwrap_or(50), q.offset.unwrap_or(0));
    let jobs = olive_commerce::admin::jobs(state.store.as_ref(), signed_in.user(), q.status, page).await?;
    Ok(ApiJson(List::page(jobs.iter().map(JobView::from).collect(), page)))
}
