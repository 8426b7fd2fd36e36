//! `try_append_now`: the append an async thread may do itself. It must do exactly what `append`
//! does when it runs, and nothing at all (so the caller can retry on a blocking thread) when it
//! would wait for the writer lock or do slow file work.

use super::*;

#[test]
fn it_appends_like_append_when_nothing_stands_in_the_way() {
    // Goal: same offsets and bytes as the blocking append. Method: one log fed by each in turn.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    let first = log.append(&batch_of(3, 50, 1), 7, 1000).unwrap();
    let second = log.try_append_now(&batch_of(2, 50, 2), 7, 1000).expect("nothing to wait for").unwrap();
    assert_eq!((first.base_offset, second.base_offset, second.last_offset), (0, 3, 4));
    let stored = headers_of(&read_all(&log, 0));
    assert_eq!(stored.iter().map(|h| (h.base_offset, h.partition_leader_epoch)).collect::<Vec<_>>(), vec![(0, 7), (3, 7)]);
}

#[test]
fn it_declines_what_would_wait_and_writes_nothing() {
    // Goal: `None`, and the log unchanged, in each case that would block an async thread: the
    // writer lock held (a roll or checkpoint in progress), the first write after a clean close
    // (rewrites the checkpoint with an fsync), and a segment roll.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    log.append(&batch_of(1, 50, 1), 0, 1000).unwrap();

    let held = log.writer.lock();
    assert!(log.try_append_now(&batch_of(1, 50, 1), 0, 1000).is_none(), "appended while the writer lock was held");
    drop(held);

    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    assert!(log.try_append_now(&batch_of(1, 50, 1), 0, 1000).is_none(), "skipped the checkpoint rewrite");
    log.append(&batch_of(1, 50, 1), 0, 1000).unwrap();

    let mut small_segments = config();
    small_segments.segment_bytes = 1;
    log.update_config(small_segments);
    assert!(log.try_append_now(&batch_of(1, 50, 1), 0, 1000).is_none(), "rolled a segment");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.segment_count(), 1);
}

#[test]
fn bad_input_is_refused_without_waiting() {
    // Goal: a corrupt batch gets its error on the async thread too (no retry could fix it).
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config(), 0).unwrap();
    let mut bad = batch_of(1, 50, 1);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(log.try_append_now(&bad, 0, 1000), Some(Err(LogError::CorruptBatch { .. }))));
    assert_eq!(log.log_end_offset(), 0);
}
