//! Errors of the transform subsystem. Deploy-time problems name what is wrong with the module or
//! spec; run-time guest failures are [`GuestError`] and feed the transform's error policy.

/// Something a transform operation could not do.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    #[error("invalid transform spec: {field}: {reason}")]
    InvalidSpec { field: &'static str, reason: String },
    #[error("invalid module: {size} bytes is larger than the {max}-byte limit")]
    ModuleTooLarge { size: usize, max: usize },
    #[error("invalid module: not a WebAssembly core module: {reason}")]
    NotWasm { reason: String },
    #[error("invalid module: built for Sluice transform ABI v{found}, this broker speaks v1 to v{expected}")]
    AbiVersion { found: String, expected: u32 },
    #[error("invalid module: missing export `{name}` ({what}); build it with the sluice-sdk `transform!` macro")]
    MissingExport { name: &'static str, what: &'static str },
    #[error("invalid module: export `{name}` has type {found}, expected {expected}")]
    ExportType { name: &'static str, found: String, expected: &'static str },
    #[error("invalid module: imports `{module}::{name}`, which the transform sandbox does not provide (no files, no network)")]
    ForbiddenImport { module: String, name: String },
    #[error("invalid module: compilation failed: {reason}")]
    Compile { reason: String },
    #[error("transform rejected its config: {reason}")]
    Config { reason: String },
    #[error("transform {name} already exists")]
    Exists { name: String },
    #[error("unknown transform {name}")]
    Unknown { name: String },
    #[error("the transform engine could not start: {reason}")]
    Engine { reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error(transparent)]
    Guest(#[from] GuestError),
}

/// Why one guest call did not produce an output (the instance is discarded afterwards).
#[allow(missing_docs)] // each variant's doc and message say what its one field holds
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestError {
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access…).
    #[error("trapped: {reason}")]
    Trap { reason: String },
    /// The call ran past the per-batch time limit (epoch interruption).
    #[error("killed: ran longer than the {limit_ms} ms time limit per batch")]
    TimeLimit { limit_ms: u64 },
    /// The guest tried to grow its memory past the per-transform limit.
    #[error("killed: memory limit of {limit_bytes} bytes reached")]
    MemoryLimit { limit_bytes: u64 },
    /// The guest reported failure for the whole call, or returned a malformed buffer.
    #[error("failed: {reason}")]
    Failed { reason: String },
    /// The instance could not be created.
    #[error("cannot instantiate: {reason}")]
    Instantiate { reason: String },
    /// A new instance's state could not be restored from the changelog.
    #[error("cannot restore state: {reason}")]
    Restore { reason: String },
    /// Replaying a batch whose error-policy decision is stored: a record the first run
    /// accepted failed this time (it can only be the time limit, on a busier machine). The
    /// decision cannot change any more, so the batch is retried later rather than failed.
    #[error("replaying a decided batch: the record at offset {offset} failed ({reason}) although the first run accepted it; retrying")]
    ReplayDiverged { offset: i64, reason: String },
    /// The state grew past the transform's `state.bytes_max`.
    #[error("state size cap reached: {bytes} bytes of state, the cap (state.bytes_max) is {cap}")]
    StateCap { bytes: u64, cap: u64 },
}
