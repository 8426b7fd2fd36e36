//! Consumer groups: membership, generations, rebalances, and durable committed offsets.

/// Coordinates every consumer group on this broker.
pub struct GroupCoordinator {
    _private: (),
}
