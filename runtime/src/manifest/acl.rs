//! The `Acl` kind: ACL bindings declared in a manifest, converted at the edge to the broker's
//! [`AclBinding`]s (one per listed operation) and planned against the broker's current set.
//!
//! ```yaml
//! apiVersion: sluice/v1
//! kind: Acl
//! metadata: {name: orders-readers}
//! spec:
//!   principal: User:alice
//!   resource: {type: topic, name: orders-, patternType: prefixed}   # patternType: literal by default
//!   operations: [read, describe]
//!   permission: allow            # or deny; allow by default
//!   host: "*"                    # an IP address, or * (the default)
//! ```
//!
//! Values are Kafka's names in any case, with `_` or `-` or camelCase between words
//! (`TRANSACTIONAL_ID`, `transactionalId`, `describe-configs`). A `cluster` resource's name is
//! `kafka-cluster` and may be left out. Each binding goes through the same validation as
//! CreateAcls, with the problem reported at the field it comes from.
//!
//! Apply creates the bindings the broker lacks and, when the stored document of the same name
//! declared others, deletes those it no longer declares; delete removes both. Bindings are a set
//! on the broker: two documents declaring the same binding share it, and deleting either
//! removes it.

use std::collections::BTreeSet;

use serde_yaml::Value;

use super::decode::{string, string_list, Ctx, Fields};
use super::locate::{At, FieldPath, Locator};
use crate::security::acl::model::{ACL_FIELD_BYTES_MAX, WILDCARD};
use crate::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::security::Principal;

/// Operations one document may list, at most (there are 11).
const OPERATIONS_MAX: usize = 16;

/// An `Acl` document's spec, after decoding: the bindings it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclDef {
    /// One binding per listed operation, all valid (CreateAcls' checks passed).
    pub bindings: BTreeSet<AclBinding>,
}

/// Lower case without `_`, `-` or spaces: `TRANSACTIONAL_ID`, `transactionalId` and
/// `transactional-id` all read `transactionalid`.
fn folded(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect()
}

fn parse_resource_type(s: &str) -> Option<ResourceType> {
    ResourceType::ALL.into_iter().find(|t| folded(t.name()) == folded(s))
}

fn parse_pattern_type(s: &str) -> Option<PatternType> {
    match folded(s).as_str() {
        "literal" => Some(PatternType::Literal),
        "prefixed" => Some(PatternType::Prefixed),
        _ => None,
    }
}

fn parse_operation(s: &str) -> Option<Operation> {
    (2..=12).filter_map(Operation::from_code).find(|o| folded(o.name()) == folded(s))
}

fn parse_permission(s: &str) -> Option<Permission> {
    match folded(s).as_str() {
        "allow" => Some(Permission::Allow),
        "deny" => Some(Permission::Deny),
        _ => None,
    }
}

/// A string field read through `parse`, or a problem listing what is accepted.
fn one_of<T>(ctx: &mut Ctx, got: Option<(&Value, FieldPath)>, parse: fn(&str) -> Option<T>, expected: &str) -> Option<T> {
    let path = got.as_ref().map(|(_, p)| p.clone())?;
    let text = string(ctx, got)?;
    let parsed = parse(&text);
    if parsed.is_none() {
        ctx.report(&path, At::Value, format!("unknown value {text:?}, expected one of: {expected}"));
    }
    parsed
}

/// A name, principal or host within CreateAcls' length bound.
fn bounded(ctx: &mut Ctx, path: &FieldPath, value: String) -> Option<String> {
    if value.is_empty() || value.len() > ACL_FIELD_BYTES_MAX {
        ctx.report(path, At::Value, format!("must be 1 to {ACL_FIELD_BYTES_MAX} bytes"));
        return None;
    }
    Some(value)
}

/// Decodes an `Acl` spec, reporting every problem at its field.
pub fn decode(ctx: &mut Ctx, v: &Value, path: FieldPath) -> Option<AclDef> {
    let f = Fields::new(ctx, v, path.clone(), &["principal", "resource", "operations", "permission", "host"])?;
    let got = f.required(ctx, "principal");
    let principal = string(ctx, got).and_then(|p| bounded(ctx, &path.key("principal"), p)).and_then(|p| {
        if Principal::parse(&p).is_none() {
            ctx.report(&path.key("principal"), At::Value, format!("{p:?} is not Type:name (User:alice, or User:* for everyone)"));
            return None;
        }
        Some(p)
    });
    let host = match f.get("host") {
        None => Some(WILDCARD.to_string()),
        Some(got) => string(ctx, Some(got)).and_then(|h| bounded(ctx, &path.key("host"), h)).and_then(|h| {
            if h != WILDCARD && h.parse::<std::net::IpAddr>().is_err() {
                ctx.report(&path.key("host"), At::Value, format!("{h:?} is neither * nor an IP address"));
                return None;
            }
            Some(h)
        }),
    };
    let permission = match f.get("permission") {
        None => Some(Permission::Allow),
        got => one_of(ctx, got, parse_permission, "allow, deny"),
    };
    let resource = f.required(ctx, "resource").and_then(|(v, p)| resource(ctx, v, p));
    let got = f.required(ctx, "operations");
    let ops_path = path.key("operations");
    let operations = string_list(ctx, got);
    let mut ops = Vec::new();
    let mut ok = operations.is_some();
    if let Some(operations) = &operations {
        if operations.is_empty() || operations.len() > OPERATIONS_MAX {
            ctx.report(&ops_path, At::Value, format!("needs 1 to {OPERATIONS_MAX} operations"));
            ok = false;
        }
        for (i, name) in operations.iter().enumerate() {
            let Some(op) = parse_operation(name) else {
                ok = false;
                let names: Vec<String> = (2..=12).filter_map(Operation::from_code).map(|o| o.name().to_lowercase()).collect();
                ctx.report(&ops_path.index(i), At::Value, format!("unknown operation {name:?}, expected one of: {}", names.join(", ")));
                continue;
            };
            match &resource {
                Some((rt, ..)) if !op.applies_to(*rt) => {
                    ok = false;
                    ctx.report(&ops_path.index(i), At::Value, format!("operation {} does not apply to {}", op.name(), rt.name()));
                }
                _ => ops.push(op),
            }
        }
    }
    let (principal, host, permission, (rt, name, pattern)) = (principal?, host?, permission?, resource?);
    let mut bindings = BTreeSet::new();
    for op in ops {
        match AclBinding::from_wire(rt.code(), &name, pattern.code(), &principal, &host, op.code(), permission.code()) {
            Ok(b) => {
                bindings.insert(b);
            }
            // Every rule CreateAcls applies was checked above at its field; this is the backstop
            // should the two ever drift apart.
            Err(e) => {
                ok = false;
                ctx.report(&path, At::Key, e.reason);
            }
        }
    }
    ok.then_some(AclDef { bindings })
}

fn resource(ctx: &mut Ctx, v: &Value, path: FieldPath) -> Option<(ResourceType, String, PatternType)> {
    let f = Fields::new(ctx, v, path.clone(), &["type", "name", "patternType"])?;
    let got = f.required(ctx, "type");
    let rt = one_of(ctx, got, parse_resource_type, "topic, group, cluster, transactionalId")?;
    let pattern = match f.get("patternType") {
        None => Some(PatternType::Literal),
        got => one_of(ctx, got, parse_pattern_type, "literal, prefixed"),
    };
    let name = match (rt, f.get("name")) {
        (ResourceType::Cluster, None) => Some(CLUSTER_RESOURCE_NAME.to_string()),
        (ResourceType::Cluster, Some(got)) => string(ctx, Some(got)).and_then(|n| {
            if n != CLUSTER_RESOURCE_NAME {
                ctx.report(&path.key("name"), At::Value, format!("the cluster's name is {CLUSTER_RESOURCE_NAME:?} (or leave it out)"));
                return None;
            }
            Some(n)
        }),
        (_, got) => {
            let got = got.or_else(|| f.required(ctx, "name"));
            string(ctx, got).and_then(|n| bounded(ctx, &path.key("name"), n))
        }
    };
    let (name, pattern) = (name?, pattern?);
    if pattern == PatternType::Prefixed && name == WILDCARD {
        ctx.report(&path.key("patternType"), At::Value, "a prefixed pattern of * is not allowed; use literal *");
        return None;
    }
    if rt == ResourceType::Cluster && pattern == PatternType::Prefixed {
        ctx.report(&path.key("patternType"), At::Value, "the cluster resource is literal");
        return None;
    }
    Some((rt, name, pattern))
}

/// The bindings a stored (previously applied) `Acl` document declared; `None` if it does not
/// decode (then only the new document's bindings are considered).
pub fn stored_bindings(document: &serde_json::Value) -> Option<BTreeSet<AclBinding>> {
    let value: Value = serde_yaml::to_value(document).ok()?;
    let spec = value.get("spec")?;
    let loc = Locator::build(&[]);
    let mut problems = Vec::new();
    let mut ctx = Ctx { file: "", loc: &loc, problems: &mut problems };
    let def = decode(&mut ctx, spec, FieldPath::default().key("spec"))?;
    problems.is_empty().then_some(def.bindings)
}

/// What apply changes for one `Acl` document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclChanges {
    /// Declared, not on the broker.
    pub create: Vec<AclBinding>,
    /// On the broker, declared by the stored document of this name but not by this one.
    pub delete: Vec<AclBinding>,
}

impl AclChanges {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }

    /// The changes in words, one per binding (`+ Allow User:alice READ on TOPIC "orders"`).
    pub fn describe(&self) -> Vec<String> {
        let line = |sign: char, b: &AclBinding| {
            let pattern = if b.pattern_type == PatternType::Prefixed { " (prefixed)" } else { "" };
            let host = if b.host == WILDCARD { String::new() } else { format!(" from {}", b.host) };
            format!(
                "{sign} {:?} {} {} on {} {:?}{pattern}{host}",
                b.permission,
                b.principal,
                b.operation.name(),
                b.resource_type.name(),
                b.resource_name
            )
        };
        self.create.iter().map(|b| line('+', b)).chain(self.delete.iter().map(|b| line('-', b))).collect()
    }
}

/// Apply's changes for `def`, given the broker's bindings and the stored document of the same
/// name (if any).
pub fn changes(def: &AclDef, current: &BTreeSet<AclBinding>, stored: Option<&serde_json::Value>) -> AclChanges {
    let create = def.bindings.iter().filter(|b| !current.contains(b)).cloned().collect();
    let before = stored.and_then(stored_bindings).unwrap_or_default();
    let delete = before.iter().filter(|b| !def.bindings.contains(b) && current.contains(b)).cloned().collect();
    AclChanges { create, delete }
}

/// What delete removes for `def`: its bindings and the stored document's, those on the broker.
pub fn removals(def: &AclDef, current: &BTreeSet<AclBinding>, stored: Option<&serde_json::Value>) -> Vec<AclBinding> {
    let before = stored.and_then(stored_bindings).unwrap_or_default();
    def.bindings.union(&before).filter(|b| current.contains(b)).cloned().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::load::{parse, Loaded};
    use crate::manifest::model::Object;

    fn load(text: &str) -> Loaded {
        let mut loaded = Loaded::default();
        parse("acl.yaml", Path::new("acl.yaml"), text, &mut loaded);
        loaded
    }

    fn def(text: &str) -> AclDef {
        let loaded = load(text);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        match &loaded.docs[0].doc.object {
            Object::Acl(d) => d.clone(),
            other => panic!("{other:?}"),
        }
    }

    const GOOD: &str = "\
apiVersion: sluice/v1
kind: Acl
metadata: {name: readers}
spec:
  principal: User:alice
  resource: {type: TOPIC, name: orders-, patternType: prefixed}
  operations: [read, Describe, DESCRIBE_CONFIGS]
";

    /// One binding per operation, Kafka's spellings in any case, defaults for host and
    /// permission.
    #[test]
    fn decodes_bindings() {
        let d = def(GOOD);
        let ops: Vec<Operation> = d.bindings.iter().map(|b| b.operation).collect();
        assert_eq!(ops, [Operation::Read, Operation::Describe, Operation::DescribeConfigs]);
        let b = d.bindings.first().unwrap();
        assert_eq!((b.resource_type, b.resource_name.as_str(), b.pattern_type), (ResourceType::Topic, "orders-", PatternType::Prefixed));
        assert_eq!((b.principal.as_str(), b.host.as_str(), b.permission), ("User:alice", "*", Permission::Allow));
        let cluster = def(&GOOD
            .replace("{type: TOPIC, name: orders-, patternType: prefixed}", "{type: cluster}")
            .replace("[read, Describe, DESCRIBE_CONFIGS]", "[alter]"));
        assert_eq!(cluster.bindings.first().unwrap().resource_name, CLUSTER_RESOURCE_NAME);
    }

    /// Every wrong value is reported at its own line, column and field.
    #[test]
    fn wrong_values_are_located() {
        let text = "\
apiVersion: sluice/v1
kind: Acl
metadata: {name: bad}
spec:
  principal: alice
  resource:
    type: topik
    name: x
  operations: [read, fly]
  permission: maybe
  host: example.com
  colour: red
";
        let problems: Vec<String> = load(text).problems.iter().map(ToString::to_string).collect();
        let want = [
            "acl.yaml:5:14: spec.principal: \"alice\" is not Type:name (User:alice, or User:* for everyone)",
            "acl.yaml:7:11: spec.resource.type: unknown value \"topik\", expected one of: topic, group, cluster, transactionalId",
            "acl.yaml:10:15: spec.permission: unknown value \"maybe\", expected one of: allow, deny",
            "acl.yaml:11:9: spec.host: \"example.com\" is neither * nor an IP address",
            "acl.yaml:12:3: spec.colour: unknown field `colour`, expected one of: principal, resource, operations, permission, host",
        ];
        for w in want {
            assert!(problems.iter().any(|p| p == w), "missing {w}\nin {problems:#?}");
        }
        assert!(
            problems.iter().any(|p| p.starts_with("acl.yaml:9:") && p.contains("spec.operations[1]: unknown operation \"fly\"")),
            "{problems:#?}"
        );

        let wrong_op = GOOD.replace("type: TOPIC", "type: group").replace("DESCRIBE_CONFIGS", "write");
        let problems: Vec<String> = load(&wrong_op).problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("spec.operations[2]: operation WRITE does not apply to GROUP"), "{problems:?}");
        let star = GOOD.replace("name: orders-", "name: '*'");
        let problems: Vec<String> = load(&star).problems.iter().map(ToString::to_string).collect();
        assert!(problems.len() == 1 && problems[0].contains("spec.resource.patternType: a prefixed pattern of *"), "{problems:?}");
        let missing = GOOD.replace("  operations: [read, Describe, DESCRIBE_CONFIGS]\n", "");
        let problems: Vec<String> = load(&missing).problems.iter().map(ToString::to_string).collect();
        assert!(problems.len() == 1 && problems[0].contains("spec.operations: missing field"), "{problems:?}");
    }

    /// Apply creates what is missing and removes what the stored version declared and this one
    /// no longer does; delete removes both; nothing else is touched.
    #[test]
    fn changes_and_removals() {
        let old = load(GOOD);
        let stored = old.docs[0].doc.raw.clone();
        let Object::Acl(old_def) = &old.docs[0].doc.object else { panic!() };
        let new_def = def(&GOOD.replace("[read, Describe, DESCRIBE_CONFIGS]", "[read, write]"));
        let mut current: BTreeSet<AclBinding> = old_def.bindings.clone();
        let unrelated = AclBinding::from_wire(3, "g", 3, "User:bob", "*", 3, 3).unwrap();
        current.insert(unrelated.clone());

        let c = changes(old_def, &current, Some(&stored));
        assert!(c.is_empty(), "{c:?}");
        let c = changes(&new_def, &current, Some(&stored));
        assert_eq!(c.create.iter().map(|b| b.operation).collect::<Vec<_>>(), [Operation::Write]);
        assert_eq!(c.delete.iter().map(|b| b.operation).collect::<Vec<_>>(), [Operation::Describe, Operation::DescribeConfigs]);
        assert_eq!(c.describe()[0], "+ Allow User:alice WRITE on TOPIC \"orders-\" (prefixed)");

        let gone = removals(&new_def, &current, Some(&stored));
        assert_eq!(gone.len(), 3, "{gone:?}");
        assert!(!gone.contains(&unrelated));
        assert!(removals(&new_def, &BTreeSet::new(), Some(&stored)).is_empty());
    }
}
