//! Errors of the partition log. Mapping to Kafka error codes happens in `protocol::error_code`.

use std::path::PathBuf;

/// Something the log could not do.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields are named for what they hold; each variant's message shows them
#[non_exhaustive]
pub enum LogError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A batch from a producer failed validation.
    #[error("corrupt batch at byte {position}: {reason}")]
    CorruptBatch { position: usize, reason: String },
    /// A batch is larger than `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    BatchTooLarge { size: usize, max: u32 },
    /// A read asked for an offset outside `[log start, log end]`.
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    /// An earlier fsync failed; the log refuses writes until reopened.
    #[error("log {path} refuses writes after a failed fsync: {reason}")]
    Poisoned { path: PathBuf, reason: String },
    /// The disk (or quota) is full. The append that hit it wrote nothing (its partial bytes were
    /// cut off again); the log is not poisoned and accepts writes once space is freed. The broker
    /// maps it to KAFKA_STORAGE_ERROR like [`LogError::Poisoned`].
    #[error("{op} {path}: no space left: {source}")]
    StorageFull {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    /// Wraps an I/O error with the operation and path; a full disk or exhausted quota becomes
    /// [`LogError::StorageFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> LogError {
        let path = path.into();
        if is_storage_full(&source) {
            LogError::StorageFull { op, path, source }
        } else {
            LogError::Io { op, path, source }
        }
    }
}

/// ENOSPC or EDQUOT: the write may succeed later, once space is freed.
pub(crate) fn is_storage_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}
