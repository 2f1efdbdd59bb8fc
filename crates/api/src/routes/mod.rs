//! Handlers, one module per resource. Each one parses, calls the domain, and maps the result.

pub mod auth;
pub mod channels;
pub mod cost;
pub mod deals;
pub mod events;
pub mod feed;
pub mod health;
pub mod jobs;
pub mod live;
pub mod moderation;
pub mod orders;
pub mod products;
pub mod replays;
pub mod room;
pub mod similar;
pub mod users;
pub mod vod;
pub mod webhooks;

use crate::error::ApiError;
use axum::http::StatusCode;

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}
