//! Live deals: what a host may start and end. A deal sells a line-up product at a deal price, a
//! fixed quantity, at most so many per customer, for 10 s to 20 min. Selling is the
//! [`crate::deal_desk`]'s job; this module checks requests and who may make them.
//!
//! A host cannot give the shop away: a deal price is at least [`DealRules::floor_percent`] of the
//! product's price unless an admin starts the deal, and a deal lists no more units than are in
//! stock (they are taken from stock when it starts).

use crate::channels::managed;
use crate::{CommerceError, Result};
use chrono::{DateTime, Duration, Utc};
use olive_core::{ChannelId, ProductId};
use olive_store::{Deal, NewDeal, OrderStore, ProductStatus, Store, StoreError, User};

pub const MIN_DURATION_S: i64 = 10;
pub const MAX_DURATION_S: i64 = 20 * 60;
pub const MAX_LISTED: i64 = 1_000_000;

/// What the shop allows hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealRules {
    /// The lowest deal price a host may set, in percent of the product's price (0 to 100).
    pub floor_percent: u8,
}

impl Default for DealRules {
    fn default() -> Self {
        DealRules { floor_percent: 10 }
    }
}

impl DealRules {
    /// The lowest deal price `actor` may set for a product priced `price_minor`: the floor,
    /// rounded up (KRW has no minor unit, so a floor never rounds down to a cheaper price), or 0
    /// for an admin.
    pub fn lowest_price(&self, actor: &User, price_minor: i64) -> i64 {
        if actor.role.at_least(olive_core::Role::Admin) {
            return 0;
        }
        let floor = i128::from(price_minor) * i128::from(self.floor_percent);
        i64::try_from((floor + 99) / 100).unwrap_or(price_minor)
    }
}

/// A host's request to start a deal.
#[derive(Debug, Clone)]
pub struct DealRequest {
    pub product_id: ProductId,
    pub price_minor: i64,
    pub quantity: i64,
    pub per_customer_limit: i64,
    pub duration_s: i64,
}

/// Checks a request against the channel and product and turns it into the deal to store.
pub async fn plan(
    store: &dyn Store,
    actor: &User,
    channel: ChannelId,
    req: &DealRequest,
    rules: &DealRules,
    node: &str,
    now: DateTime<Utc>,
) -> Result<NewDeal> {
    managed(store, actor, channel).await?;
    if !(MIN_DURATION_S..=MAX_DURATION_S).contains(&req.duration_s) {
        return Err(CommerceError::invalid(
            "duration_s",
            format!("a deal runs {MIN_DURATION_S} to {MAX_DURATION_S} seconds"),
        ));
    }
    if !(1..=MAX_LISTED).contains(&req.quantity) {
        return Err(CommerceError::invalid("quantity", format!("must be between 1 and {MAX_LISTED}")));
    }
    if !(1..=crate::orders::MAX_QUANTITY).contains(&req.per_customer_limit) {
        return Err(CommerceError::invalid(
            "per_customer_limit",
            format!("must be between 1 and {}", crate::orders::MAX_QUANTITY),
        ));
    }
    if !store.lineup(channel).await?.contains(&req.product_id) {
        return Err(CommerceError::invalid("product_id", "a deal sells a product of the show's line-up"));
    }
    let product = match store.product(req.product_id).await {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => return Err(CommerceError::invalid("product_id", "no such product")),
        Err(e) => return Err(e.into()),
    };
    if product.status != ProductStatus::Active {
        return Err(CommerceError::ProductUnavailable(product.id));
    }
    let lowest = rules.lowest_price(actor, product.price_minor);
    if !(lowest..=product.price_minor).contains(&req.price_minor) {
        return Err(CommerceError::invalid(
            "price_minor",
            format!("a deal price is between {lowest} and the product's price ({})", product.price_minor),
        ));
    }
    // Its units leave the stock when it starts: a deal lists at most what is there (the store's
    // conditional update holds it too, against a sale in between).
    if req.quantity > product.stock {
        return Err(CommerceError::OutOfStock(product.id));
    }
    Ok(NewDeal {
        channel_id: channel,
        product_id: product.id,
        price_minor: req.price_minor,
        listed: req.quantity,
        per_customer: req.per_customer_limit,
        starts_at: now,
        ends_at: now + Duration::seconds(req.duration_s),
        node: node.to_owned(),
    })
}

/// A deal, for anyone.
pub async fn deal(store: &dyn OrderStore, id: olive_core::DealId) -> Result<Deal> {
    Ok(store.deal(id).await?)
}

/// The deal running on a channel now, if any, for anyone.
pub async fn running(store: &dyn OrderStore, channel: ChannelId) -> Result<Option<Deal>> {
    Ok(store.running_deal(channel).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use olive_core::{Currency, Role};
    use olive_store::{NewChannel, NewProduct, NewUser, StreamKeyHash};
    use std::sync::Arc;

    async fn setup() -> (Arc<dyn Store>, User, User, ChannelId, ProductId) {
        let store: Arc<dyn Store> = Arc::new(olive_store_sqlite::test_support::temporary().await);
        let user = |email: &str, role| NewUser {
            email: email.into(),
            display_name: "x".into(),
            password_hash: "h".into(),
            role,
            created_at: Utc::now(),
        };
        let host = store.create_user(user("host@example.com", Role::Host)).await.unwrap();
        let other = store.create_user(user("other@example.com", Role::Host)).await.unwrap();
        let ch = store
            .create_channel(NewChannel {
                host_id: host.id,
                title: "t".into(),
                description: String::new(),
                scheduled_at: None,
                stream_key_hash: StreamKeyHash([1; 32]),
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        let p = store
            .create_product(NewProduct {
                name: "Cushion".into(),
                brand: "b".into(),
                category: "foundation".into(),
                description: String::new(),
                price_minor: 20_000,
                currency: Currency::Krw,
                stock: 50,
                status: ProductStatus::Active,
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        store.set_lineup(ch.id, &[p.id]).await.unwrap();
        (store, host, other, ch.id, p.id)
    }

    fn req(product: ProductId) -> DealRequest {
        DealRequest { product_id: product, price_minor: 15_000, quantity: 10, per_customer_limit: 2, duration_s: 60 }
    }

    #[tokio::test]
    async fn only_sensible_deals_by_the_host_are_planned() {
        let (store, host, other, ch, p) = setup().await;
        let now = Utc::now();
        let plan_of = |r: DealRequest, who: User| {
            let store = store.clone();
            async move { plan(store.as_ref(), &who, ch, &r, &DealRules::default(), "n", now).await }
        };
        let ok = plan_of(req(p), host.clone()).await.unwrap();
        assert_eq!((ok.listed, ok.per_customer, ok.price_minor), (10, 2, 15_000));
        assert_eq!(ok.ends_at - ok.starts_at, Duration::seconds(60));
        assert!(matches!(plan_of(req(p), other).await, Err(CommerceError::Forbidden)));
        for bad in [
            DealRequest { duration_s: 9, ..req(p) },
            DealRequest { duration_s: 1201, ..req(p) },
            DealRequest { quantity: 0, ..req(p) },
            DealRequest { quantity: MAX_LISTED + 1, ..req(p) },
            DealRequest { per_customer_limit: 0, ..req(p) },
            DealRequest { price_minor: -1, ..req(p) },
            DealRequest { price_minor: 0, ..req(p) },
            DealRequest { price_minor: 1_999, ..req(p) },
            DealRequest { price_minor: 20_001, ..req(p) },
            DealRequest { product_id: ProductId(999), ..req(p) },
        ] {
            assert!(matches!(plan_of(bad.clone(), host.clone()).await, Err(CommerceError::Invalid { .. })), "{bad:?}");
        }
        assert!(matches!(
            plan_of(DealRequest { quantity: 51, ..req(p) }, host.clone()).await,
            Err(CommerceError::OutOfStock(_))
        ));
        // The floor: 10 % of 20,000 is 2,000, which a host may set; an admin may go to 0.
        assert_eq!(
            plan_of(DealRequest { price_minor: 2_000, ..req(p) }, host.clone()).await.unwrap().price_minor,
            2_000
        );
        let admin = User { role: olive_core::Role::Admin, ..other_admin(&store).await };
        assert_eq!(plan_of(DealRequest { price_minor: 0, ..req(p) }, admin).await.unwrap().price_minor, 0);
    }

    async fn other_admin(store: &Arc<dyn Store>) -> User {
        let new = NewUser {
            email: "admin@example.com".into(),
            display_name: "a".into(),
            password_hash: "h".into(),
            role: Role::Admin,
            created_at: Utc::now(),
        };
        store.create_user(new).await.unwrap()
    }

    #[test]
    fn the_floor_rounds_up_and_spares_admins() {
        let rules = DealRules { floor_percent: 10 };
        let host = |role| User {
            id: olive_core::UserId(1),
            email: "h@example.com".into(),
            display_name: "h".into(),
            role,
            created_at: Utc::now(),
        };
        assert_eq!(rules.lowest_price(&host(Role::Host), 20_000), 2_000);
        assert_eq!(rules.lowest_price(&host(Role::Host), 9_999), 1_000, "999.9 rounds up");
        assert_eq!(rules.lowest_price(&host(Role::Host), i64::MAX), i64::MAX / 10 + 1);
        assert_eq!(rules.lowest_price(&host(Role::Admin), 20_000), 0);
        assert_eq!(DealRules { floor_percent: 0 }.lowest_price(&host(Role::Host), 20_000), 0);
    }
}
