//! What an operator relies on: health, metrics, request ids, the OpenAPI document, the demo,
//! configuration errors, admin commands beside a running server, and a clean stop.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_metrics_and_request_ids() {
    let server = Server::start().await;
    let live = server.client.get(server.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready = server.client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.headers().contains_key("x-request-id"));
    let given =
        server.client.get(server.url("/api/v1/channels")).header("x-request-id", "trace-me-123").send().await.unwrap();
    assert_eq!(given.headers().get("x-request-id").unwrap(), "trace-me-123");
    server.client.get(server.url("/api/v1/products/12345")).send().await.unwrap();

    // Prometheus scrapes the metrics listener; it serves nothing else.
    let metrics = server.client.get(&server.metrics).send().await.unwrap().text().await.unwrap();
    let other = server.metrics.replace("/metrics", "/api/v1/channels");
    assert_eq!(server.client.get(&other).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    // On the public listener, /metrics is for a direct local caller only: not through a proxy.
    let direct = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    let proxied = server.client.get(server.url("/metrics")).header("x-forwarded-for", "203.0.113.9").send().await;
    assert_eq!(error_code(proxied.unwrap(), StatusCode::NOT_FOUND).await, "not_found");
    promtool_checks(&metrics).await;
    for needle in [
        "olive_http_requests_total{route=\"/api/v1/channels\",method=\"GET\",status=\"200\"}",
        "olive_http_requests_total{route=\"/api/v1/products/{id}\",method=\"GET\",status=\"404\"}",
        "olive_http_request_duration_seconds_bucket",
        "olive_orders_total",
        "olive_channels_live",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
    assert!(!metrics.contains("12345"), "raw paths never become labels");
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let server = Server::start_with_env(&[("OLIVE_LOG_FORMAT", "json")]).await;
    let r = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .header("x-request-id", "req-4242")
        .json(&serde_json::json!({"email": "who@example.com", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let lines = server.output.lock().unwrap().clone();
    let parsed: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).expect("every log line is JSON")).collect();
    let failed = parsed.iter().find(|l| l["message"] == "login failed").expect("the failed login was logged");
    assert_eq!(failed["span"]["request_id"], "req-4242");
    assert_eq!(failed["level"], "INFO");
    assert!(!lines.iter().any(|l| l.contains("not the password")), "passwords never reach a log");

    // A signed-in request's lines carry the user; a channel's carry the channel (the fields
    // deploy/loki/promtail.yml lifts out).
    let host = server.create_user("json-host@example.com", "host").await;
    let admin = server.create_user("json-admin@example.com", "admin").await;
    let product = server.product(&admin, "Logged lipstick", 5).await;
    let (channel, _) = crate::live::channel_with_key(&host, "Logged").await;
    let pin = host.post(&format!("/api/v1/channels/{channel}/pin")).header("x-request-id", "req-pin");
    assert_eq!(pin.json(&serde_json::json!({ "product_id": product })).send().await.unwrap().status(), 201);
    let lines = server.output.lock().unwrap().clone();
    let pinned = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["message"] == "product pinned")
        .expect("the pin was logged");
    assert_eq!(pinned["span"]["request_id"], "req-pin");
    assert_eq!(pinned["span"]["user_id"], host.id());
    assert_eq!(pinned["span"]["route"], "/api/v1/channels/{id}/pin");
    assert_eq!(pinned["channel_id"], channel.to_string());
    assert!(pinned["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{pinned}");
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let server = Server::start().await;
    let doc: Value = server.get_json("/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/v1/auth/login", "/api/v1/orders", "/api/v1/products/{id}", "/api/v1/channels/{id}/stream-key"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}

/// Whether a command-line tool is installed (it answers `--help`).
fn have(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--help")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("{tool} is not installed: skipping (pip install openapi-spec-validator schemathesis)");
    }
    found
}

/// The served OpenAPI document passes a third-party validator, and schemathesis, signed in as an
/// admin on a shop with demo content, finds no server error, no undocumented status and no answer
/// that differs from its schema. Signing out and changing the password are left out: they would
/// end the very session the run uses (their own tests are in `accounts`).
#[tokio::test]
async fn the_api_description_is_valid_and_the_api_keeps_to_it() {
    if !have("openapi-spec-validator") || !have("schemathesis") {
        return;
    }
    let server = Server::start_with(Db::Sqlite, &["--demo"]).await;
    let admin = server.create_user("schemathesis-admin@example.com", "admin").await;
    let doc = server.client.get(server.url("/api/v1/openapi.json")).send().await.unwrap().bytes().await.unwrap();
    let file = server.data_dir.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let validated = tokio::process::Command::new("openapi-spec-validator").arg(&file).output().await.unwrap();
    let said = String::from_utf8_lossy(&validated.stdout).into_owned() + &String::from_utf8_lossy(&validated.stderr);
    assert!(validated.status.success(), "openapi-spec-validator refused the document: {said}");

    let checks = "not_a_server_error,status_code_conformance,content_type_conformance,\
                  response_schema_conformance,response_headers_conformance";
    let mut run = tokio::process::Command::new("schemathesis");
    run.arg("run")
        .arg(server.url("/api/v1/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {}", admin.token)])
        .args(["--checks", checks, "--max-examples", "40", "--workers", "2", "--seed", "23"])
        .args(["--generation-database", "none", "--no-color", "--request-timeout", "30"])
        .args(["--exclude-operation-id", "auth_logout", "--exclude-operation-id", "auth_logout_all"])
        .args(["--exclude-operation-id", "auth_change_password"])
        .current_dir(server.data_dir.path())
        .kill_on_drop(true);
    let ran = tokio::time::timeout(std::time::Duration::from_secs(600), run.output()).await.expect("done in 10 min");
    let ran = ran.unwrap();
    let report = String::from_utf8_lossy(&ran.stdout).into_owned() + &String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "schemathesis found failures:\n{report}");
    assert!(report.contains("passed"), "{report}");
}

#[tokio::test]
async fn demo_content_is_created_once_and_usable() {
    let server = Server::start_with(Db::Sqlite, &["--demo"]).await;
    let channels: Value = server.get_json("/api/v1/channels").await;
    assert_eq!(channels["items"].as_array().unwrap().len(), 3);
    let products: Value = server.get_json("/api/v1/products").await;
    let products = products["items"].as_array().unwrap();
    assert!(products.len() >= 12);
    let categories: std::collections::HashSet<_> = products.iter().map(|p| p["category"].as_str().unwrap()).collect();
    assert!(categories.len() >= 3);
    let image = products[0]["images"][0]["url"].as_str().unwrap();
    let png = server.client.get(server.url(image)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let lineup: Value = server.get_json("/api/v1/channels/1/lineup").await;
    assert!(!lineup["product_ids"].as_array().unwrap().is_empty());

    // The printed accounts work.
    let output = server.output.lock().unwrap().clone();
    for (role, email) in [("host", "host@olive.test"), ("viewer", "shopper@olive.test")] {
        let line = output
            .iter()
            .find(|l| l.starts_with(role) && l.contains(email))
            .unwrap_or_else(|| panic!("{email} not printed"));
        let password = line.split_whitespace().last().unwrap();
        server.login(email, password).await;
    }
    let titles: Value = server.get_json("/api/v1/channels").await;
    assert!(titles["items"].as_array().unwrap().iter().any(|c| c["title"] == "Glow Skincare Live"));

    // A restart on the same data dir keeps the content and adds nothing.
    let server = server.restart(&["--demo"]).await;
    let channels: Value = server.get_json("/api/v1/channels").await;
    assert_eq!(channels["items"].as_array().unwrap().len(), 3);
    assert!(server.output.lock().unwrap().iter().any(|l| l.contains("already has content")));
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let server = Server::start().await;
    server.client.get(server.url("/api/v1/channels")).send().await.unwrap();
    let status = server.stop().await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn bad_configuration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--http".into(), "localhost".into()], "http"),
        (vec!["--database-url".into(), "mysql://x".into()], "database_url"),
        (vec!["--bus-url".into(), "kafka://x".into()], "bus_url"),
    ];
    for (args, key) in cases {
        let out = tokio::process::Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .args(&args)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("invalid configuration: {key}:")), "{stderr}");
    }
    let file = dir.path().join("olive.toml");
    std::fs::write(&file, "htp = \"127.0.0.1:1\"\n").unwrap();
    let out = tokio::process::Command::new(BIN).args(["serve", "--config"]).arg(&file).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("htp"));
    // The environment layer is read too, and flags beat it.
    let out = tokio::process::Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("OLIVE_HTTP_ADDR", "nonsense")
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration: http:"));
}

#[tokio::test]
async fn create_user_refuses_duplicates_and_bad_roles() {
    let server = Server::start().await;
    server.create_user("ops@example.com", "admin").await;
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(["admin", "create-user", "--data-dir"]).arg(server.data_dir.path()).args(args);
        cmd.output()
    };
    let dup = run(&["--email", "ops@example.com", "--password", PASSWORD, "--role", "admin"]).await.unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let role = run(&["--email", "x@example.com", "--password", PASSWORD, "--role", "root"]).await.unwrap();
    assert!(!role.status.success());
    assert!(String::from_utf8_lossy(&role.stderr).contains("unknown role"));
}
