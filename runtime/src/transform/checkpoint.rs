//! The committed position of one runner (transform × input partition), in
//! `<data_dir>/transforms/<name>/partition-<p>.json`, replaced atomically after each batch's
//! outputs are durable.
//!
//! Besides the next input offset it holds the runner's idempotent producer id and, per output
//! partition, the next sequence number. Those make replay after a crash exactly-once: the runner
//! restarts from `next_offset` with the same producer id and sequences, the deterministic guest
//! regenerates byte-identical output batches, and the output partition's producer state
//! recognises any batch it already holds as a duplicate (see `runner` for the argument).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TransformError;

const CHECKPOINT_VERSION: u32 = 1;

/// A runner's durable position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// The idempotent producer id the runner writes outputs with (never reused: allocated from
    /// the broker's metadata-log-backed producer-id blocks).
    pub producer_id: i64,
    /// The next input offset to process.
    pub next_offset: i64,
    /// `"<topic>/<partition>"` → the sequence number of the next record written there.
    pub sequences: BTreeMap<String, i32>,
    /// The end (exclusive) of the batch being processed: set before its outputs are written,
    /// cleared when `next_offset` moves past it. A replay after a crash uses the same end.
    #[serde(default)]
    pub pending_end: Option<i64>,
    /// The error-policy decision for the batch ending at `pending_end`, stored with it after the
    /// guest ran and before any output is written; cleared with it. A replay follows it instead of
    /// deciding again (see `runner`: this is what makes the time limit deterministic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_decision: Option<Decision>,
    /// Stateful transforms: the first changelog offset of this runner's state (the changelog's
    /// end when the runner first ran; older records belong to an earlier transform).
    #[serde(default)]
    pub state_from: Option<i64>,
    /// Stateful transforms: the changelog's end after the last committed batch. Restores read
    /// `[state_from, state_end)`; changes past it belong to an uncommitted batch.
    #[serde(default)]
    pub state_end: Option<i64>,
}

/// How the guest's run of one batch ended, as far as it changes the outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The batch was run record by record (a batch-level failure was narrowed down). A replay
    /// runs it the same way, so per-call effects (a stateful guest's end-of-call output) match.
    pub isolated: bool,
    /// The records that failed, with the error text their dead-letter record carries.
    pub failed: Vec<FailedRecord>,
}

/// One record the error policy acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRecord {
    /// Its input offset.
    pub offset: i64,
    /// Why it failed.
    pub error: String,
}

impl Checkpoint {
    /// A fresh checkpoint.
    pub fn new(producer_id: i64, next_offset: i64) -> Self {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            producer_id,
            next_offset,
            sequences: BTreeMap::new(),
            pending_end: None,
            pending_decision: None,
            state_from: None,
            state_end: None,
        }
    }

    /// The checkpoint file of `partition` under a transform's directory.
    pub fn path(transform_dir: &Path, partition: i32) -> PathBuf {
        transform_dir.join(format!("partition-{partition}.json"))
    }

    /// Reads the checkpoint; `Ok(None)` if there is none yet.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, TransformError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TransformError::Io { op: "read", path: path.to_path_buf(), source }),
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| TransformError::Io {
            op: "parse checkpoint",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        if checkpoint.version != CHECKPOINT_VERSION {
            let e = std::io::Error::other(format!("checkpoint version {} is not supported", checkpoint.version));
            return Err(TransformError::Io { op: "parse checkpoint", path: path.to_path_buf(), source: e });
        }
        Ok(Some(checkpoint))
    }

    /// Writes it atomically (temp file, fsync, rename, fsync directory). Blocking.
    pub fn store(&self, path: &Path) -> Result<(), TransformError> {
        let bytes = serde_json::to_vec(self).map_err(|e| TransformError::Io {
            op: "encode checkpoint",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TransformError::Io { op: "create", path: dir.to_path_buf(), source })?;
        }
        crate::broker::fsutil::write_atomically(path, &bytes).map_err(TransformError::from)
    }

    /// The key of an output partition in `sequences`.
    pub fn key(topic: &str, partition: i32) -> String {
        format!("{topic}/{partition}")
    }
}
