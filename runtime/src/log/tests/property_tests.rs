//! Property tests: index lookups and offset/time search against a naive model.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::super::index::SegmentIndex;
use super::{batch_of, config, headers_of};
use crate::log::{LogConfig, PartitionLog};

/// (records in batch, value bytes, max timestamp)
fn batches() -> impl Strategy<Value = Vec<(usize, usize, i64)>> {
    prop::collection::vec((1usize..4, 0usize..300, 0i64..1000), 1..50)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The in-memory index alone: every answer is a batch boundary at or before the naive answer.
    #[test]
    fn index_floor_lookups_never_overshoot(batches in batches(), interval in 1u32..2000) {
        let mut index = SegmentIndex::default();
        let (mut pos, mut rel, mut max_ts) = (0u32, 0u32, -1i64);
        let mut model = Vec::new(); // (first rel, last rel, position, running max ts)
        for &(n, size, ts) in &batches {
            max_ts = max_ts.max(ts);
            index.on_batch(rel, pos, size as u64 + 61, max_ts, interval);
            model.push((rel, rel + n as u32 - 1, pos, ts));
            pos += size as u32 + 61;
            rel += n as u32;
        }
        let boundaries: Vec<u32> = model.iter().map(|m| m.2).collect();
        for target in 0..rel {
            let holder = model.iter().find(|m| m.1 >= target).unwrap();
            let got = index.floor_position(target);
            prop_assert!(boundaries.contains(&got) && got <= holder.2);
        }
        for ts in -1..1001 {
            let got = index.time_floor_position(ts);
            prop_assert!(boundaries.contains(&got));
            if let Some(first) = model.iter().find(|m| m.3 >= ts) {
                prop_assert!(got <= first.2, "ts {}: {} past {}", ts, got, first.2);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The whole log, across segments and a clean reopen: reads start at the batch holding the
    /// offset, timestamp search finds the first batch with a max timestamp at or above the target.
    #[test]
    fn reads_and_time_search_match_a_naive_model(batches in batches(), interval in 1u32..2000, segment_bytes in 500u64..4000, reopen: bool) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig { index_interval_bytes: interval, segment_bytes, ..config() };
        let mut log = PartitionLog::open(dir.path(), cfg.clone(), 0).unwrap();
        let mut model = Vec::new(); // (base, last, ts)
        for &(n, size, ts) in &batches {
            let info = log.append(&batch_of(n, size, ts), 0, 0).unwrap();
            model.push((info.base_offset, info.last_offset, ts));
        }
        if reopen {
            log.close().unwrap();
            drop(log);
            log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
            prop_assert_eq!(log.stats().bytes_scanned_at_open, 0);
        }
        for offset in 0..log.log_end_offset() {
            let r = log.read(offset, 1, i64::MAX).unwrap();
            let first = headers_of(&r.records)[0];
            let holder = model.iter().find(|m| m.1 >= offset).unwrap();
            prop_assert_eq!(first.base_offset, holder.0);
        }
        for ts in (-1..1001).step_by(7).chain(model.iter().map(|m| m.2)) {
            let expected = model.iter().find(|m| m.2 >= ts).map(|m| (m.0, m.2));
            prop_assert_eq!(log.offset_for_timestamp(ts).unwrap(), expected);
        }
        let max = model.iter().fold(None, |best: Option<(i64, i64)>, m| match best {
            Some((_, t)) if t >= m.2 => best,
            _ => Some((m.1, m.2)),
        });
        prop_assert_eq!(log.max_timestamp().unwrap(), max);
    }
}
