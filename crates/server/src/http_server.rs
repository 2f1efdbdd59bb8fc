//! The HTTP listener: accepts connections and serves the router on each with hyper's HTTP/1.1
//! connection, set up where `axum::serve` gives no say: small answers leave at once
//! (`TCP_NODELAY`; without it a second answer on a connection, as with pipelined requests, waits
//! for the client's delayed ACK, 40 ms on Linux), and the answers to requests that arrived
//! together leave in one write ([`BatchedWrites`]). Given an [`ApiLane`](api_lane::ApiLane), quick API
//! requests are served on its runtime, away from video. On shutdown it stops accepting, lets every
//! connection finish the request in flight, and returns once all have closed. WebSocket upgrades
//! leave the connection to their handler, as with `axum::serve`.
//!
//! hyper's own `pipeline_flush` is left off on purpose: it switches the connection to copying
//! every body into its own write buffer, which then stays as large as the largest answer. With
//! 1,000 LL-HLS viewers fetching 300 KB parts that held 600 MB more memory and copied 700 MB a
//! second (bench/RESULTS.md).

use crate::api_lane;
use crate::batched_writes::{Batch, BatchedWrites};
use crate::http_limits::{Admission, Admitted, ConnectionClock, Deadlines, HttpLimits, InFlight};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` completes, then drains. With `quick` (an
/// [`api_lane::ApiLane`]'s runtime), connections that start with a quick request are served there.
/// Every connection is held to `limits` ([`crate::http_limits`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    quick: Option<tokio::runtime::Handle>,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a receiver; the sender sees them all gone once every connection ended.
    let (open_tx, open_rx) = watch::channel(());
    let admission = Admission::new(limits.max_connections);
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
        let Some(admitted) = admission.admit() else {
            tracing::debug!(%remote, "connection refused: at the connection cap");
            admission.refuse(tcp);
            continue;
        };
        let conn = Conn { tcp, remote, limits, admitted };
        let (router, stop, open) = (router.clone(), stop_rx.clone(), open_rx.clone());
        match &quick {
            Some(lane) => tokio::spawn(sort(conn, router, lane.clone(), stop, open)),
            None => tokio::spawn(connection(conn, router, stop, open)),
        };
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

/// An accepted connection with its place under the cap.
struct Conn {
    tcp: TcpStream,
    remote: SocketAddr,
    limits: HttpLimits,
    admitted: Admitted,
}

/// Serves the connection here, or on the API lane if its first request is a quick one. A
/// connection that sends nothing within the peek timeout is closed.
async fn sort(
    conn: Conn,
    router: Router,
    lane: tokio::runtime::Handle,
    mut stop: watch::Receiver<bool>,
    open: watch::Receiver<()>,
) {
    let mut first = [0u8; api_lane::PEEK];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(conn.limits.peek_timeout, conn.tcp.peek(&mut first)) => match peeked {
            Ok(peeked) => peeked.unwrap_or(0),
            Err(_) => {
                tracing::debug!(remote = %conn.remote, "connection closed: it sent nothing in time");
                return;
            }
        },
        _ = stop.wait_for(|stop| *stop) => return,
    };
    if !api_lane::is_quick_request(&first[..peeked]) {
        return connection(conn, router, stop, open).await;
    }
    // A socket belongs to the runtime that registered it: it moves over as a plain socket.
    let Conn { tcp, remote, limits, admitted } = conn;
    match tcp.into_std() {
        Ok(tcp) => {
            lane.spawn(async move {
                match TcpStream::from_std(tcp) {
                    Ok(tcp) => connection(Conn { tcp, remote, limits, admitted }, router, stop, open).await,
                    Err(e) => tracing::debug!(error = %e, "cannot move a connection to the API lane"),
                }
            });
        }
        Err(e) => tracing::debug!(error = %e, "cannot move a connection to the API lane"),
    }
}

/// The response body, carrying its request's [`InFlight`] until hyper has sent it (or given up).
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

async fn connection(conn: Conn, router: Router, mut stop: watch::Receiver<bool>, _open: watch::Receiver<()>) {
    let Conn { tcp, remote, limits, admitted } = conn;
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let batch = Arc::new(Batch::default());
    let clock = Arc::new(ConnectionClock::default());
    let service = {
        let (batch, clock) = (batch.clone(), clock.clone());
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let in_flight = clock.request_started();
            if request.headers().contains_key(hyper::header::UPGRADE) {
                batch.send_at_once();
            }
            request.extensions_mut().insert(ConnectInfo(remote));
            let (router, clock) = (router.clone(), clock.clone());
            async move {
                let response = router.oneshot(request).await?;
                if response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
                    clock.switched_protocols();
                }
                Ok::<_, std::convert::Infallible>(response.map(|body| Tracked { body, _in_flight: in_flight }))
            }
        })
    };
    let io = TokioIo::new(Deadlines::new(BatchedWrites::new(tcp, batch.clone()), clock, limits, Some(admitted)));
    let http = hyper::server::conn::http1::Builder::new();
    let mut conn = pin!(http.serve_connection(io, service).with_upgrades());
    let stopped = tokio::select! {
        result = poll_fn(|cx| poll_awake(conn.as_mut(), &batch, cx)) => {
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended");
            }
            false
        }
        _ = stop.wait_for(|stop| *stop) => true,
    };
    if stopped {
        conn.as_mut().graceful_shutdown();
        if let Err(e) = poll_fn(|cx| poll_awake(conn.as_mut(), &batch, cx)).await {
            tracing::trace!(error = %e, "connection ended while draining");
        }
    }
}

/// Polls the connection, and again at once if it would sleep while its socket holds answers back
/// (hyper then flushes without new bytes, which sends them).
fn poll_awake<F: Future>(conn: Pin<&mut F>, batch: &Batch, cx: &mut Context<'_>) -> Poll<F::Output> {
    let polled = conn.poll(cx);
    if polled.is_pending() && batch.holding() {
        cx.waker().wake_by_ref();
    }
    polled
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::routing::get;
    use std::convert::Infallible;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot, Notify};

    /// Serves `router` on a free local port; the server stops when the returned sender drops.
    async fn start(router: Router) -> (SocketAddr, oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, None, HttpLimits::default(), async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Reads from `tcp` until `received` contains `needle`, failing after 10 s.
    async fn read_until(tcp: &mut TcpStream, received: &mut Vec<u8>, needle: &str) {
        let wait = async {
            while !String::from_utf8_lossy(received).contains(needle) {
                let mut buf = [0u8; 4096];
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed before {needle:?}");
                received.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{needle:?} never arrived"));
    }

    fn get_request(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
    }

    /// Names the thread that answered.
    async fn thread() -> String {
        std::thread::current().name().unwrap_or("unnamed").to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quick_connections_are_served_on_the_api_lane_and_video_is_not() {
        let lane = api_lane::ApiLane::start().unwrap();
        let router = Router::new()
            .route("/live/{id}/{file}", get(thread))
            .route("/vod/{id}/{file}", get(thread))
            .route("/api/v1/channels", get(thread));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, Some(lane.handle()), HttpLimits::default(), async move {
            let _ = stopped.await;
        }));
        // Two requests on one connection: the lane is chosen by the first.
        let answer = |first: &'static str, then: &'static str| async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let then = format!("GET {then} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            tcp.write_all((get_request(first) + &then).as_bytes()).await.unwrap();
            let mut received = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut received))
                .await
                .expect("both answers")
                .unwrap();
            let text = String::from_utf8_lossy(&received).into_owned();
            assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
            text
        };
        let api = answer("/api/v1/channels", "/live/1/part-3-1.m4s").await;
        assert_eq!(api.matches("olive-api").count(), 2, "the whole connection on the lane: {api}");
        for (first, then) in [("/live/1/part-3-1.m4s", "/api/v1/channels"), ("/vod/2/index.m3u8", "/api/v1/channels")] {
            let stream = answer(first, then).await;
            assert!(!stream.contains("olive-api"), "{stream}");
        }
        drop(stop);
        tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server drains").unwrap();
        drop(lane);
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order() {
        let router = Router::new().route(
            "/n/{n}",
            get(|axum::extract::Path(n): axum::extract::Path<u32>| async move { format!("answer-{n};") }),
        );
        let (addr, _stop) = start(router).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let requests: String = (0..40).map(|n| get_request(&format!("/n/{n}"))).collect();
        tcp.write_all(requests.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        read_until(&mut tcp, &mut received, "answer-39;").await;
        let text = String::from_utf8_lossy(&received);
        let order: Vec<usize> = (0..40).map(|n| text.find(&format!("answer-{n};")).unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "answers out of order");
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 40);
    }

    #[tokio::test]
    async fn an_answer_is_not_held_behind_a_slow_pipelined_request() {
        let release = Arc::new(Notify::new());
        let router = Router::new().route("/fast", get(|| async { "fast-answer" })).route(
            "/slow",
            get({
                let release = release.clone();
                || async move {
                    release.notified().await;
                    "slow-answer"
                }
            }),
        );
        let (addr, _stop) = start(router).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let both = get_request("/fast") + &get_request("/slow");
        tcp.write_all(both.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        // The slow answer waits for the first to arrive: a held first answer would never come.
        read_until(&mut tcp, &mut received, "fast-answer").await;
        release.notify_one();
        read_until(&mut tcp, &mut received, "slow-answer").await;
    }

    #[tokio::test]
    async fn a_streamed_body_sends_each_chunk_without_waiting_for_the_next() {
        let (chunks, rx) = mpsc::channel::<Bytes>(4);
        let rx = Arc::new(std::sync::Mutex::new(Some(rx)));
        let router = Router::new().route(
            "/stream",
            get(move || {
                let rx = rx.lock().unwrap().take().expect("one request");
                let body = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|chunk| (Ok::<_, Infallible>(chunk), rx))
                });
                async move { Body::from_stream(body) }
            }),
        );
        let (addr, _stop) = start(router).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(get_request("/stream").as_bytes()).await.unwrap();
        let mut received = Vec::new();
        chunks.send(Bytes::from_static(b"first-chunk")).await.unwrap();
        read_until(&mut tcp, &mut received, "first-chunk").await;
        chunks.send(Bytes::from_static(b"second-chunk")).await.unwrap();
        read_until(&mut tcp, &mut received, "second-chunk").await;
        drop(chunks);
        read_until(&mut tcp, &mut received, "0\r\n\r\n").await;
    }

    #[tokio::test]
    async fn a_large_answer_arrives_whole_after_small_pipelined_ones() {
        let part = vec![b'p'; 300 * 1024];
        let router =
            Router::new().route("/small", get(|| async { "small;" })).route("/part", get(move || async move { part }));
        let (addr, _stop) = start(router).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let requests = get_request("/small") + &get_request("/part") + &get_request("/small");
        tcp.write_all(requests.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        read_until(&mut tcp, &mut received, "small;").await;
        let wait = async {
            while String::from_utf8_lossy(&received).matches("small;").count() < 2 {
                let mut buf = [0u8; 65536];
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0);
                received.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.expect("answers arrived");
        let after_small = received.windows(6).position(|w| w == b"small;").unwrap() + 6;
        let body_at = after_small + received[after_small..].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &received[body_at..body_at + 300 * 1024];
        assert!(body.iter().all(|b| *b == b'p'), "the part arrived whole");
        assert!(received[body_at + 300 * 1024..].starts_with(b"HTTP/1.1 200 OK"));
    }
}
