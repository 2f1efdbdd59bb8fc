//! Olive's recommender, in our own code on `faer`: an implicit-feedback matrix factorisation
//! ([`als`]), a closed-form item-item model ([`item_item`]), and their offline evaluation
//! ([`eval`]). Everything here is pure: interactions in, scores out; no I/O, no clock, no ids other
//! than dense indices (the caller maps shoppers, products and shows to them).

pub mod als;
pub mod dataset;
pub mod eval;
pub mod interactions;
pub mod item_item;
pub mod models;
pub mod serve;

pub use als::{AlsParams, Factors};
pub use interactions::Interactions;
pub use item_item::{ItemItem, ItemItemParams};
