//! The cost report: what the platform's measured usage (egress, ingest, stored bytes, CPU time;
//! see `olive_store::usage`) costs at configurable unit prices, per channel and per UTC day, and
//! how much of a monthly budget the month so far has spent. Pure arithmetic over usage rows plus
//! one function that reads them; prices and budget come from configuration.
//!
//! Storage is billed per GB-month, so each day is charged what was stored at the end of that day
//! times the monthly price divided by the days in that month. GB means 10^9 bytes.

use crate::Result;
use chrono::{Datelike, Days, NaiveDate};
use olive_core::ChannelId;
use olive_store::{Meter, Store, Usage, UsageStore};
use serde::Serialize;
use std::collections::BTreeMap;

const GB: f64 = 1e9;

/// Unit prices in US dollars. The defaults are public list prices of the managed services Olive
/// replaces: internet egress and object storage at AWS's first tiers, and one vCPU-hour of a
/// general-purpose instance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Prices {
    pub egress_per_gb: f64,
    pub ingest_per_gb: f64,
    pub storage_per_gb_month: f64,
    pub cpu_per_hour: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices { egress_per_gb: 0.09, ingest_per_gb: 0.0, storage_per_gb_month: 0.023, cpu_per_hour: 0.048 }
    }
}

/// Usage and its cost for one channel (or the platform: `channel_id` null) on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CostLine {
    pub day: Option<NaiveDate>,
    #[schema(value_type = Option<i64>)]
    pub channel_id: Option<ChannelId>,
    pub egress_bytes: i64,
    pub ingest_bytes: i64,
    /// Bytes stored at the end of the day (for a total: the sum over days, byte-days).
    pub stored_bytes: i64,
    pub cpu_ms: i64,
    pub egress_usd: f64,
    pub ingest_usd: f64,
    pub storage_usd: f64,
    pub cpu_usd: f64,
    pub total_usd: f64,
}

impl CostLine {
    fn add(&mut self, other: &CostLine) {
        self.egress_bytes += other.egress_bytes;
        self.ingest_bytes += other.ingest_bytes;
        self.stored_bytes += other.stored_bytes;
        self.cpu_ms += other.cpu_ms;
        self.egress_usd += other.egress_usd;
        self.ingest_usd += other.ingest_usd;
        self.storage_usd += other.storage_usd;
        self.cpu_usd += other.cpu_usd;
        self.total_usd += other.total_usd;
    }
}

/// The report over days `from..to`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CostReport {
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
    pub prices: Prices,
    /// One line per day and channel that used or stored anything, by day then channel.
    pub lines: Vec<CostLine>,
    /// Each channel's total over the period (`day` null), the platform first.
    pub channels: Vec<CostLine>,
    /// Each day's total over all channels (`channel_id` null).
    pub days: Vec<CostLine>,
    pub total: CostLine,
}

/// Prices the usage rows of `from..to`, given what each channel had stored before `from`.
pub fn report(
    prices: Prices,
    from: NaiveDate,
    to: NaiveDate,
    stored_before: &[(Option<ChannelId>, i64)],
    rows: &[Usage],
) -> CostReport {
    let mut used: BTreeMap<(NaiveDate, Option<ChannelId>), CostLine> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.day >= from && r.day < to) {
        let line = used.entry((row.day, row.channel)).or_default();
        match row.meter {
            Meter::EgressBytes => line.egress_bytes += row.amount,
            Meter::IngestBytes => line.ingest_bytes += row.amount,
            Meter::StoredBytes => line.stored_bytes += row.amount,
            Meter::CpuMs => line.cpu_ms += row.amount,
        }
    }
    let mut stored: BTreeMap<Option<ChannelId>, i64> = stored_before.iter().copied().collect();
    for (_, channel) in used.keys() {
        stored.entry(*channel).or_insert(0);
    }
    let mut lines = Vec::new();
    let mut day = from;
    while day < to {
        for (channel, bytes) in stored.iter_mut() {
            let mut line = used.remove(&(day, *channel)).unwrap_or_default();
            *bytes += line.stored_bytes;
            line.stored_bytes = (*bytes).max(0);
            line.day = Some(day);
            line.channel_id = *channel;
            if line == (CostLine { day: Some(day), channel_id: *channel, ..Default::default() }) {
                continue;
            }
            price(&mut line, prices, days_in_month(day));
            lines.push(line);
        }
        day = day + Days::new(1);
    }
    let mut channels: BTreeMap<Option<ChannelId>, CostLine> = BTreeMap::new();
    let mut days: BTreeMap<NaiveDate, CostLine> = BTreeMap::new();
    let mut total = CostLine::default();
    for line in &lines {
        channels
            .entry(line.channel_id)
            .or_insert_with(|| CostLine { channel_id: line.channel_id, ..Default::default() });
        channels.get_mut(&line.channel_id).expect("inserted above").add(&CostLine { day: None, ..line.clone() });
        let d = days.entry(line.day.expect("every line has its day")).or_default();
        d.day = line.day;
        d.add(&CostLine { channel_id: None, ..line.clone() });
        total.add(line);
    }
    total.day = None;
    total.channel_id = None;
    CostReport {
        from,
        to,
        prices,
        lines,
        channels: channels.into_values().collect(),
        days: days.into_values().collect(),
        total,
    }
}

fn price(line: &mut CostLine, prices: Prices, days_in_month: u32) {
    line.egress_usd = line.egress_bytes.max(0) as f64 / GB * prices.egress_per_gb;
    line.ingest_usd = line.ingest_bytes.max(0) as f64 / GB * prices.ingest_per_gb;
    line.storage_usd = line.stored_bytes.max(0) as f64 / GB * prices.storage_per_gb_month / f64::from(days_in_month);
    line.cpu_usd = line.cpu_ms.max(0) as f64 / 3_600_000.0 * prices.cpu_per_hour;
    line.total_usd = line.egress_usd + line.ingest_usd + line.storage_usd + line.cpu_usd;
}

/// The first day of `day`'s month, and of the month after.
pub fn month_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = day.with_day(1).expect("every month has a first day");
    let next = first.checked_add_months(chrono::Months::new(1)).expect("dates are far from the end of time");
    (first, next)
}

fn days_in_month(day: NaiveDate) -> u32 {
    let (first, next) = month_of(day);
    u32::try_from((next - first).num_days()).expect("a month has 28 to 31 days")
}

/// Reads the usage of `from..to` and prices it.
pub async fn load(store: &dyn UsageStore, prices: Prices, from: NaiveDate, to: NaiveDate) -> Result<CostReport> {
    let stored_before = store.usage_before(from, Meter::StoredBytes).await?;
    let rows = store.usage(from, to).await?;
    Ok(report(prices, from, to, &stored_before, &rows))
}

/// How a month's spending compares with its budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    pub month_start: NaiveDate,
    pub monthly_budget_usd: f64,
    /// Spent from the first of the month through `today`.
    pub spent_usd: f64,
    /// `spent_usd / monthly_budget_usd`: 1 means the budget is gone.
    pub spent_ratio: f64,
    /// How much of the month has passed at the end of `today`: spending faster than this burns the
    /// budget before the month ends.
    pub month_elapsed_ratio: f64,
}

/// The month to date (through `today`) against `monthly_budget_usd`.
pub async fn budget(
    store: &dyn Store,
    prices: Prices,
    monthly_budget_usd: f64,
    today: NaiveDate,
) -> Result<BudgetStatus> {
    let (first, _) = month_of(today);
    let tomorrow = today + Days::new(1);
    let spent = load(store, prices, first, tomorrow).await?.total.total_usd;
    Ok(budget_status(first, monthly_budget_usd, spent, today))
}

fn budget_status(month_start: NaiveDate, monthly_budget_usd: f64, spent_usd: f64, today: NaiveDate) -> BudgetStatus {
    let elapsed_days = (today - month_start).num_days() + 1;
    BudgetStatus {
        month_start,
        monthly_budget_usd,
        spent_usd,
        spent_ratio: if monthly_budget_usd > 0.0 { spent_usd / monthly_budget_usd } else { 0.0 },
        month_elapsed_ratio: elapsed_days as f64 / f64::from(days_in_month(today)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn usage(d: u32, channel: Option<i64>, meter: Meter, amount: i64) -> Usage {
        Usage { day: day(d), channel: channel.map(ChannelId), meter, amount }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn prices_each_meter_per_day_and_channel() {
        let prices = Prices { egress_per_gb: 0.1, ingest_per_gb: 0.01, storage_per_gb_month: 3.0, cpu_per_hour: 0.36 };
        let rows = [
            usage(1, Some(1), Meter::EgressBytes, 20_000_000_000),
            usage(1, Some(1), Meter::IngestBytes, 1_000_000_000),
            usage(1, Some(1), Meter::StoredBytes, 10_000_000_000),
            usage(1, Some(1), Meter::CpuMs, 3_600_000),
            usage(1, None, Meter::EgressBytes, 1_000_000_000),
        ];
        let r = report(prices, day(1), day(3), &[], &rows);
        // Day 1: 2.00 egress + 0.01 ingest + 10 GB × 3.0 / 30 days = 1.00 storage + 0.36 CPU.
        let first = &r.lines[1];
        assert_eq!((first.day, first.channel_id), (Some(day(1)), Some(ChannelId(1))));
        assert!(close(first.egress_usd, 2.0) && close(first.ingest_usd, 0.01));
        assert!(close(first.storage_usd, 1.0) && close(first.cpu_usd, 0.36));
        assert!(close(first.total_usd, 3.37));
        assert!(close(r.lines[0].total_usd, 0.1), "the platform's own egress");
        // Day 2: nothing used, but the recording is still stored and still costs.
        let second: Vec<_> = r.lines.iter().filter(|l| l.day == Some(day(2))).collect();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].stored_bytes, 10_000_000_000);
        assert!(close(second[0].total_usd, 1.0));
        assert_eq!(r.channels.len(), 2);
        assert!(close(r.channels[1].total_usd, 4.37));
        assert_eq!(r.channels[1].stored_bytes, 20_000_000_000, "byte-days");
        assert_eq!(r.days.len(), 2);
        assert!(close(r.days[0].total_usd, 3.47));
        assert!(close(r.total.total_usd, 4.47));
    }

    #[test]
    fn storage_carries_over_from_before_the_period_and_deletes_stop_it() {
        let prices = Prices { storage_per_gb_month: 30.0, ..Prices::default() };
        let before = [(Some(ChannelId(2)), 2_000_000_000)];
        let rows = [usage(2, Some(2), Meter::StoredBytes, -2_000_000_000)];
        let r = report(prices, day(1), day(4), &before, &rows);
        let storage: Vec<f64> = r.lines.iter().map(|l| l.storage_usd).collect();
        assert_eq!(storage.len(), 1, "after the delete nothing is stored: {storage:?}");
        assert!(close(storage[0], 2.0));
    }

    #[test]
    fn hostile_rows_never_make_negative_costs_or_overflow() {
        let rows = [
            usage(1, Some(1), Meter::EgressBytes, -5),
            usage(1, Some(1), Meter::CpuMs, i64::MAX),
            usage(9, Some(1), Meter::EgressBytes, 5),
        ];
        let r = report(Prices::default(), day(1), day(2), &[], &rows);
        assert_eq!(r.lines.len(), 1, "rows outside the period are ignored");
        assert!(r.lines[0].egress_usd == 0.0 && r.lines[0].cpu_usd.is_finite() && r.lines[0].cpu_usd > 0.0);
        let empty = report(Prices::default(), day(5), day(1), &[], &rows);
        assert!(empty.lines.is_empty() && empty.total.total_usd == 0.0);
    }

    #[test]
    fn budget_ratios_follow_the_calendar() {
        let s = budget_status(day(1), 300.0, 75.0, day(15));
        assert!(close(s.spent_ratio, 0.25) && close(s.month_elapsed_ratio, 0.5));
        assert_eq!(budget_status(day(1), 0.0, 5.0, day(1)).spent_ratio, 0.0, "no budget, no ratio");
        assert_eq!(days_in_month(NaiveDate::from_ymd_opt(2028, 2, 10).unwrap()), 29);
        assert_eq!(
            month_of(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()).1,
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
    }
}
