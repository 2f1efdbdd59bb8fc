//! FLV timestamps are 32-bit milliseconds: they wrap after 49.7 days and encoders sometimes send
//! them slightly out of order. [`Unwrapper`] turns them into a monotonic 64-bit millisecond line.

/// Extends 32-bit timestamps across wraps and keeps them strictly increasing.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper {
    last_raw: Option<u32>,
    epoch: i64,
    last: Option<i64>,
}

impl Unwrapper {
    /// The extended timestamp for `raw`. A jump back of more than half the range is a wrap; a
    /// smaller step back (or a repeat) is clamped to one past the previous timestamp.
    pub fn unwrap(&mut self, raw: u32) -> i64 {
        if let Some(prev) = self.last_raw {
            if raw < prev && prev - raw > u32::MAX / 2 {
                self.epoch += 1 << 32;
            } else if raw > prev && raw - prev > u32::MAX / 2 && self.epoch > 0 {
                // A late packet from before the wrap.
                self.epoch -= 1 << 32;
            }
        }
        self.last_raw = Some(raw);
        let mut ts = self.epoch + i64::from(raw);
        if let Some(last) = self.last {
            if ts <= last {
                ts = last + 1;
            }
        }
        self.last = Some(ts);
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn passes_increasing_timestamps_through() {
        let mut u = Unwrapper::default();
        assert_eq!([0, 33, 67, 100].map(|t| u.unwrap(t)), [0, 33, 67, 100]);
    }

    #[test]
    fn extends_across_the_32_bit_wrap() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 10), i64::from(u32::MAX) - 10);
        assert_eq!(u.unwrap(u32::MAX), i64::from(u32::MAX));
        assert_eq!(u.unwrap(22), (1i64 << 32) + 22);
        assert_eq!(u.unwrap(55), (1i64 << 32) + 55);
    }

    #[test]
    fn clamps_steps_backwards() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(100), 100);
        assert_eq!(u.unwrap(90), 101);
        assert_eq!(u.unwrap(101), 102);
        assert_eq!(u.unwrap(200), 200);
    }

    proptest! {
        #[test]
        fn output_is_strictly_increasing(raw in proptest::collection::vec(any::<u32>(), 1..300)) {
            let mut u = Unwrapper::default();
            let mut last = None;
            for r in raw {
                let t = u.unwrap(r);
                if let Some(l) = last { prop_assert!(t > l); }
                last = Some(t);
            }
        }
    }
}
