//! Accounts for a bench run: signed up through the public API like any shopper, a few at a time
//! (each costs the server an argon2 hash), so workloads that need signed-in users get their tokens.

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
            async move {
                let r = client.post(url).json(&body).send().await?;
                anyhow::ensure!(r.status().is_success(), "signing up a {label}: {}", r.status());
                let session: serde_json::Value = r.json().await?;
                Ok(session["token"].as_str().context("no token in the signup answer")?.to_owned())
            }
        })
        .buffered(4)
        .try_collect()
        .await
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
