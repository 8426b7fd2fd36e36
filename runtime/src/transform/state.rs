//! The host side of keyed state (ABI v2): the changelog topic, and bringing a fresh instance
//! back to the committed state.
//!
//! # Where state lives, and why it is exactly-once
//! A stateful guest keeps its state in its own memory (no per-record host calls). After each
//! batch it reports its net changes; the runner writes them to the compacted changelog topic
//! `_sluice_state.<transform>` (partition = input partition, key = state key, value = state
//! bytes, null = deleted) with the runner's idempotent producer id and checkpointed sequence,
//! like any output, before the checkpoint advances. The checkpoint records the changelog range
//! that holds committed state: `state_from` (the changelog's end when the runner first started,
//! so leftovers of an earlier transform of the same name are never read) and `state_end` (the
//! changelog's end after the last committed batch).
//!
//! A new instance (start, restart after `kill -9`, or a guest failure) is restored from
//! `[state_from, state_end)` before its first batch. A batch interrupted by a crash may already
//! have its changes in the log past `state_end`; they are not restored, the batch is replayed
//! on the committed state, regenerates the same changes (the guest is deterministic) with the
//! same producer id and sequence, and the log drops them as duplicates. Compaction cannot remove
//! a committed record in favour of such an uncommitted one first: it only reads closed segments,
//! the uncommitted changes are the log's newest records, and the replay happens before anything
//! else is appended to the partition.
//!
//! Only the runner of partition p writes changelog partition p (it is an internal topic).

use std::sync::Arc;

use bytes::Bytes;
use sluice_abi::{StateCommand, StateOp};

use super::instance::Guest;
use super::records;
use super::GuestError;
use crate::broker::Partition;

/// Changelog topics are named `<prefix><transform name>`.
pub const CHANGELOG_PREFIX: &str = "_sluice_state.";
/// Bytes read from the changelog per restore command (one guest call each).
pub const RESTORE_READ_BYTES: usize = 4 << 20;

/// The changelog topic of transform `name`.
pub fn changelog_topic(name: &str) -> String {
    format!("{CHANGELOG_PREFIX}{name}")
}

/// What a restore read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Changelog records applied.
    pub records: u64,
    /// Milliseconds it took.
    pub millis: u64,
}

/// One runner's durable state: its changelog partition and the committed range.
pub struct StateLog {
    /// Changelog partition (same number as the input partition).
    pub partition: Arc<Partition>,
    /// First changelog offset of this runner's state.
    pub from: i64,
    /// End (exclusive) of the committed state in the changelog.
    pub end: i64,
    /// Changes the live instance holds as committed but the changelog does not have yet (the
    /// per-record isolation path commits record by record); a re-created instance gets them too.
    pub pending: Vec<StateOp>,
}

impl StateLog {
    /// Brings a fresh instance to the committed state: the changelog's `[from, end)`, then
    /// `pending`. Blocking. A failure is [`GuestError::Restore`]: the runner stops rather than
    /// run records on state it could not rebuild.
    pub fn restore(&self, guest: &mut Guest) -> Result<RestoreStats, GuestError> {
        let started = std::time::Instant::now();
        let fail = |reason: String| GuestError::Restore { reason };
        let name = format!("{}-{}", self.partition.topic, self.partition.index);
        let mut stats = RestoreStats::default();
        let mut offset = self.from;
        while offset < self.end {
            let read = self.partition.read(offset, RESTORE_READ_BYTES).map_err(|e| fail(format!("reading changelog {name} at {offset}: {e}")))?;
            let next = batches_end(&read.records).map_err(|e| fail(format!("changelog {name} at {offset}: {e}")))?;
            let (found, _) = records::decode(read.records, offset, self.end).map_err(|e| fail(format!("changelog {name} at {offset}: {e}")))?;
            let Some(next) = next.filter(|n| *n > offset) else {
                return Err(fail(format!("changelog {name} ends at {offset}, before the checkpoint's state end {} (was the topic deleted or truncated?)", self.end)));
            };
            let ops: Vec<StateOp> = found
                .into_iter()
                .filter_map(|r| {
                    let key = r.key?;
                    Some(match r.value {
                        Some(value) => StateOp::Put { key, value },
                        None => StateOp::Delete { key },
                    })
                })
                .collect();
            stats.records += ops.len() as u64;
            guest.state_command(&StateCommand::Restore(ops)).map_err(|e| fail(format!("restoring from {name}: {e}")))?;
            offset = next;
        }
        if !self.pending.is_empty() {
            guest.state_command(&StateCommand::Restore(self.pending.clone())).map_err(|e| fail(format!("restoring the batch in progress: {e}")))?;
        }
        stats.millis = started.elapsed().as_millis() as u64;
        Ok(stats)
    }
}

/// The offset after the last batch in `bytes` (whole batches), walking headers only.
fn batches_end(bytes: &Bytes) -> Result<Option<i64>, String> {
    let mut at = 0;
    let mut end = None;
    while at < bytes.len() {
        let (header, size) = crate::log::batch_header(&bytes[at..])?;
        end = Some(header.base_offset + i64::from(header.last_offset_delta) + 1);
        at += size.max(1);
    }
    Ok(end)
}

/// Encodes a batch's state changes as changelog records (key = state key, null value =
/// deleted), timestamped with the batch's last record time (deterministic on replay).
pub fn changelog_records(ops: &[StateOp], timestamp: i64) -> Vec<records::OutRecord> {
    ops.iter()
        .map(|op| match op {
            StateOp::Put { key, value } => records::OutRecord { key: Some(key.clone()), value: Some(value.clone()), headers: Vec::new(), timestamp },
            StateOp::Delete { key } => records::OutRecord { key: Some(key.clone()), value: None, headers: Vec::new(), timestamp },
        })
        .collect()
}
