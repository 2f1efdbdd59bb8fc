//! Orders (placing one is [`crate::checkout`]). The request is normalised (lines merged per product, sorted by product id — the lock
//! order the engines rely on) and digested, so the same `Idempotency-Key` with the same request
//! returns the first order and with another request is refused. Stock is taken by the store in the
//! order's own transaction. Nobody but the buyer (and admins) sees an order; to anyone else it does
//! not exist.

use crate::{CommerceError, Result};
use chrono::{DateTime, Utc};
use olive_core::{OrderId, ProductId, Role};
use olive_store::{Order, OrderLine, OrderStore, Page, User};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 100;
pub const MAX_KEY_LEN: usize = 128;

/// `Idempotency-Key`: 1 to 128 visible ASCII characters.
pub fn check_idempotency_key(raw: &str) -> Result<String> {
    if raw.is_empty() || raw.len() > MAX_KEY_LEN || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CommerceError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// Merges lines per product, sorted by product id; checks counts and quantities.
pub fn normalise_lines(items: &[(ProductId, i64)]) -> Result<Vec<OrderLine>> {
    if items.is_empty() {
        return Err(CommerceError::invalid("items", "an order needs at least one item"));
    }
    if items.len() > MAX_LINES {
        return Err(CommerceError::invalid("items", format!("an order holds at most {MAX_LINES} items")));
    }
    let mut merged: BTreeMap<ProductId, i64> = BTreeMap::new();
    for &(product, quantity) in items {
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(CommerceError::invalid("quantity", format!("must be between 1 and {MAX_QUANTITY}")));
        }
        let total = merged.entry(product).or_default();
        *total += quantity;
        if *total > MAX_QUANTITY {
            return Err(CommerceError::invalid("quantity", format!("at most {MAX_QUANTITY} of one product")));
        }
    }
    Ok(merged.into_iter().map(|(product_id, quantity)| OrderLine { product_id, quantity }).collect())
}

/// A digest of normalised lines: equal for requests that mean the same order.
pub fn request_hash(lines: &[OrderLine]) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(format!("{}x{};", l.product_id, l.quantity));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// An order as `viewer` may see it: their own, or any for an admin.
pub async fn order_for(store: &dyn OrderStore, viewer: &User, id: OrderId) -> Result<Order> {
    let order = store.order(id).await?;
    if order.user_id != viewer.id && !viewer.role.at_least(Role::Admin) {
        return Err(CommerceError::NotFound("order"));
    }
    Ok(order)
}

pub async fn my_orders(store: &dyn OrderStore, viewer: &User, page: Page) -> Result<Vec<Order>> {
    Ok(store.orders_for_user(viewer.id, page).await?)
}

/// Cancels the buyer's own order while it has not shipped; its stock goes back on sale.
pub async fn cancel_order(store: &dyn OrderStore, buyer: &User, id: OrderId, now: DateTime<Utc>) -> Result<Order> {
    let order = store.cancel_order(id, buyer.id, now).await?;
    tracing::info!(order_id = %id, user_id = %buyer.id, "order cancelled");
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_are_merged_and_sorted() {
        let lines = normalise_lines(&[(ProductId(3), 1), (ProductId(1), 2), (ProductId(3), 4)]).unwrap();
        assert_eq!(
            lines,
            vec![
                OrderLine { product_id: ProductId(1), quantity: 2 },
                OrderLine { product_id: ProductId(3), quantity: 5 }
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused() {
        assert!(normalise_lines(&[]).is_err());
        assert!(normalise_lines(&[(ProductId(1), 0)]).is_err());
        assert!(normalise_lines(&[(ProductId(1), -1)]).is_err());
        assert!(normalise_lines(&[(ProductId(1), MAX_QUANTITY + 1)]).is_err());
        assert!(normalise_lines(&[(ProductId(1), MAX_QUANTITY), (ProductId(1), 1)]).is_err());
        let many: Vec<_> = (0..=MAX_LINES as i64).map(|i| (ProductId(i), 1)).collect();
        assert!(normalise_lines(&many).is_err());
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert!(check_idempotency_key("order-2026-11-25-abc").is_ok());
        for bad in ["", "has space", "é", &"k".repeat(MAX_KEY_LEN + 1), "tab\t"] {
            assert!(check_idempotency_key(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        /// The same order written in any line order or split hashes the same.
        #[test]
        fn request_hash_ignores_line_order(mut items in proptest::collection::vec((1i64..20, 1i64..5), 1..20)) {
            let a = normalise_lines(&items.iter().map(|&(p, q)| (ProductId(p), q)).collect::<Vec<_>>());
            items.reverse();
            let b = normalise_lines(&items.iter().map(|&(p, q)| (ProductId(p), q)).collect::<Vec<_>>());
            match (a, b) {
                (Ok(a), Ok(b)) => prop_assert_eq!(request_hash(&a), request_hash(&b)),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "order of lines changed validity"),
            }
        }
    }
}
