//! The transport under and over a TLS session on SSL/SASL_SSL listeners, shaped so that reading
//! costs about what it costs on plain TCP.
//!
//! Two things made TLS reads expensive (measured with `bench/tls_bench.py`, see bench/README.md):
//! - rustls pulls ciphertext 4 KiB per `read_tls`, one `recvfrom` each: [`tls_transport`] puts a
//!   read-ahead buffer under the session.
//! - tokio-rustls hands out at most one TLS record of plaintext per `poll_read`, and librdkafka
//!   over OpenSSL sends one TLS record per buffer segment (~1 KiB payloads and ~10-byte record
//!   headers as separate records, ~900 records per MB). The connection loop then went round its
//!   `select!` once per few hundred bytes. [`DrainReads`] keeps reading until the caller's buffer
//!   is full or the session has nothing decrypted left and the socket would block, so one wakeup
//!   moves everything that has arrived.
//!
//! TLS connections set no receive low-water mark (`read_low_water` says why), so the read-ahead
//! and whole reads are what keep their wakeups few.
//!
//! Neither changes what is accepted: certificates, suites and client-certificate checks are all
//! rustls' own, and every byte still passes through the session.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;

/// Read-ahead under a TLS session, per connection. Without it a 1 MiB produce request costs ~260
/// `recvfrom` calls; with it at most ~16. The price is one copy of ciphertext from this buffer
/// (hot in cache) and 64 KiB of memory per TLS connection, bounded by the connection limits.
/// Plain TCP connections do not need it: they read straight into the connection's frame buffer.
pub const TLS_READ_AHEAD_BYTES: usize = 64 * 1024;

/// The socket as the TLS session should see it.
pub fn tls_transport(stream: TcpStream) -> BufReader<TcpStream> {
    BufReader::with_capacity(TLS_READ_AHEAD_BYTES, stream)
}

/// An `AsyncRead` that fills as much of the caller's buffer as is ready in one call.
///
/// An error met after some bytes were already copied is held and returned by the next call, so
/// those bytes are delivered first and the error is never lost.
pub struct DrainReads<S> {
    inner: S,
    pending_error: Option<io::Error>,
}

impl<S> DrainReads<S> {
    /// Wraps a stream (a `TlsStream`).
    pub fn new(inner: S) -> Self {
        DrainReads { inner, pending_error: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DrainReads<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.pending_error.take() {
            return Poll::Ready(Err(e));
        }
        let start = buf.filled().len();
        while buf.remaining() > 0 {
            let before = buf.filled().len();
            match Pin::new(&mut self.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => break, // end of stream
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) if buf.filled().len() == start => return Poll::Ready(Err(e)),
                Poll::Ready(Err(e)) => {
                    self.pending_error = Some(e);
                    break;
                }
                // The inner stream registered our waker; deliver what we have now, if anything.
                Poll::Pending if buf.filled().len() == start => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DrainReads<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Hands out one fixed piece per poll, then an error or end: the shape of tokio-rustls'
    /// one-record-per-read behaviour, without a TLS session.
    struct Pieces {
        pieces: Vec<&'static [u8]>,
        then_error: bool,
    }

    impl AsyncRead for Pieces {
        fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            if self.pieces.is_empty() {
                return if self.then_error { Poll::Ready(Err(io::Error::other("bad record mac"))) } else { Poll::Ready(Ok(())) };
            }
            let piece = self.pieces.remove(0);
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            if n < piece.len() {
                self.pieces.insert(0, &piece[n..]);
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Goal: one read returns every ready piece; method: three pieces, one 64-byte read.
    #[tokio::test]
    async fn one_read_takes_every_ready_piece() {
        let mut r = DrainReads::new(Pieces { pieces: vec![b"ab", b"cd", b"ef"], then_error: false });
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).await.unwrap(), 6);
        assert_eq!(&buf[..6], b"abcdef");
        assert_eq!(r.read(&mut buf).await.unwrap(), 0, "end of stream still reads as 0");
    }

    /// Goal: an error after data is not lost; method: data then an error, read twice.
    #[tokio::test]
    async fn an_error_after_data_comes_with_the_next_read() {
        let mut r = DrainReads::new(Pieces { pieces: vec![b"ab"], then_error: true });
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).await.unwrap(), 2);
        let err = r.read(&mut buf).await.unwrap_err();
        assert_eq!(err.to_string(), "bad record mac");
    }

    /// Goal: a small buffer is filled, never overrun; method: 3-byte reads over 2-byte pieces.
    #[tokio::test]
    async fn stops_when_the_buffer_is_full() {
        let mut r = DrainReads::new(Pieces { pieces: vec![b"ab", b"cd"], then_error: false });
        let mut buf = [0u8; 3];
        assert_eq!(r.read(&mut buf).await.unwrap(), 3);
        assert_eq!(&buf, b"abc");
        assert_eq!(r.read(&mut buf).await.unwrap(), 1);
        assert_eq!(buf[0], b'd');
    }
}
