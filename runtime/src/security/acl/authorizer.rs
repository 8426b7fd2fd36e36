//! The ACL decision, with Kafka's `StandardAuthorizer` semantics:
//! 1. super-users may do everything;
//! 2. a DENY binding that matches the principal (or `User:*`), the host (or `*`) and the
//!    operation (or ALL) on a pattern covering the resource refuses, whatever allows it;
//! 3. an ALLOW binding that matches grants, where the binding's operation may also be one that
//!    implies the asked one (READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS implies
//!    DESCRIBE_CONFIGS) or ALL;
//! 4. when *no* binding at all covers the resource, `allow_everyone_if_no_acl_found` decides
//!    (Kafka's `allow.everyone.if.no.acl.found`, false by default here as there).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::model::{AclBinding, Operation, Permission, ResourceType, WILDCARD, WILDCARD_PRINCIPAL};
use crate::security::Principal;

/// What the authorizer knows besides the bindings.
/// (Borrowed from the config: one is built per check.)
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizerPolicy<'a> {
    /// Principals that bypass ACLs.
    pub super_users: &'a [Principal],
    /// Allow when no binding covers the resource.
    pub allow_everyone_if_no_acl_found: bool,
}

/// One question: may `principal` from `host` perform `operation` on `resource_type` `name`?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// From where.
    pub host: IpAddr,
    /// What.
    pub operation: Operation,
    /// On which kind of resource.
    pub resource_type: ResourceType,
    /// On which resource (`kafka-cluster` for the cluster).
    pub name: &'a str,
}

/// Decides one request against `bindings`.
pub fn decide(policy: &AuthorizerPolicy<'_>, bindings: &BTreeSet<AclBinding>, request: &Request<'_>) -> bool {
    if policy.super_users.contains(request.principal) {
        return true;
    }
    let principal = request.principal.to_string();
    let host = request.host.to_string();
    let mut covered = false;
    let mut allowed = false;
    for acl in bindings.iter().filter(|b| b.covers(request.resource_type, request.name)) {
        covered = true;
        let who = acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL;
        let from = acl.host == WILDCARD || acl.host == host;
        if !(who && from) {
            continue;
        }
        match acl.permission {
            Permission::Deny if acl.operation == request.operation || acl.operation == Operation::All => return false,
            Permission::Deny => {}
            Permission::Allow => {
                allowed |= acl.operation == request.operation
                    || acl.operation == Operation::All
                    || request.operation.implied_by().contains(&acl.operation);
            }
        }
    }
    allowed || (!covered && policy.allow_everyone_if_no_acl_found)
}

/// Whether some ALLOW binding lets `principal` from `host` perform `operation` on *some*
/// resource of `resource_type` not denied by a DENY on the same pattern (Kafka's
/// `authorizeByResourceType`, which InitProducerId uses: WRITE on any topic grants an
/// idempotent producer id). Simplified from Kafka: a DENY counts only when it names the very
/// pattern an ALLOW names.
pub fn allows_any(policy: &AuthorizerPolicy<'_>, bindings: &BTreeSet<AclBinding>, principal: &Principal, host: IpAddr, operation: Operation, resource_type: ResourceType) -> bool {
    if policy.super_users.contains(principal) {
        return true;
    }
    let (principal, host) = (principal.to_string(), host.to_string());
    let applies = |acl: &&AclBinding| {
        acl.resource_type == resource_type
            && (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
            && (acl.host == WILDCARD || acl.host == host)
            && (acl.operation == operation || acl.operation == Operation::All)
    };
    let denied: Vec<&AclBinding> = bindings.iter().filter(applies).filter(|a| a.permission == Permission::Deny).collect();
    bindings.iter().filter(applies).filter(|a| a.permission == Permission::Allow).any(|allow| {
        !denied.iter().any(|d| {
            (d.pattern_type == allow.pattern_type && d.resource_name == allow.resource_name)
                || (d.pattern_type == super::model::PatternType::Literal && d.resource_name == WILDCARD)
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::security::acl::model::PatternType;

    fn acl(principal: &str, host: &str, op: Operation, perm: Permission, rt: ResourceType, name: &str, pattern: PatternType) -> AclBinding {
        AclBinding::from_wire(rt.code(), name, pattern.code(), principal, host, op.code(), perm.code()).unwrap()
    }

    fn ask(policy: &AuthorizerPolicy<'_>, set: &BTreeSet<AclBinding>, user: &str, host: &str, op: Operation, rt: ResourceType, name: &str) -> bool {
        let principal = Principal::user(user);
        decide(policy, set, &Request { principal: &principal, host: host.parse().unwrap(), operation: op, resource_type: rt, name })
    }

    const LOCAL: &str = "127.0.0.1";
    use Operation as O;
    use PatternType::{Literal, Prefixed};
    use Permission::{Allow, Deny};
    use ResourceType::{Cluster, Group, Topic};

    /// Without bindings everything is refused unless allow_everyone_if_no_acl_found.
    #[test]
    fn no_acl_found() {
        let set = BTreeSet::new();
        let strict = AuthorizerPolicy::default();
        assert!(!ask(&strict, &set, "alice", LOCAL, O::Read, Topic, "t"));
        let open = AuthorizerPolicy { allow_everyone_if_no_acl_found: true, ..Default::default() };
        assert!(ask(&open, &set, "alice", LOCAL, O::Read, Topic, "t"));
        // Once any binding covers the resource, the open policy no longer applies to it.
        let set: BTreeSet<_> = [acl("User:bob", "*", O::Read, Allow, Topic, "t", Literal)].into();
        assert!(!ask(&open, &set, "alice", LOCAL, O::Read, Topic, "t"));
        assert!(ask(&open, &set, "alice", LOCAL, O::Read, Topic, "other"));
    }

    /// Super-users bypass even a DENY.
    #[test]
    fn super_users_bypass() {
        let set: BTreeSet<_> = [acl("User:*", "*", O::All, Deny, Topic, "*", Literal)].into();
        let admins = [Principal::user("admin")];
        let policy = AuthorizerPolicy { super_users: &admins, ..Default::default() };
        assert!(ask(&policy, &set, "admin", LOCAL, O::Write, Topic, "t"));
        assert!(!ask(&policy, &set, "alice", LOCAL, O::Write, Topic, "t"));
    }

    /// DENY wins over ALLOW, from any pattern; a DENY of READ does not deny DESCRIBE.
    #[test]
    fn deny_wins() {
        let policy = AuthorizerPolicy::default();
        let set: BTreeSet<_> = [
            acl("User:alice", "*", O::Read, Allow, Topic, "*", Literal),
            acl("User:alice", "*", O::Read, Deny, Topic, "secret", Prefixed),
        ]
        .into();
        assert!(ask(&policy, &set, "alice", LOCAL, O::Read, Topic, "public"));
        assert!(!ask(&policy, &set, "alice", LOCAL, O::Read, Topic, "secret-1"));
        assert!(ask(&policy, &set, "alice", LOCAL, O::Describe, Topic, "secret-1"), "READ allowed by * implies DESCRIBE");
        let set: BTreeSet<_> = [acl("User:alice", "*", O::Write, Allow, Topic, "t", Literal), acl("User:*", "*", O::All, Deny, Topic, "t", Literal)].into();
        assert!(!ask(&policy, &set, "alice", LOCAL, O::Write, Topic, "t"));
    }

    /// Implied operations: READ/WRITE/DELETE/ALTER give DESCRIBE; ALTER_CONFIGS gives
    /// DESCRIBE_CONFIGS; ALL gives everything; nothing else spreads.
    #[test]
    fn implications() {
        let policy = AuthorizerPolicy::default();
        for op in [O::Read, O::Write, O::Delete, O::Alter] {
            let set: BTreeSet<_> = [acl("User:alice", "*", op, Allow, Topic, "t", Literal)].into();
            assert!(ask(&policy, &set, "alice", LOCAL, O::Describe, Topic, "t"), "{op:?}");
            assert!(!ask(&policy, &set, "alice", LOCAL, O::Create, Topic, "t"), "{op:?}");
        }
        let set: BTreeSet<_> = [acl("User:alice", "*", O::AlterConfigs, Allow, Topic, "t", Literal)].into();
        assert!(ask(&policy, &set, "alice", LOCAL, O::DescribeConfigs, Topic, "t"));
        assert!(!ask(&policy, &set, "alice", LOCAL, O::Describe, Topic, "t"));
        let set: BTreeSet<_> = [acl("User:alice", "*", O::All, Allow, Group, "g", Literal)].into();
        assert!(ask(&policy, &set, "alice", LOCAL, O::Read, Group, "g"));
        assert!(ask(&policy, &set, "alice", LOCAL, O::Delete, Group, "g"));
    }

    /// Hosts and principals: exact or wildcard.
    #[test]
    fn hosts_and_principals() {
        let policy = AuthorizerPolicy::default();
        let set: BTreeSet<_> = [
            acl("User:alice", "10.0.0.1", O::Read, Allow, Topic, "t", Literal),
            acl("User:*", "*", O::Describe, Allow, Cluster, "kafka-cluster", Literal),
        ]
        .into();
        assert!(ask(&policy, &set, "alice", "10.0.0.1", O::Read, Topic, "t"));
        assert!(!ask(&policy, &set, "alice", LOCAL, O::Read, Topic, "t"));
        assert!(!ask(&policy, &set, "bob", "10.0.0.1", O::Read, Topic, "t"));
        assert!(ask(&policy, &set, "bob", LOCAL, O::Describe, Cluster, "kafka-cluster"));
    }

    /// WRITE on any topic grants an idempotent producer id, unless denied on the same pattern.
    #[test]
    fn allows_any_topic() {
        let policy = AuthorizerPolicy::default();
        let alice = Principal::user("alice");
        let host: IpAddr = LOCAL.parse().unwrap();
        let set: BTreeSet<_> = [acl("User:alice", "*", O::Write, Allow, Topic, "out", Prefixed)].into();
        assert!(allows_any(&policy, &set, &alice, host, O::Write, Topic));
        assert!(!allows_any(&policy, &set, &Principal::user("bob"), host, O::Write, Topic));
        let mut denied = set.clone();
        denied.insert(acl("User:alice", "*", O::Write, Deny, Topic, "out", Prefixed));
        assert!(!allows_any(&policy, &denied, &alice, host, O::Write, Topic));
    }
}
