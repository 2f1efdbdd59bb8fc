//! A connection's socket that sends the answers to requests which arrived together in one write.
//!
//! hyper writes and flushes each answer as it is ready. When a client pipelines (sends several
//! requests before reading), that is one `writev` per answer, and at 100,000 answers a second
//! the system calls are most of the cost. hyper's own `pipeline_flush` batches them, but only by
//! copying every body, however large, into a per-connection buffer that keeps its size.
//!
//! [`BatchedWrites`] holds small answers instead, and only while hyper has more requests to work
//! on: a flush right after new bytes is put off; the bytes go out with the next write that does
//! not fit, when hyper next reads from the socket (it has no buffered requests left), when it
//! flushes again without writing anything in between (the next answer is not ready), or when the
//! connection's task would go to sleep ([`Batch::holding`], checked by the task's poll). Large
//! bodies (LL-HLS parts) are never copied: they go out with the held bytes in one `writev`.
//!
//! A connection that upgrades (WebSocket) is switched to [`Batch::send_at_once`] before its
//! `101` is written: the upgraded stream no longer runs under hyper's loop.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Answers at most this large are copied and held; larger ones are written from their own buffer.
const HOLD_EACH: usize = 16 * 1024;
/// Held bytes never exceed this: a write that would pass it sends everything at once.
const HOLD_AT_MOST: usize = 64 * 1024;
/// How many buffers one `writev` takes at most (held bytes plus the caller's).
const MAX_IOVECS: usize = 64;

/// What the connection's task and its socket share.
#[derive(Debug, Default)]
pub struct Batch {
    holding: AtomicBool,
    at_once: AtomicBool,
}

impl Batch {
    /// Whether bytes are held back without a wake-up to send them: the task must not sleep.
    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::Relaxed)
    }

    /// From now on every flush sends (an upgraded connection leaves hyper's loop).
    pub fn send_at_once(&self) {
        self.at_once.store(true, Ordering::Relaxed);
    }

    fn at_once(&self) -> bool {
        self.at_once.load(Ordering::Relaxed)
    }
}

/// A stream whose flushes may be put off; see the module documentation.
pub struct BatchedWrites<T> {
    inner: T,
    held: Vec<u8>,
    /// How much of `held` has been written already.
    sent: usize,
    /// Bytes were held since the last flush.
    fresh: bool,
    batch: Arc<Batch>,
}

impl<T> BatchedWrites<T> {
    pub fn new(inner: T, batch: Arc<Batch>) -> Self {
        BatchedWrites { inner, held: Vec::new(), sent: 0, fresh: false, batch }
    }

    fn unsent(&self) -> usize {
        self.held.len() - self.sent
    }

    fn mark_sent(&mut self) {
        self.held.clear();
        self.sent = 0;
    }
}

impl<T: AsyncWrite + Unpin> BatchedWrites<T> {
    /// Writes the held bytes, then as much of `bufs` as the same `writev` takes. Returns how many
    /// bytes of `bufs` went out; `Pending` only while held bytes are still unsent.
    fn poll_send(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // A write that cannot go on now registers for the socket's wake-up: the task may sleep.
        self.batch.holding.store(false, Ordering::Relaxed);
        while self.unsent() > 0 {
            // On the stack, as hyper does: a send allocates nothing.
            let mut iovecs = [IoSlice::new(&[]); MAX_IOVECS];
            iovecs[0] = IoSlice::new(&self.held[self.sent..]);
            let mut len = 1;
            for buf in bufs.iter().filter(|b| !b.is_empty()).take(MAX_IOVECS - 1) {
                iovecs[len] = *buf;
                len += 1;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &iovecs[..len]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let unsent = self.unsent();
            if n < unsent {
                self.sent += n;
                continue;
            }
            self.mark_sent();
            if n > unsent {
                return Poll::Ready(Ok(n - unsent));
            }
        }
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx, &[]))?;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for BatchedWrites<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // hyper reads the socket only once it has no whole request left: the batch is complete.
        if self.unsent() > 0 {
            ready!(self.poll_send_held(cx))?;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for BatchedWrites<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len <= HOLD_EACH && self.held.len() + len <= HOLD_AT_MOST && !self.batch.at_once() {
            for buf in bufs {
                self.held.extend_from_slice(buf);
            }
            self.fresh = true;
            self.batch.holding.store(true, Ordering::Relaxed);
            return Poll::Ready(Ok(len));
        }
        self.poll_send(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.unsent() > 0 {
            if self.fresh && !self.batch.at_once() {
                // More answers may follow at once; hyper flushes again, reads, or sleeps first.
                self.fresh = false;
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_send_held(cx))?;
        }
        self.fresh = false;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_held(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Records every write; accepts at most `take` bytes per call, and refuses (`Pending`) while
    /// `blocked`.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        take: Option<usize>,
        blocked: bool,
        reads: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            if self.blocked {
                return Poll::Pending;
            }
            let mut all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(take) = self.take {
                all.truncate(take);
            }
            let n = all.len();
            self.writes.push(all);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            self.reads += 1;
            buf.put_slice(b"GET / HTTP/1.1\r\n\r\n");
            Poll::Ready(Ok(()))
        }
    }

    fn stream(inner: Recorder) -> BatchedWrites<Recorder> {
        BatchedWrites::new(inner, Arc::default())
    }

    fn sent(s: &BatchedWrites<Recorder>) -> Vec<u8> {
        s.inner.writes.concat()
    }

    #[tokio::test]
    async fn answers_written_and_flushed_together_leave_in_one_write_when_hyper_reads() {
        let mut s = stream(Recorder::default());
        for answer in [&b"one"[..], b"two", b"three"] {
            s.write_all(answer).await.unwrap();
            s.flush().await.unwrap();
        }
        assert!(s.inner.writes.is_empty(), "each flush right after a write is put off");
        assert!(s.batch.holding(), "the task is told bytes are held");
        let mut request = [0u8; 64];
        let n = s.read(&mut request).await.unwrap();
        assert!(n > 0);
        assert_eq!(s.inner.writes, vec![b"onetwothree".to_vec()], "one write, in order");
        assert!(!s.batch.holding());
    }

    #[tokio::test]
    async fn a_second_flush_without_new_bytes_sends() {
        let mut s = stream(Recorder::default());
        s.write_all(b"answer").await.unwrap();
        s.flush().await.unwrap();
        assert!(s.inner.writes.is_empty());
        s.flush().await.unwrap();
        assert_eq!(sent(&s), b"answer");
        assert!(!s.batch.holding());
    }

    #[tokio::test]
    async fn a_large_body_is_not_copied_and_goes_out_with_what_was_held() {
        let mut s = stream(Recorder::default());
        s.write_all(b"small").await.unwrap();
        s.flush().await.unwrap();
        let part = vec![7u8; 300 * 1024];
        let header = b"HTTP/1.1 200 OK\r\n\r\n";
        let n = poll_fn(|cx| Pin::new(&mut s).poll_write_vectored(cx, &[IoSlice::new(header), IoSlice::new(&part)]))
            .await
            .unwrap();
        assert_eq!(n, header.len() + part.len());
        assert_eq!(s.inner.writes.len(), 1, "held bytes and the part in one writev");
        assert_eq!(s.inner.writes[0].len(), 5 + header.len() + part.len());
        assert!(s.held.capacity() < HOLD_EACH, "the part never entered the held buffer");
    }

    #[tokio::test]
    async fn held_bytes_never_pass_the_limit() {
        let mut s = stream(Recorder::default());
        let answer = vec![1u8; HOLD_EACH];
        for _ in 0..10 {
            s.write_all(&answer).await.unwrap();
            s.flush().await.unwrap();
            assert!(s.held.len() <= HOLD_AT_MOST);
        }
        s.flush().await.unwrap();
        assert_eq!(sent(&s), vec![1u8; 10 * HOLD_EACH]);
    }

    #[tokio::test]
    async fn short_writes_lose_nothing_and_keep_order() {
        let mut s = stream(Recorder { take: Some(3), ..Recorder::default() });
        s.write_all(b"first answer;").await.unwrap();
        s.flush().await.unwrap();
        let big = vec![9u8; HOLD_EACH + 1];
        s.write_all(&big).await.unwrap();
        s.write_all(b";last").await.unwrap();
        s.shutdown().await.unwrap();
        let mut expected = b"first answer;".to_vec();
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b";last");
        assert_eq!(sent(&s), expected);
        assert!(s.inner.writes.iter().all(|w| w.len() <= 3));
    }

    #[tokio::test]
    async fn a_full_socket_holds_the_read_back_until_the_answers_leave() {
        let mut s = stream(Recorder { blocked: true, ..Recorder::default() });
        s.write_all(b"answer").await.unwrap();
        s.flush().await.unwrap();
        let mut request = [0u8; 64];
        let read = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut request);
            Pin::new(&mut s).poll_read(cx, &mut buf)
        });
        let pending = futures::poll!(Box::pin(read));
        assert!(pending.is_pending());
        assert_eq!(s.inner.reads, 0, "no new request is read while answers wait");
        s.inner.blocked = false;
        let n = s.read(&mut request).await.unwrap();
        assert!(n > 0);
        assert_eq!(sent(&s), b"answer");
    }

    #[tokio::test]
    async fn after_an_upgrade_every_flush_sends() {
        let batch = Arc::new(Batch::default());
        let mut s = BatchedWrites::new(Recorder::default(), batch.clone());
        s.write_all(b"held").await.unwrap();
        batch.send_at_once();
        s.write_all(b"frame").await.unwrap();
        assert_eq!(sent(&s), b"heldframe", "a write sends what was held first");
        s.write_all(b"next").await.unwrap();
        s.flush().await.unwrap();
        assert_eq!(sent(&s), b"heldframenext");
    }
}
