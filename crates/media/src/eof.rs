//! scuffle-rtmp 0.2.3 reads the handshake in a loop that does not stop on end-of-stream: a client
//! that sends a few bytes and half-closes its side makes the session spin on zero-byte reads
//! forever, a core at 100 %. (Found by the `rtmp_session` fuzz target.) Wrapping the socket so that
//! end-of-stream is an `UnexpectedEof` error ends the session instead; the crate already treats
//! that error as "the client closed the connection", so a normal disconnect is unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct EofIsError<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for EofIsError<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if wanted && buf.filled().len() == before => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the client closed the connection")))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EofIsError<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn end_of_stream_becomes_an_error_and_data_passes() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"abc").await.unwrap();
        drop(a);
        let mut wrapped = EofIsError(b);
        let mut buf = [0u8; 8];
        assert_eq!(wrapped.read(&mut buf).await.unwrap(), 3);
        let err = wrapped.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
