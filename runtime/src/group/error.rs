//! [`GroupError`]: why the coordinator could not do something (storage, not protocol outcomes).
//!
//! Protocol outcomes (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, ...) are not errors of ours: they are
//! normal answers, returned as `kafka_protocol::ResponseError` inside results. `GroupError` is for
//! the coordinator's own failures: the offsets log could not be opened, read or written.

use std::path::PathBuf;

use crate::log::LogError;

/// A failure of the group coordinator itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The `__consumer_offsets-0` log could not be opened or recovered.
    #[error("cannot open the offsets log {path}: {source}")]
    OpenLog {
        /// The log directory.
        path: PathBuf,
        /// What the storage engine reported.
        source: LogError,
    },
    /// Reading the offsets log while loading committed offsets failed.
    #[error("cannot replay the offsets log {path} at offset {offset}: {source}")]
    Replay {
        /// The log directory.
        path: PathBuf,
        /// Where the read started.
        offset: i64,
        /// What the storage engine reported.
        source: LogError,
    },
    /// A record in the offsets log could not be parsed (written by a newer version, or damaged
    /// beyond what the CRC caught).
    #[error("offsets log {path}: undecodable record at offset {offset}: {reason}")]
    BadRecord {
        /// The log directory.
        path: PathBuf,
        /// The record's offset.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
    /// Appending or fsyncing commit records failed; the commit was not acknowledged.
    #[error("cannot write {records} record(s) for group {group} to the offsets log: {source}")]
    Write {
        /// The group whose records were being written.
        group: String,
        /// How many records.
        records: usize,
        /// What the storage engine reported.
        source: LogError,
    },
    /// Commit records could not be encoded as batches (past Kafka's i32 limits: the records are
    /// bounded, so this means a bug); nothing was written.
    #[error("cannot encode {records} record(s) for group {group} as batches: {reason}")]
    Encode {
        /// The group whose records were being encoded.
        group: String,
        /// How many records.
        records: usize,
        /// What the batch writer refused.
        reason: String,
    },
    /// The blocking storage task died (a panic inside the storage engine).
    #[error("offsets log task for group {group} failed: {reason}")]
    Task {
        /// The group whose records were being written.
        group: String,
        /// The join error.
        reason: String,
    },
    /// Compacting or rolling the offsets log failed (commits are unaffected until it recurs).
    #[error("offsets log maintenance failed: {source}")]
    Maintain {
        /// What the storage engine reported.
        source: LogError,
    },
    /// Closing the offsets log at shutdown failed.
    #[error("cannot close the offsets log: {source}")]
    Close {
        /// What the storage engine reported.
        source: LogError,
    },
}
