//! Newtype ids. Every table's primary key is a positive 64-bit integer; the wrappers exist so the
//! compiler, not a reviewer, catches an order id used as a product id.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// An account.
    UserId
);
id_type!(
    /// A catalogue product.
    ProductId
);
id_type!(
    /// A host's channel (one live at a time).
    ChannelId
);
id_type!(
    /// A placed order.
    OrderId
);
id_type!(
    /// A recorded live session: a recording while it runs, a replay once it ended.
    ReplayId
);
id_type!(
    /// A live deal: a time-limited price on a line-up product, with its own stock.
    DealId
);
