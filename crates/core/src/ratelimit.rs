//! A keyed rate limiter using the generic cell rate algorithm (GCRA): each key remembers one
//! instant, its "theoretical arrival time". It is a plain struct with the current time passed in,
//! so login throttling and (later) chat limits are tested with a made-up clock. Callers that share
//! it across tasks wrap it in a mutex held only for the call.
//!
//! The map of keys is bounded: when it grows past `max_keys`, keys whose state has fully drained
//! (indistinguishable from a fresh key) are dropped, and if that is not enough the limiter refuses
//! new keys rather than growing without bound under a spray of addresses.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How many events a key may make: `burst` at once, then one every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: u32,
    pub period: Duration,
}

impl Quota {
    pub fn new(burst: u32, period: Duration) -> Self {
        assert!(burst > 0, "a quota with no burst would refuse everything");
        Quota { burst, period }
    }

    fn tolerance(&self) -> Duration {
        self.period * (self.burst - 1)
    }
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

#[derive(Debug)]
pub struct KeyedLimiter<K> {
    quota: Quota,
    max_keys: usize,
    tat: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        KeyedLimiter { quota, max_keys, tat: HashMap::new() }
    }

    /// Would an event for `key` be allowed now? Does not use up anything.
    pub fn peek(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let tat = self.tat.get(key).copied().unwrap_or(now).max(now);
        self.decide(tat, now).map(|_| ())
    }

    /// Records an event for `key` if the quota allows it.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        if !self.tat.contains_key(key) && self.tat.len() >= self.max_keys {
            self.prune(now);
            if self.tat.len() >= self.max_keys {
                return Err(RetryAfter(self.quota.period));
            }
        }
        let tat = self.tat.get(key).copied().unwrap_or(now).max(now);
        let new_tat = self.decide(tat, now)?;
        self.tat.insert(key.clone(), new_tat);
        Ok(())
    }

    /// Forgets a key (for example after a successful login).
    pub fn reset(&mut self, key: &K) {
        self.tat.remove(key);
    }

    pub fn len(&self) -> usize {
        self.tat.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tat.is_empty()
    }

    fn decide(&self, tat: Instant, now: Instant) -> Result<Instant, RetryAfter> {
        let allow_at = tat.checked_sub(self.quota.tolerance()).unwrap_or(now);
        if allow_at > now {
            Err(RetryAfter(allow_at - now))
        } else {
            Ok(tat + self.quota.period)
        }
    }

    fn prune(&mut self, now: Instant) {
        self.tat.retain(|_, tat| *tat > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, period_ms: u64) -> KeyedLimiter<&'static str> {
        KeyedLimiter::new(Quota::new(burst, Duration::from_millis(period_ms)), 1000)
    }

    #[test]
    fn allows_burst_then_refuses() {
        let t0 = Instant::now();
        let mut l = limiter(3, 1000);
        for _ in 0..3 {
            assert!(l.check(&"a", t0).is_ok());
        }
        let refused = l.check(&"a", t0).unwrap_err();
        assert_eq!(refused, RetryAfter(Duration::from_millis(1000)));
    }

    #[test]
    fn refills_one_event_per_period() {
        let t0 = Instant::now();
        let mut l = limiter(2, 1000);
        l.check(&"a", t0).unwrap();
        l.check(&"a", t0).unwrap();
        assert!(l.check(&"a", t0 + Duration::from_millis(999)).is_err());
        assert!(l.check(&"a", t0 + Duration::from_millis(1000)).is_ok());
        assert!(l.check(&"a", t0 + Duration::from_millis(1000)).is_err());
        // A long pause refills to the burst, never beyond it.
        let later = t0 + Duration::from_secs(3600);
        assert!(l.check(&"a", later).is_ok());
        assert!(l.check(&"a", later).is_ok());
        assert!(l.check(&"a", later).is_err());
    }

    #[test]
    fn keys_are_independent_and_peek_uses_nothing() {
        let t0 = Instant::now();
        let mut l = limiter(1, 1000);
        l.check(&"a", t0).unwrap();
        assert!(l.peek(&"a", t0).is_err());
        assert!(l.peek(&"b", t0).is_ok());
        assert!(l.peek(&"b", t0).is_ok());
        assert!(l.check(&"b", t0).is_ok());
        l.reset(&"a");
        assert!(l.check(&"a", t0).is_ok());
    }

    #[test]
    fn key_table_is_bounded() {
        let t0 = Instant::now();
        let mut l: KeyedLimiter<u32> = KeyedLimiter::new(Quota::new(1, Duration::from_secs(1)), 10);
        for k in 0..10 {
            l.check(&k, t0).unwrap();
        }
        // Full of live keys: a new key is refused instead of growing the table.
        assert!(l.check(&99, t0).is_err());
        assert_eq!(l.len(), 10);
        // Once the old keys drained they are pruned and new keys fit again.
        assert!(l.check(&99, t0 + Duration::from_secs(2)).is_ok());
        assert_eq!(l.len(), 1);
    }

    proptest::proptest! {
        /// Over any window, a key never gets more than burst + window/period events.
        #[test]
        fn never_exceeds_quota(steps in proptest::collection::vec(0u64..500, 1..200)) {
            let t0 = Instant::now();
            let mut l = limiter(3, 100);
            let mut now = t0;
            let mut allowed = 0u64;
            for step in steps {
                now += Duration::from_millis(step);
                if l.check(&"k", now).is_ok() {
                    allowed += 1;
                }
            }
            let elapsed = (now - t0).as_millis() as u64;
            proptest::prop_assert!(allowed <= 3 + elapsed / 100);
        }
    }
}
