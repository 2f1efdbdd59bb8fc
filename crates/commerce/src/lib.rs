//! The commerce domain: who may do what, what makes an input valid, and the order of steps for
//! signing up, logging in, editing the catalogue, running channels and placing orders. Each
//! operation takes the acting user, a `&dyn Store` and the current time, and returns a domain
//! result; `api` maps [`CommerceError`] to HTTP once. This crate must never see a request, a
//! header or a status code, and never read a clock itself.

pub mod accounts;
pub mod admin;
pub mod catalogue;
pub mod channels;
pub mod checkout;
pub mod cost;
pub mod deal_book;
pub mod deal_desk;
pub mod deals;
mod error;
pub mod events;
pub mod moderation;
pub mod orders;
pub mod recommendations;
pub mod replays;
pub mod screen;
pub mod validate;

pub use error::CommerceError;

pub type Result<T, E = CommerceError> = std::result::Result<T, E>;
