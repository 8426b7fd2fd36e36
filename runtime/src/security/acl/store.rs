//! The in-memory set of ACLs the authorizer reads. The broker publishes a change here only after
//! the metadata log has made it durable (`broker::acls`), so what is enforced never runs ahead of
//! what survives a crash.

use std::collections::BTreeSet;

use parking_lot::RwLock;

use super::index::AclIndex;
use super::model::{AclBinding, AclFilter};

/// Every ACL, as a set (creating an existing binding is a no-op, as in Kafka), indexed for the
/// authorizer.
#[derive(Debug, Default)]
pub struct AclStore {
    bindings: RwLock<AclIndex>,
}

impl AclStore {
    /// A store holding `bindings` (replayed from the metadata log).
    pub fn new(bindings: BTreeSet<AclBinding>) -> Self {
        AclStore { bindings: RwLock::new(AclIndex::new(bindings)) }
    }

    /// Whether `binding` is stored.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bindings.read().set().contains(binding)
    }

    /// The bindings that pass `filter`, in order.
    pub fn matching(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.bindings.read().set().iter().filter(|b| filter.matches(b)).cloned().collect()
    }

    /// Runs `f` over the indexed bindings under one read lock (the authorizer's hot path: no
    /// copies).
    pub fn with_index<T>(&self, f: impl FnOnce(&AclIndex) -> T) -> T {
        f(&self.bindings.read())
    }

    /// Adds a binding (already durable).
    pub fn insert(&self, binding: AclBinding) {
        self.bindings.write().insert(binding);
    }

    /// Removes a binding (its deletion already durable).
    pub fn remove(&self, binding: &AclBinding) -> bool {
        self.bindings.write().remove(binding)
    }

    /// How many bindings there are.
    pub fn len(&self) -> usize {
        self.bindings.read().set().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
