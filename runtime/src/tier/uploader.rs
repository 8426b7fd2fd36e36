//! The uploader: one pass per partition copies each closed, committed segment with its indexes
//! to the store, publishes the manifest naming it, and only then lets local retention delete
//! local segments — and only those a published manifest names. Failures back off and retry; the
//! local data stays until a later pass succeeds.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use uuid::Uuid;

use super::keys;
use super::manifest::RemoteSegment;
use super::remote_log::{RemoteLog, UPLOAD_BACKOFF_MAX_MS, UPLOAD_BACKOFF_MIN_MS};
use super::retention::{self, LocalSegment};
use super::stats::add;
use super::{Tier, TierError, MULTIPART_CONCURRENCY, MULTIPART_PART_BYTES};
use crate::log::{ClosedSegment, PartitionLog};

impl RemoteLog {
    /// One uploader pass: upload what is pending, publish, apply local and remote retention.
    /// Skipped while backing off after a failure; a failure is logged, counted and backed off.
    pub async fn run_pass(&self, log: &Arc<PartitionLog>, now_ms: i64) {
        let Ok(_pass) = self.pass.try_lock() else { return };
        if self.backoff.lock().next_attempt_ms > now_ms {
            return;
        }
        match self.pass_inner(log, now_ms).await {
            Ok(()) => *self.backoff.lock() = Default::default(),
            Err(e) => {
                add(&self.tier.counters.upload_failures, 1);
                let mut b = self.backoff.lock();
                b.failures = b.failures.saturating_add(1);
                let delay = UPLOAD_BACKOFF_MIN_MS.saturating_mul(1 << b.failures.min(16).saturating_sub(1)).min(UPLOAD_BACKOFF_MAX_MS);
                b.next_attempt_ms = now_ms + delay;
                tracing::warn!(topic = %self.topic, partition = self.partition, failures = b.failures, retry_in_ms = delay, "tiered storage pass failed: {e}");
            }
        }
    }

    async fn pass_inner(&self, log: &Arc<PartitionLog>, now_ms: i64) -> Result<(), TierError> {
        let mut manifest = match self.manifest() {
            Some(m) => m,
            None => self.load().await?,
        };
        let settings = self.settings();
        if settings.enabled {
            manifest = self.upload_pending(log, manifest).await?;
            self.delete_uploaded_locally(log, &manifest, now_ms).await?;
        }
        self.expire_remote(log, &manifest, now_ms).await
    }

    /// Uploads closed segments below the high watermark that the manifest does not have yet.
    async fn upload_pending(&self, log: &Arc<PartitionLog>, mut manifest: Arc<super::Manifest>) -> Result<Arc<super::Manifest>, TierError> {
        let hwm = log.high_watermark();
        let end = manifest.end_offset();
        let pending: Vec<ClosedSegment> = log
            .closed_segments()
            .into_iter()
            .filter(|s| s.next_offset <= hwm && s.size_bytes > 0 && end.is_none_or(|e| s.base_offset >= e))
            .collect();
        self.set_backlog(pending.len() as u64, pending.iter().map(|s| s.size_bytes).sum());
        if let (Some(e), Some(first)) = (end, pending.first()) {
            if first.base_offset != e {
                tracing::error!(topic = %self.topic, partition = self.partition, remote_end = e, local_next = first.base_offset,
                    "local log does not continue the remote one (records deleted while tiering was off?); not uploading");
                return Ok(manifest);
            }
        }
        let mut left = (pending.len() as u64, pending.iter().map(|s| s.size_bytes).sum::<u64>());
        for seg in pending {
            let remote = upload_segment(&self.tier, &self.dir, log, &seg).await?;
            let mut next = (*manifest).clone();
            if next.segments.is_empty() {
                next.log_start_offset = next.log_start_offset.max(seg.base_offset);
            }
            next.segments.push(remote);
            manifest = self.publish(next).await?;
            add(&self.tier.counters.segments_uploaded, 1);
            add(&self.tier.counters.bytes_uploaded, seg.size_bytes);
            left = (left.0 - 1, left.1 - seg.size_bytes);
            self.set_backlog(left.0, left.1);
            tracing::debug!(topic = %self.topic, partition = self.partition, base = seg.base_offset, bytes = seg.size_bytes, "segment uploaded");
        }
        Ok(manifest)
    }

    /// Deletes local segments past `local.retention.*` that the published manifest names.
    async fn delete_uploaded_locally(&self, log: &Arc<PartitionLog>, manifest: &super::Manifest, now_ms: i64) -> Result<(), TierError> {
        let Some(uploaded_end) = manifest.end_offset() else { return Ok(()) };
        let closed: Vec<LocalSegment> = log
            .closed_segments()
            .iter()
            .map(|s| LocalSegment { next_offset: s.next_offset, size_bytes: s.size_bytes, max_timestamp: s.max_timestamp })
            .collect();
        let Some((below, count)) = retention::local_delete_below(&closed, uploaded_end, log.size_bytes(), &self.settings(), now_ms) else {
            return Ok(());
        };
        let log = Arc::clone(log);
        tokio::task::spawn_blocking(move || log.delete_records_before(below))
            .await
            .map_err(|e| TierError::Task { reason: e.to_string() })?
            .map_err(|e| TierError::Task { reason: format!("delete local segments below {below}: {e}") })?;
        add(&self.tier.counters.local_segments_deleted, count as u64);
        tracing::debug!(topic = %self.topic, partition = self.partition, below, count, "uploaded local segments deleted");
        Ok(())
    }

    /// Drops expired remote segments: manifest first, objects after (a crash in between leaves
    /// unreferenced objects, never a manifest naming deleted ones).
    async fn expire_remote(&self, log: &Arc<PartitionLog>, manifest: &super::Manifest, now_ms: i64) -> Result<(), TierError> {
        let remote_end = manifest.end_offset().unwrap_or(i64::MIN);
        let local_only: u64 = log.closed_segments().iter().filter(|s| s.base_offset >= remote_end).map(|s| s.size_bytes).sum::<u64>()
            + log.size_bytes().saturating_sub(log.closed_segments().iter().map(|s| s.size_bytes).sum());
        let n = retention::remote_expired(manifest, local_only, &self.settings(), now_ms);
        let dirty = self.dirty.swap(false, Ordering::AcqRel);
        if n == 0 && !dirty {
            return Ok(());
        }
        let mut next = manifest.clone();
        let dropped: Vec<RemoteSegment> = next.segments.drain(..n).collect();
        if let Some(last) = dropped.last() {
            next.log_start_offset = next.log_start_offset.max(last.next_offset);
        }
        let published = match self.publish(next).await {
            Ok(m) => m,
            Err(e) => {
                self.dirty.store(dirty, Ordering::Release);
                return Err(e);
            }
        };
        for seg in &dropped {
            for key in [&seg.log_key, &seg.index_key, &seg.time_index_key] {
                let path = Path::from(key.as_str());
                if let Err(e) = self.tier.handle.store.delete(&path).await {
                    tracing::warn!(key = %path, "cannot delete an expired remote object (left as garbage): {e}");
                }
            }
        }
        add(&self.tier.counters.remote_segments_deleted, dropped.len() as u64);
        // Records that no longer exist remotely must not linger locally either.
        let start = published.log_start_offset;
        if start > log.log_start_offset() && start <= log.log_end_offset() {
            let log = Arc::clone(log);
            tokio::task::spawn_blocking(move || log.delete_records_before(start))
                .await
                .map_err(|e| TierError::Task { reason: e.to_string() })?
                .map_err(|e| TierError::Task { reason: format!("delete local records below {start}: {e}") })?;
        }
        Ok(())
    }

    fn set_backlog(&self, segments: u64, bytes: u64) {
        let counters = &self.tier.counters;
        let old_segments = self.backlog.0.swap(segments, Ordering::AcqRel);
        let old_bytes = self.backlog.1.swap(bytes, Ordering::AcqRel);
        counters.upload_backlog_segments.fetch_add(segments.wrapping_sub(old_segments), Ordering::Relaxed);
        counters.upload_backlog_bytes.fetch_add(bytes.wrapping_sub(old_bytes), Ordering::Relaxed);
    }
}

impl Drop for RemoteLog {
    fn drop(&mut self) {
        // Take this partition's share out of the broker-wide gauges.
        self.set_backlog(0, 0);
    }
}

/// Copies one closed segment and its two indexes to the store (not yet published).
pub(crate) async fn upload_segment(
    tier: &Tier,
    dir: &Path,
    log: &Arc<PartitionLog>,
    seg: &ClosedSegment,
) -> Result<RemoteSegment, TierError> {
    let upload_id = Uuid::new_v4();
    let key = |suffix: &str| dir.clone().join(keys::segment_object_name(seg.base_offset, upload_id, suffix));
    let (log_key, index_key, time_index_key) = (key("log"), key("index"), key("timeindex"));
    let (first_epoch, last_epoch) = leader_epochs(log, seg).await?;
    upload_log(tier, &log_key, seg).await?;
    for (path, key) in [(&seg.index_path, &index_key), (&seg.time_index_path, &time_index_key)] {
        let bytes = tokio::fs::read(path).await.map_err(|source| TierError::LocalIo { path: path.clone(), source })?;
        tier.handle.store.put(key, PutPayload::from(bytes)).await.map_err(|e| TierError::store("put", key, e))?;
    }
    Ok(RemoteSegment {
        base_offset: seg.base_offset,
        next_offset: seg.next_offset,
        size_bytes: seg.size_bytes,
        max_timestamp: seg.max_timestamp,
        offset_of_max_timestamp: seg.offset_of_max_timestamp,
        first_leader_epoch: first_epoch,
        last_leader_epoch: last_epoch,
        log_key: log_key.to_string(),
        index_key: index_key.to_string(),
        time_index_key: time_index_key.to_string(),
    })
}

/// The smallest and largest partition leader epoch of the segment's batches.
async fn leader_epochs(log: &Arc<PartitionLog>, seg: &ClosedSegment) -> Result<(i32, i32), TierError> {
    let (log, base, next, path) = (Arc::clone(log), seg.base_offset, seg.next_offset, seg.log_path.clone());
    let headers = tokio::task::spawn_blocking(move || log.batch_headers(base, next))
        .await
        .map_err(|e| TierError::Task { reason: e.to_string() })?
        .map_err(|e| TierError::LocalIo { path, source: std::io::Error::other(e.to_string()) })?;
    let first = headers.iter().map(|h| h.partition_leader_epoch).min().unwrap_or(-1);
    let last = headers.iter().map(|h| h.partition_leader_epoch).max().unwrap_or(-1);
    Ok((first, last))
}

/// Reads `len` bytes at `pos` of the segment file off the async threads.
async fn read_part(seg: &ClosedSegment, pos: u64, len: usize) -> Result<bytes::Bytes, TierError> {
    let (file, path) = (Arc::clone(&seg.file), seg.log_path.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, pos).map(|()| buf)
    })
    .await
    .map_err(|e| TierError::Task { reason: e.to_string() })?
    .map_err(|source| TierError::LocalIo { path, source })?;
    Ok(bytes::Bytes::from(bytes))
}

/// Uploads the `.log` bytes: one PUT, or a multipart upload for large segments.
async fn upload_log(tier: &Tier, key: &Path, seg: &ClosedSegment) -> Result<(), TierError> {
    let store = &tier.handle.store;
    if seg.size_bytes <= tier.multipart_threshold_bytes {
        let bytes = read_part(seg, 0, seg.size_bytes as usize).await?;
        store.put(key, PutPayload::from(bytes)).await.map_err(|e| TierError::store("put", key, e))?;
        return Ok(());
    }
    let upload = store.put_multipart(key).await.map_err(|e| TierError::store("start multipart", key, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_BYTES as usize);
    let mut pos = 0u64;
    while pos < seg.size_bytes {
        let len = (seg.size_bytes - pos).min(MULTIPART_PART_BYTES) as usize;
        let part = match read_part(seg, pos, len).await {
            Ok(p) => p,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = writer.wait_for_capacity(MULTIPART_CONCURRENCY).await {
            let _ = writer.abort().await;
            return Err(TierError::store("put part", key, e));
        }
        writer.put(part);
        pos += len as u64;
    }
    writer.finish().await.map_err(|e| TierError::store("complete multipart", key, e))?;
    Ok(())
}
