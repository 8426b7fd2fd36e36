//! Broker state shared by every connection: topics and their partitions, the metadata log,
//! producer ids, and the consumer group coordinator.

use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;

/// The shared state of one broker node. Handlers receive `&Arc<Broker>`.
pub struct Broker {
    /// Resolved configuration.
    pub config: BrokerConfig,
    /// Consumer groups and committed offsets.
    pub groups: GroupCoordinator,
    _private: (),
}

impl Broker {
    /// Placeholder so the skeleton compiles; the broker layer replaces it.
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Arc<Broker>>();
}

/// Why the broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// Placeholder variant; the broker layer defines the real ones.
    #[error("{0}")]
    Other(String),
}

#[allow(unused_variables)]
impl Broker {
    /// Opens the data directory: replays the metadata log, opens (recovers) every partition,
    /// restores committed offsets.
    pub async fn open(config: BrokerConfig, addrs: &crate::serve::BoundAddrs) -> Result<Arc<Broker>, BrokerError> {
        todo!()
    }

    /// The cluster id, generated once and kept in the data directory.
    pub fn cluster_id(&self) -> &str {
        todo!()
    }

    /// Flushes and closes every log (clean-shutdown checkpoints).
    pub async fn shutdown(&self) -> Result<(), BrokerError> {
        todo!()
    }
}
