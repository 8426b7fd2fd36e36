//! Consumer groups: membership, generations, rebalances, and durable committed offsets.
//!
//! API CONTRACT (shared with the broker layer): `GroupCoordinator::open` (blocking: it replays the
//! offsets log; call it from `spawn_blocking` or before serving), `GroupCoordinator::shutdown`
//! (async), and `GroupCoordinator::maintain` (blocking; call it from the periodic log maintenance
//! loop so the offsets log gets compacted).

use std::path::Path;

use crate::config::BrokerConfig;

mod error;

pub use error::GroupError;

/// Coordinates every consumer group on this broker.
pub struct GroupCoordinator {
    _private: (),
}

impl GroupCoordinator {
    /// Opens (or creates) `<data_dir>/__consumer_offsets-0` and replays it, restoring every
    /// committed offset. Blocking: file I/O.
    pub fn open(data_dir: &Path, config: &BrokerConfig) -> Result<Self, GroupError> {
        let _ = (data_dir, config);
        Ok(Self { _private: () })
    }

    /// Fails every parked JoinGroup/SyncGroup with COORDINATOR_NOT_AVAILABLE (clients will
    /// retry elsewhere), stops timers, and closes the offsets log cleanly.
    pub async fn shutdown(&self) -> Result<(), GroupError> {
        Ok(())
    }

    /// Compacts the offsets log (and applies offset retention). Blocking; call periodically.
    pub fn maintain(&self, now_ms: i64) -> Result<(), GroupError> {
        let _ = now_ms;
        Ok(())
    }
}
