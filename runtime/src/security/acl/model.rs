//! ACLs in Kafka's model: a binding says that a principal, from a host, is allowed or denied an
//! operation on the resources a pattern names. The wire codes of every enum are Kafka's
//! (`org.apache.kafka.common.acl` / `resource`), so protocol handlers convert with `from_code` /
//! `code` and nothing else needs to know them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Kafka's literal wildcard: a literal resource name or a host matching everything.
pub const WILDCARD: &str = "*";
/// Kafka's wildcard principal (`User:*`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// Longest resource name, principal or host accepted in a binding (a bound on metadata record
/// size; Kafka has none but its topic names stop at 249 bytes).
pub const ACL_FIELD_BYTES_MAX: usize = 1024;

/// What kind of thing a binding protects.
#[allow(missing_docs)] // Kafka's names
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

impl ResourceType {
    /// Every type, for filters that match any.
    pub const ALL: [ResourceType; 4] = [ResourceType::Topic, ResourceType::Group, ResourceType::Cluster, ResourceType::TransactionalId];

    /// Kafka's `ResourceType` code.
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    /// The type for a code; `None` for ANY (1), UNKNOWN (0) and types we do not serve.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Kafka's spelling (`TOPIC`, …), for messages.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }
}

/// How a binding's resource name matches resource names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternType {
    /// The exact name, or every name when the name is `*`.
    Literal,
    /// Every name starting with the binding's name.
    Prefixed,
}

impl PatternType {
    /// Kafka's `PatternType` code.
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// The pattern type for a code; `None` for ANY (1), MATCH (2) and UNKNOWN (0).
    pub fn from_code(code: i8) -> Option<Self> {
        [PatternType::Literal, PatternType::Prefixed].into_iter().find(|p| p.code() == code)
    }
}

/// Kafka's ACL operations.
#[allow(missing_docs)] // Kafka's names
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Every operation (only in bindings; never asked for).
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    const EVERY: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];

    /// Kafka's `AclOperation` code.
    pub fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
        }
    }

    /// The operation for a code; `None` for ANY (1) and UNKNOWN (0).
    pub fn from_code(code: i8) -> Option<Self> {
        Self::EVERY.into_iter().find(|o| o.code() == code)
    }

    /// Kafka's spelling (`READ`, …), for messages.
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }

    /// The operations whose *allow* grants this one too (Kafka: READ, WRITE, DELETE and ALTER
    /// imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS). `ALL` implies everything and is
    /// handled by the matcher. A *deny* never spreads this way, as in Kafka.
    pub fn implied_by(self) -> &'static [Operation] {
        match self {
            Operation::Describe => &[Operation::Read, Operation::Write, Operation::Delete, Operation::Alter],
            Operation::DescribeConfigs => &[Operation::AlterConfigs],
            _ => &[],
        }
    }

    /// Which operations are valid on a resource type (Kafka refuses e.g. READ on the cluster).
    pub fn applies_to(self, resource: ResourceType) -> bool {
        use Operation as O;
        match resource {
            ResourceType::Topic => matches!(
                self,
                O::All | O::Read | O::Write | O::Create | O::Delete | O::Alter | O::Describe | O::DescribeConfigs | O::AlterConfigs
            ),
            ResourceType::Group => matches!(self, O::All | O::Read | O::Delete | O::Describe),
            ResourceType::Cluster => matches!(
                self,
                O::All | O::Create | O::Alter | O::Describe | O::ClusterAction | O::DescribeConfigs | O::AlterConfigs | O::IdempotentWrite
            ),
            ResourceType::TransactionalId => matches!(self, O::All | O::Write | O::Describe),
        }
    }
}

/// Allow or deny.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Deny,
    Allow,
}

impl Permission {
    /// Kafka's `AclPermissionType` code.
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    /// The permission for a code; `None` for ANY (1) and UNKNOWN (0).
    pub fn from_code(code: i8) -> Option<Self> {
        [Permission::Deny, Permission::Allow].into_iter().find(|p| p.code() == code)
    }
}

/// One ACL: "`principal` from `host` is `permission`ed `operation` on the `resource_type`
/// resources that `pattern_type` + `resource_name` match". Ordered so the store is a set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The name or prefix (`kafka-cluster` for the cluster, as Kafka).
    pub resource_name: String,
    /// Literal or prefixed.
    pub pattern_type: PatternType,
    /// `User:alice` or `User:*`.
    pub principal: String,
    /// An IP address as text, or `*`.
    pub host: String,
    /// The operation allowed or denied.
    pub operation: Operation,
    /// Allow or deny.
    pub permission: Permission,
}

/// Why a requested binding cannot be stored (Kafka answers INVALID_REQUEST).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ACL: {reason}")]
pub struct InvalidAcl {
    /// What is wrong, naming the field.
    pub reason: String,
}

impl AclBinding {
    /// Builds a binding from Kafka wire codes, refusing ANY/MATCH/UNKNOWN codes, an empty or
    /// oversized name, a principal that is not `Type:name`, a host that is neither `*` nor an
    /// IP address, and an operation the resource type does not have.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, InvalidAcl> {
        let invalid = |reason: String| InvalidAcl { reason };
        let resource_type = ResourceType::from_code(resource_type)
            .ok_or_else(|| invalid(format!("resource type {resource_type} is not TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID")))?;
        let pattern_type = PatternType::from_code(pattern_type)
            .ok_or_else(|| invalid(format!("pattern type {pattern_type} is not LITERAL or PREFIXED")))?;
        let operation =
            Operation::from_code(operation).ok_or_else(|| invalid(format!("operation {operation} is not a concrete operation")))?;
        let permission =
            Permission::from_code(permission).ok_or_else(|| invalid(format!("permission {permission} is not ALLOW or DENY")))?;
        for (field, value) in [("resource name", resource_name), ("principal", principal), ("host", host)] {
            if value.is_empty() || value.len() > ACL_FIELD_BYTES_MAX {
                return Err(invalid(format!("{field} must be 1 to {ACL_FIELD_BYTES_MAX} bytes")));
            }
        }
        if crate::security::Principal::parse(principal).is_none() {
            return Err(invalid(format!("principal {principal:?} is not Type:name")));
        }
        if host != WILDCARD && host.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(format!("host {host:?} is neither * nor an IP address")));
        }
        if pattern_type == PatternType::Prefixed && resource_name == WILDCARD {
            return Err(invalid("a PREFIXED pattern of * is not allowed; use LITERAL *".into()));
        }
        if !operation.applies_to(resource_type) {
            return Err(invalid(format!("operation {} does not apply to {}", operation.name(), resource_type.name())));
        }
        Ok(AclBinding {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }

    /// Whether this binding's pattern covers the resource `name`.
    pub fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} {} on {} {:?} {} ({:?})",
            self.permission,
            self.principal,
            self.operation.name(),
            self.resource_type.name(),
            self.resource_name,
            self.host,
            self.pattern_type
        )
    }
}

/// A DescribeAcls / DeleteAcls filter: each `None` matches anything. A `pattern` of
/// [`PatternFilter::Match`] selects the bindings that would apply to the named resource
/// (literal, wildcard and prefixed), as Kafka's MATCH does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclFilter {
    /// `None`: ANY.
    pub resource_type: Option<ResourceType>,
    /// `None`: any name.
    pub resource_name: Option<String>,
    /// How `resource_name` is compared.
    pub pattern: PatternFilter,
    /// `None`: any principal.
    pub principal: Option<String>,
    /// `None`: any host.
    pub host: Option<String>,
    /// `None`: ANY.
    pub operation: Option<Operation>,
    /// `None`: ANY.
    pub permission: Option<Permission>,
}

/// How a filter compares pattern types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatternFilter {
    /// Any pattern type, names compared exactly.
    #[default]
    Any,
    /// Bindings whose pattern covers the filter's resource name.
    Match,
    /// Exactly this pattern type, names compared exactly.
    Exact(PatternType),
}

/// Kafka's codes for ANY in every enum of a filter.
const ANY: i8 = 1;
/// Kafka's PatternType.MATCH.
const MATCH: i8 = 2;

impl AclFilter {
    /// Builds a filter from wire codes (1 = ANY); unknown codes are refused.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, InvalidAcl> {
        let invalid = |what: &str, code: i8| InvalidAcl { reason: format!("{what} code {code} is not valid in a filter") };
        let resource_type = match resource_type {
            ANY => None,
            code => Some(ResourceType::from_code(code).ok_or_else(|| invalid("resource type", code))?),
        };
        let pattern = match pattern_type {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            code => PatternFilter::Exact(PatternType::from_code(code).ok_or_else(|| invalid("pattern type", code))?),
        };
        let operation = match operation {
            ANY => None,
            code => Some(Operation::from_code(code).ok_or_else(|| invalid("operation", code))?),
        };
        let permission = match permission {
            ANY => None,
            code => Some(Permission::from_code(code).ok_or_else(|| invalid("permission", code))?),
        };
        Ok(AclFilter {
            resource_type,
            resource_name: resource_name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Whether `acl` passes this filter.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if self.resource_type.is_some_and(|t| t != acl.resource_type)
            || self.operation.is_some_and(|o| o != acl.operation)
            || self.permission.is_some_and(|p| p != acl.permission)
            || !same(&self.principal, &acl.principal)
            || !same(&self.host, &acl.host)
        {
            return false;
        }
        match self.pattern {
            PatternFilter::Any => same(&self.resource_name, &acl.resource_name),
            PatternFilter::Exact(p) => p == acl.pattern_type && same(&self.resource_name, &acl.resource_name),
            PatternFilter::Match => match &self.resource_name {
                None => true,
                Some(name) => acl.covers(acl.resource_type, name),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn topic_acl(name: &str, pattern: PatternType) -> AclBinding {
        AclBinding::from_wire(2, name, pattern.code(), "User:alice", "*", 3, 3).unwrap()
    }

    /// Literal, literal wildcard and prefixed patterns cover what Kafka's do.
    #[test]
    fn patterns_cover_names() {
        assert!(topic_acl("orders", PatternType::Literal).covers(ResourceType::Topic, "orders"));
        assert!(!topic_acl("orders", PatternType::Literal).covers(ResourceType::Topic, "orders-eu"));
        assert!(topic_acl("*", PatternType::Literal).covers(ResourceType::Topic, "anything"));
        assert!(topic_acl("ord", PatternType::Prefixed).covers(ResourceType::Topic, "orders-eu"));
        assert!(!topic_acl("ord", PatternType::Prefixed).covers(ResourceType::Topic, "xord"));
        assert!(!topic_acl("orders", PatternType::Literal).covers(ResourceType::Group, "orders"));
    }

    /// Bad codes, hosts, principals and operations are refused with the field named.
    #[test]
    fn invalid_bindings_are_refused() {
        let bad = |r: Result<AclBinding, InvalidAcl>, word: &str| {
            let e = r.unwrap_err();
            assert!(e.reason.contains(word), "{e}");
        };
        bad(AclBinding::from_wire(1, "t", 3, "User:a", "*", 3, 3), "resource type");
        bad(AclBinding::from_wire(2, "t", 2, "User:a", "*", 3, 3), "pattern");
        bad(AclBinding::from_wire(2, "t", 3, "alice", "*", 3, 3), "principal");
        bad(AclBinding::from_wire(2, "t", 3, "User:a", "example.com", 3, 3), "host");
        bad(AclBinding::from_wire(2, "t", 3, "User:a", "*", 1, 3), "operation");
        bad(AclBinding::from_wire(4, "kafka-cluster", 3, "User:a", "*", 3, 3), "does not apply");
        bad(AclBinding::from_wire(2, "", 3, "User:a", "*", 3, 3), "resource name");
        assert!(AclBinding::from_wire(2, "t", 3, "User:a", "10.0.0.1", 3, 2).is_ok());
    }

    /// Filters: ANY fields, exact pattern types and MATCH.
    #[test]
    fn filters() {
        let literal = topic_acl("orders", PatternType::Literal);
        let prefixed = topic_acl("ord", PatternType::Prefixed);
        let any = AclFilter::from_wire(1, None, 1, None, None, 1, 1).unwrap();
        assert!(any.matches(&literal) && any.matches(&prefixed));
        let exact = AclFilter::from_wire(2, Some("orders"), 3, None, None, 1, 1).unwrap();
        assert!(exact.matches(&literal) && !exact.matches(&prefixed));
        let matching = AclFilter::from_wire(2, Some("orders"), 2, None, None, 1, 1).unwrap();
        assert!(matching.matches(&literal) && matching.matches(&prefixed));
        let other_user = AclFilter::from_wire(1, None, 1, Some("User:bob"), None, 1, 1).unwrap();
        assert!(!other_user.matches(&literal));
        assert!(AclFilter::from_wire(9, None, 1, None, None, 1, 1).is_err());
    }
}
