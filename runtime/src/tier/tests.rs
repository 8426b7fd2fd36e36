//! Uploader, remote reads and restore against real stores (`memory://` and a local directory),
//! with a real partition log underneath: what comes back from the store must be byte-identical to
//! what the log serves, and local segments go only once a published manifest names them.

use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStoreExt;
use uuid::Uuid;

use super::store;
use super::{Manifest, RemoteLog, Tier, TierSettings};
use crate::log::tests::{batch_of, config, read_all};
use crate::log::{LogConfig, PartitionLog};

fn settings() -> TierSettings {
    TierSettings { enabled: true, local_retention_ms: None, local_retention_bytes: Some(0), retention_ms: None, retention_bytes: None }
}

/// A log with about `batches` 8 KiB batches in 32 KiB segments, every closed segment's indexes
/// persisted (as maintenance does) and everything committed.
fn filled_log(dir: &std::path::Path, batches: usize) -> Arc<PartitionLog> {
    let log_config = LogConfig { segment_bytes: 32 * 1024, index_interval_bytes: 1024, ..config() };
    let log = PartitionLog::open(dir, log_config, 1000).expect("open");
    for i in 0..batches {
        let b = batch_of(4, 2000, 1000 + i as i64);
        log.append(&b, 3, 1000).expect("append");
    }
    log.flush_to(log.log_end_offset()).expect("flush");
    log.set_high_watermark(log.log_end_offset());
    log.maintain(1000).expect("maintain persists closed segments' indexes");
    Arc::new(log)
}

/// Reads `[from, to)` from the remote side, batch by batch, as a consumer would.
async fn read_remote(remote: &RemoteLog, from: i64, to: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let bytes = remote.read(at, 1 << 20, i64::MAX).await.expect("remote read");
        assert!(!bytes.is_empty(), "remote read at {at} returned nothing");
        let mut pos = 0;
        while pos < bytes.len() {
            let (h, size) = crate::log::check_batch(&bytes[pos..]).expect("valid batch");
            at = h.last_offset() + 1;
            pos += size;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_publish_then_delete_locally_and_read_back_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled_log(&dir.path().join("p"), 40);
    let expected = read_all(&log, 0);
    // A small multipart threshold sends every segment through the multipart path.
    let handle = store::open("memory://").expect("memory store");
    let tier = Tier::with_store(handle.clone(), 1, 1 << 20, 16 * 1024).expect("tier");
    let remote = RemoteLog::open(&tier, "orders", Uuid::from_u128(7), 0, settings()).await;
    assert_eq!(remote.end_offset(), None, "a new partition has an empty manifest");

    remote.run_pass(&log, 2000).await;
    let stats = tier.stats();
    let closed_before = stats.segments_uploaded;
    assert!(closed_before >= 5, "{stats:?}");
    assert_eq!(stats.upload_failures, 0);
    let remote_end = remote.end_offset().expect("segments uploaded");
    assert_eq!(log.log_start_offset(), remote_end, "local retention 0 deletes exactly what is uploaded");
    assert!(log.segment_count() >= 1);

    // The published manifest is what the store holds, with epochs and object keys.
    let key = Path::from("node-1/topics/orders-00000000000000000000000000000007/0/manifest.json");
    let bytes = handle.store.get(&key).await.expect("manifest").bytes().await.expect("bytes");
    let manifest = Manifest::decode(&bytes).expect("valid manifest");
    assert_eq!(manifest.end_offset(), Some(remote_end));
    assert!(manifest.segments.iter().all(|s| s.first_leader_epoch == 3 && s.last_leader_epoch == 3));
    for s in &manifest.segments {
        handle.store.head(&Path::from(s.log_key.as_str())).await.expect("segment object exists");
    }

    // Remote bytes plus local bytes are exactly what the log served before any deletion.
    let mut got = read_remote(&remote, 0, remote_end).await;
    got.extend_from_slice(&read_all(&log, remote_end));
    assert_eq!(got, expected);
    assert!(tier.stats().cache_hits > 0);
    assert_eq!(remote.offset_for_timestamp(1005).await.expect("search").map(|(o, _)| o), Some(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_partition_finds_its_manifest_in_a_local_directory_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}/store", dir.path().display());
    let log = filled_log(&dir.path().join("p"), 20);
    let end = {
        let tier = Tier::open(&url, 0, 1 << 20).expect("tier");
        let remote = RemoteLog::open(&tier, "t", Uuid::from_u128(1), 3, settings()).await;
        remote.run_pass(&log, 2000).await;
        remote.end_offset().expect("uploaded")
    };
    // A new broker process: same store, same node id, same topic id.
    let tier = Tier::open(&url, 0, 1 << 20).expect("tier");
    let remote = RemoteLog::open(&tier, "t", Uuid::from_u128(1), 3, settings()).await;
    assert_eq!(remote.end_offset(), Some(end));
    assert_eq!(remote.start_offset(), Some(0));
    let other_node = Tier::open(&url, 9, 1 << 20).expect("tier");
    let stranger = RemoteLog::open(&other_node, "t", Uuid::from_u128(1), 3, settings()).await;
    assert_eq!(stranger.end_offset(), None, "another node id sees none of it");
    // An empty local log restarts at the remote end (restore).
    let fresh = PartitionLog::open(&dir.path().join("fresh"), config(), 1000).expect("open");
    fresh.restart_empty_at(end).expect("restart");
    assert_eq!((fresh.log_start_offset(), fresh.log_end_offset()), (end, end));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_deleted_locally_while_the_store_fails_and_damage_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("store");
    let url = format!("file://{}", store_dir.display());
    let log = filled_log(&dir.path().join("p"), 20);
    let tier = Tier::open(&url, 0, 1 << 20).expect("tier");
    let remote = RemoteLog::open(&tier, "t", Uuid::from_u128(2), 0, settings()).await;
    // Make the store unwritable: a file where the topic folder must go.
    std::fs::write(store_dir.join("node-0"), b"in the way").expect("block");
    remote.run_pass(&log, 2000).await;
    assert!(tier.stats().upload_failures >= 1);
    assert_eq!(log.log_start_offset(), 0, "no local segment deleted before its upload");
    assert!(tier.stats().upload_backlog_segments > 0);
    remote.run_pass(&log, 2100).await; // still backing off: no second attempt yet
    assert_eq!(tier.stats().upload_failures, 1);
    std::fs::remove_file(store_dir.join("node-0")).expect("unblock");
    remote.run_pass(&log, 2000 + 60_000).await;
    assert_eq!(tier.stats().upload_backlog_segments, 0, "{:?}", tier.stats());
    let end = remote.end_offset().expect("uploaded after the outage");
    assert_eq!(log.log_start_offset(), end);

    // Flip a byte inside the first remote segment: the read fails as corrupt, and is counted.
    let manifest = remote.manifest().expect("loaded");
    let seg = &manifest.segments[0];
    let path = std::path::PathBuf::from(format!("/{}", seg.log_key));
    let mut bytes = std::fs::read(&path).expect("object file");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("damage");
    let err = remote.read(0, 1 << 20, i64::MAX).await.expect_err("corrupt");
    assert!(matches!(err, super::TierError::Corrupt { .. }), "{err}");
    assert_eq!(tier.stats().remote_read_errors, 1);
}
