//! The cost report as admins see it: measured usage priced per channel and per day, as
//! `olive cost report --json` prints it.

use super::auth::require_role;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, SignedIn};
use crate::state::AppState;
use axum::extract::State;
use chrono::{Days, NaiveDate, Utc};
use olive_commerce::cost::{self, CostReport};
use olive_core::Role;

/// The longest period one request may price.
const MAX_DAYS: i64 = 366;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    /// First day, `YYYY-MM-DD` (default: the first of this month).
    #[param(value_type = Option<String>)]
    pub from: Option<NaiveDate>,
    /// Last day, included (default: today).
    #[param(value_type = Option<String>)]
    pub to: Option<NaiveDate>,
}

/// Estimated spend per channel and per day at the configured unit prices.
#[utoipa::path(get, operation_id = "cost_report", path = "/api/v1/admin/cost", tag = "admin", params(CostQuery),
    responses((status = 200, body = CostReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(q): ApiQuery<CostQuery>,
) -> ApiResult<ApiJson<CostReport>> {
    require_role(signed_in.user(), Role::Admin)?;
    let today = Utc::now().date_naive();
    let from = q.from.unwrap_or_else(|| cost::month_of(today).0);
    let last = q.to.unwrap_or(today);
    if last < from {
        return Err(ApiError::invalid("to", "must not be before from"));
    }
    if (last - from).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid("to", "a report covers at most 366 days"));
    }
    let until = last + Days::new(1);
    let report = cost::load(state.store.as_ref(), state.prices, from, until).await?;
    Ok(ApiJson(report))
}
