//! The words every Olive crate shares: typed ids, money in minor units, account roles, what a picture was labelled and a
//! clock-free rate limiter. This crate holds no I/O and no policy; it only gives names to things so
//! that a `ChannelId` is never passed where a `ProductId` is expected.

pub mod address;
pub mod ids;
pub mod label;
pub mod money;
pub mod ratelimit;
pub mod role;

pub use address::{is_public_unicast, AddressKey};
pub use ids::{ChannelId, DealId, OrderId, ProductId, ReplayId, UserId};
pub use label::Label;
pub use money::{Currency, Money};
pub use role::Role;
