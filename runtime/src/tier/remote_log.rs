//! One partition's remote state: its manifest in memory (published copies only, plus the
//! DeleteRecords floor), reads below the local log start, and the upload backoff.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use super::keys;
use super::manifest::Manifest;
use super::remote_reader;
use super::stats::add;
use super::{Tier, TierError, TierSettings};

/// Upload retry backoff: first delay, doubling per consecutive failure up to the maximum.
pub(crate) const UPLOAD_BACKOFF_MIN_MS: i64 = 500;
pub(crate) const UPLOAD_BACKOFF_MAX_MS: i64 = 8_000;

/// Consecutive failures and when the next attempt may run.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    pub failures: u32,
    pub next_attempt_ms: i64,
}

/// The remote side of one partition.
pub struct RemoteLog {
    pub(crate) tier: Arc<Tier>,
    pub(crate) topic: String,
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    /// `<…>/<topic>-<id>/<partition>`.
    pub(crate) dir: Path,
    /// `None` until loaded: the store was unreachable when the partition opened. Nothing is
    /// uploaded (a manifest published without the old one's segments would lose them) and no
    /// remote read is served until it is.
    pub(crate) manifest: RwLock<Option<Arc<Manifest>>>,
    pub(crate) settings: RwLock<TierSettings>,
    pub(crate) backoff: Mutex<Backoff>,
    /// DeleteRecords moved the log start offset; the manifest must be republished.
    pub(crate) dirty: AtomicBool,
    /// This partition's share of the backlog gauges (segments, bytes).
    pub(crate) backlog: (AtomicU64, AtomicU64),
    /// One uploader pass at a time.
    pub(crate) pass: tokio::sync::Mutex<()>,
}

impl RemoteLog {
    /// Opens the remote side of a partition, loading its manifest (a missing one is empty; an
    /// unreachable store leaves it unloaded, retried by the uploader).
    pub async fn open(tier: &Arc<Tier>, topic: &str, topic_id: Uuid, partition: i32, settings: TierSettings) -> RemoteLog {
        let topic_dir = keys::topic_dir(&tier.handle.prefix, tier.node_id, topic, topic_id);
        let remote = RemoteLog {
            tier: Arc::clone(tier),
            topic: topic.to_string(),
            topic_id,
            partition,
            dir: keys::partition_dir(&topic_dir, partition),
            manifest: RwLock::new(None),
            settings: RwLock::new(settings),
            backoff: Mutex::new(Backoff::default()),
            dirty: AtomicBool::new(false),
            backlog: (AtomicU64::new(0), AtomicU64::new(0)),
            pass: tokio::sync::Mutex::new(()),
        };
        if tier.unreachable_at_open.load(Ordering::Acquire) {
            return remote;
        }
        if let Err(e) = remote.load().await {
            if matches!(e, TierError::Store { .. }) {
                tier.unreachable_at_open.store(true, Ordering::Release);
            }
            tracing::warn!(
                topic,
                partition,
                "remote manifest not loaded yet (retried by the uploader; until then only local data is served): {e}"
            );
        }
        remote
    }

    /// Reads the published manifest into memory (an absent one is empty).
    pub(crate) async fn load(&self) -> Result<Arc<Manifest>, TierError> {
        let key = self.dir.clone().join(keys::MANIFEST_FILE);
        let manifest = match self.tier.handle.store.get(&key).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|e| TierError::store("get", &key, e))?;
                Manifest::decode(&bytes).map_err(|reason| TierError::BadManifest { key: key.to_string(), reason })?
            }
            Err(object_store::Error::NotFound { .. }) => Manifest::empty(&self.topic, self.topic_id, self.partition),
            Err(e) => return Err(TierError::store("get", &key, e)),
        };
        let manifest = Arc::new(manifest);
        *self.manifest.write() = Some(Arc::clone(&manifest));
        Ok(manifest)
    }

    /// Publishes `next` (one PUT, atomic), keeping any DeleteRecords floor set meanwhile, and
    /// makes it the manifest in memory.
    pub(crate) async fn publish(&self, mut next: Manifest) -> Result<Arc<Manifest>, TierError> {
        if let Some(current) = self.manifest() {
            next.log_start_offset = next.log_start_offset.max(current.log_start_offset);
        }
        let key = self.dir.clone().join(keys::MANIFEST_FILE);
        self.tier.handle.store.put(&key, PutPayload::from(next.encode())).await.map_err(|e| TierError::store("put", &key, e))?;
        let next = Arc::new(next);
        *self.manifest.write() = Some(Arc::clone(&next));
        Ok(next)
    }

    /// The manifest in memory, if loaded.
    pub fn manifest(&self) -> Option<Arc<Manifest>> {
        self.manifest.read().clone()
    }

    /// The first offset served remotely, if any.
    pub fn start_offset(&self) -> Option<i64> {
        self.manifest().and_then(|m| m.start_offset())
    }

    /// Offset after the last remote segment, if any.
    pub fn end_offset(&self) -> Option<i64> {
        self.manifest().and_then(|m| m.end_offset())
    }

    /// Replaces the settings (topic configs changed).
    pub fn update_settings(&self, settings: TierSettings) {
        *self.settings.write() = settings;
    }

    /// Current settings.
    pub fn settings(&self) -> TierSettings {
        *self.settings.read()
    }

    /// DeleteRecords: nothing below `offset` is served any more; segments wholly below it are
    /// dropped from the store at the next uploader pass.
    pub fn advance_log_start(&self, offset: i64) {
        let mut guard = self.manifest.write();
        if let Some(m) = guard.as_mut() {
            if offset > m.log_start_offset {
                let mut next = (**m).clone();
                next.log_start_offset = offset;
                *m = Arc::new(next);
                self.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Whole batches from `offset` (which must be remote), at most `max_bytes` (the first batch
    /// always whole), none at or past `upper_bound`. Stops at the end of the segment.
    pub async fn read(&self, offset: i64, max_bytes: usize, upper_bound: i64) -> Result<Bytes, TierError> {
        let result = async {
            let manifest = self
                .manifest()
                .ok_or_else(|| TierError::NotRemote { offset, reason: "remote manifest not loaded (object store unreachable?)".into() })?;
            let seg =
                manifest.segment_for(offset).ok_or_else(|| TierError::NotRemote { offset, reason: "no remote segment holds it".into() })?;
            remote_reader::read_batches(&self.tier, seg, offset, max_bytes, upper_bound).await
        }
        .await;
        if let Err(e) = &result {
            add(&self.tier.counters.remote_read_errors, 1);
            tracing::warn!(topic = %self.topic, partition = self.partition, offset, "remote read failed: {e}");
        }
        result
    }

    /// The earliest remote (offset, timestamp) whose batch max timestamp is `>= timestamp_ms`.
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, TierError> {
        let Some(manifest) = self.manifest() else { return Ok(None) };
        let lso = manifest.log_start_offset;
        for seg in manifest.segments.iter().filter(|s| s.max_timestamp >= timestamp_ms && s.next_offset > lso) {
            if let Some(found) = remote_reader::find_timestamp(&self.tier, seg, timestamp_ms, lso).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// (offset, timestamp) of the remote record with the largest timestamp.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let manifest = self.manifest()?;
        manifest.segments.iter().filter(|s| s.offset_of_max_timestamp >= manifest.log_start_offset).fold(
            None,
            |best: Option<(i64, i64)>, s| match best {
                Some((_, ts)) if ts >= s.max_timestamp => best,
                _ => Some((s.offset_of_max_timestamp, s.max_timestamp)),
            },
        )
    }
}
