//! Authorization: Kafka's ACL model, the set of ACLs in force, and the decision.
//!
//! # Layout
//! - `model`: [`AclBinding`] (resource type, name, pattern, principal, host, operation,
//!   permission), [`AclFilter`] for DescribeAcls/DeleteAcls, Kafka's wire codes.
//! - `index`: [`AclIndex`], the bindings by resource type, literal name and prefix, so a
//!   check reads only the bindings that can cover its resource.
//! - `store`: [`AclStore`], the published bindings (the broker records them in the metadata log
//!   first; see `broker::acls`).
//! - `authorizer`: [`authorizer::decide`], Kafka's semantics (deny wins, implied operations,
//!   super-users, `allow_everyone_if_no_acl_found`).
//!
//! Architecture Invariant: nothing here knows the Kafka wire format or the broker; handlers ask
//! through `protocol::authorize`, the one seam.

pub mod authorizer;
pub mod index;
pub mod model;
pub mod store;

pub use authorizer::{AuthorizerPolicy, Request};
pub use index::AclIndex;
pub use model::{AclBinding, AclFilter, InvalidAcl, Operation, PatternFilter, PatternType, Permission, ResourceType};
pub use store::AclStore;

/// The resource name Kafka gives the cluster in ACLs.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
