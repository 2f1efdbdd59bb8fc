//! `olive cost report`: the measured usage of the platform priced per channel and per day, from
//! the same storage `olive serve` writes it to (safe to run beside it). Text for a person, JSON
//! (`--json`) for a script; the admin API serves the same report.

use crate::config::{CostArgs, CostConfig, StorageArgs, StorageConfig};
use crate::engines;
use anyhow::{bail, Context};
use chrono::{Days, NaiveDate, Utc};
use clap::Subcommand;
use olive_commerce::cost::{self, CostLine, CostReport};
use std::fmt::Write as _;

#[derive(Subcommand)]
pub enum CostCommand {
    /// Estimated spend per channel and per day, from measured egress, ingest, stored bytes and CPU.
    Report {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        cost: CostArgs,
        /// First day, YYYY-MM-DD [default: the first of this month].
        #[arg(long, value_name = "DAY")]
        from: Option<NaiveDate>,
        /// Last day, included, YYYY-MM-DD [default: today].
        #[arg(long, value_name = "DAY")]
        to: Option<NaiveDate>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: CostCommand) -> anyhow::Result<()> {
    let CostCommand::Report { storage, cost: cost_args, from, to, json } = command;
    let config = StorageConfig::from_args(&storage)?;
    let prices = CostConfig::from_args(&storage, &cost_args)?;
    let today = Utc::now().date_naive();
    let from = from.unwrap_or_else(|| cost::month_of(today).0);
    let last = to.unwrap_or(today);
    if last < from {
        bail!("--to {last} is before --from {from}");
    }
    if (last - from).num_days() > 3660 {
        bail!("a report covers at most ten years");
    }
    let engines = engines::open(&config).await?;
    let until = last + Days::new(1);
    let report = cost::load(engines.store.as_ref(), prices.prices, from, until).await.context("reading usage")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report, prices.monthly_budget));
    }
    Ok(())
}

fn channel_name(line: &CostLine) -> String {
    line.channel_id.map_or_else(|| "platform".to_owned(), |c| format!("channel {c}"))
}

fn gb(bytes: i64) -> f64 {
    bytes as f64 / 1e9
}

/// The report as aligned text: per channel, per day, the total, and the budget line.
pub fn text(report: &CostReport, monthly_budget: f64) -> String {
    let mut out = String::new();
    let last = report.to.pred_opt().unwrap_or(report.to);
    let p = &report.prices;
    let _ = writeln!(out, "Olive cost report, {} to {} (UTC days)", report.from, last);
    let _ = writeln!(
        out,
        "prices: egress ${}/GB, ingest ${}/GB, storage ${}/GB-month, CPU ${}/hour (GB = 10^9 bytes)\n",
        p.egress_per_gb, p.ingest_per_gb, p.storage_per_gb_month, p.cpu_per_hour
    );
    let header = format!(
        "{:<14} {:>12} {:>12} {:>14} {:>10} {:>11}\n",
        "", "egress GB", "ingest GB", "stored GB-day", "CPU s", "cost USD"
    );
    let row = |out: &mut String, name: &str, l: &CostLine| {
        let _ = writeln!(
            out,
            "{:<14} {:>12.3} {:>12.3} {:>14.3} {:>10.1} {:>11.4}",
            name,
            gb(l.egress_bytes),
            gb(l.ingest_bytes),
            gb(l.stored_bytes),
            l.cpu_ms as f64 / 1e3,
            l.total_usd
        );
    };
    out.push_str("by channel\n");
    out.push_str(&header);
    for line in &report.channels {
        row(&mut out, &channel_name(line), line);
    }
    out.push_str("\nby day\n");
    out.push_str(&header);
    for line in &report.days {
        row(&mut out, &line.day.map(|d| d.to_string()).unwrap_or_default(), line);
    }
    out.push('\n');
    row(&mut out, "total", &report.total);
    if monthly_budget > 0.0 {
        let _ = writeln!(
            out,
            "\nmonthly budget ${monthly_budget:.2}: this report is {:.1} % of it",
            report.total.total_usd / monthly_budget * 100.0
        );
    }
    out
}
