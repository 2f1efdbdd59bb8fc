//! The one mapping from failures to HTTP: `{"error":{"code":"snake_case","message":"…"}}` with a
//! fitting status. Storage failures are logged with their cause and answered with a bland 503, so
//! no SQL or path ever reaches a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use olive_commerce::CommerceError;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; clients branch on it.
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "you may not do this")
    }

    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("{field}: {message}"))
    }
}

impl From<CommerceError> for ApiError {
    fn from(e: CommerceError) -> Self {
        use CommerceError as E;
        let msg = e.to_string();
        match e {
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg),
            E::InvalidCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", msg),
            E::Unauthenticated => ApiError::unauthenticated(),
            E::Forbidden => ApiError::forbidden(),
            E::NotFound(what) => ApiError::not_found(what),
            E::EmailTaken => ApiError::new(StatusCode::CONFLICT, "email_taken", msg),
            E::OutOfStock(_) => ApiError::new(StatusCode::CONFLICT, "out_of_stock", msg),
            E::ProductUnavailable(_) => ApiError::new(StatusCode::CONFLICT, "product_unavailable", msg),
            E::IdempotencyKeyReused => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", msg),
            E::NotCancellable(_) => ApiError::new(StatusCode::CONFLICT, "not_cancellable", msg),
            E::StillRecording => ApiError::new(StatusCode::CONFLICT, "still_recording", msg),
            E::Deal(refusal) => {
                use olive_commerce::deal_book::Refusal as R;
                match refusal {
                    R::SoldOut | R::NotEnough { .. } => ApiError::new(StatusCode::CONFLICT, "out_of_stock", msg),
                    R::Ended => ApiError::new(StatusCode::CONFLICT, "deal_ended", msg),
                    R::LimitReached { .. } => ApiError::new(StatusCode::CONFLICT, "deal_limit_reached", msg),
                    R::KeyReused => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", msg),
                }
            }
            E::DealRunning => ApiError::new(StatusCode::CONFLICT, "deal_running", msg),
            E::Busy => ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", msg)
            },
            E::RateLimited(after) => ApiError {
                retry_after: Some(after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", msg)
            },
            E::Storage(cause) => {
                tracing::error!(error = %cause, "storage failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "storage is unavailable; try again",
                )
            }
            E::Objects(cause) => {
                tracing::error!(error = %cause, "object storage failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "storage is unavailable; try again",
                )
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
