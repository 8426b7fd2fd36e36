//! The bounded local read cache for remote segments: fixed-size chunks of objects kept in memory,
//! least recently used evicted first, with read-ahead for sequential readers.
//!
//! Why chunks and not whole segments: a segment may be 1 GiB; a consumer catching up reads it
//! front to back, so fetching `chunk_bytes` at a time keeps memory bounded while read-ahead keeps
//! the next chunks in flight. Concurrent requests for one chunk share one GET (an in-flight map
//! of shared futures), so read-ahead and the reader never fetch the same range twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;

use super::stats::{add, Counters};
use super::TierError;

/// One chunk: (object key, chunk number).
type ChunkKey = (Arc<str>, u64);
type ChunkFuture = Shared<BoxFuture<'static, Result<Bytes, Arc<TierError>>>>;

/// Sizes of the cache, from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Most bytes held (the cache may briefly exceed it by the chunks being inserted).
    pub capacity_bytes: u64,
    /// Bytes per chunk (one ranged GET).
    pub chunk_bytes: u64,
    /// Chunks fetched ahead of the one being read.
    pub read_ahead_chunks: u64,
}

struct Entry {
    bytes: Bytes,
    last_used: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<ChunkKey, Entry>,
    tick: u64,
    bytes: u64,
}

/// The chunk cache over one store.
pub struct ChunkCache {
    store: Arc<dyn ObjectStore>,
    config: CacheConfig,
    lru: Mutex<Lru>,
    inflight: Mutex<HashMap<ChunkKey, ChunkFuture>>,
    counters: Arc<Counters>,
}

impl ChunkCache {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, config: CacheConfig, counters: Arc<Counters>) -> Arc<Self> {
        let config = CacheConfig { chunk_bytes: config.chunk_bytes.max(4096), ..config };
        Arc::new(ChunkCache { store, config, lru: Mutex::new(Lru::default()), inflight: Mutex::new(HashMap::new()), counters })
    }

    /// Bytes currently cached.
    pub fn cached_bytes(&self) -> u64 {
        self.lru.lock().bytes
    }

    /// Reads `[start, start + len)` of the object `key`, whose size is `object_bytes` (from the
    /// manifest). A shorter object is reported as corrupt.
    pub async fn read(self: &Arc<Self>, key: &str, object_bytes: u64, start: u64, len: u64) -> Result<Bytes, TierError> {
        let end = (start + len).min(object_bytes);
        if start >= end {
            return Ok(Bytes::new());
        }
        let chunk = self.config.chunk_bytes;
        let (first, last) = (start / chunk, (end - 1) / chunk);
        let key: Arc<str> = Arc::from(key);
        self.read_ahead(&key, object_bytes, last);
        if first == last {
            let bytes = self.chunk(&key, object_bytes, first).await?;
            let from = (start - first * chunk) as usize;
            return Ok(bytes.slice(from..from + (end - start) as usize));
        }
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for n in first..=last {
            let bytes = self.chunk(&key, object_bytes, n).await?;
            let chunk_start = n * chunk;
            let from = start.saturating_sub(chunk_start) as usize;
            let to = ((end - chunk_start) as usize).min(bytes.len());
            out.extend_from_slice(&bytes[from..to]);
        }
        Ok(out.freeze())
    }

    /// Starts fetching the chunks after `last` that are neither cached nor in flight.
    fn read_ahead(self: &Arc<Self>, key: &Arc<str>, object_bytes: u64, last: u64) {
        let chunks = object_bytes.div_ceil(self.config.chunk_bytes);
        for n in last + 1..(last + 1 + self.config.read_ahead_chunks).min(chunks) {
            let ck = (Arc::clone(key), n);
            if self.lru.lock().entries.contains_key(&ck) || self.inflight.lock().contains_key(&ck) {
                continue;
            }
            add(&self.counters.read_ahead_chunks, 1);
            let fetch = self.fetch_shared(ck, object_bytes);
            tokio::spawn(async move {
                // The error, if any, is reported to whoever reads the chunk for real.
                let _ = fetch.await;
            });
        }
    }

    /// Chunk `n` of `key`, from the cache or the store.
    async fn chunk(self: &Arc<Self>, key: &Arc<str>, object_bytes: u64, n: u64) -> Result<Bytes, TierError> {
        let ck = (Arc::clone(key), n);
        {
            let mut lru = self.lru.lock();
            lru.tick += 1;
            let tick = lru.tick;
            if let Some(e) = lru.entries.get_mut(&ck) {
                e.last_used = tick;
                add(&self.counters.cache_hits, 1);
                return Ok(e.bytes.clone());
            }
        }
        add(&self.counters.cache_misses, 1);
        self.fetch_shared(ck, object_bytes).await.map_err(|e| unshare(&e))
    }

    /// The in-flight fetch of a chunk, started if needed. It inserts the chunk into the cache.
    fn fetch_shared(self: &Arc<Self>, ck: ChunkKey, object_bytes: u64) -> ChunkFuture {
        let mut inflight = self.inflight.lock();
        if let Some(f) = inflight.get(&ck) {
            return f.clone();
        }
        let me = Arc::clone(self);
        let key = ck.clone();
        let fut = async move {
            let result = me.fetch(&key, object_bytes).await;
            if let Ok(bytes) = &result {
                me.insert(key.clone(), bytes.clone());
            }
            me.inflight.lock().remove(&key);
            result.map_err(Arc::new)
        }
        .boxed()
        .shared();
        inflight.insert(ck, fut.clone());
        fut
    }

    async fn fetch(&self, ck: &ChunkKey, object_bytes: u64) -> Result<Bytes, TierError> {
        let start = ck.1 * self.config.chunk_bytes;
        let end = (start + self.config.chunk_bytes).min(object_bytes);
        let path = Path::from(ck.0.as_ref());
        let began = Instant::now();
        let bytes = self.store.get_range(&path, start..end).await.map_err(|e| TierError::store("get", &path, e))?;
        add(&self.counters.remote_reads, 1);
        add(&self.counters.remote_read_micros_sum, began.elapsed().as_micros() as u64);
        add(&self.counters.remote_read_bytes, bytes.len() as u64);
        if bytes.len() as u64 != end - start {
            return Err(TierError::Corrupt {
                key: ck.0.to_string(),
                reason: format!("range {start}..{end} returned {} bytes", bytes.len()),
            });
        }
        Ok(bytes)
    }

    fn insert(&self, ck: ChunkKey, bytes: Bytes) {
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let size = bytes.len() as u64;
        if let Some(old) = lru.entries.insert(ck, Entry { bytes, last_used: tick }) {
            lru.bytes -= old.bytes.len() as u64;
        }
        lru.bytes += size;
        while lru.bytes > self.config.capacity_bytes && lru.entries.len() > 1 {
            // O(entries) per eviction: entries are large chunks, so there are few of them.
            let Some(oldest) = lru.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else { break };
            if let Some(e) = lru.entries.remove(&oldest) {
                lru.bytes -= e.bytes.len() as u64;
            }
        }
    }
}

/// The error a shared fetch ended with, rebuilt for one reader (errors are not `Clone`); keeps
/// "not found" recognisable.
fn unshare(shared: &Arc<TierError>) -> TierError {
    match shared.as_ref() {
        TierError::Store { op, key, source } => {
            let source = match source {
                object_store::Error::NotFound { path, .. } => {
                    object_store::Error::NotFound { path: path.clone(), source: source.to_string().into() }
                }
                _ => object_store::Error::Generic { store: "tier", source: source.to_string().into() },
            };
            TierError::Store { op, key: key.clone(), source }
        }
        TierError::Corrupt { key, reason } => TierError::Corrupt { key: key.clone(), reason: reason.clone() },
        other => TierError::Task { reason: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn cache(capacity: u64, chunk: u64, ahead: u64) -> (Arc<ChunkCache>, Arc<InMemory>, Arc<Counters>) {
        let store = Arc::new(InMemory::new());
        let counters = Arc::new(Counters::default());
        let config = CacheConfig { capacity_bytes: capacity, chunk_bytes: chunk, read_ahead_chunks: ahead };
        (ChunkCache::new(store.clone(), config, Arc::clone(&counters)), store, counters)
    }

    #[tokio::test]
    async fn reads_across_chunks_match_the_object_and_hit_after_read_ahead() {
        let (cache, store, counters) = cache(1 << 20, 4096, 2);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        store.put(&Path::from("a/seg.log"), data.clone().into()).await.expect("put");
        let mut pos = 0u64;
        while pos < data.len() as u64 {
            let got = cache.read("a/seg.log", data.len() as u64, pos, 3000).await.expect("read");
            let end = (pos as usize + 3000).min(data.len());
            assert_eq!(&got[..], &data[pos as usize..end]);
            pos += 3000;
            tokio::task::yield_now().await;
        }
        let s = counters.snapshot(0);
        assert!(s.cache_hits > s.cache_misses, "a sequential reader mostly hits: {s:?}");
        assert!(s.read_ahead_chunks > 0);
    }

    #[tokio::test]
    async fn capacity_bounds_memory_and_short_objects_are_corrupt() {
        let (cache, store, _) = cache(8192, 4096, 0);
        store.put(&Path::from("b"), vec![7u8; 50_000].into()).await.expect("put");
        for n in 0..10 {
            cache.read("b", 50_000, n * 4096, 10).await.expect("read");
        }
        assert!(cache.cached_bytes() <= 8192, "{}", cache.cached_bytes());
        let err = cache.read("b", 60_000, 49_500, 10).await.expect_err("object shorter than promised");
        assert!(matches!(err, TierError::Corrupt { .. }), "{err}");
        let missing = cache.read("nope", 100, 0, 10).await.expect_err("missing");
        assert!(missing.is_not_found(), "{missing}");
    }
}
