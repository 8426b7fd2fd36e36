//! Errors of the partition log. Mapping to Kafka error codes happens in `protocol::error_code`.

use std::path::PathBuf;

/// Something the log could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, #[source] source: std::io::Error },
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
}
