//! `olive probe URL`: exits 0 when the URL answers 2xx within three seconds, 1 otherwise. The
//! container image's health check runs it, so the image needs no shell or curl.

use anyhow::{bail, Context};
use std::time::Duration;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// What to ask, e.g. http://127.0.0.1:8080/livez.
    url: String,
}

pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&args.url).with_context(|| format!("{:?} is not a URL", args.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{url} is not an http(s) URL");
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let status = client.get(url.clone()).send().await.with_context(|| format!("{url} did not answer"))?.status();
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    Ok(())
}
