//! Logs and metrics set-up. Logs go to stdout, human-readable by default and one JSON object per
//! line with `OLIVE_LOG_FORMAT=json` (ready for Loki); `RUST_LOG` filters. Metrics are recorded
//! through the `metrics` facade into a Prometheus recorder rendered at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("OLIVE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout).with_ansi(ansi);
    let result = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("logging was already set up: {e}");
    }
}

/// Panics become one error log line (JSON when logs are), not a backtrace on stderr. A panic in a
/// connection's task (scuffle-rtmp has two known ones on malformed input) ends that task only.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        tracing::error!(%location, "a task panicked: {message}");
    }));
}

/// The process-wide metrics recorder, installed by the first caller (every application in the
/// process records into it).
pub fn metrics() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(installed) = handle.as_ref() {
        return Ok(installed.clone());
    }
    let installed = init_metrics()?;
    *handle = Some(installed.clone());
    Ok(installed)
}

/// Installs the process-wide metrics recorder and names every metric Olive exports.
fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("olive_http_request_duration_seconds".into()),
            &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("olive_checkout_duration_seconds".into()),
            &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
        )?
        .set_buckets_for_metric(
            Matcher::Suffix("cpu_seconds".into()),
            &[0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("olive_thumbnail_seconds".into()),
            &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
        )?
        .install_recorder()?;
    metrics::describe_counter!("olive_http_requests_total", "HTTP requests by route template, method and status");
    metrics::describe_histogram!(
        "olive_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    metrics::describe_counter!("olive_orders_total", "Order attempts by result");
    metrics::describe_gauge!("olive_channels_live", "Channels live now");
    metrics::describe_gauge!("olive_ws_connections", "Open real-time WebSocket connections");
    metrics::describe_counter!("olive_chat_messages_total", "Chat messages accepted");
    metrics::describe_counter!("olive_jobs_total", "Background job attempts by kind and result (done, retry, dead)");
    metrics::describe_gauge!("olive_ingest_bitrate_bps", "Ingest bitrate per live channel, bits per second");
    metrics::describe_gauge!(
        "olive_channel_live",
        "1 while the channel is live (its publisher may be reconnecting), else 0"
    );
    metrics::describe_gauge!("olive_ingest_fps", "Video frames per second received, per live channel");
    metrics::describe_gauge!("olive_transcode_slots", "Ladders this node can encode at once, by state (used, free)");
    metrics::describe_counter!(
        "olive_transcode_cpu_milliseconds_total",
        "CPU time the ladder encoder spent, per channel"
    );
    metrics::describe_counter!(
        "olive_ladder_fallbacks_total",
        "Standard lives played as basic, by reason (no_encoder, no_slot, nothing_below_source, encoder_failed)"
    );
    metrics::describe_gauge!(
        "olive_ladder_encoder_lag_seconds",
        "How far a rung's newest frame is behind the source's newest frame, in media time, per channel and rung"
    );
    metrics::describe_gauge!("olive_ladder_rung_fps", "Frames per second the encoder makes, per channel and rung");
    metrics::describe_gauge!(
        "olive_ladder_dropped_parts",
        "Source parts a rung could not make since its live began, per channel and rung"
    );
    metrics::describe_gauge!(
        "olive_ingest_keyframe_interval_seconds",
        metrics::Unit::Seconds,
        "Time between the last two keyframes, per channel"
    );
    metrics::describe_gauge!(
        "olive_ingest_last_frame_timestamp_seconds",
        metrics::Unit::Seconds,
        "Unix time of the last frame received, per channel"
    );
    metrics::describe_gauge!("olive_rtmp_connections", "Open RTMP connections");
    metrics::describe_gauge!("olive_viewers", "Viewers per channel across every node");
    metrics::describe_counter!("olive_pins_total", "Products pinned, per channel");
    metrics::describe_counter!("olive_revenue_total", "Revenue of created orders in the currency's minor unit");
    metrics::describe_histogram!(
        "olive_checkout_duration_seconds",
        metrics::Unit::Seconds,
        "Time to place an order (stock reservation included)"
    );
    metrics::describe_gauge!("olive_jobs", "Background jobs by status (the backlog), from the database");
    metrics::describe_gauge!("olive_products_sold_out", "Products on sale with no stock left");
    metrics::describe_gauge!("olive_db_pool_connections", "Database pool connections by state (idle, busy)");
    metrics::describe_counter!("olive_db_errors_total", "Failed reads of the operations gauges");
    metrics::describe_gauge!(
        "olive_bus_roundtrip_seconds",
        metrics::Unit::Seconds,
        "Time for a probe to cross the bus"
    );
    metrics::describe_counter!("olive_bus_probe_failures_total", "Bus probes not delivered within 5 s");
    metrics::describe_counter!("olive_bus_lagged_messages_total", "Bus messages a slow subscriber skipped");
    metrics::describe_counter!("olive_object_store_errors_total", "Object storage (disk or S3) errors");
    metrics::describe_counter!(
        "olive_egress_bytes_total",
        metrics::Unit::Bytes,
        "HTTP response bytes by kind (media, other)"
    );
    metrics::describe_gauge!("olive_budget_spent_ratio", "This month's estimated spend over the monthly budget");
    metrics::describe_gauge!("olive_budget_month_elapsed_ratio", "Share of the month gone");
    metrics::describe_gauge!("olive_cost_month_to_date_usd", "This month's estimated spend, US dollars");
    metrics::describe_gauge!("olive_budget_monthly_usd", "The monthly budget, US dollars");
    metrics::describe_gauge!("olive_http_connections", "Open HTTP connections, WebSockets included");
    metrics::describe_counter!(
        "olive_http_connections_refused_total",
        "HTTP connections answered 503 and closed at the connection cap"
    );
    metrics::describe_counter!(
        "olive_rtmp_refused_total",
        "RTMP connections closed before publishing, by reason (publish_timeout, unpublished_per_address)"
    );
    metrics::describe_counter!("olive_thumbnails_total", "Thumbnails by result (stored, deferred, failed)");
    metrics::describe_histogram!(
        "olive_thumbnail_seconds",
        metrics::Unit::Seconds,
        "Time to decode a keyframe and encode its thumbnail"
    );
    metrics::describe_histogram!(
        "olive_thumbnail_cpu_seconds",
        metrics::Unit::Seconds,
        "CPU time spent on one thumbnail"
    );
    metrics::describe_histogram!(
        "olive_label_cpu_seconds",
        metrics::Unit::Seconds,
        "CPU time spent labelling one thumbnail"
    );
    metrics::describe_counter!(
        "olive_recording_bytes_total",
        metrics::Unit::Bytes,
        "Bytes of recordings written to object storage"
    );
    metrics::describe_counter!(
        "olive_recording_dropped_total",
        "Recording segments dropped because object storage could not keep up or failed"
    );
    metrics::describe_counter!(
        "olive_ws_skipped_frames_total",
        "Room frames skipped for viewers whose connection could not keep up"
    );
    metrics::gauge!("olive_channels_live").set(0.0);
    metrics::gauge!("olive_rtmp_connections").set(0.0);
    // Counters the alerts read start at zero, so "nothing went wrong" is a series, not an absence.
    for name in ["olive_object_store_errors_total", "olive_recording_dropped_total", "olive_bus_lagged_messages_total"]
    {
        metrics::counter!(name).absolute(0);
    }
    for kind in ["media", "other"] {
        metrics::counter!("olive_egress_bytes_total", "kind" => kind).absolute(0);
    }
    metrics::gauge!("olive_ws_connections").set(0.0);
    metrics::counter!("olive_chat_messages_total").absolute(0);
    for result in ["created", "replayed", "out_of_stock", "invalid", "unavailable", "error"] {
        metrics::counter!("olive_orders_total", "result" => result).absolute(0);
    }
    Ok(handle)
}
