//! Accounts for a bench run: signed up and logged in through the public API like any shopper, a
//! few at a time (each costs the server two argon2 hashes), so workloads that need signed-in users
//! get their tokens. The server limits sign-ups and logins per client address, and every bench
//! account comes from this one: a bench run's server needs `--signup-limit` and `--login-limit`
//! raised (the scripts under `bench/` do).

use anyhow::Context;
use futures::stream::{self, StreamExt, TryStreamExt};

/// Signs up `count` accounts named `{label}-{run}-{i}@bench.olive.test` and returns their bearer
/// tokens, in order.
pub async fn sign_up(base: &str, label: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let body = serde_json::json!({
                "email": format!("{label}-{run}-{i}@bench.olive.test"),
                "password": "bench password 1234",
            });
            let url = format!("{base}/api/v1/auth/signup");
            let login = format!("{base}/api/v1/auth/login");
            async move {
                let r = patiently(|| client.post(&url).json(&body)).await?;
                anyhow::ensure!(r.status().is_success(), "signing up a {label}: {}{}", r.status(), advice(r.status()));
                let r = patiently(|| client.post(&login).json(&body)).await?;
                anyhow::ensure!(r.status().is_success(), "logging in a {label}: {}{}", r.status(), advice(r.status()));
                let session: serde_json::Value = r.json().await?;
                Ok(session["token"].as_str().context("no token in the login answer")?.to_owned())
            }
        })
        .buffered(4)
        .try_collect()
        .await
}

/// Sends until the server is not `503 busy` hashing other passwords, as it asks, for up to a minute.
async fn patiently(request: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = request().send().await?;
        if r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE || std::time::Instant::now() > deadline {
            return Ok(r);
        }
        let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}

fn advice(status: reqwest::StatusCode) -> &'static str {
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        " (the server limits sign-ups and logins per address: start it with --signup-limit and --login-limit raised for a bench run)"
    } else {
        ""
    }
}

/// Signs in and returns the bearer token.
pub async fn log_in(base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    anyhow::ensure!(r.status().is_success(), "signing in as {email}: {}", r.status());
    let body: serde_json::Value = r.json().await?;
    Ok(body["token"].as_str().context("no token in the login answer")?.to_owned())
}
