//! `olive bench …`: load generators that talk to a running Olive (or a peer such as nginx-rtmp)
//! over loopback and report throughput and latency. Each workload is a module; the command-line
//! shapes live in the `olive` binary.

pub mod accounts;
pub mod chat;
pub mod checkout;
pub mod flv_file;
pub mod hls;
pub mod http;
pub mod mixed;
pub mod plot;
pub mod publish;
pub mod rtmp_client;
pub mod stats;
pub mod timeline;

use anyhow::Context;

/// The server `base` names (`http://IP:PORT`), parsed; refused unless loopback or `allow_remote`.
pub fn http_target(base: &str, allow_remote: bool) -> anyhow::Result<(url::Url, std::net::IpAddr)> {
    let url = url::Url::parse(base).context("--url")?;
    let host: std::net::IpAddr =
        url.host_str().context("--url has no host")?.parse().context("--url must name an IP address")?;
    anyhow::ensure!(allow_remote || host.is_loopback(), "refusing a non-loopback target without --allow-remote");
    Ok((url, host))
}
