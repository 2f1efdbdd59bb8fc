//! What an operator watches that no request produces: usage written to the store for the cost
//! report, gauges read from the database (job backlog, sold-out products, pool), the monthly
//! budget, the bus's round trip, and the process's own CPU and memory. Each loop runs until the
//! server stops; none of them holds state another part of the server reads.

use chrono::Utc;
use olive_bus::{topics, Bus};
use olive_commerce::cost;
use olive_store::usage::UsageMeter;
use olive_store::{Meter, Store, Usage};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::CostConfig;

/// How often usage is written out; a crash loses at most this much of it.
pub const USAGE_FLUSH: Duration = Duration::from_secs(10);

/// Writes what the meter counted to the store every few seconds; a failed write is put back and
/// retried. The process's CPU time that no channel was charged with is the platform's.
pub struct UsageFlusher {
    pub store: Arc<dyn Store>,
    pub meter: Arc<UsageMeter>,
    cpu_seen: Duration,
}

impl UsageFlusher {
    pub fn new(store: Arc<dyn Store>, meter: Arc<UsageMeter>) -> Self {
        UsageFlusher { store, meter, cpu_seen: process_cpu_time() }
    }

    /// Writes out everything counted so far (also called once more as the server stops).
    pub async fn flush(&mut self) {
        let mut rows = self.meter.take();
        let cpu = process_cpu_time();
        let process_ms = i64::try_from(cpu.saturating_sub(self.cpu_seen).as_millis()).unwrap_or(i64::MAX);
        self.cpu_seen = cpu;
        let charged: i64 = rows.iter().filter(|u| u.meter == Meter::CpuMs).map(|u| u.amount).sum();
        let platform_ms = process_ms.saturating_sub(charged);
        if platform_ms > 0 {
            rows.push(Usage { day: Utc::now().date_naive(), channel: None, meter: Meter::CpuMs, amount: platform_ms });
        }
        if let Err(e) = self.store.add_usage(&rows).await {
            tracing::warn!(error = %e, rows = rows.len(), "could not record usage; keeping it for the next try");
            self.meter.restore(&rows);
        }
    }
}

/// CPU time (user and system) this process has used.
fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid. On failure the
    // zeroed struct reads as no time.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.clamp(0, 999_999) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Reads the database's gauges every 15 seconds and the month's spend (all of the month's usage
/// rows) every minute. Every node reports the same cluster-wide numbers; dashboards take the
/// `max` over nodes.
pub async fn database_gauges(store: Arc<dyn Store>, cost: CostConfig) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    for round in 0u64.. {
        tick.tick().await;
        match store.gauges().await {
            Ok(g) => {
                for status in ["queued", "running", "done", "dead"] {
                    let n = g.jobs.iter().find(|(s, _)| s.as_str() == status).map_or(0, |(_, n)| *n);
                    metrics::gauge!("olive_jobs", "status" => status).set(n as f64);
                }
                metrics::gauge!("olive_products_sold_out").set(g.products_sold_out as f64);
                let busy = g.pool_connections.saturating_sub(g.pool_idle);
                metrics::gauge!("olive_db_pool_connections", "state" => "idle").set(f64::from(g.pool_idle));
                metrics::gauge!("olive_db_pool_connections", "state" => "busy").set(f64::from(busy));
            }
            Err(e) => {
                metrics::counter!("olive_db_errors_total").increment(1);
                tracing::warn!(error = %e, "could not read the database gauges");
            }
        }
        if round % 4 != 0 {
            continue;
        }
        match cost::budget(store.as_ref(), cost.prices, cost.monthly_budget, Utc::now().date_naive()).await {
            Ok(b) => {
                metrics::gauge!("olive_budget_spent_ratio").set(b.spent_ratio);
                metrics::gauge!("olive_budget_month_elapsed_ratio").set(b.month_elapsed_ratio);
                metrics::gauge!("olive_cost_month_to_date_usd").set(b.spent_usd);
                metrics::gauge!("olive_budget_monthly_usd").set(b.monthly_budget_usd);
            }
            Err(e) => tracing::warn!(error = %e, "could not work out the month's spend"),
        }
    }
}

/// Publishes a probe on the bus every five seconds and times its arrival back here: the bus's
/// round trip, `olive_bus_roundtrip_seconds` (a probe that does not come back within the
/// interval counts in `olive_bus_probe_failures_total`).
pub async fn probe_bus(bus: Arc<dyn Bus>, node: String) {
    let mut echoes = bus.subscribe(topics::PROBE);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for sequence in 0u64.. {
        tick.tick().await;
        let message = format!("{node} {sequence}");
        let sent = Instant::now();
        if let Err(e) = bus.publish(topics::PROBE, bytes::Bytes::from(message.clone())).await {
            metrics::counter!("olive_bus_probe_failures_total").increment(1);
            tracing::warn!(error = %e, "bus probe could not be published");
            continue;
        }
        let back = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(echo) = echoes.recv().await {
                if echo.is_ok_and(|b| b == message.as_bytes()) {
                    return true;
                }
            }
            false
        })
        .await;
        match back {
            Ok(true) => metrics::gauge!("olive_bus_roundtrip_seconds").set(sent.elapsed().as_secs_f64()),
            _ => metrics::counter!("olive_bus_probe_failures_total").increment(1),
        }
    }
}

/// Samples the process's CPU, memory, threads and open files (`process_*`) every five seconds,
/// and lets the Prometheus recorder drain its histograms so memory stays flat between scrapes.
pub async fn process_metrics(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let collector = metrics_process::Collector::default();
    collector.describe();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        collector.collect();
        handle.run_upkeep();
    }
}
