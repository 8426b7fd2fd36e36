//! Recycled buffers for large request frames (a Produce request of a 1 MB batch).
//!
//! Why: each large frame used to get a fresh ~1 MB allocation (the read buffer grew while the
//! previous frames it held were still in use by their handlers), which glibc serves from new
//! pages: ~9% of the broker's CPU samples in a 1 KiB-record produce run were page faults on that
//! memory. A frame read into a buffer from this pool hands it back when the last `Bytes` of the
//! frame (the request's record data) is dropped, so steady produce traffic reuses the same warm
//! pages.
//!
//! One pool per process, like the allocator it stands in for; bounded by
//! [`FRAME_POOL_BYTES_MAX`] in total and [`POOLED_BUFFER_BYTES_MAX`] per buffer, so an idle broker
//! keeps at most that much and a burst of huge frames is not kept at all.

use bytes::Bytes;
use parking_lot::Mutex;

/// Frames at least this large are read into a pooled buffer of their own; smaller ones share the
/// connection's read buffer.
pub const POOLED_FRAME_BYTES_MIN: usize = 64 * 1024;
/// Largest buffer kept for reuse (a 16 MiB request is rare; its buffer is freed).
pub const POOLED_BUFFER_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Total capacity kept for reuse across all connections: 32 in-flight 1 MiB requests on each of
/// two busy producers.
pub const FRAME_POOL_BYTES_MAX: usize = 64 * 1024 * 1024;

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), bytes: 0 });

/// An empty buffer with room for `size` bytes: a recycled one if one is large enough.
/// Capacities are powers of two so frames of similar size (1,000,0xx bytes) fit each other's
/// buffers.
pub fn take(size: usize) -> Vec<u8> {
    {
        let mut pool = POOL.lock();
        if let Some(i) = pool.free.iter().position(|b| b.capacity() >= size) {
            let buf = pool.free.swap_remove(i);
            pool.bytes -= buf.capacity();
            return buf;
        }
    }
    Vec::with_capacity(size.checked_next_power_of_two().unwrap_or(size))
}

/// Returns a buffer for reuse, or frees it when the pool is full or the buffer too large.
fn give(mut buf: Vec<u8>) {
    let capacity = buf.capacity();
    if capacity > POOLED_BUFFER_BYTES_MAX {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock();
    if pool.bytes + capacity <= FRAME_POOL_BYTES_MAX {
        pool.bytes += capacity;
        pool.free.push(buf);
    }
}

/// A complete frame in a pooled buffer; going back to the pool when dropped.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// Wraps a filled pooled buffer as `Bytes`; the buffer returns to the pool when the last clone or
/// slice of it is dropped.
pub fn freeze(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Pooled(buf))
}

/// Bytes held in the pool now (for tests).
#[cfg(test)]
pub fn pooled_bytes() -> usize {
    POOL.lock().bytes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_frame_buffer_is_reused() {
        // Goal: the second large frame reuses the first one's memory (no fresh pages). Method:
        // compare buffer addresses across a take/freeze/drop/take cycle.
        let mut buf = take(1_000_123);
        assert!(buf.capacity() >= 1_000_123);
        buf.extend_from_slice(&vec![7u8; 1_000_123]);
        let first = buf.as_ptr() as usize;
        let frame = freeze(buf);
        let slice = frame.slice(10..20);
        drop(frame);
        assert_eq!(slice[0], 7, "a slice keeps the buffer alive");
        drop(slice);
        let pooled = POOL.lock().free.iter().any(|b| b.as_ptr() as usize == first && b.is_empty());
        assert!(pooled, "the buffer did not go back to the pool");
    }

    #[test]
    fn buffers_above_the_limit_are_not_kept() {
        let buf = take(POOLED_BUFFER_BYTES_MAX + 1);
        let before = pooled_bytes();
        drop(freeze(buf));
        assert!(pooled_bytes() <= before, "an oversized buffer was pooled");
    }
}
