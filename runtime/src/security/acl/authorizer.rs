//! The ACL decision, with Kafka's `StandardAuthorizer` semantics:
//! 1. super-users may do everything;
//! 2. a DENY binding that matches the principal (or `User:*`), the host (or `*`) and the
//!    operation (or ALL) on a pattern covering the resource refuses, whatever allows it;
//! 3. an ALLOW binding that matches grants, where the binding's operation may also be one that
//!    implies the asked one (READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS implies
//!    DESCRIBE_CONFIGS) or ALL;
//! 4. when *no* binding at all covers the resource, `allow_everyone_if_no_acl_found` decides
//!    (Kafka's `allow.everyone.if.no.acl.found`, false by default here as there).

use std::net::IpAddr;

use super::index::AclIndex;
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

/// Decides one request against `bindings`: every binding, or any superset of those covering
/// the resource (the store passes [`AclIndex::covering`]'s; the tests pass whole sets).
pub fn decide<'b>(policy: &AuthorizerPolicy<'_>, bindings: impl IntoIterator<Item = &'b AclBinding>, request: &Request<'_>) -> bool {
    if policy.super_users.contains(request.principal) {
        return true;
    }
    let host = request.host.to_string();
    let mut covered = false;
    let mut allowed = false;
    for acl in bindings.into_iter().filter(|b| b.covers(request.resource_type, request.name)) {
        covered = true;
        let who = acl.principal == WILDCARD_PRINCIPAL || is_principal(&acl.principal, request.principal);
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

/// [`decide`] on the index: only the bindings covering the resource are read.
pub fn decide_indexed(policy: &AuthorizerPolicy<'_>, index: &AclIndex, request: &Request<'_>) -> bool {
    decide(policy, index.covering(request.resource_type, request.name), request)
}

/// Whether `text` is `principal` written as `Type:name`, without formatting it (checks run per
/// topic per request).
fn is_principal(text: &str, principal: &Principal) -> bool {
    text.split_once(':').is_some_and(|(kind, name)| kind == principal.kind && name == principal.name)
}

/// Whether some ALLOW binding lets `principal` from `host` perform `operation` on *some*
/// resource of `resource_type` not denied by a DENY on the same pattern (Kafka's
/// `authorizeByResourceType`, which InitProducerId uses: WRITE on any topic grants an
/// idempotent producer id). Simplified from Kafka: a DENY counts only when it names the very
/// pattern an ALLOW names.
pub fn allows_any<'b>(
    policy: &AuthorizerPolicy<'_>,
    bindings: impl IntoIterator<Item = &'b AclBinding>,
    principal: &Principal,
    host: IpAddr,
    operation: Operation,
    resource_type: ResourceType,
) -> bool {
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
    let (denied, allows): (Vec<&AclBinding>, Vec<&AclBinding>) =
        bindings.into_iter().filter(applies).partition(|a| a.permission == Permission::Deny);
    allows.into_iter().any(|allow| {
        !denied.iter().any(|d| {
            (d.pattern_type == allow.pattern_type && d.resource_name == allow.resource_name)
                || (d.pattern_type == super::model::PatternType::Literal && d.resource_name == WILDCARD)
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::security::acl::model::PatternType;

    fn acl(principal: &str, host: &str, op: Operation, perm: Permission, rt: ResourceType, name: &str, pattern: PatternType) -> AclBinding {
        AclBinding::from_wire(rt.code(), name, pattern.code(), principal, host, op.code(), perm.code()).unwrap()
    }

    fn ask(
        policy: &AuthorizerPolicy<'_>,
        set: &BTreeSet<AclBinding>,
        user: &str,
        host: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
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
        let set: BTreeSet<_> =
            [acl("User:alice", "*", O::Read, Allow, Topic, "*", Literal), acl("User:alice", "*", O::Read, Deny, Topic, "secret", Prefixed)]
                .into();
        assert!(ask(&policy, &set, "alice", LOCAL, O::Read, Topic, "public"));
        assert!(!ask(&policy, &set, "alice", LOCAL, O::Read, Topic, "secret-1"));
        assert!(ask(&policy, &set, "alice", LOCAL, O::Describe, Topic, "secret-1"), "READ allowed by * implies DESCRIBE");
        let set: BTreeSet<_> =
            [acl("User:alice", "*", O::Write, Allow, Topic, "t", Literal), acl("User:*", "*", O::All, Deny, Topic, "t", Literal)].into();
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

    /// Thousands of bindings (literal, wildcard, prefixed; users, `User:*`; hosts; allow and
    /// deny; every resource type): deterministic pseudo-random sets and questions.
    /// A question: user, host, operation, resource type, resource name.
    type Question = (String, String, Operation, ResourceType, String);

    fn many(count: usize, seed: u64) -> (BTreeSet<AclBinding>, Vec<Question>) {
        let mut x = seed;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let users = ["alice", "bob", "carol", "dave", "*"];
        let hosts = ["*", "10.0.0.1", "127.0.0.1"];
        let ops = [O::Read, O::Write, O::Describe, O::All, O::Delete, O::Alter, O::Create];
        let mut set = BTreeSet::new();
        while set.len() < count {
            let rt = [Topic, Topic, Topic, Group, Cluster][next(5) as usize];
            let pattern = if next(3) == 0 { Prefixed } else { Literal };
            let name = match (rt, pattern, next(50)) {
                (Cluster, _, _) => "kafka-cluster".to_string(),
                (_, Literal, 0) => "*".to_string(),
                (_, Literal, n) => format!("t{}-{}", n, next(200)),
                (_, Prefixed, n) => format!("t{}{}", n, if next(2) == 0 { "-" } else { "" }),
            };
            let pattern = if rt == Cluster { Literal } else { pattern };
            let op = ops[next(ops.len() as u64) as usize];
            if !op.applies_to(rt) {
                continue;
            }
            let perm = if next(8) == 0 { Deny } else { Allow };
            set.insert(acl(&format!("User:{}", users[next(5) as usize]), hosts[next(3) as usize], op, perm, rt, &name, pattern));
        }
        let mut questions = Vec::new();
        for _ in 0..2_000 {
            let rt = [Topic, Topic, Group, Cluster][next(4) as usize];
            let name = if rt == Cluster { "kafka-cluster".to_string() } else { format!("t{}-{}", next(60), next(250)) };
            let op = [O::Read, O::Write, O::Describe, O::Create, O::Delete][next(5) as usize];
            questions.push((users[next(4) as usize].to_string(), hosts[1 + next(2) as usize].to_string(), op, rt, name));
        }
        (set, questions)
    }

    /// With thousands of bindings the index decides exactly as the scan of every binding does,
    /// for both policies, before and after removing a third of them.
    #[test]
    fn index_decides_as_the_scan_with_thousands_of_acls() {
        let (set, questions) = many(5_000, 0x9e37_79b9_7f4a_7c15);
        let admins = [Principal::user("dave")];
        let mut index = AclIndex::new(set.clone());
        let mut set = set;
        let mut decided = [0usize; 2];
        for round in 0..2 {
            for open in [false, true] {
                let policy = AuthorizerPolicy { super_users: &admins, allow_everyone_if_no_acl_found: open };
                for (user, host, op, rt, name) in &questions {
                    let principal = Principal::user(user.as_str());
                    let request = Request { principal: &principal, host: host.parse().unwrap(), operation: *op, resource_type: *rt, name };
                    let scanned = decide(&policy, &set, &request);
                    assert_eq!(decide_indexed(&policy, &index, &request), scanned, "{request:?}");
                    decided[usize::from(scanned)] += 1;
                    let any = allows_any(&policy, &set, &principal, request.host, *op, *rt);
                    assert_eq!(allows_any(&policy, index.of_type(*rt), &principal, request.host, *op, *rt), any);
                }
            }
            if round == 0 {
                let doomed: Vec<AclBinding> = set.iter().step_by(3).cloned().collect();
                for b in &doomed {
                    assert!(index.remove(b) && set.remove(b));
                }
            }
        }
        // The questions exercise both answers (a test whose answers were all "no" would prove little).
        assert!(decided[0] > 500 && decided[1] > 500, "{decided:?}");
    }

    /// Checks per second, scanning every binding (the old path) and through the index, with
    /// 10,000 bindings: `cargo test --release -p sluice authorizer_checks_per_second -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: run by hand"]
    fn authorizer_checks_per_second() {
        let (set, questions) = many(10_000, 42);
        let index = AclIndex::new(set.clone());
        let policy = AuthorizerPolicy::default();
        let requests: Vec<(Principal, IpAddr, Operation, ResourceType, String)> =
            questions.into_iter().map(|(u, h, op, rt, name)| (Principal::user(u), h.parse().unwrap(), op, rt, name)).collect();
        let run = |indexed: bool, rounds: usize| {
            let start = std::time::Instant::now();
            let mut yes = 0usize;
            for _ in 0..rounds {
                for (principal, host, op, rt, name) in &requests {
                    let request = Request { principal, host: *host, operation: *op, resource_type: *rt, name };
                    yes += usize::from(if indexed { decide_indexed(&policy, &index, &request) } else { decide(&policy, &set, &request) });
                }
            }
            let checks = rounds * requests.len();
            (checks as f64 / start.elapsed().as_secs_f64(), yes)
        };
        let (scan, a) = run(false, 2);
        let (indexed, b) = run(true, 200);
        assert_eq!(a * 100, b);
        println!("10000 ACLs: scan {scan:.0} checks/s, index {indexed:.0} checks/s ({:.0}x)", indexed / scan);
    }
}
