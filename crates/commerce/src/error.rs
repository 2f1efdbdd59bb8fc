//! The one error type of the commerce domain.

use olive_core::ProductId;
use olive_store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CommerceError {
    /// An input field is present but not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("sign-in required")]
    Unauthenticated,
    #[error("you may not do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("product {0} is out of stock")]
    OutOfStock(ProductId),
    #[error("product {0} is not on sale")]
    ProductUnavailable(ProductId),
    #[error("the Idempotency-Key was already used for a different order")]
    IdempotencyKeyReused,
    #[error("the order is {0} and can no longer be cancelled")]
    NotCancellable(String),
    #[error("the replay is still being recorded")]
    StillRecording,
    #[error("too many attempts; try again in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    #[error(transparent)]
    Deal(#[from] crate::deal_book::Refusal),
    #[error("the channel or the product already has a running deal")]
    DealRunning,
    #[error("too many orders at once; try again")]
    Busy,
    #[error("storage is unavailable")]
    Storage(#[source] StoreError),
    #[error("object storage is unavailable")]
    Objects(#[source] olive_objects::ObjectError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommerceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CommerceError::Invalid { field, message: message.into() }
    }
}

impl From<StoreError> for CommerceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => CommerceError::NotFound(what),
            StoreError::AlreadyExists("user") => CommerceError::EmailTaken,
            StoreError::OutOfStock(p) => CommerceError::OutOfStock(p),
            StoreError::ProductUnavailable(p) => CommerceError::ProductUnavailable(p),
            StoreError::UnknownProduct(p) => {
                CommerceError::invalid("product_id", format!("product {p} does not exist"))
            }
            StoreError::MixedCurrency => {
                CommerceError::invalid("items", "all items of an order must share one currency")
            }
            StoreError::IdempotencyMismatch => CommerceError::IdempotencyKeyReused,
            StoreError::NotCancellable(s) => CommerceError::NotCancellable(s.to_string()),
            other => CommerceError::Storage(other),
        }
    }
}

impl From<olive_objects::ObjectError> for CommerceError {
    fn from(e: olive_objects::ObjectError) -> Self {
        match e {
            olive_objects::ObjectError::NotFound(_) => CommerceError::NotFound("object"),
            other => CommerceError::Objects(other),
        }
    }
}
