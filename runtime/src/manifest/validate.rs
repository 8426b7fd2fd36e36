//! Checks across documents, once each document decoded: duplicate names, topic references that
//! are neither declared nor on the broker, pipeline members, and cycles in the transform graph.

use std::collections::{BTreeMap, BTreeSet};

use super::error::Problem;
use super::load::{Header, Located};
use super::locate::{At, FieldPath};
use super::model::{Kind, Object};

fn problem(l: &Located, path: &FieldPath, at: At, message: String) -> Problem {
    let pos = l.loc.find(path, at);
    Problem { file: l.doc.origin.file.clone(), line: pos.line, column: pos.column, path: path.to_string(), message }
}

fn name_path() -> FieldPath {
    FieldPath::default().key("metadata").key("name")
}

/// Every cross-document problem; `headers` name every document (also those that did not
/// decode), `existing_topics` are the broker's topics.
pub fn check(docs: &[Located], headers: &[Header], existing_topics: &BTreeSet<String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut first: BTreeMap<(Kind, &str), &Header> = BTreeMap::new();
    for h in headers {
        let key = (h.kind, h.name.as_str());
        if let Some(earlier) = first.get(&key) {
            let message = format!(
                "duplicate {} {:?} (first declared at {}:{}:{})",
                h.kind.as_str(),
                h.name,
                earlier.file,
                earlier.at.line,
                earlier.at.column
            );
            problems.push(Problem { file: h.file.clone(), line: h.at.line, column: h.at.column, path: name_path().to_string(), message });
        } else {
            first.insert(key, h);
        }
    }
    let declared = |kind: Kind, name: &str| first.contains_key(&(kind, name));
    let topic_known = |name: &str| declared(Kind::Topic, name) || existing_topics.contains(name);
    let spec = FieldPath::default().key("spec");
    for l in docs {
        match &l.doc.object {
            Object::Topic(_) => {
                if let Err(e) = crate::broker::validate_topic_name(&l.doc.name) {
                    problems.push(problem(l, &name_path(), At::Value, e.to_string()));
                }
            }
            Object::Transform(t) => {
                if !topic_known(&t.spec.input) {
                    problems.push(problem(l, &spec.key("input"), At::Value, unknown_topic(&t.spec.input)));
                }
                for (i, out) in t.outputs.iter().enumerate() {
                    if !topic_known(out) {
                        problems.push(problem(l, &spec.key("outputs").index(i), At::Value, unknown_topic(out)));
                    }
                }
            }
            Object::Acl(_) => {
                // Stored under its name after its bindings are made: refuse a bad name first.
                if let Err(e) = crate::broker::validate_topic_name(&l.doc.name) {
                    problems.push(problem(l, &name_path(), At::Value, e.to_string()));
                }
            }
            Object::Pipeline(p) => {
                for (i, topic) in p.topics.iter().enumerate() {
                    if !topic_known(topic) {
                        problems.push(problem(l, &spec.key("topics").index(i), At::Value, unknown_topic(topic)));
                    }
                }
                for (i, transform) in p.transforms.iter().enumerate() {
                    if !declared(Kind::Transform, transform) {
                        problems.push(problem(
                            l,
                            &spec.key("transforms").index(i),
                            At::Value,
                            format!("transform {transform:?} is not declared in these manifests"),
                        ));
                    }
                }
            }
        }
    }
    problems.extend(cycles(docs));
    problems
}

fn unknown_topic(name: &str) -> String {
    format!("topic {name:?} neither exists on the broker nor is declared (add a Topic document)")
}

/// One problem per cycle in the graph topic →(transform)→ topic, located at a pipeline whose
/// transforms contain the cycle, else at the first transform's `spec.input`.
fn cycles(docs: &[Located]) -> Vec<Problem> {
    // Edges by source topic: (transform, target topic, document).
    let mut edges: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    let mut by_transform: BTreeMap<&str, &Located> = BTreeMap::new();
    for l in docs {
        if let Object::Transform(t) = &l.doc.object {
            by_transform.entry(l.doc.name.as_str()).or_insert(l);
            for out in &t.outputs {
                edges.entry(t.spec.input.as_str()).or_default().push((l.doc.name.as_str(), out.as_str()));
            }
        }
    }
    let mut found: Vec<Vec<(&str, &str)>> = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for &start in edges.keys() {
        let mut stack: Vec<(&str, &str)> = Vec::new();
        dfs(start, &edges, &mut stack, &mut done, &mut found);
    }
    let mut problems = Vec::new();
    for cycle in found {
        let mut text = String::new();
        for (topic, transform) in &cycle {
            text.push_str(&format!("{topic} -> [{transform}] -> "));
        }
        text.push_str(cycle.first().map_or("", |c| c.0));
        let members: BTreeSet<&str> = cycle.iter().map(|c| c.1).collect();
        let pipeline = docs
            .iter()
            .find(|l| matches!(&l.doc.object, Object::Pipeline(p) if members.iter().all(|m| p.transforms.iter().any(|t| t == m))));
        let problem_at = match pipeline {
            Some(p) => problem(
                p,
                &FieldPath::default().key("spec").key("transforms"),
                At::Key,
                format!("pipeline {:?} has a cycle: {text}", p.doc.name),
            ),
            None => match cycle.first().and_then(|c| by_transform.get(c.1)) {
                Some(t) => {
                    problem(t, &FieldPath::default().key("spec").key("input"), At::Value, format!("transforms form a cycle: {text}"))
                }
                None => continue,
            },
        };
        problems.push(problem_at);
    }
    problems
}

/// Depth-first search recording each cycle once: `stack` is the path as (topic, transform
/// leaving it); `done` are topics fully explored.
fn dfs<'a>(
    topic: &'a str,
    edges: &BTreeMap<&'a str, Vec<(&'a str, &'a str)>>,
    stack: &mut Vec<(&'a str, &'a str)>,
    done: &mut BTreeSet<&'a str>,
    found: &mut Vec<Vec<(&'a str, &'a str)>>,
) {
    if done.contains(topic) {
        return;
    }
    for &(transform, target) in edges.get(topic).map(Vec::as_slice).unwrap_or_default() {
        stack.push((topic, transform));
        if let Some(at) = stack.iter().position(|(t, _)| *t == target) {
            found.push(stack[at..].to_vec());
        } else {
            dfs(target, edges, stack, done, found);
        }
        stack.pop();
    }
    done.insert(topic);
}
