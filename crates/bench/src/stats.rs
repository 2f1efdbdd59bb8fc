//! Latency percentiles and process CPU/RSS readings for reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// p50, p99 and max of a set of durations (all zero when empty).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn percentiles(samples: &mut [Duration]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    Percentiles { count: samples.len(), p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0) }
}

/// Latencies in whole milliseconds, counted per millisecond up to a minute.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    const MAX_MS: usize = 60_000;

    pub fn new() -> Self {
        Histogram { buckets: (0..=Self::MAX_MS).map(|_| AtomicU64::new(0)).collect() }
    }

    pub fn record(&self, ms: u64) {
        self.buckets[(ms as usize).min(Self::MAX_MS)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn percentiles(&self) -> Percentiles {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        bucket_percentiles(&counts, |ms| ms as f64)
    }
}

/// Percentiles of samples counted in buckets: `counts[b]` samples fell in bucket `b`, whose value
/// (in ms) is `value(b)`.
pub fn bucket_percentiles(counts: &[u64], value: impl Fn(usize) -> f64) -> Percentiles {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Percentiles::default();
    }
    let at = |q: f64| {
        let want = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return value(bucket);
            }
        }
        value(counts.len().saturating_sub(1))
    };
    Percentiles { count: total as usize, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1.0) }
}

/// CPU time (user + system) and resident memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    pub cpu: Duration,
    pub rss_bytes: u64,
}

pub fn sample_process(pid: u32) -> std::io::Result<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces and is wrapped in parentheses.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let hz = 100; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(ProcessSample { cpu: Duration::from_millis(ticks * 1000 / hz), rss_bytes: rss_kib * 1024 })
}

/// The CPU time and resident memory of several processes together (a server of several nodes).
pub fn sample_processes(pids: &[u32]) -> std::io::Result<ProcessSample> {
    let mut total = ProcessSample { cpu: Duration::ZERO, rss_bytes: 0 };
    for &pid in pids {
        let s = sample_process(pid)?;
        total.cpu += s.cpu;
        total.rss_bytes += s.rss_bytes;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&mut v);
        assert_eq!((p.count, p.p50_ms, p.p99_ms, p.max_ms), (100, 50.0, 99.0, 100.0));
        assert_eq!(percentiles(&mut []).count, 0);
    }

    #[test]
    fn reads_our_own_process() {
        let s = sample_process(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }
}
