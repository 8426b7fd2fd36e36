//! Tiered storage: closed segments are copied to an object store and read back transparently.
//!
//! Local disk holds the recent tail of each partition; the store holds its history. This module
//! decides what to upload, when a local segment may go (only after its upload is confirmed by a
//! published manifest), serves reads below the local log start through a bounded chunk cache, and
//! applies remote retention. It uses the partition log only through its public API
//! (`closed_segments`, `delete_records_before`, `restart_empty_at`, `OffsetIndex`, `check_batch`):
//! the log knows nothing of tiering. `broker::partition` glues the two.
//!
//! # Offsets
//! A tiered partition has two starts: the *log start offset* (the earliest offset that exists,
//! local or remote: Kafka's log-start-offset) and the *local log start offset* (the earliest
//! offset on local disk: the log's own start). Reads in between are served from the store.
//!
//! # Layout
//! - `store`: building the object store from its URL.
//! - `keys`: the object key layout (stable across restarts: restore depends on it).
//! - `manifest`: the per-partition remote manifest (format, checks).
//! - `remote_log`: one partition's remote state (manifest in memory, reads, DeleteRecords floor).
//! - `uploader`: copying closed segments and publishing manifests, with backoff.
//! - `retention`: which local segments may go, which remote ones expire.
//! - `remote_reader`: whole batches by offset or timestamp from remote segments.
//! - `cache`: the chunk cache with read-ahead.
//! - `restore`: topic descriptors, so an empty data directory can get its topics back.
//! - `stats`: counters and the [`TierStats`] snapshot.
//! - `error`: [`TierError`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use object_store::ObjectStoreExt;
use parking_lot::Mutex;

mod cache;
mod error;
pub mod keys;
pub mod manifest;
mod remote_log;
mod remote_reader;
pub mod restore;
mod retention;
mod stats;
pub mod store;
#[cfg(test)]
mod tests;
mod uploader;

pub use cache::CacheConfig;
pub use error::TierError;
pub use manifest::{Manifest, RemoteSegment};
pub use remote_log::RemoteLog;
pub use restore::TopicDescriptor;
pub use stats::TierStats;

use cache::ChunkCache;
use stats::Counters;
use store::StoreHandle;

/// Bytes per read cache chunk (one ranged GET). Large enough that S3 request overhead is small
/// beside the transfer, small enough that a random read does not pull much it will not use.
pub const CACHE_CHUNK_BYTES: u64 = 4 * 1024 * 1024;
/// Chunks fetched ahead of a sequential reader.
pub const READ_AHEAD_CHUNKS: u64 = 2;
/// Segments larger than this are uploaded in parts (S3's minimum part size is 5 MiB).
pub const MULTIPART_THRESHOLD_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes per multipart part.
pub const MULTIPART_PART_BYTES: u64 = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
pub const MULTIPART_CONCURRENCY: usize = 4;
/// Decoded offset indexes kept in memory (small: 8 bytes per index entry).
const INDEX_CACHE_ENTRIES_MAX: usize = 4096;

/// Per-topic tiering settings, converted from topic configs at the broker's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSettings {
    /// `remote.storage.enable` (and not a compacted topic).
    pub enabled: bool,
    /// `local.retention.ms` / `local.retention.bytes`, already resolved (-2 means "as the total").
    pub local_retention_ms: Option<u64>,
    #[allow(missing_docs)]
    pub local_retention_bytes: Option<u64>,
    /// `retention.ms` / `retention.bytes`: how much exists at all, local and remote.
    pub retention_ms: Option<u64>,
    #[allow(missing_docs)]
    pub retention_bytes: Option<u64>,
}

/// Broker-wide tiering: the store, the read cache, the counters.
pub struct Tier {
    handle: StoreHandle,
    node_id: i32,
    runtime: tokio::runtime::Handle,
    cache: Arc<ChunkCache>,
    counters: Arc<Counters>,
    indexes: Mutex<HashMap<String, Arc<crate::log::OffsetIndex>>>,
    /// Descriptors this process published, so unchanged topics are not re-uploaded every pass.
    published_topics: Mutex<HashMap<uuid::Uuid, TopicDescriptor>>,
    /// Topics deleted in this process: their descriptors must never be published again (a tier
    /// pass that started before the deletion would otherwise bring one back for a restore).
    deleted_topics: Mutex<std::collections::HashSet<uuid::Uuid>>,
    /// Serialises descriptor publication and topic deletion, so the check above cannot race.
    descriptors: tokio::sync::Mutex<()>,
    multipart_threshold_bytes: u64,
    /// A manifest load at partition open found the store unreachable: later partitions skip the
    /// load at open (each would wait out the client's retries, stalling startup for minutes with
    /// many partitions) and leave it to the uploader's first pass.
    unreachable_at_open: std::sync::atomic::AtomicBool,
}

impl Tier {
    /// Opens the store at `url` for node `node_id`. Call inside the Tokio runtime.
    pub fn open(url: &str, node_id: i32, cache_capacity_bytes: u64) -> Result<Arc<Tier>, TierError> {
        let handle = store::open(url)?;
        Self::with_store(handle, node_id, cache_capacity_bytes, MULTIPART_THRESHOLD_BYTES)
    }

    /// Builds a tier over an existing store (tests pick a small multipart threshold).
    pub fn with_store(
        handle: StoreHandle,
        node_id: i32,
        cache_capacity_bytes: u64,
        multipart_threshold_bytes: u64,
    ) -> Result<Arc<Tier>, TierError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| TierError::Task { reason: e.to_string() })?;
        let counters = Arc::new(Counters::default());
        let config =
            CacheConfig { capacity_bytes: cache_capacity_bytes, chunk_bytes: CACHE_CHUNK_BYTES, read_ahead_chunks: READ_AHEAD_CHUNKS };
        let cache = ChunkCache::new(Arc::clone(&handle.store), config, Arc::clone(&counters));
        Ok(Arc::new(Tier {
            handle,
            node_id,
            runtime,
            cache,
            counters,
            indexes: Mutex::new(HashMap::new()),
            published_topics: Mutex::new(HashMap::new()),
            deleted_topics: Mutex::new(std::collections::HashSet::new()),
            descriptors: tokio::sync::Mutex::new(()),
            multipart_threshold_bytes,
            unreachable_at_open: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TierStats {
        self.counters.snapshot(self.cache.cached_bytes())
    }

    /// Runs `future` to completion from a blocking thread (`spawn_blocking`, never an async task).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The offset index of a remote segment, from memory or the store.
    async fn index(&self, seg: &RemoteSegment) -> Result<Arc<crate::log::OffsetIndex>, TierError> {
        if let Some(index) = self.indexes.lock().get(&seg.index_key) {
            return Ok(Arc::clone(index));
        }
        let path = object_store::path::Path::from(seg.index_key.as_str());
        let began = std::time::Instant::now();
        let bytes = self
            .handle
            .store
            .get(&path)
            .await
            .map_err(|e| TierError::store("get", &path, e))?
            .bytes()
            .await
            .map_err(|e| TierError::store("get", &path, e))?;
        stats::add(&self.counters.remote_reads, 1);
        stats::add(&self.counters.remote_read_micros_sum, began.elapsed().as_micros() as u64);
        stats::add(&self.counters.remote_read_bytes, bytes.len() as u64);
        let corrupt = |reason: String| TierError::Corrupt { key: seg.index_key.clone(), reason };
        let index = crate::log::OffsetIndex::decode(&bytes).map_err(corrupt)?;
        if index.log_bytes() != seg.size_bytes {
            return Err(corrupt(format!("describes {} segment bytes, the manifest says {}", index.log_bytes(), seg.size_bytes)));
        }
        let index = Arc::new(index);
        let mut indexes = self.indexes.lock();
        if indexes.len() >= INDEX_CACHE_ENTRIES_MAX {
            indexes.clear();
        }
        indexes.insert(seg.index_key.clone(), Arc::clone(&index));
        Ok(index)
    }
}
