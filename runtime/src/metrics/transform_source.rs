//! Transform metrics (`sluice_transform_*{transform}`), read from the transform manager at scrape
//! time. Series exist while a transform is deployed; the `transform` label is bounded by the
//! number of deployed transforms (and by the per-family series cap).

use std::sync::Weak;

use super::scrape::{HistogramSnapshot, MetricsSource, Scrape};
use crate::transform::{TransformManager, TransformState};

/// The scrape-time source over the broker's [`TransformManager`].
pub struct TransformSource {
    manager: Weak<TransformManager>,
}

impl TransformSource {
    /// A source reading `manager`'s transforms (it does not keep the manager alive).
    pub fn new(manager: Weak<TransformManager>) -> Self {
        TransformSource { manager }
    }
}

impl MetricsSource for TransformSource {
    fn collect(&self, s: &mut Scrape) {
        let Some(manager) = self.manager.upgrade() else { return };
        // A deploy in progress holds the manager's lock: this scrape then omits transforms rather
        // than waiting for a compile (`sluice_transform_scrape_skipped_total` says so).
        let list = manager.try_list();
        s.counter(
            "sluice_transform_scrape_skipped_total",
            "Scrapes that omitted transforms because a deploy held the manager.",
            &[],
            manager.scrapes_skipped() as f64,
        );
        let Some(list) = list else { return };
        for t in &list {
            let l = [("transform", t.name.as_str())];
            let st = &t.stats;
            let n = |v: u64| v as f64;
            s.counter("sluice_transform_records_in_total", "Input records processed by the transform.", &l, n(st.records_in));
            s.counter("sluice_transform_records_out_total", "Records the transform emitted.", &l, n(st.records_out));
            s.counter(
                "sluice_transform_records_dead_lettered_total",
                "Input records sent to the dead-letter topic.",
                &l,
                n(st.dead_lettered),
            );
            s.counter("sluice_transform_records_skipped_total", "Input records dropped by the skip policy.", &l, n(st.skipped));
            // Runners keep a latency sum and count: the histogram has only +Inf, which gives the mean.
            let batches = HistogramSnapshot { buckets: Vec::new(), count: st.batches, sum: st.batch_latency_us_sum as f64 / 1e6 };
            s.histogram("sluice_transform_batch_duration_seconds", "Guest time per input batch.", &l, &batches);
            s.gauge("sluice_transform_lag_records", "Input records not yet processed (sum over input partitions).", &l, t.lag as f64);
            // Absent while the oldest unprocessed batch is in tiered storage (not read at scrape time).
            if let Some(seconds) = t.lag_seconds {
                s.gauge(
                    "sluice_transform_lag_seconds",
                    "Age of the oldest unprocessed input record (largest over input partitions); 0 when caught up.",
                    &l,
                    seconds,
                );
            }
            for (state, name) in
                [(TransformState::Running, "running"), (TransformState::Paused, "paused"), (TransformState::Failed, "failed")]
            {
                let labels = [("transform", t.name.as_str()), ("state", name)];
                s.gauge(
                    "sluice_transform_state",
                    "1 for the transform's current state.",
                    &labels,
                    if t.state == state { 1.0 } else { 0.0 },
                );
            }
            s.counter("sluice_transform_restarts_total", "Guest instances recreated after a failed call.", &l, n(st.restarts));
            s.counter("sluice_transform_time_limit_hits_total", "Guest calls killed by the time limit.", &l, n(st.time_limit_hits));
            s.counter("sluice_transform_memory_limit_hits_total", "Guest calls killed by the memory limit.", &l, n(st.memory_limit_hits));
            s.counter("sluice_transform_traps_total", "Guest calls that trapped or failed.", &l, n(st.traps));
            s.counter(
                "sluice_transform_batch_retries_total",
                "Batches put back to run again later: no instance could be created (pool full), or a replay overran its time budget.",
                &l,
                n(st.batch_retries),
            );
            let retrying = t.partitions.iter().filter(|p| p.retrying.is_some()).count();
            s.gauge(
                "sluice_transform_partitions_retrying",
                "Input partitions whose current batch waits to be run again.",
                &l,
                retrying as f64,
            );
            s.gauge("sluice_transform_memory_bytes", "Linear memory held by the transform's instances.", &l, n(st.memory_bytes));
            s.gauge(
                "sluice_transform_state_bytes",
                "Keyed state held by a stateful transform (keys plus values, sum over partitions).",
                &l,
                n(st.state_bytes),
            );
            s.counter(
                "sluice_transform_state_cap_hits_total",
                "Runners halted because their state passed state.bytes_max.",
                &l,
                n(st.state_cap_hits),
            );
            s.counter(
                "sluice_transform_changelog_records_total",
                "Records written to the transform's state changelog.",
                &l,
                n(st.changelog_records),
            );
            s.counter(
                "sluice_transform_state_restores_total",
                "Guest instances restored from the state changelog.",
                &l,
                n(st.state_restores),
            );
            s.counter(
                "sluice_transform_state_restore_records_total",
                "Changelog records read by state restores.",
                &l,
                n(st.state_restore_records),
            );
            s.counter(
                "sluice_transform_state_restore_seconds_total",
                "Time spent restoring state from the changelog.",
                &l,
                st.state_restore_ms as f64 / 1e3,
            );
        }
    }
}
