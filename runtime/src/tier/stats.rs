//! Tiered storage counters: plain atomics bumped where things happen, read as a [`TierStats`]
//! snapshot (by tests, the benchmark, and a metrics collector at scrape time).

use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of the counters. Counters only grow; `upload_backlog_*` are gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierStats {
    /// Segments and bytes whose upload (segment, indexes and manifest) completed.
    pub segments_uploaded: u64,
    #[allow(missing_docs)]
    pub bytes_uploaded: u64,
    /// Closed local segments waiting for upload, as of the uploader's last pass.
    pub upload_backlog_segments: u64,
    #[allow(missing_docs)]
    pub upload_backlog_bytes: u64,
    /// Upload attempts that failed (each is retried with backoff).
    pub upload_failures: u64,
    /// Local segments deleted after their upload was confirmed.
    pub local_segments_deleted: u64,
    /// Remote segments deleted by remote retention.
    pub remote_segments_deleted: u64,
    /// GETs against the store for reads (chunks and indexes), their total latency, and bytes.
    pub remote_reads: u64,
    #[allow(missing_docs)]
    pub remote_read_micros_sum: u64,
    #[allow(missing_docs)]
    pub remote_read_bytes: u64,
    /// Fetch/ListOffsets reads served from remote data that failed (missing or corrupt object,
    /// store unreachable).
    pub remote_read_errors: u64,
    /// Read cache lookups that found the chunk, and those that had to fetch it.
    pub cache_hits: u64,
    #[allow(missing_docs)]
    pub cache_misses: u64,
    /// Chunks fetched ahead of a sequential reader.
    pub read_ahead_chunks: u64,
    /// Bytes currently held by the read cache.
    pub cache_bytes: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub segments_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub upload_backlog_segments: AtomicU64,
    pub upload_backlog_bytes: AtomicU64,
    pub upload_failures: AtomicU64,
    pub local_segments_deleted: AtomicU64,
    pub remote_segments_deleted: AtomicU64,
    pub remote_reads: AtomicU64,
    pub remote_read_micros_sum: AtomicU64,
    pub remote_read_bytes: AtomicU64,
    pub remote_read_errors: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub read_ahead_chunks: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self, cache_bytes: u64) -> TierStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TierStats {
            segments_uploaded: get(&self.segments_uploaded),
            bytes_uploaded: get(&self.bytes_uploaded),
            upload_backlog_segments: get(&self.upload_backlog_segments),
            upload_backlog_bytes: get(&self.upload_backlog_bytes),
            upload_failures: get(&self.upload_failures),
            local_segments_deleted: get(&self.local_segments_deleted),
            remote_segments_deleted: get(&self.remote_segments_deleted),
            remote_reads: get(&self.remote_reads),
            remote_read_micros_sum: get(&self.remote_read_micros_sum),
            remote_read_bytes: get(&self.remote_read_bytes),
            remote_read_errors: get(&self.remote_read_errors),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            read_ahead_chunks: get(&self.read_ahead_chunks),
            cache_bytes,
        }
    }
}
