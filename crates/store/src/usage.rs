//! The usage meter: what channels and the platform use (egress, ingest, stored bytes, CPU) counted
//! in memory where it happens, and taken out in batches by whoever writes them to the store. It
//! only adds numbers: no I/O, no clock (the day is passed in).

use crate::{Meter, Usage};
use chrono::NaiveDate;
use olive_core::ChannelId;
use std::collections::HashMap;
use std::sync::Mutex;

/// What one amount is counted under: the day, the channel (`None`: the platform) and the meter.
type UsageKey = (NaiveDate, Option<ChannelId>, Meter);

/// Counts usage per day, channel and meter until [`UsageMeter::take`] empties it.
#[derive(Debug, Default)]
pub struct UsageMeter {
    pending: Mutex<HashMap<UsageKey, i64>>,
}

impl UsageMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `amount` of `meter` used on `day` by `channel` (`None`: the platform).
    pub fn add(&self, day: NaiveDate, channel: Option<ChannelId>, meter: Meter, amount: i64) {
        if amount == 0 {
            return;
        }
        let mut pending = self.pending.lock().expect("usage meter poisoned");
        let total = pending.entry((day, channel, meter)).or_insert(0);
        *total = total.saturating_add(amount);
    }

    /// Everything counted since the last call, in a stable order.
    pub fn take(&self) -> Vec<Usage> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("usage meter poisoned"));
        let mut rows: Vec<Usage> = pending
            .into_iter()
            .filter(|(_, amount)| *amount != 0)
            .map(|((day, channel, meter), amount)| Usage { day, channel, meter, amount })
            .collect();
        rows.sort_by_key(|u| (u.day, u.channel, u.meter.as_str(), u.amount));
        rows
    }

    /// Puts back rows a failed write took, so nothing counted is lost.
    pub fn restore(&self, rows: &[Usage]) {
        for u in rows {
            self.add(u.day, u.channel, u.meter, u.amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn adds_per_day_channel_and_meter_and_empties_on_take() {
        let meter = UsageMeter::new();
        meter.add(day(1), Some(ChannelId(7)), Meter::EgressBytes, 100);
        meter.add(day(1), Some(ChannelId(7)), Meter::EgressBytes, 50);
        meter.add(day(2), Some(ChannelId(7)), Meter::EgressBytes, 1);
        meter.add(day(1), None, Meter::CpuMs, 9);
        meter.add(day(1), None, Meter::IngestBytes, 0);
        let rows = meter.take();
        assert_eq!(
            rows,
            vec![
                Usage { day: day(1), channel: None, meter: Meter::CpuMs, amount: 9 },
                Usage { day: day(1), channel: Some(ChannelId(7)), meter: Meter::EgressBytes, amount: 150 },
                Usage { day: day(2), channel: Some(ChannelId(7)), meter: Meter::EgressBytes, amount: 1 },
            ]
        );
        assert!(meter.take().is_empty());
    }

    #[test]
    fn restored_rows_join_what_came_since_and_deletes_cancel_writes() {
        let meter = UsageMeter::new();
        meter.add(day(1), Some(ChannelId(1)), Meter::StoredBytes, 1000);
        let taken = meter.take();
        meter.add(day(1), Some(ChannelId(1)), Meter::StoredBytes, -400);
        meter.restore(&taken);
        assert_eq!(meter.take()[0].amount, 600);
        meter.add(day(1), Some(ChannelId(1)), Meter::StoredBytes, i64::MAX);
        meter.add(day(1), Some(ChannelId(1)), Meter::StoredBytes, i64::MAX);
        assert_eq!(meter.take()[0].amount, i64::MAX, "saturates instead of wrapping");
    }
}
