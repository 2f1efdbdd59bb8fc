//! Webhooks: events (`stream.started`, `stream.ended`, `replay.ready`, `order.placed`) POSTed as
//! JSON to the URLs admins registered, through the job queue so a receiver that is down gets the
//! event later (backoff, then a dead letter).
//!
//! Each delivery carries `Olive-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>"
//! keyed with the webhook's secret>` and `Olive-Event: <type>`; docs/WEBHOOKS.md shows how to
//! verify it. The body is fixed when the event happens, so a retry sends the same bytes (with a
//! fresh timestamp and signature), and its `id` lets receivers drop duplicates.
//!
//! A webhook URL is a secret of its receiver (it often carries a token): it is never logged or
//! kept in a job's error whole, only its scheme and host ([`redacted`]). And a webhook is a
//! request the server makes on an admin's word: unless the operator allows it
//! ([`WebhookTargets::AnyAddress`]), it may reach only public addresses, checked when the URL is
//! registered (an IP literal, `localhost`) and again at every delivery on the addresses its host
//! name resolves to, so a name that later resolves inside the network reaches nothing.

use crate::{Handler, JobError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use olive_store::{Job, NewJob, Store, StoreError, WebhookStore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// The job kind of one delivery.
pub const DELIVER: &str = "webhook.deliver";
/// The events a webhook can ask for.
pub const EVENTS: [&str; 4] = ["stream.started", "stream.ended", "replay.ready", "order.placed"];
/// Attempts before a delivery is a dead letter (with the default backoff: about 4 minutes).
pub const MAX_ATTEMPTS: i64 = 8;

#[derive(Serialize, Deserialize)]
struct Delivery {
    webhook_id: i64,
    event: String,
    body: String,
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={digest}")
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> WebhookError {
    WebhookError::Invalid { field, message: message.into() }
}

/// Where webhooks may be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookTargets {
    /// Public addresses only (the default).
    #[default]
    PublicOnly,
    /// Anywhere, private networks and loopback included (`--allow-private-webhooks`).
    AnyAddress,
}

/// A URL as it may be logged: its scheme, host and port, the rest elided.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", u.scheme()),
            (Some(host), None) => format!("{}://{host}/…", u.scheme()),
            _ => "(a URL without a host)".to_owned(),
        },
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Why `parsed`'s host may not be a target, if it may not: an address literal that is not public,
/// or a name for this machine.
fn refused_host(parsed: &url::Url) -> Option<&'static str> {
    match parsed.host()? {
        url::Host::Ipv4(ip) if !olive_core::is_public_unicast(ip.into()) => Some("a private or local address"),
        url::Host::Ipv6(ip) if !olive_core::is_public_unicast(ip.into()) => Some("a private or local address"),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some("this machine")
        }
        _ => None,
    }
}

/// Registers an endpoint (an admin's call; the caller checks the role). Returns it with its new
/// secret, which is shown this once. Only `http` and `https` URLs with a host are accepted, and
/// with [`WebhookTargets::PublicOnly`] only those whose host is not a private or local address.
pub async fn register(
    store: &dyn WebhookStore,
    url: &str,
    events: Vec<String>,
    targets: WebhookTargets,
    now: DateTime<Utc>,
) -> Result<olive_store::Webhook, WebhookError> {
    let trimmed = url.trim();
    if trimmed.len() > 2000 {
        return Err(invalid("url", "must be at most 2000 characters"));
    }
    let parsed = url::Url::parse(trimmed).map_err(|e| invalid("url", e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid("url", "must be an http:// or https:// URL with a host"));
    }
    if targets == WebhookTargets::PublicOnly {
        if let Some(why) = refused_host(&parsed) {
            return Err(invalid(
                "url",
                format!("must not name {why}: webhooks reach public addresses unless the operator allows private ones"),
            ));
        }
    }
    let mut wanted: Vec<String> = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(invalid("events", format!("unknown event {e:?}; known: {}", EVENTS.join(", "))));
        }
        if !wanted.contains(&e) {
            wanted.push(e);
        }
    }
    let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    Ok(store
        .create_webhook(olive_store::NewWebhook {
            url: parsed.to_string(),
            secret: format!("whsec_{secret}"),
            events: wanted,
            created_at: now,
        })
        .await?)
}

/// Queues one delivery per webhook that wants `event`. `event_id` names the event: publishing the
/// same id twice delivers once.
pub async fn publish(
    store: &dyn Store,
    event: &str,
    event_id: &str,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let body = serde_json::json!({ "id": event_id, "type": event, "created_at": now, "data": data }).to_string();
    let mut queued = 0;
    for webhook in store.list_webhooks().await? {
        if !webhook.wants(event) {
            continue;
        }
        let payload =
            serde_json::to_string(&Delivery { webhook_id: webhook.id, event: event.to_owned(), body: body.clone() })
                .expect("a delivery serialises");
        store
            .enqueue_job(NewJob {
                kind: DELIVER.to_owned(),
                payload,
                dedupe_key: Some(format!("{event_id}/{}", webhook.id)),
                max_attempts: MAX_ATTEMPTS,
                run_at: now,
                created_at: now,
            })
            .await?;
        queued += 1;
    }
    Ok(queued)
}

/// Delivers queued webhook events.
pub struct Deliverer {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    targets: WebhookTargets,
}

/// Resolves names as the system does, keeping only public addresses: a receiver's name that
/// resolves inside the network is "not found".
struct PublicAddresses;

impl reqwest::dns::Resolve for PublicAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> =
                all.into_iter().filter(|a| olive_core::is_public_unicast(a.ip())).collect();
            if public.is_empty() {
                let refused = format!("{host} resolves to no public address");
                return Err(Box::new(std::io::Error::new(std::io::ErrorKind::PermissionDenied, refused)) as _);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, targets: WebhookTargets) -> Self {
        let mut builder =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none());
        if targets == WebhookTargets::PublicOnly {
            builder = builder.dns_resolver(Arc::new(PublicAddresses));
        }
        let client = builder.build().expect("an HTTP client without TLS options builds");
        Deliverer { store, client, targets }
    }
}

#[async_trait]
impl Handler for Deliverer {
    fn kind(&self) -> &'static str {
        DELIVER
    }

    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let delivery: Delivery = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad delivery payload: {e}")))?;
        let webhook = match self.store.webhook(delivery.webhook_id).await {
            Ok(w) => w,
            Err(StoreError::NotFound(_)) => return Err(JobError::Permanent("the webhook was deleted".into())),
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        let target = redacted(&webhook.url);
        // A webhook registered while private targets were allowed, or an address literal.
        if self.targets == WebhookTargets::PublicOnly {
            let refused = url::Url::parse(&webhook.url).ok().and_then(|u| refused_host(&u));
            if let Some(why) = refused {
                return Err(JobError::Permanent(format!("POST {target}: refused, the URL names {why}")));
            }
        }
        let response = self
            .client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("olive-event", &delivery.event)
            .header("olive-signature", signature(&webhook.secret, Utc::now().timestamp(), &delivery.body))
            .body(delivery.body)
            .send()
            .await
            .map_err(|e| JobError::Retry(format!("POST {target}: {}", error_chain(&e.without_url()))))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(JobError::Retry(format!("POST {target} answered {}", response.status())))
        }
    }
}

/// An error and its causes, on one line (reqwest's own message is only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_logged_without_path_or_query() {
        assert_eq!(
            redacted("https://hooks.example.com/services/T0/B0/secret-token?x=1"),
            "https://hooks.example.com/…"
        );
        assert_eq!(redacted("http://10.0.0.5:8080/hook?token=abc"), "http://10.0.0.5:8080/…");
        assert_eq!(redacted("nonsense"), "(not a URL)");
    }

    #[test]
    fn private_and_local_hosts_are_refused_by_name_or_address() {
        let host = |u: &str| refused_host(&url::Url::parse(u).unwrap());
        for bad in [
            "http://127.0.0.1/x",
            "http://10.0.0.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/x",
            "http://[fd00::1]/x",
            "http://localhost:9000/x",
            "http://api.localhost/x",
            "http://0.0.0.0/x",
        ] {
            assert!(host(bad).is_some(), "{bad}");
        }
        for good in ["https://hooks.example.com/x", "http://8.8.8.8/x", "https://[2606:4700::1111]/x"] {
            assert_eq!(host(good), None, "{good}");
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Known answer from Python: hmac.new(b"Jefe", b'1700000000.{"id":"e1"}', sha256).hexdigest()
        let s = signature("Jefe", 1_700_000_000, r#"{"id":"e1"}"#);
        assert_eq!(s, "t=1700000000,v1=2ecdd21e2ac889d5678ad7112b30461bcca9e94f655891dc448366a286343112");
        assert_ne!(signature("other", 1_700_000_000, r#"{"id":"e1"}"#), s);
        assert_ne!(signature("Jefe", 1_700_000_001, r#"{"id":"e1"}"#), s);
    }
}
