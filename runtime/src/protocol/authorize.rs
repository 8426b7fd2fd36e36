//! The authorization seam: every check of "may this principal do this" goes through
//! [`authorize`], so ACLs (Kafka's model: principal, resource, pattern, operation, allow/deny)
//! can replace the policy below without touching the handlers.
//!
//! Today's policy, until ACLs exist: super-users (config `super_users`, plus the SASL bootstrap
//! user) may do everything; everyone else may do everything except manage SCRAM credentials
//! (Alter/Describe on the cluster), unless the broker has no SASL listener at all, where the
//! credentials guard nothing and any client may manage them.

use std::sync::Arc;

use crate::broker::{Broker, BrokerError};
use crate::security::Principal;

/// Kafka's ACL operations (those the handlers ask about so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Change cluster-level state (e.g. SCRAM credentials).
    Alter,
    /// Read cluster-level state (e.g. which users have credentials).
    Describe,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Alter => "ALTER the cluster",
            Operation::Describe => "DESCRIBE the cluster",
        }
    }
}

/// A resource an operation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The cluster itself.
    Cluster,
}

/// Whether `principal` may perform `operation` on `resource`; `Err` names who was refused what.
pub fn authorize(broker: &Arc<Broker>, principal: &Principal, operation: Operation, resource: Resource) -> Result<(), BrokerError> {
    let config = &broker.config;
    if config.super_users.contains(principal) {
        return Ok(());
    }
    let Resource::Cluster = resource;
    let has_sasl = config.listeners.iter().any(|l| l.security_protocol.uses_sasl());
    if !has_sasl {
        return Ok(());
    }
    Err(BrokerError::ClusterAuthorizationFailed { principal: principal.to_string(), operation: operation.name() })
}
