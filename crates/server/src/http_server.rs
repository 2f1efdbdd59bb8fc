//! The HTTP listener: accepts connections and serves the router on each with hyper's HTTP/1.1
//! connection, set up where `axum::serve` gives no say: small answers leave at once
//! (`TCP_NODELAY`; without it a second answer on a connection, as with pipelined requests, waits
//! for the client's delayed ACK, 40 ms on Linux). On shutdown it stops accepting, lets every
//! connection finish the request in flight, and returns once all have closed. WebSocket upgrades
//! leave the connection to their handler, as with `axum::serve`.
//!
//! hyper's `pipeline_flush` (one write for all the answers to requests that arrived together) is
//! left off on purpose: it switches the connection to copying every body into its own write
//! buffer, which then stays as large as the largest answer. With 1,000 LL-HLS viewers fetching
//! 300 KB parts that held 600 MB more memory and copied 700 MB a second (bench/RESULTS.md).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a receiver; the sender sees them all gone once every connection ended.
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(tcp, remote, router.clone(), stop_rx.clone(), open_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
}

/// A connection the peer gave up on is nobody's problem; running out of descriptors is, and
/// retrying at once would spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request)
    });
    let http = hyper::server::conn::http1::Builder::new();
    let mut conn = pin!(http.serve_connection(TokioIo::new(tcp), service).with_upgrades());
    let stopped = tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended");
            }
            false
        }
        _ = stop.wait_for(|stop| *stop) => true,
    };
    if stopped {
        conn.as_mut().graceful_shutdown();
        if let Err(e) = conn.await {
            tracing::trace!(error = %e, "connection ended while draining");
        }
    }
}
