//! Errors of tiered storage. Mapping to Kafka error codes happens in `protocol::error_code`.

/// Something tiered storage could not do, with the object or partition it concerns.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields are named for what they hold; each variant's message shows them
#[non_exhaustive]
pub enum TierError {
    /// The object store URL cannot be used.
    #[error("object store {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// A call to the object store failed (unreachable, refused, missing object...).
    #[error("object store {op} {key}: {source}")]
    Store {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// A remote object exists but its bytes are not what the manifest promised.
    #[error("remote object {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    /// A remote manifest or topic descriptor cannot be decoded.
    #[error("remote manifest {key}: {reason}")]
    BadManifest { key: String, reason: String },
    /// The offset is below the local log but no remote segment holds it (the manifest is not
    /// loaded yet because the store was unreachable, or the range was deleted meanwhile).
    #[error("offset {offset} is not in the remote manifest: {reason}")]
    NotRemote { offset: i64, reason: String },
    /// A local file could not be read for upload.
    #[error("read {path} for upload: {source}")]
    LocalIo {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Asynchronous store work could not be run.
    #[error("tier task: {reason}")]
    Task { reason: String },
}

impl TierError {
    /// Wraps an object store error with the operation and key.
    pub fn store(op: &'static str, key: &object_store::path::Path, source: object_store::Error) -> Self {
        TierError::Store { op, key: key.to_string(), source }
    }

    /// Whether the object is missing (as opposed to the store being unreachable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, TierError::Store { source: object_store::Error::NotFound { .. }, .. })
    }
}
