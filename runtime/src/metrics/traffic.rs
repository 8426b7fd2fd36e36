//! Counters the data path bumps directly: per-partition traffic and the log flush histogram.
//!
//! [`PartitionTraffic`] lives inside each `broker::Partition`, so the produce and fetch paths
//! count with one relaxed atomic add and no lookup, and the counts disappear with the partition
//! when its topic is deleted (the scrape-time source sums them per topic).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts};

/// Flush latency buckets, seconds: a page-cache fdatasync (~0.1 ms) to a stalled disk (1 s+).
const FLUSH_BUCKETS_SECONDS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Cumulative traffic of one partition since it was opened.
#[derive(Debug, Default)]
pub struct PartitionTraffic {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A copy of [`PartitionTraffic`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the counters of the same names
pub struct TrafficSnapshot {
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
}

impl PartitionTraffic {
    /// Records appended to the log: `bytes` of batches holding `records` records.
    pub fn appended(&self, bytes: u64, records: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.records_in.fetch_add(records, Ordering::Relaxed);
    }

    /// Record bytes sent to a consumer in a Fetch response.
    pub fn fetched(&self, bytes: u64) {
        if bytes > 0 {
            self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> TrafficSnapshot {
        TrafficSnapshot {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            records_in: self.records_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// `sluice_log_flush_duration_seconds`: how long a produce waited for its data to be durable
/// (the group-committed fsync, including waiting for one already in progress).
///
/// Process-wide rather than per broker because partitions are opened (and flushed) without a
/// handle on the broker; a process runs one broker, whose registry registers this histogram.
pub fn flush_duration() -> &'static Histogram {
    static FLUSH: LazyLock<Histogram> = LazyLock::new(|| {
        let opts = HistogramOpts::new(
            "sluice_log_flush_duration_seconds",
            "Time a produce waited for its data to reach stable storage (group-committed fsync).",
        )
        .buckets(FLUSH_BUCKETS_SECONDS.to_vec());
        // Constant options (checked by the unit test below): a failure is a programmer error.
        Histogram::with_opts(opts).expect("the flush histogram's constant options are valid")
    });
    &FLUSH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_histogram_has_its_buckets() {
        flush_duration().observe(0.0003);
        assert!(flush_duration().get_sample_count() >= 1);
    }

    #[test]
    fn traffic_adds_up() {
        let t = PartitionTraffic::default();
        t.appended(100, 3);
        t.appended(50, 1);
        t.fetched(0);
        t.fetched(70);
        assert_eq!(t.snapshot(), TrafficSnapshot { bytes_in: 150, records_in: 4, bytes_out: 70 });
    }
}
