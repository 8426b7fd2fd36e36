//! Per-transform counters in plain atomics, read with [`TransformStats::snapshot`]. Deliberately
//! not Prometheus: the metrics layer wraps this snapshot instead of being sprinkled through the
//! runners.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by a transform's runners.
#[derive(Debug, Default)]
pub struct TransformStats {
    records_in: AtomicU64,
    records_out: AtomicU64,
    dead_lettered: AtomicU64,
    skipped: AtomicU64,
    batches: AtomicU64,
    batch_latency_us_sum: AtomicU64,
    /// Instances thrown away after a failed call and recreated.
    restarts: AtomicU64,
    time_limit_hits: AtomicU64,
    memory_limit_hits: AtomicU64,
    traps: AtomicU64,
    /// Linear memory held by live instances (sum over runners).
    memory_bytes: AtomicU64,
    /// State size reported by the guests (sum over runners), for the state size cap.
    state_bytes: AtomicU64,
    /// Runners halted because their state passed `state.bytes_max`.
    state_cap_hits: AtomicU64,
    /// Records written to the state changelog.
    changelog_records: AtomicU64,
    /// Instances restored from the changelog, the records read and the time taken.
    state_restores: AtomicU64,
    state_restore_records: AtomicU64,
    state_restore_ms: AtomicU64,
    /// Batches put back to run again later: no instance could be created (the pool is full), or
    /// a replay ran out of its time budget where the first run did not.
    batch_retries: AtomicU64,
}

/// A point-in-time copy of [`TransformStats`].
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    pub records_in: u64,
    pub records_out: u64,
    pub dead_lettered: u64,
    pub skipped: u64,
    pub batches: u64,
    pub batch_latency_us_sum: u64,
    pub restarts: u64,
    pub time_limit_hits: u64,
    pub memory_limit_hits: u64,
    pub traps: u64,
    pub memory_bytes: u64,
    pub state_bytes: u64,
    pub state_cap_hits: u64,
    pub changelog_records: u64,
    pub state_restores: u64,
    pub state_restore_records: u64,
    pub state_restore_ms: u64,
    #[serde(default)]
    pub batch_retries: u64,
}

/// Which failure a guest call ended with, for counting.
#[derive(Debug, Clone, Copy)]
pub enum FailureKind {
    /// A trap or a failed status.
    Trap,
    /// Killed by the time limit.
    TimeLimit,
    /// Killed by the memory limit.
    MemoryLimit,
}

impl TransformStats {
    /// One batch done.
    pub fn batch(&self, records_in: u64, records_out: u64, latency_us: u64) {
        self.records_in.fetch_add(records_in, Ordering::Relaxed);
        self.records_out.fetch_add(records_out, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_latency_us_sum.fetch_add(latency_us, Ordering::Relaxed);
    }

    /// Records sent to the dead-letter topic.
    pub fn dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }

    /// Records dropped by the `skip` policy.
    pub fn skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }

    /// A failed call; the instance is recreated.
    pub fn failure(&self, kind: FailureKind) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let counter = match kind {
            FailureKind::Trap => &self.traps,
            FailureKind::TimeLimit => &self.time_limit_hits,
            FailureKind::MemoryLimit => &self.memory_limit_hits,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A runner's instance memory changed from `old` to `new` bytes.
    pub fn memory_changed(&self, old: u64, new: u64) {
        if new >= old {
            self.memory_bytes.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.memory_bytes.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    /// A runner's state size changed from `old` to `new` bytes.
    pub fn state_changed(&self, old: u64, new: u64) {
        if new >= old {
            self.state_bytes.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.state_bytes.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    /// A runner stopped at the state size cap.
    pub fn state_cap_hit(&self) {
        self.state_cap_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Records written to the changelog.
    pub fn changelog_written(&self, records: u64) {
        self.changelog_records.fetch_add(records, Ordering::Relaxed);
    }

    /// An instance was restored from `records` changelog records in `millis`.
    pub fn restored(&self, records: u64, millis: u64) {
        self.state_restores.fetch_add(1, Ordering::Relaxed);
        self.state_restore_records.fetch_add(records, Ordering::Relaxed);
        self.state_restore_ms.fetch_add(millis, Ordering::Relaxed);
    }

    /// A batch will be run again later (see `batch_retries`).
    pub fn batch_retried(&self) {
        self.batch_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            records_in: get(&self.records_in),
            records_out: get(&self.records_out),
            dead_lettered: get(&self.dead_lettered),
            skipped: get(&self.skipped),
            batches: get(&self.batches),
            batch_latency_us_sum: get(&self.batch_latency_us_sum),
            restarts: get(&self.restarts),
            time_limit_hits: get(&self.time_limit_hits),
            memory_limit_hits: get(&self.memory_limit_hits),
            traps: get(&self.traps),
            memory_bytes: get(&self.memory_bytes),
            state_bytes: get(&self.state_bytes),
            state_cap_hits: get(&self.state_cap_hits),
            changelog_records: get(&self.changelog_records),
            state_restores: get(&self.state_restores),
            state_restore_records: get(&self.state_restore_records),
            state_restore_ms: get(&self.state_restore_ms),
            batch_retries: get(&self.batch_retries),
        }
    }
}
