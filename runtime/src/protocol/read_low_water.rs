//! Fewer wakeups while a large request arrives: the socket's receive low-water mark
//! (`SO_RCVLOWAT`) follows what the connection still needs of the frame it is reading.
//!
//! Why: a connection wakes, reads and goes back to sleep each time a few bytes arrive. A client
//! that sends a 4 MB produce request in one `writev` arrives in a few large pieces; one that sends
//! it as many small writes arrives in many pieces, and each woke the connection to read a few KiB.
//! With the mark at "the rest of this frame", Linux wakes the reader only
//! once that much has arrived, or the connection closes, or the receive window has less than one
//! segment left (`tcp_epollin_ready`: the mark never stalls a sender; on a fresh loopback
//! connection, whose window starts near one 64 KiB segment, it has no effect until the window grows).
//!
//! Safety of the mark (no read waits for bytes that will never come): it is set only while a
//! frame's size prefix is known and the frame is incomplete, and never above the bytes that frame
//! still needs on the wire, which its sender must send whatever we do: the frame buffer holds
//! everything read from the socket, so "missing" is exact. Between frames the mark is 1 (the
//! kernel default). Nothing here changes what is read, only when the reader is woken; a failed
//! `setsockopt` turns the mark off for the connection and reads behave as before.
//!
//! Plain TCP only. Over TLS the mark saved the broker reads (16 against ~55 per MB) but stalled
//! librdkafka: paired runs on a quiet machine (`bench/tls_ab.py`, SSL, 4 MB requests) had the
//! client 82-89% busy with the mark against 100% without, and 403-434 against 449-491 MB/s.
//! Capping the mark at a quarter of the receive buffer (so Linux never clamps the window to it)
//! did not change that (424 against 491 MB/s). The client's throughput is the figure TLS users
//! see, so TLS connections read without a mark.
//!
//! One visible difference: bytes arriving below the mark do not count as activity, so a frame
//! that trickles in at less than the mark (up to 256 KiB) per `connection_idle_timeout_ms` (10 min)
//! is closed as idle, as a silent connection would be.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tokio::net::TcpStream;

/// Largest mark set. Each wakeup then moves at least this much of a large frame; the kernel also
/// caps the mark at half the receive buffer it may grow to (`net.ipv4.tcp_rmem`). A mark larger
/// than the receive buffer has room for makes Linux grow the buffer and clamp the receive window
/// to the mark (`tcp_set_rcvlowat`) until autotuning raises both as data is read: kept small so
/// that clamp stays above what loopback needs (paired runs in bench/README.md showed no loss).
pub const READ_LOW_WATER_MAX_BYTES: usize = 256 * 1024;

/// The receive low-water mark of one connection's socket.
#[derive(Debug)]
pub struct ReadLowWater {
    /// The connection's socket. Not owned: [`ReadLowWater`] is created from the `TcpStream` and
    /// handed to `connection::serve` together with it, which drops both when the connection ends,
    /// so the descriptor is open for as long as this exists.
    fd: Option<RawFd>,
    /// The mark now set (1 is the kernel's default).
    current: usize,
}

impl ReadLowWater {
    /// For a plain TCP connection.
    pub fn new(stream: &TcpStream) -> Self {
        ReadLowWater { fd: Some(stream.as_raw_fd()), current: 1 }
    }

    /// A mark that never changes (TLS connections, tests, streams that are not sockets).
    pub fn disabled() -> Self {
        ReadLowWater { fd: None, current: 1 }
    }

    /// Sets the mark for a frame that still needs `missing_bytes` (0: between frames).
    pub fn want(&mut self, missing_bytes: usize) {
        let wanted = mark_for(missing_bytes);
        if wanted == self.current {
            return;
        }
        let Some(fd) = self.fd else { return };
        match set_rcvlowat(fd, wanted) {
            Ok(()) => self.current = wanted,
            Err(e) => {
                tracing::debug!("SO_RCVLOWAT {wanted} refused, reads keep waking on any data: {e}");
                self.fd = None;
            }
        }
    }
}

/// The mark for a frame that still needs `missing_bytes`.
fn mark_for(missing_bytes: usize) -> usize {
    missing_bytes.clamp(1, READ_LOW_WATER_MAX_BYTES)
}

#[allow(unsafe_code)] // the one setsockopt without a safe wrapper in our dependencies
fn set_rcvlowat(fd: RawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).map_err(|_| io::Error::other("mark too large"))?;
    // SAFETY: `fd` is an open socket (see `ReadLowWater::fd`); the option value is a c_int read by
    // the kernel from a pointer and length that describe exactly that c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Goal: the mark never exceeds what is missing nor the cap, and is at least 1.
    #[test]
    fn mark_is_bounded() {
        assert_eq!(mark_for(0), 1);
        assert_eq!(mark_for(100), 100);
        assert_eq!(mark_for(10 << 20), READ_LOW_WATER_MAX_BYTES);
    }

    /// Goal: a real socket with the mark set wakes its reader only once that much has arrived,
    /// and a mark back at 1 wakes it on any byte; method: loopback pair, timed reads. The kernel
    /// ignores the mark while the receive window is under one segment (64 KiB on loopback), as on
    /// a fresh connection, so 8 MB go through first to let the window grow, as in real traffic.
    #[tokio::test]
    async fn the_kernel_honours_the_mark() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let warm_up = tokio::spawn(async move {
            client.write_all(&vec![1u8; 8 << 20]).await.unwrap();
            client
        });
        let mut buf = vec![0u8; 1 << 20];
        let mut received = 0;
        while received < 8 << 20 {
            received += server.read(&mut buf).await.unwrap();
        }
        let mut client = warm_up.await.unwrap();
        let mut mark = ReadLowWater::new(&server);
        mark.want(1000);
        assert_eq!(mark.current, 1000, "setsockopt accepted");
        client.write_all(&[7u8; 600]).await.unwrap();
        let early = tokio::time::timeout(std::time::Duration::from_millis(300), server.read(&mut buf)).await;
        assert!(early.is_err(), "600 of 1000 bytes must not wake the reader");
        client.write_all(&[7u8; 400]).await.unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), server.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 1000, "woken once the mark was reached, with everything");
        mark.want(0);
        client.write_all(b"x").await.unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), server.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 1, "between frames any byte wakes the reader");
    }
}
