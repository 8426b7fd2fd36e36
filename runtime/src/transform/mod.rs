//! WebAssembly transforms between topics: users' core modules (built with `sluice-sdk`) run
//! inside the broker from an input topic to output topics, exactly once, under hard memory and
//! time limits.
//!
//! # Layout
//! - `spec`: [`TransformSpec`], the JSON declaration (input, outputs, config, start position,
//!   partitioning, error policy, limits).
//! - `engine`: the shared wasmtime engine (pooling allocator, epoch ticker, compiled-code cache).
//! - `module`: deploy-time validation and compilation; one error per way a module can be wrong.
//! - `wasi`: the deterministic WASI subset a std guest needs (clock = record time, seeded
//!   randomness, captured stdout/stderr, nothing else).
//! - `instance`: one guest instance and its ABI calls (`sluice_abi` defines the ABI).
//! - `attempt`: one batch under retries, with failing records isolated.
//! - `records`: Kafka RecordBatch ↔ ABI records; murmur2 partitioning.
//! - `checkpoint`: a runner's committed position, producer id, sequences and state range.
//! - `state`: keyed state on the host side: the changelog topic and restoring an instance.
//! - `runner`: one task per input partition; the exactly-once argument is written there.
//! - `batch_output`: what a run batch writes: outputs resolved from its emissions, the
//!   changelog, one idempotent batch per output partition.
//! - `manager`: [`TransformManager`]: deploy, list, describe, pause, resume, reset, delete;
//!   persistence in the metadata log and the data directory; restart.
//! - `stats`: per-transform counters.
//! - `gate`: `parallelism`, the bound on a transform's batches in the guest at once.
//! - `failpoint`: test-only crash and time-limit injection (off unless an env var is set).
//! - `error`: [`TransformError`], [`GuestError`].

pub mod attempt;
mod batch_output;
mod checkpoint;
pub mod engine;
mod error;
pub mod failpoint;
pub mod gate;
pub mod instance;
mod manager;
pub mod module;
pub mod records;
mod runner;
pub mod spec;
pub mod state;
pub mod stats;
pub mod wasi;

pub use checkpoint::{Decision, FailedRecord};
pub use error::{GuestError, TransformError};
pub use manager::{PartitionStatus, ResetTo, TransformManager, TransformState, TransformStatus};
pub use runner::TRANSFORM_LOGS_TOPIC;
pub use spec::TransformSpec;
#[cfg(test)]
mod tests;
