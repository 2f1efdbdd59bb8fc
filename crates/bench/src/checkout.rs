//! `olive bench checkout`: a flash sale. The bench sets up one product with `units` in stock on a
//! channel's line-up and starts a live deal selling all of them (as an admin, through the API),
//! signs up `buyers` shoppers, and then `connections` clients place orders for the deal's product
//! as fast as the server answers, for a bounded time — every attempt with its own
//! `Idempotency-Key`, like shoppers pressing "buy" again and again. With a `rate` the clients
//! instead press at that many attempts a second in all, on a fixed schedule (a client behind it
//! presses again at once). Latency counts from sending the attempt, as in the other workloads of
//! `bench mixed`. It reports attempts per second,
//! latency percentiles, orders created, refusals by reason, and checks the outcome against the
//! server: orders created must equal the deal's sold count and never exceed the units listed.

use crate::stats::{percentiles, sample_process, Percentiles};
use anyhow::Context;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CheckoutOptions {
    /// `http://127.0.0.1:8080`
    pub base: String,
    /// Bearer token of an admin (creates the product, the channel and the deal).
    pub admin_token: String,
    /// Bearer tokens of the buyers.
    pub buyers: Vec<String>,
    pub units: i64,
    pub per_customer: i64,
    pub connections: usize,
    pub duration: Duration,
    /// Attempts per second, all clients together; `None`: each client as fast as it is answered.
    pub rate: Option<f64>,
    pub server_pids: Vec<u32>,
    pub allow_remote: bool,
    /// Where each attempt's latency is also recorded by second, for plots and progress.
    pub timeline: Option<Arc<crate::timeline::Timeline>>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckoutReport {
    pub units: i64,
    pub buyers: usize,
    pub connections: usize,
    /// The paced rate asked for (attempts/s), if any.
    pub rate: Option<f64>,
    pub seconds: f64,
    pub attempts: u64,
    pub attempts_per_second: f64,
    /// 201s: orders created.
    pub created: u64,
    pub refused_out_of_stock: u64,
    pub refused_limit: u64,
    /// Anything else: other statuses and transport errors.
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Percentiles,
    pub latency_created: Percentiles,
    /// From the first attempt until the last unit was sold.
    pub sold_out_after_ms: Option<f64>,
    /// The deal's sold count as the server reports it after the run.
    pub server_sold: i64,
    /// Orders beyond the units listed (must be 0).
    pub oversold: i64,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_mib: Option<f64>,
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    attempts: u64,
    created: u64,
    out_of_stock: u64,
    limit: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
    created_latencies: Vec<Duration>,
    last_created: Option<Instant>,
}

/// Creates the product, a channel with it in the line-up, and the deal; returns the product and
/// deal ids.
async fn set_up(client: &reqwest::Client, opts: &CheckoutOptions) -> anyhow::Result<(i64, i64)> {
    let base = &opts.base;
    let admin = &opts.admin_token;
    let call = |r: reqwest::RequestBuilder, what: &'static str| async move {
        let r = r.bearer_auth(admin).send().await.with_context(|| what)?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{what}: {status} {body}");
        Ok::<_, anyhow::Error>(body)
    };
    let product = call(
        client.post(format!("{base}/api/v1/products")).json(&json!({
            "name": "Flash sale bench cushion", "category": "foundation", "price_minor": 20_000, "stock": opts.units,
        })),
        "creating the product",
    )
    .await?["id"]
        .as_i64()
        .context("product id")?;
    let channel = call(
        client.post(format!("{base}/api/v1/channels")).json(&json!({"title": "Flash sale bench"})),
        "creating the channel",
    )
    .await?["id"]
        .as_i64()
        .context("channel id")?;
    call(
        client.put(format!("{base}/api/v1/channels/{channel}/lineup")).json(&json!({"product_ids": [product]})),
        "setting the line-up",
    )
    .await?;
    let run_for = (opts.duration.as_secs() as i64 + 60).clamp(10, 1200);
    let deal = call(
        client.post(format!("{base}/api/v1/channels/{channel}/deals")).json(&json!({
            "product_id": product, "price_minor": 9_900, "quantity": opts.units,
            "per_customer_limit": opts.per_customer, "duration_s": run_for,
        })),
        "starting the deal",
    )
    .await?["id"]
        .as_i64()
        .context("deal id")?;
    Ok((product, deal))
}

/// A paced rate must be a positive number of attempts a second (`None`: not paced).
pub fn check_rate(rate: Option<f64>) -> anyhow::Result<()> {
    if let Some(rate) = rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "the attempt rate must be a positive number of attempts a second, not {rate}"
        );
    }
    Ok(())
}

pub async fn run(opts: CheckoutOptions) -> anyhow::Result<CheckoutReport> {
    crate::http_target(&opts.base, opts.allow_remote)?;
    anyhow::ensure!(!opts.buyers.is_empty() && opts.connections > 0, "no buyers or no connections");
    check_rate(opts.rate)?;
    // With a rate, each client presses every `gap`, the clients spread evenly within it.
    let gap = opts.rate.map(|rate| Duration::from_secs_f64(opts.connections as f64 / rate));
    let setup = reqwest::Client::new();
    let (product, deal) = set_up(&setup, &opts).await?;

    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let buyers = Arc::new(opts.buyers.clone());
    let order_url = Arc::new(format!("{}/api/v1/orders", opts.base));
    let body = bytes::Bytes::from(json!({"items": [{"product_id": product, "quantity": 1}]}).to_string());
    // Shoppers are already watching when the sale opens: every client connects and signs its
    // buyers in (`GET /api/v1/me`) first, then all press "buy" at the same instant.
    let ready = Arc::new(tokio::sync::Barrier::new(opts.connections + 1));
    let start = Arc::new(tokio::sync::OnceCell::<Instant>::new());
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..opts.connections {
        let (buyers, order_url, body) = (buyers.clone(), order_url.clone(), body.clone());
        let (ready, start) = (ready.clone(), start.clone());
        let me_url = format!("{}/api/v1/me", opts.base);
        let (connections, duration, timeline) = (opts.connections, opts.duration, opts.timeline.clone());
        clients.spawn(async move {
            // One connection per client, kept alive.
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).http1_only().build()?;
            let mut warmed = Ok(());
            for buyer in (worker..buyers.len()).step_by(connections) {
                if let Err(e) = client.get(&me_url).bearer_auth(&buyers[buyer]).send().await {
                    warmed = Err(e);
                    break;
                }
            }
            ready.wait().await;
            warmed?;
            let started = *start.get_or_init(|| async { Instant::now() }).await;
            let stop_at = started + duration;
            let mut tally = Tally::default();
            let mut n = 0usize;
            loop {
                let due = match gap {
                    Some(gap) => started + gap.mul_f64(n as f64 + worker as f64 / connections as f64),
                    None => Instant::now(),
                };
                // Attempts still due when time is up are not made: the rate reached says so.
                if due >= stop_at || Instant::now() >= stop_at {
                    break;
                }
                if gap.is_some() && due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let buyer = (worker + n * connections) % buyers.len();
                let key = format!("flash-{run_id}-{worker}-{n}");
                n += 1;
                let sent = Instant::now();
                let answer = client
                    .post(order_url.as_str())
                    .bearer_auth(&buyers[buyer])
                    .header("idempotency-key", key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let outcome = match answer {
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        Ok((status, text))
                    }
                    Err(e) => Err(e.to_string()),
                };
                let took = sent.elapsed();
                tally.attempts += 1;
                tally.latencies.push(took);
                if let Some(t) = &timeline {
                    t.record(Instant::now(), took);
                }
                match outcome {
                    Ok((status, _)) if status == reqwest::StatusCode::CREATED => {
                        tally.created += 1;
                        tally.created_latencies.push(took);
                        tally.last_created = Some(Instant::now());
                    }
                    Ok((status, text)) if status == reqwest::StatusCode::CONFLICT && text.contains("out_of_stock") => {
                        tally.out_of_stock += 1
                    }
                    Ok((status, text))
                        if status == reqwest::StatusCode::CONFLICT && text.contains("deal_limit_reached") =>
                    {
                        tally.limit += 1
                    }
                    Ok((status, text)) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert_with(|| format!("{status} {text}"));
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
            }
            Ok::<_, anyhow::Error>(tally)
        });
    }
    let cpu_before = opts.server_pids.first().and_then(|p| sample_process(*p).ok());
    ready.wait().await;
    let started = *start.get_or_init(|| async { Instant::now() }).await;
    let mut all = Tally::default();
    while let Some(done) = clients.join_next().await {
        let t = done??;
        all.attempts += t.attempts;
        all.created += t.created;
        all.out_of_stock += t.out_of_stock;
        all.limit += t.limit;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
        all.latencies.extend(t.latencies);
        all.created_latencies.extend(t.created_latencies);
        all.last_created = all.last_created.max(t.last_created);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = opts.server_pids.first().and_then(|p| sample_process(*p).ok());

    let dealt: Value = setup.get(format!("{}/api/v1/deals/{deal}", opts.base)).send().await?.json().await?;
    let server_sold = dealt["sold"].as_i64().context("the deal's sold count")?;
    // Give the unsold units (if any) back and stop the deal.
    let _ = setup.post(format!("{}/api/v1/deals/{deal}/end", opts.base)).bearer_auth(&opts.admin_token).send().await;

    Ok(CheckoutReport {
        units: opts.units,
        buyers: opts.buyers.len(),
        connections: opts.connections,
        rate: opts.rate,
        seconds,
        attempts: all.attempts,
        attempts_per_second: all.attempts as f64 / seconds,
        created: all.created,
        refused_out_of_stock: all.out_of_stock,
        refused_limit: all.limit,
        errors: all.errors,
        first_error: all.first_error,
        latency: percentiles(&mut all.latencies),
        latency_created: percentiles(&mut all.created_latencies),
        sold_out_after_ms: (server_sold == opts.units)
            .then(|| all.last_created.map(|t| (t - started).as_secs_f64() * 1e3))
            .flatten(),
        server_sold,
        oversold: (all.created as i64 - opts.units).max(0).max(server_sold - opts.units),
        server_cpu_percent: match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some((b.cpu - a.cpu).as_secs_f64() / seconds * 100.0),
            _ => None,
        },
        server_rss_mib: cpu_after.map(|s| s.rss_bytes as f64 / (1024.0 * 1024.0)),
    })
}
