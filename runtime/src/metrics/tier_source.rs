//! Tiered storage metrics (`sluice_tier_*`), read from [`Tier::stats`] at scrape time. No labels:
//! the figures are broker-wide, so the series count is fixed.

use std::sync::Arc;

use super::scrape::{HistogramSnapshot, MetricsSource, Scrape};
use crate::tier::Tier;

/// The scrape-time source over the broker's [`Tier`].
pub struct TierSource {
    tier: Arc<Tier>,
}

impl TierSource {
    /// A source reading `tier`'s counters.
    pub fn new(tier: Arc<Tier>) -> Self {
        TierSource { tier }
    }
}

impl MetricsSource for TierSource {
    fn collect(&self, s: &mut Scrape) {
        let t = self.tier.stats();
        let n = |v: u64| v as f64;
        s.counter(
            "sluice_tier_uploaded_segments_total",
            "Segments whose upload (data, indexes, manifest) completed.",
            &[],
            n(t.segments_uploaded),
        );
        s.counter("sluice_tier_uploaded_bytes_total", "Segment bytes uploaded to the object store.", &[], n(t.bytes_uploaded));
        s.gauge("sluice_tier_upload_backlog_segments", "Closed local segments waiting for upload.", &[], n(t.upload_backlog_segments));
        s.gauge("sluice_tier_upload_backlog_bytes", "Bytes of closed local segments waiting for upload.", &[], n(t.upload_backlog_bytes));
        s.counter("sluice_tier_upload_failures_total", "Upload attempts that failed (retried with backoff).", &[], n(t.upload_failures));
        s.counter(
            "sluice_tier_local_segments_deleted_total",
            "Local segments deleted after a confirmed upload.",
            &[],
            n(t.local_segments_deleted),
        );
        s.counter(
            "sluice_tier_remote_segments_deleted_total",
            "Remote segments deleted by remote retention.",
            &[],
            n(t.remote_segments_deleted),
        );
        // The tier keeps a latency sum and count, not buckets: the histogram has only +Inf, which
        // still gives the mean (rate of _sum over rate of _count).
        let reads = HistogramSnapshot { buckets: Vec::new(), count: t.remote_reads, sum: t.remote_read_micros_sum as f64 / 1e6 };
        s.histogram("sluice_tier_remote_read_duration_seconds", "Object store GETs for reads and their latency.", &[], &reads);
        s.counter("sluice_tier_remote_read_bytes_total", "Bytes read from the object store.", &[], n(t.remote_read_bytes));
        s.counter(
            "sluice_tier_remote_read_errors_total",
            "Reads of remote data that failed (missing or corrupt object, store unreachable).",
            &[],
            n(t.remote_read_errors),
        );
        s.counter("sluice_tier_cache_hits_total", "Read cache lookups that found their chunk.", &[], n(t.cache_hits));
        s.counter("sluice_tier_cache_misses_total", "Read cache lookups that fetched their chunk.", &[], n(t.cache_misses));
        s.counter("sluice_tier_read_ahead_chunks_total", "Chunks fetched ahead of a sequential reader.", &[], n(t.read_ahead_chunks));
        s.gauge("sluice_tier_cache_bytes", "Bytes held by the remote read cache.", &[], n(t.cache_bytes));
    }
}
