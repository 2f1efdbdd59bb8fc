//! Hearts are counted, not forwarded: every tick the room sends one `{"type":"hearts","count"}`
//! with the hearts that arrived since the last one, however many there were, so a storm of taps
//! costs one frame per tick per viewer.

/// Hearts since the last tick.
#[derive(Debug, Default)]
pub struct HeartCounter {
    pending: u64,
}

impl HeartCounter {
    pub fn add(&mut self, hearts: u64) {
        self.pending = self.pending.saturating_add(hearts);
    }

    /// The count to announce at this tick, if any arrived.
    pub fn take(&mut self) -> Option<u64> {
        (self.pending > 0).then(|| std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_announces_what_arrived_since_the_last_once() {
        let mut hearts = HeartCounter::default();
        assert_eq!(hearts.take(), None);
        for _ in 0..1000 {
            hearts.add(1);
        }
        assert_eq!(hearts.take(), Some(1000));
        assert_eq!(hearts.take(), None);
        hearts.add(u64::MAX);
        hearts.add(5);
        assert_eq!(hearts.take(), Some(u64::MAX), "saturates rather than wraps");
    }
}
