//! What apply (or delete) would do: the desired documents against the broker's current state.
//! Pure: the caller fetches the state and reads the wasm files; the executor carries the steps
//! out.

use std::collections::{BTreeMap, BTreeSet};

use super::error::Problem;
use super::load::Located;
use super::locate::{At, FieldPath};
use super::model::{Document, Kind, Object};
use crate::security::acl::AclBinding;
use crate::transform::TransformSpec;

/// A topic as the broker has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentTopic {
    /// Partition count.
    pub partitions: i32,
    /// Config overrides (non-default values).
    pub configs: BTreeMap<String, String>,
}

/// A transform as the broker has it.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentTransform {
    /// The deployed spec.
    pub spec: TransformSpec,
    /// Hex SHA-256 of the deployed module.
    pub module_sha256: String,
}

/// The broker's state, as far as manifests care.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Topics by name.
    pub topics: BTreeMap<String, CurrentTopic>,
    /// Transforms by name.
    pub transforms: BTreeMap<String, CurrentTransform>,
    /// Stored manifest documents by `Kind/name` (`Pipeline/logs`).
    pub manifests: BTreeMap<String, serde_json::Value>,
    /// Every ACL binding.
    pub acls: BTreeSet<AclBinding>,
}

impl Current {
    /// Names of existing topics (for reference checks).
    pub fn topic_names(&self) -> BTreeSet<String> {
        self.topics.keys().cloned().collect()
    }
}

/// The key a stored manifest is kept under: `Kind/name`.
pub fn store_key(kind: Kind, name: &str) -> String {
    format!("{}/{name}", kind.as_str())
}

/// What apply does to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It does not exist: create it.
    Create,
    /// It differs: these changes, in words.
    Update(Vec<String>),
    /// Nothing to do.
    Unchanged,
}

/// One step of an apply plan.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    /// The desired object.
    pub doc: &'a Document,
    /// What to do.
    pub action: Action,
}

impl Step<'_> {
    /// `topic/x created` (or `would be created` for diff).
    pub fn describe(&self, dry_run: bool) -> String {
        let verb = |done: &str| if dry_run { format!("would be {done}") } else { done.to_string() };
        match &self.action {
            Action::Create => format!("{} {}", self.doc.id(), verb("created")),
            Action::Update(changes) => format!("{} {} ({})", self.doc.id(), verb("updated"), changes.join("; ")),
            Action::Unchanged => format!("{} unchanged", self.doc.id()),
        }
    }
}

/// Plans apply: topics, then transforms, then pipelines (the order the executor follows).
/// `module_sha256` holds each transform's module hash, read by the caller. A change apply cannot
/// make (shrinking a topic) is a problem, and then nothing is applied.
pub fn apply<'a>(docs: &'a [Located], current: &Current, module_sha256: &BTreeMap<String, String>) -> Result<Vec<Step<'a>>, Vec<Problem>> {
    let mut steps = Vec::new();
    let mut problems = Vec::new();
    for kind in Kind::ALL {
        for l in docs.iter().filter(|l| l.doc.object.kind() == kind) {
            let doc = &l.doc;
            let action = match &doc.object {
                Object::Topic(t) => match current.topics.get(&doc.name) {
                    None => Action::Create,
                    Some(now) => {
                        if t.partitions < now.partitions {
                            let path = FieldPath::default().key("spec").key("partitions");
                            let pos = l.loc.find(&path, At::Value);
                            let message = format!("topic {} has {} partitions; partitions can only grow", doc.name, now.partitions);
                            problems.push(Problem {
                                file: doc.origin.file.clone(),
                                line: pos.line,
                                column: pos.column,
                                path: path.to_string(),
                                message,
                            });
                            continue;
                        }
                        let mut changes = Vec::new();
                        if t.partitions > now.partitions {
                            changes.push(format!("partitions {} -> {}", now.partitions, t.partitions));
                        }
                        changes.extend(config_changes(&now.configs, &t.configs));
                        if changes.is_empty() {
                            Action::Unchanged
                        } else {
                            Action::Update(changes)
                        }
                    }
                },
                Object::Transform(t) => match current.transforms.get(&doc.name) {
                    None => Action::Create,
                    Some(now) => {
                        let mut changes = Vec::new();
                        if let Some(sha) = module_sha256.get(&doc.name).filter(|sha| **sha != now.module_sha256) {
                            changes.push(format!("module {} -> {}", short(&now.module_sha256), short(sha)));
                        }
                        changes.extend(spec_changes(&now.spec, &t.spec));
                        if changes.is_empty() {
                            Action::Unchanged
                        } else {
                            Action::Update(changes)
                        }
                    }
                },
                Object::Acl(a) => {
                    let stored = current.manifests.get(&store_key(kind, &doc.name));
                    let changes = super::acl::changes(a, &current.acls, stored);
                    if changes.is_empty() {
                        Action::Unchanged
                    } else if stored.is_none() && changes.create.len() == a.bindings.len() {
                        Action::Create
                    } else {
                        Action::Update(changes.describe())
                    }
                }
                Object::Pipeline(_) => match current.manifests.get(&store_key(kind, &doc.name)) {
                    None => Action::Create,
                    Some(stored) if *stored == doc.raw => Action::Unchanged,
                    Some(_) => Action::Update(vec!["manifest changed".into()]),
                },
            };
            steps.push(Step { doc, action });
        }
    }
    if problems.is_empty() {
        Ok(steps)
    } else {
        Err(problems)
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Config differences; keys absent from the manifest are reset to the default.
fn config_changes(now: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = now.keys().chain(want.keys()).collect();
    let mut changes = Vec::new();
    for key in keys {
        match (now.get(key), want.get(key)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => changes.push(format!("{key} {a} -> {b}")),
            (None, Some(b)) => changes.push(format!("{key} (default) -> {b}")),
            (Some(a), None) => changes.push(format!("{key} {a} -> (default)")),
            (None, None) => {}
        }
    }
    changes
}

/// The spec's top-level fields that differ, by name.
fn spec_changes(now: &TransformSpec, want: &TransformSpec) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(now), serde_json::to_value(want))
    else {
        return if now == want { Vec::new() } else { vec!["spec changed".into()] };
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(|k| format!("{k} changed")).collect()
}

/// What delete does to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// It exists: delete it.
    Delete,
    /// It does not exist.
    Absent,
    /// A topic, kept because `--include-topics` was not given.
    Kept,
}

/// Plans delete: transforms first (so none writes to a topic being deleted), then pipelines,
/// then ACLs, then topics (only with `include_topics`).
pub fn delete<'a>(docs: &'a [Located], current: &Current, include_topics: bool) -> Vec<(&'a Document, Removal)> {
    let mut out = Vec::new();
    for kind in [Kind::Transform, Kind::Pipeline, Kind::Acl, Kind::Topic] {
        for l in docs.iter().filter(|l| l.doc.object.kind() == kind) {
            let exists = match &l.doc.object {
                Object::Acl(a) => {
                    let stored = current.manifests.get(&store_key(kind, &l.doc.name));
                    stored.is_some() || !super::acl::removals(a, &current.acls, stored).is_empty()
                }
                _ => match kind {
                    Kind::Topic => current.topics.contains_key(&l.doc.name),
                    Kind::Transform => current.transforms.contains_key(&l.doc.name),
                    Kind::Pipeline | Kind::Acl => current.manifests.contains_key(&store_key(kind, &l.doc.name)),
                },
            };
            let removal = match (exists, kind) {
                (false, _) => Removal::Absent,
                (true, Kind::Topic) if !include_topics => Removal::Kept,
                (true, _) => Removal::Delete,
            };
            out.push((&l.doc, removal));
        }
    }
    out
}
