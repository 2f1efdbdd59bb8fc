//! What bounds an HTTP connection, so a client that sends slowly, sends nothing or opens
//! connections without end costs a known, small amount and then nothing.
//!
//! - **Header timeout**: a request's head must have arrived whole within [`HttpLimits::header_timeout`]
//!   of its first byte (a new connection: of being accepted), or the connection is closed (the
//!   "slowloris" client that trickles headers).
//! - **Idle timeout**: a connection with no request in flight is closed after
//!   [`HttpLimits::idle_timeout`]; so is one whose response the client stopped reading for as long.
//! - **Connection cap**: at most [`HttpLimits::max_connections`] at once, WebSockets included;
//!   past it a new connection is answered `503` with `Retry-After` and closed, while the open ones
//!   go on.
//! - **Peek timeout**: the first bytes the API lane looks at ([`crate::api_lane`]) must come within
//!   [`HttpLimits::peek_timeout`].
//!
//! hyper's own `header_read_timeout` counts from when it starts waiting for a head, which makes
//! it an idle timeout as well, of the same length; the two are kept apart here. [`Deadlines`] wraps
//! the socket and knows the connection's phase from [`ConnectionClock`], which the service updates:
//! a request is in flight from the moment its head is parsed (the service is called) until its
//! response body is dropped ([`InFlight`]). A connection that switched protocols (WebSocket) is
//! exempt: its handler has its own rules.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The limits of the HTTP listener, each configurable (`--http-*`); defaults in [`Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub peek_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            peek_timeout: Duration::from_secs(10),
        }
    }
}

/// What the service tells the socket about its connection.
#[derive(Debug, Default)]
pub struct ConnectionClock {
    in_flight: AtomicUsize,
    switched: AtomicBool,
}

impl ConnectionClock {
    /// A request's head was parsed: it is in flight until the returned guard drops (carried by
    /// the response body).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// The connection switched protocols (`101`): no more HTTP timeouts.
    pub fn switched_protocols(&self) {
        self.switched.store(true, Ordering::Release);
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    fn exempt(&self) -> bool {
        self.switched.load(Ordering::Acquire)
    }
}

/// One request in flight; see [`ConnectionClock::request_started`].
#[derive(Debug)]
pub struct InFlight(Arc<ConnectionClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a connection is, for its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head, whose first byte came (or the connection was accepted) then.
    Head(Instant),
    /// Nothing in flight since then.
    Idle(Instant),
    /// A request is being served.
    Busy,
}

/// A socket with the connection's deadlines; see the module documentation. A deadline that passes
/// makes the next read or write fail with `TimedOut`, which ends the connection.
pub struct Deadlines<T> {
    inner: T,
    clock: Arc<ConnectionClock>,
    limits: HttpLimits,
    phase: Phase,
    /// Since when a write has been waiting for the client to read.
    write_stalled: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// Held for as long as the connection lives, upgraded or not: its place under the cap.
    _admitted: Option<Admitted>,
}

impl<T> Deadlines<T> {
    pub fn new(inner: T, clock: Arc<ConnectionClock>, limits: HttpLimits, admitted: Option<Admitted>) -> Self {
        let now = Instant::now();
        Deadlines {
            inner,
            clock,
            limits,
            phase: Phase::Head(now),
            write_stalled: None,
            timer: Box::pin(tokio::time::sleep_until(now + limits.header_timeout)),
            _admitted: admitted,
        }
    }

    /// Brings the phase up to date with the service's news.
    fn observe(&mut self, now: Instant) {
        self.phase = match (self.phase, self.clock.busy()) {
            (_, true) => Phase::Busy,
            (Phase::Busy, false) => Phase::Idle(now),
            (phase, false) => phase,
        };
    }

    /// The deadline that applies now, if any.
    fn deadline(&self) -> Option<Instant> {
        if self.clock.exempt() {
            return None;
        }
        let phase = match self.phase {
            Phase::Head(since) => Some(since + self.limits.header_timeout),
            Phase::Idle(since) => Some(since + self.limits.idle_timeout),
            Phase::Busy => None,
        };
        let stall = self.write_stalled.map(|since| since + self.limits.idle_timeout);
        match (phase, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// After the inner socket said `Pending`: fails if the deadline has passed, and otherwise
    /// arranges to be woken when it does.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = self.deadline() else { return Poll::Pending };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let what = match self.phase {
                    Phase::Head(_) if self.write_stalled.is_none() => "a request head did not arrive in time",
                    Phase::Idle(_) if self.write_stalled.is_none() => "the connection was idle too long",
                    _ => "the client stopped reading its response",
                };
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(&mut self, polled: &Poll<io::Result<impl Sized>>, cx: &mut Context<'_>) -> Option<io::Error> {
        let now = Instant::now();
        self.observe(now);
        if polled.is_ready() {
            self.write_stalled = None;
            return None;
        }
        self.write_stalled.get_or_insert(now);
        match self.poll_deadline(cx) {
            Poll::Ready(e) => Some(e),
            Poll::Pending => None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlines<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let now = Instant::now();
        self.observe(now);
        match polled {
            Poll::Ready(Ok(())) => {
                // The first bytes of a new request start its head's clock.
                if buf.filled().len() > before {
                    if let Phase::Idle(_) = self.phase {
                        self.phase = Phase::Head(now);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.poll_deadline(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlines<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        match self.wrote(&polled, cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => polled,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        match self.wrote(&polled, cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => polled,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        match self.wrote(&polled, cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => polled,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection cap: a count of open connections, each admitted one holding an [`Admitted`].
#[derive(Debug)]
pub struct Admission {
    open: Arc<AtomicUsize>,
    max: usize,
    /// Refusals being written now: past a few hundred, a refused connection is just closed.
    refusing: Arc<AtomicUsize>,
}

/// One connection's place under the cap; given back when dropped.
#[derive(Debug)]
pub struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        let open = self.0.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("olive_http_connections").set(open as f64);
    }
}

const MAX_REFUSING: usize = 256;
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

impl Admission {
    pub fn new(max: usize) -> Self {
        Admission { open: Arc::default(), max, refusing: Arc::default() }
    }

    /// A place for a new connection, or `None` at the cap.
    pub fn admit(&self) -> Option<Admitted> {
        let mut open = self.open.load(Ordering::Acquire);
        loop {
            if open >= self.max {
                return None;
            }
            match self.open.compare_exchange_weak(open, open + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    metrics::gauge!("olive_http_connections").set((open + 1) as f64);
                    return Some(Admitted(self.open.clone()));
                }
                Err(now) => open = now,
            }
        }
    }

    /// Answers a connection past the cap with `503` and closes it, without reading its request
    /// and without waiting more than 2 s on it.
    pub fn refuse(&self, mut tcp: tokio::net::TcpStream) {
        metrics::counter!("olive_http_connections_refused_total").increment(1);
        if self.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let refusing = self.refusing.clone();
        tokio::spawn(async move {
            let body = r#"{"error":{"code":"too_many_connections","message":"the server has too many connections open; try again shortly"}}"#;
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
                tcp.write_all(answer.as_bytes()).await?;
                tcp.shutdown().await
            })
            .await;
            refusing.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 2,
            peek_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_completes_times_out_from_its_first_byte() {
        let (client, server) = tokio::io::duplex(1024);
        let mut io = Deadlines::new(server, Arc::default(), limits(), None);
        let (mut _read, mut write) = tokio::io::split(client);
        write.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        let started = Instant::now();
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_after_the_idle_timeout_and_a_busy_one_does_not() {
        let (client, server) = tokio::io::duplex(1024);
        let clock = Arc::new(ConnectionClock::default());
        let mut io = Deadlines::new(server, clock.clone(), limits(), None);
        let (_read, mut write) = tokio::io::split(client);
        write.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        // The request is served for longer than any timeout: nothing closes it.
        let request = clock.request_started();
        let busy = tokio::time::timeout(Duration::from_secs(120), io.read(&mut buf)).await;
        assert!(busy.is_err(), "a request in flight keeps the connection");
        drop(request);
        let started = Instant::now();
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_switched_connection_has_no_deadline() {
        let (_client, server) = tokio::io::duplex(1024);
        let clock = Arc::new(ConnectionClock::default());
        clock.switched_protocols();
        let mut io = Deadlines::new(server, clock, limits(), None);
        let mut buf = [0u8; 8];
        assert!(tokio::time::timeout(Duration::from_secs(3600), io.read(&mut buf)).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_its_response_is_let_go() {
        let (_client, server) = tokio::io::duplex(64);
        let clock = Arc::new(ConnectionClock::default());
        let mut io = Deadlines::new(server, clock.clone(), limits(), None);
        let _request = clock.request_started();
        let started = Instant::now();
        let e = io.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[test]
    fn the_cap_admits_up_to_its_maximum_and_frees_places_on_drop() {
        let admission = Admission::new(2);
        let a = admission.admit().unwrap();
        let _b = admission.admit().unwrap();
        assert!(admission.admit().is_none());
        drop(a);
        assert!(admission.admit().is_some());
    }
}
