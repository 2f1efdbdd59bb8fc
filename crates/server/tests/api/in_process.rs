//! The platform started in-process with `Application::build`, as the library offers it: no binary,
//! listeners on port 0, a shutdown trigger instead of a signal.

use olive_server::config::{ServeArgs, ServeConfig};
use olive_server::Application;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn config(data_dir: &std::path::Path) -> ServeConfig {
    let mut args = ServeArgs::default();
    args.storage.data_dir = Some(data_dir.to_owned());
    args.http = Some("127.0.0.1:0".into());
    args.rtmp = Some("127.0.0.1:0".into());
    args.metrics = Some("127.0.0.1:0".into());
    args.node_id = Some("in-process".into());
    args.ladder.transcode_slots = Some("0".into());
    args.demo = true;
    ServeConfig::from_args(&args).unwrap()
}

/// A shopper of the demo content buys in-process; the order's outbox is drained (every cache
/// forgets the product, which then shows the new stock), and the trigger stops it all in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_platform_runs_in_process_sells_and_stops_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let application = Application::build(config(dir.path())).await.unwrap();
    let (http, metrics) = (application.http_addr(), application.metrics_addr());
    assert_ne!(http.port(), 0, "a free port was bound");
    let trigger = application.shutdown_trigger();
    let stopped = tokio::spawn(application.stopped());

    let base = format!("http://{http}");
    let client = reqwest::Client::new();
    let accounts = std::fs::read_to_string(dir.path().join("demo-accounts.txt")).unwrap();
    let shopper = accounts.lines().find(|l| l.starts_with("viewer")).unwrap();
    let [_, email, password] = shopper.split_whitespace().collect::<Vec<_>>()[..] else { panic!("{shopper}") };
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let products: Value = client.get(format!("{base}/api/v1/products")).send().await.unwrap().json().await.unwrap();
    let product = &products["items"][0];
    let (id, stock) = (product["id"].as_i64().unwrap(), product["stock"].as_i64().unwrap());
    // Read once, so its details are cached before the order.
    client.get(format!("{base}/api/v1/products/{id}")).send().await.unwrap();
    let order = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .header("idempotency-key", "in-process-1")
        .json(&json!({"items": [{"product_id": id, "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), StatusCode::CREATED);
    let after: Value = client.get(format!("{base}/api/v1/products/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["stock"].as_i64(), Some(stock - 2), "{after}");
    let scrape = client.get(format!("http://{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(scrape.contains("olive_orders_total{result=\"created\"}"), "the checkout counted it");
    // The order's outbox job runs on the worker.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = client.get(format!("http://{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
        if scrape.lines().any(|l| l.starts_with("olive_jobs_total{kind=\"order.placed\",result=\"done\"} 1")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the order's outbox was never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    trigger.shutdown();
    tokio::time::timeout(Duration::from_secs(30), stopped).await.expect("stopped in time").unwrap();
    assert!(tokio::net::TcpStream::connect(http).await.is_err(), "the HTTP listener is closed");
}
