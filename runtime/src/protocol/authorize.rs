//! The authorization seam: every check of "may this principal do this" goes through this file,
//! so handlers name an operation and a resource and never see ACLs.
//!
//! Two policies, chosen by config `authorizer` (Kafka's `authorizer.class.name`, empty by
//! default):
//! - **off** (default): super-users may do everything; everyone else may do everything except
//!   manage SCRAM credentials (ALTER/DESCRIBE on the cluster) when the broker has a SASL
//!   listener. The ACL APIs answer SECURITY_DISABLED, as Kafka's do without an authorizer.
//! - **on**: ACLs in Kafka's model decide (`security::acl::authorizer`): super-users bypass,
//!   deny wins, implied operations, and `allow_everyone_if_no_acl_found` (default false) for
//!   resources no ACL covers.

use std::net::IpAddr;
use std::sync::Arc;

use crate::broker::{Broker, BrokerError};
use crate::protocol::RequestContext;
use crate::security::acl::{authorizer, AuthorizerPolicy, CLUSTER_RESOURCE_NAME};
pub use crate::security::acl::{Operation, ResourceType};
use crate::security::Principal;

/// A resource an operation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// The cluster itself (`kafka-cluster` in ACLs).
    Cluster,
    /// A topic by name.
    Topic(&'a str),
    /// A consumer group by id.
    Group(&'a str),
    /// A transactional id.
    TransactionalId(&'a str),
}

impl Resource<'_> {
    fn parts(&self) -> (ResourceType, &str) {
        match *self {
            Resource::Cluster => (ResourceType::Cluster, CLUSTER_RESOURCE_NAME),
            Resource::Topic(name) => (ResourceType::Topic, name),
            Resource::Group(name) => (ResourceType::Group, name),
            Resource::TransactionalId(name) => (ResourceType::TransactionalId, name),
        }
    }
}

/// Whether ACLs are enforced on this broker.
pub fn authorizer_enabled(broker: &Broker) -> bool {
    broker.config.authorizer
}

/// Whether the request's principal, from its peer address, may perform `operation` on
/// `resource`; `Err` names who was refused what (and maps to the right Kafka code).
pub fn authorize(broker: &Arc<Broker>, ctx: &RequestContext, operation: Operation, resource: Resource<'_>) -> Result<(), BrokerError> {
    check(broker, &ctx.principal, ctx.peer.ip(), operation, resource)
}

/// [`authorize`] as a yes/no (for filtering lists such as Metadata's topics).
pub fn allowed(broker: &Arc<Broker>, ctx: &RequestContext, operation: Operation, resource: Resource<'_>) -> bool {
    check(broker, &ctx.principal, ctx.peer.ip(), operation, resource).is_ok()
}

/// The error for a refusal already decided (e.g. by [`allowed`] over a list).
pub fn denied(ctx: &RequestContext, operation: Operation, resource: Resource<'_>) -> BrokerError {
    refusal(&ctx.principal, operation, resource)
}

fn refusal(principal: &Principal, operation: Operation, resource: Resource<'_>) -> BrokerError {
    let (resource_type, name) = resource.parts();
    BrokerError::AuthorizationFailed {
        principal: principal.to_string(),
        operation: operation.name(),
        resource_type,
        name: name.to_string(),
    }
}

/// The check itself, for callers without a Kafka request (the admin HTTP API).
pub fn check(
    broker: &Broker,
    principal: &Principal,
    host: IpAddr,
    operation: Operation,
    resource: Resource<'_>,
) -> Result<(), BrokerError> {
    let (resource_type, name) = resource.parts();
    let refused = || refusal(principal, operation, resource);
    let config = &broker.config;
    if !config.authorizer {
        if config.super_users.contains(principal) {
            return Ok(());
        }
        let credential_management = resource_type == ResourceType::Cluster && matches!(operation, Operation::Alter | Operation::Describe);
        let has_sasl = config.listeners.iter().any(|l| l.security_protocol.uses_sasl());
        return if credential_management && has_sasl { Err(refused()) } else { Ok(()) };
    }
    let policy = policy(broker);
    let request = authorizer::Request { principal, host, operation, resource_type, name };
    if broker.acls().with_index(|index| authorizer::decide_indexed(&policy, index, &request)) {
        Ok(())
    } else {
        tracing::debug!(%principal, %host, operation = operation.name(), resource = resource_type.name(), name, "authorization refused");
        Err(refused())
    }
}

/// Whether the principal may perform `operation` on *some* resource of `resource_type` (Kafka's
/// `authorizeByResourceType`; InitProducerId accepts WRITE on any topic).
pub fn allowed_on_any(broker: &Arc<Broker>, ctx: &RequestContext, operation: Operation, resource_type: ResourceType) -> bool {
    if !broker.config.authorizer {
        return true;
    }
    let policy = policy(broker);
    broker.acls().with_index(|index| {
        authorizer::allows_any(&policy, index.of_type(resource_type), &ctx.principal, ctx.peer.ip(), operation, resource_type)
    })
}

/// Whether the principal may create topic `name` (CREATE on the cluster or on the topic, as in
/// Kafka); auto-creation asks this too.
pub fn may_create_topic(broker: &Arc<Broker>, ctx: &RequestContext, name: &str) -> bool {
    create_topic_rule(|op, resource| authorize(broker, ctx, op, resource), name).is_ok()
}

/// Kafka's rule for creating topic `name`, in one place for every caller: CREATE on the
/// cluster, or else CREATE on the topic (whose refusal is the one returned). `check` asks for
/// the caller's principal: a Kafka request's, or the admin API's.
pub fn create_topic_rule(check: impl Fn(Operation, Resource<'_>) -> Result<(), BrokerError>, name: &str) -> Result<(), BrokerError> {
    check(Operation::Create, Resource::Cluster).or_else(|_| check(Operation::Create, Resource::Topic(name)))
}

/// Kafka's `authorized_operations` bit set: bit `code` for each of `operations` the principal may
/// perform on `resource` (DescribeGroups, Metadata when asked for them).
pub fn authorized_operations(broker: &Arc<Broker>, ctx: &RequestContext, resource: Resource<'_>, operations: &[Operation]) -> i32 {
    operations.iter().filter(|op| allowed(broker, ctx, **op, resource)).fold(0, |bits, op| bits | (1 << op.code()))
}

/// The operations a topic has (for [`authorized_operations`]).
pub const TOPIC_OPERATIONS: [Operation; 8] = [
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];
/// The operations a group has.
pub const GROUP_OPERATIONS: [Operation; 3] = [Operation::Read, Operation::Delete, Operation::Describe];
/// The operations the cluster has.
pub const CLUSTER_OPERATIONS: [Operation; 7] = [
    Operation::Create,
    Operation::Alter,
    Operation::Describe,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
];

fn policy(broker: &Broker) -> AuthorizerPolicy<'_> {
    AuthorizerPolicy {
        super_users: &broker.config.super_users,
        allow_everyone_if_no_acl_found: broker.config.allow_everyone_if_no_acl_found,
    }
}
