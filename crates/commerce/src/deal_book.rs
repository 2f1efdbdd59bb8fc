//! The flash-sale counter: one deal's stock as its single owner keeps it in memory. A buyer's
//! attempt is answered here without touching the database: refused (ended, sold out, over the
//! per-customer limit) or granted a *hold* on units. The owner writes held orders to the store in
//! batches and then confirms each hold (the units are sold) or releases it (they are available
//! again). At every instant `available + held + sold = listed`.
//!
//! After a crash the holds are gone with the memory, and nothing was sold by them unless their
//! batch committed: [`DealBook::open`] rebuilds the count from the confirmed orders in the store,
//! which are the durable log. Pure: no I/O, no clock (`now` is an argument).

use chrono::{DateTime, Utc};
use olive_core::{OrderId, UserId};
use olive_store::DealSale;
use std::collections::HashMap;

/// What a deal sells and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealTerms {
    pub listed: i64,
    pub per_customer: i64,
    pub ends_at: DateTime<Utc>,
}

/// A deal's units at one instant. `available + held + sold == listed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DealCounts {
    pub listed: i64,
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldId(u64);

/// Units set aside for one request while its order is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: HoldId,
    pub user: UserId,
    pub quantity: i64,
    pub key: String,
    pub request_hash: String,
}

/// A request the book let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Units are held for this request: write its order, then `confirm` or `release` it.
    Held(Hold),
    /// The same request (same buyer, key and body) is being written now: its answer is that hold's.
    InFlight(HoldId),
    /// The same request was sold before: answer with that order again.
    Sold(OrderId),
}

/// Why a request gets nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    #[error("the deal has ended")]
    Ended,
    #[error("the deal is sold out")]
    SoldOut,
    #[error("only {remaining} left in the deal")]
    NotEnough { remaining: i64 },
    #[error("at most {limit} per customer in this deal, and you have {taken}")]
    LimitReached { limit: i64, taken: i64 },
    #[error("the Idempotency-Key was already used for a different order")]
    KeyReused,
}

#[derive(Debug, Clone)]
enum KeyState {
    Held { hold: HoldId, request_hash: String },
    Sold { order: OrderId, request_hash: String },
}

#[derive(Debug, Clone)]
pub struct DealBook {
    terms: DealTerms,
    counts: DealCounts,
    /// Units each buyer holds or bought.
    taken: HashMap<UserId, i64>,
    holds: HashMap<HoldId, Hold>,
    next_hold: u64,
    /// Requests held or sold, by buyer and idempotency key.
    keys: HashMap<(UserId, String), KeyState>,
    /// Ended early by its host.
    closed: bool,
}

impl DealBook {
    /// The book of a deal whose confirmed orders so far are `sales` (none for a new deal).
    pub fn open(terms: DealTerms, sales: &[DealSale]) -> DealBook {
        let mut book = DealBook {
            terms,
            counts: DealCounts { listed: terms.listed, available: terms.listed, held: 0, sold: 0 },
            taken: HashMap::new(),
            holds: HashMap::new(),
            next_hold: 0,
            keys: HashMap::new(),
            closed: false,
        };
        for sale in sales {
            book.counts.sold += sale.quantity;
            book.counts.available -= sale.quantity;
            *book.taken.entry(sale.user_id).or_default() += sale.quantity;
            book.keys.insert(
                (sale.user_id, sale.idempotency_key.clone()),
                KeyState::Sold { order: sale.order_id, request_hash: sale.request_hash.clone() },
            );
        }
        book
    }

    pub fn counts(&self) -> DealCounts {
        self.counts
    }

    pub fn terms(&self) -> DealTerms {
        self.terms
    }

    /// No new holds: the deal's time is up or its host ended it.
    pub fn is_over(&self, now: DateTime<Utc>) -> bool {
        self.closed || now >= self.terms.ends_at
    }

    /// Ends the deal early. Holds already granted may still be confirmed: they were placed in time.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Nothing is held: every request granted has been answered.
    pub fn is_settled(&self) -> bool {
        self.holds.is_empty()
    }

    /// A buyer asks for `quantity` units with an idempotency key and a digest of the request.
    pub fn try_hold(
        &mut self,
        user: UserId,
        quantity: i64,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Admission, Refusal> {
        if let Some(state) = self.keys.get(&(user, key.to_owned())) {
            return match state {
                KeyState::Held { hold, request_hash: h } if h == request_hash => Ok(Admission::InFlight(*hold)),
                KeyState::Sold { order, request_hash: h } if h == request_hash => Ok(Admission::Sold(*order)),
                _ => Err(Refusal::KeyReused),
            };
        }
        if self.is_over(now) {
            return Err(Refusal::Ended);
        }
        let taken = self.taken.get(&user).copied().unwrap_or(0);
        if quantity <= 0 || taken + quantity > self.terms.per_customer {
            return Err(Refusal::LimitReached { limit: self.terms.per_customer, taken });
        }
        if self.counts.available == 0 {
            return Err(Refusal::SoldOut);
        }
        if quantity > self.counts.available {
            return Err(Refusal::NotEnough { remaining: self.counts.available });
        }
        self.counts.available -= quantity;
        self.counts.held += quantity;
        *self.taken.entry(user).or_default() += quantity;
        let id = HoldId(self.next_hold);
        self.next_hold += 1;
        let hold = Hold { id, user, quantity, key: key.to_owned(), request_hash: request_hash.to_owned() };
        self.keys.insert((user, key.to_owned()), KeyState::Held { hold: id, request_hash: request_hash.to_owned() });
        self.holds.insert(id, hold.clone());
        Ok(Admission::Held(hold))
    }

    /// The hold's order is written: its units are sold. `false` for an unknown hold.
    pub fn confirm(&mut self, id: HoldId, order: OrderId) -> bool {
        let Some(hold) = self.holds.remove(&id) else { return false };
        self.counts.held -= hold.quantity;
        self.counts.sold += hold.quantity;
        self.keys.insert((hold.user, hold.key), KeyState::Sold { order, request_hash: hold.request_hash });
        true
    }

    /// The hold's order was not written: its units are available again. `false` for an unknown hold.
    pub fn release(&mut self, id: HoldId) -> bool {
        let Some(hold) = self.holds.remove(&id) else { return false };
        self.counts.held -= hold.quantity;
        self.counts.available += hold.quantity;
        if let Some(taken) = self.taken.get_mut(&hold.user) {
            *taken -= hold.quantity;
        }
        self.keys.remove(&(hold.user, hold.key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn terms(listed: i64, per_customer: i64) -> DealTerms {
        DealTerms { listed, per_customer, ends_at: t(600) }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn held(a: Result<Admission, Refusal>) -> Hold {
        match a {
            Ok(Admission::Held(h)) => h,
            other => panic!("expected a hold, got {other:?}"),
        }
    }

    #[test]
    fn holds_confirm_and_release() {
        let mut book = DealBook::open(terms(3, 2), &[]);
        let a = held(book.try_hold(UserId(1), 2, "a", "h", t(0)));
        assert_eq!(book.counts(), DealCounts { listed: 3, available: 1, held: 2, sold: 0 });
        assert_eq!(book.try_hold(UserId(1), 1, "a2", "h", t(0)), Err(Refusal::LimitReached { limit: 2, taken: 2 }));
        assert_eq!(book.try_hold(UserId(2), 2, "b", "h", t(0)), Err(Refusal::NotEnough { remaining: 1 }));
        let b = held(book.try_hold(UserId(2), 1, "b", "h", t(0)));
        assert_eq!(book.try_hold(UserId(3), 1, "c", "h", t(0)), Err(Refusal::SoldOut));
        assert!(book.release(b.id));
        assert!(!book.release(b.id), "a hold is answered once");
        assert!(book.confirm(a.id, OrderId(7)));
        assert_eq!(book.counts(), DealCounts { listed: 3, available: 1, held: 0, sold: 2 });
        assert!(book.is_settled());
        // Released, user 2 may try again with the same key.
        held(book.try_hold(UserId(2), 1, "b", "h", t(0)));
    }

    #[test]
    fn the_same_request_gets_the_same_answer() {
        let mut book = DealBook::open(terms(5, 5), &[]);
        let a = held(book.try_hold(UserId(1), 1, "k", "h1", t(0)));
        assert_eq!(book.try_hold(UserId(1), 1, "k", "h1", t(0)), Ok(Admission::InFlight(a.id)));
        assert_eq!(book.try_hold(UserId(1), 2, "k", "h2", t(0)), Err(Refusal::KeyReused));
        book.confirm(a.id, OrderId(9));
        assert_eq!(book.try_hold(UserId(1), 1, "k", "h1", t(0)), Ok(Admission::Sold(OrderId(9))));
        // Even after the deal is over, a retry of a sold request is answered with its order.
        assert_eq!(book.try_hold(UserId(1), 1, "k", "h1", t(601)), Ok(Admission::Sold(OrderId(9))));
        // Another buyer's key of the same name is theirs.
        held(book.try_hold(UserId(2), 1, "k", "h1", t(0)));
        assert_eq!(book.counts().sold + book.counts().held, 2);
    }

    #[test]
    fn nothing_is_held_after_the_end() {
        let mut book = DealBook::open(terms(5, 5), &[]);
        assert_eq!(book.try_hold(UserId(1), 1, "k", "h", t(600)), Err(Refusal::Ended));
        let mut early = DealBook::open(terms(5, 5), &[]);
        let h = held(early.try_hold(UserId(1), 1, "k", "h", t(0)));
        early.close();
        assert_eq!(early.try_hold(UserId(2), 1, "k", "h", t(1)), Err(Refusal::Ended));
        assert!(early.confirm(h.id, OrderId(1)), "a hold granted in time is still sold");
    }

    #[test]
    fn a_book_reopens_from_its_sales() {
        let sales = [
            DealSale {
                order_id: OrderId(1),
                user_id: UserId(1),
                idempotency_key: "a".into(),
                request_hash: "h".into(),
                quantity: 2,
            },
            DealSale {
                order_id: OrderId(2),
                user_id: UserId(2),
                idempotency_key: "b".into(),
                request_hash: "h".into(),
                quantity: 1,
            },
        ];
        let mut book = DealBook::open(terms(4, 2), &sales);
        assert_eq!(book.counts(), DealCounts { listed: 4, available: 1, held: 0, sold: 3 });
        assert_eq!(book.try_hold(UserId(1), 1, "c", "h", t(0)), Err(Refusal::LimitReached { limit: 2, taken: 2 }));
        assert_eq!(book.try_hold(UserId(1), 2, "a", "h", t(0)), Ok(Admission::Sold(OrderId(1))));
    }

    #[test]
    fn odd_quantities_are_refused() {
        let mut book = DealBook::open(terms(4, 2), &[]);
        assert!(book.try_hold(UserId(1), 0, "a", "h", t(0)).is_err());
        assert!(book.try_hold(UserId(1), -1, "b", "h", t(0)).is_err());
        assert_eq!(book.counts().available, 4);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Attempt {
            user: i64,
            quantity: i64,
            key: u8,
        },
        /// The owner writes the oldest holds' orders in one batch, which commits or fails whole.
        WriteBatch {
            size: usize,
            commits: bool,
        },
        /// The process dies: every hold is lost, the store keeps what committed.
        Crash,
        Advance {
            seconds: i64,
        },
        Close,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1i64..8, 1i64..4, 0u8..6).prop_map(|(user, quantity, key)| Op::Attempt { user, quantity, key }),
            3 => (1usize..5, proptest::bool::weighted(0.8)).prop_map(|(size, commits)| Op::WriteBatch { size, commits }),
            1 => Just(Op::Crash),
            1 => (1i64..120).prop_map(|seconds| Op::Advance { seconds }),
            1 => Just(Op::Close),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]
        /// `available + held + sold = listed` at every instant, through random interleavings of
        /// attempts, batch writes that commit or fail, crashes and the deal's end. What the book
        /// calls sold is exactly what the store committed; no buyer exceeds the limit; one key
        /// never makes two orders; nothing is held after the end.
        #[test]
        fn stock_is_conserved_through_crashes(listed in 1i64..12, per_customer in 1i64..4, ops in proptest::collection::vec(op(), 1..120)) {
            let terms = DealTerms { listed, per_customer, ends_at: t(300) };
            let mut book = DealBook::open(terms, &[]);
            let mut pending: Vec<Hold> = Vec::new();
            let mut durable: Vec<DealSale> = Vec::new();
            let mut now = t(0);
            let mut next_order = 1;
            for op in ops {
                match op {
                    Op::Attempt { user, quantity, key } => {
                        let before = book.counts();
                        match book.try_hold(UserId(user), quantity, &format!("k{key}"), &format!("x{quantity}"), now) {
                            Ok(Admission::Held(h)) => {
                                prop_assert!(!book.is_over(now));
                                pending.push(h);
                            }
                            Ok(Admission::InFlight(id)) => prop_assert!(pending.iter().any(|h| h.id == id)),
                            Ok(Admission::Sold(order)) => prop_assert!(durable.iter().any(|s| s.order_id == order)),
                            Err(_) => prop_assert_eq!(book.counts(), before, "a refusal changes nothing"),
                        }
                    }
                    Op::WriteBatch { size, commits } => {
                        let batch: Vec<Hold> = pending.drain(..size.min(pending.len())).collect();
                        if commits {
                            for h in &batch {
                                durable.push(DealSale {
                                    order_id: OrderId(next_order),
                                    user_id: h.user,
                                    idempotency_key: h.key.clone(),
                                    request_hash: h.request_hash.clone(),
                                    quantity: h.quantity,
                                });
                                prop_assert!(book.confirm(h.id, OrderId(next_order)));
                                next_order += 1;
                            }
                        } else {
                            for h in &batch {
                                prop_assert!(book.release(h.id));
                            }
                        }
                    }
                    Op::Crash => {
                        pending.clear();
                        let closed = book.closed;
                        book = DealBook::open(terms, &durable);
                        if closed {
                            book.close();
                        }
                    }
                    Op::Advance { seconds } => now += chrono::Duration::seconds(seconds),
                    Op::Close => book.close(),
                }
                let c = book.counts();
                prop_assert_eq!(c.available + c.held + c.sold, listed);
                prop_assert!(c.available >= 0 && c.held >= 0 && c.sold >= 0);
                prop_assert_eq!(c.held, pending.iter().map(|h| h.quantity).sum::<i64>());
                prop_assert_eq!(c.sold, durable.iter().map(|s| s.quantity).sum::<i64>(), "sold is what committed");
                let mut per_user: HashMap<UserId, i64> = HashMap::new();
                for s in &durable {
                    *per_user.entry(s.user_id).or_default() += s.quantity;
                }
                for h in &pending {
                    *per_user.entry(h.user).or_default() += h.quantity;
                }
                prop_assert!(per_user.values().all(|&n| n <= per_customer));
                let mut keys: Vec<_> = durable.iter().map(|s| (s.user_id, s.idempotency_key.clone())).collect();
                keys.sort();
                let n = keys.len();
                keys.dedup();
                prop_assert_eq!(keys.len(), n, "one key, one order");
            }
        }
    }
}
