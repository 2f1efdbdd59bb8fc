//! `POST /api/v1/events`: what the web app reports for the recommender, in batches. Anyone may
//! report; the browser's visitor cookie (given here if it has none) ties its events together, and a
//! signed-in visitor's also carry their account. Reports are paced per visitor and per client
//! address (a client without the cookie is a new visitor each time).

use crate::dto::{EventBatch, EventsAccepted};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{visitor, visitor_cookie, ApiJson, ClientIp, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use olive_commerce::events;
use std::time::Instant;

#[utoipa::path(post, operation_id = "events_report", path = "/api/v1/events", tag = "personalisation", request_body = EventBatch,
    responses((status = 202, body = EventsAccepted), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<EventBatch>,
) -> ApiResult<Response> {
    let (visitor, fresh) = visitor(&headers);
    let reported = batch.events.into_iter().map(Into::into).collect();
    let accepted = events::report(
        state.store.as_ref(),
        &state.event_pace,
        events::Reporter { visitor: &visitor, user: viewer.user(), address: olive_core::AddressKey::of(ip) },
        reported,
        Utc::now(),
        Instant::now(),
    )
    .await?;
    let mut response = (StatusCode::ACCEPTED, ApiJson(EventsAccepted { accepted })).into_response();
    if fresh {
        response.headers_mut().insert(header::SET_COOKIE, visitor_cookie(&state.settings, &visitor));
    }
    Ok(response)
}
