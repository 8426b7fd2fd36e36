//! Unit tests: decoding and validation report every problem at its exact position; plans name
//! exactly what differs.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::plan::{self, Action, Current, CurrentTopic, CurrentTransform, Removal};
use super::*;

const GOOD: &str = "\
apiVersion: sluice/v1
kind: Topic
metadata:
  name: in
spec:
  partitions: 2
  configs:
    retention.ms: 3600000
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: out
spec: {}
---
apiVersion: sluice/v1
kind: Transform
metadata:
  name: up
spec:
  wasm: m.wasm
  input: in
  outputs: [out]
  config:
    fields: [a, b]
  start: latest
  errorPolicy:
    action: skip
    retries: 3
  limits:
    memoryBytes: 16777216
    batchRecordsMax: 50
  state:
    bytesMax: 1048576
---
apiVersion: sluice/v1
kind: Pipeline
metadata:
  name: p
spec:
  topics: [in, out]
  transforms: [up]
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn fixture(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.wasm", "\0asm");
    let path = write(dir.path(), "x.yaml", text);
    (dir, path)
}

/// Problems as `line:column: path: message` (the file name varies with the temp dir).
fn problems(path: &Path, existing: &[&str]) -> Vec<String> {
    let existing: BTreeSet<String> = existing.iter().map(|s| s.to_string()).collect();
    match load_checked(&[path.to_path_buf()], &existing) {
        Ok(_) => Vec::new(),
        Err(ManifestError::Invalid(ps)) => {
            let dir = path.parent().unwrap().display().to_string();
            ps.iter().map(|p| p.to_string().replacen(&format!("{}:", path.display()), "", 1).replace(&dir, "DIR")).collect()
        }
        Err(e) => panic!("{e}"),
    }
}

/// A good manifest decodes to the broker's types with the defaults of the fields it leaves out.
#[test]
fn good_manifest_decodes() {
    let (_dir, path) = fixture(GOOD);
    let docs = load_checked(&[path], &BTreeSet::new()).unwrap();
    assert_eq!(docs.len(), 4);
    let Object::Topic(t) = &docs[0].doc.object else { panic!("topic") };
    assert_eq!((t.partitions, t.configs["retention.ms"].as_str()), (2, "3600000"));
    let Object::Transform(x) = &docs[2].doc.object else { panic!("transform") };
    let spec = x.to_spec();
    assert_eq!((spec.name.as_str(), spec.input.as_str(), spec.output.as_str()), ("up", "in", "out"));
    assert_eq!(spec.config, serde_json::json!({"fields": ["a", "b"]}));
    assert_eq!(spec.start, crate::transform::spec::StartPosition::Latest);
    assert_eq!(spec.error_policy.action, crate::transform::spec::ErrorAction::Skip);
    assert_eq!((spec.error_policy.retries, spec.error_policy.backoff_ms), (3, 100));
    assert_eq!((spec.limits.memory_bytes, spec.limits.batch_time_ms, spec.batch_records_max), (16 << 20, 2000, 50));
    assert_eq!(spec.state.bytes_max, 1 << 20);
    assert_eq!(docs[2].doc.origin.line, 16);
    assert_eq!(docs[3].doc.raw["spec"]["transforms"], serde_json::json!(["up"]));
}

/// Every decode problem of a document is reported at once, each at its line and column.
#[test]
fn all_decode_problems_at_once() {
    let text = "\
apiVersion: sluice/v1
kind: Topic
metadata:
  name: t
spec:
  partitions: many
  replicas: 3
  configs:
    retention.ms: soon
    no.such.config: 1
---
apiVersion: sluice/v2
kind: Transform
metadata:
  name: x
spec:
  wasm: missing.wasm
  input: 7
  outputs: []
  start: {offset: -1}
---
kind: Gadget
metadata: {}
spec: {}
";
    let (_dir, path) = fixture(text);
    assert_eq!(
        problems(&path, &[]),
        [
            "6:15: spec.partitions: expected an integer, found a string",
            "7:3: spec.replicas: unknown field `replicas`, expected one of: partitions, configs",
            "9:19: spec.configs[\"retention.ms\"]: \"soon\": not an integer",
            "10:5: spec.configs[\"no.such.config\"]: \"1\": unknown topic config",
            "12:13: apiVersion: unsupported apiVersion \"sluice/v2\"; this build reads \"sluice/v1\"",
            "17:9: spec.wasm: no such file: DIR/missing.wasm",
            "18:10: spec.input: expected a string, found an integer",
            "19:12: spec.outputs: needs at least one topic (the first is the default output)",
            "20:10: spec.start.offset: -1 is not in 0..=9223372036854775807",
            "22:1: apiVersion: missing field",
            "22:7: kind: unknown kind \"Gadget\", expected one of: Topic, Acl, Transform, Pipeline",
            "23:11: metadata.name: missing field",
        ]
    );
}

/// `state` (keyed-state limits): a wrong type, an unknown field and the broker's floor are each
/// reported at the field; leaving it out keeps the broker's default cap.
#[test]
fn state_limits_problems_located() {
    let doc = |name: &str, state: &str| {
        format!("apiVersion: sluice/v1\nkind: Transform\nmetadata:\n  name: {name}\nspec:\n  wasm: m.wasm\n  input: in\n  outputs: [out]\n{state}")
    };
    let text = [
        doc("a", "  state:\n    bytesMax: lots\n"),
        doc("b", "  state:\n    bytesMax: 0\n"),
        doc("c", "  state:\n    maxBytes: 5\n"),
        doc("d", "  state: 1048576\n"),
    ]
    .join("---\n");
    let (_dir, path) = fixture(&text);
    assert_eq!(
        problems(&path, &["in", "out"]),
        [
            "10:15: spec.state.bytesMax: expected an integer, found a string",
            "21:15: spec.state.bytesMax: must be at least 1",
            "32:5: spec.state.maxBytes: unknown field `maxBytes`, expected one of: bytesMax",
            "42:10: spec.state: expected a mapping, found an integer",
        ]
    );
    let (_dir, path) = fixture(&doc("e", ""));
    let docs = load_checked(&[path], &["in".to_string(), "out".to_string()].into()).unwrap();
    let Object::Transform(x) = &docs[0].doc.object else { panic!("transform") };
    assert_eq!(x.to_spec().state, crate::transform::spec::StateLimits::default());
}

/// Cross-document problems: duplicates, unknown topics, undeclared pipeline members, cycles.
#[test]
fn cross_document_problems() {
    let text = "\
apiVersion: sluice/v1
kind: Topic
metadata:
  name: a
spec: {}
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: a
spec: {}
---
apiVersion: sluice/v1
kind: Transform
metadata:
  name: ab
spec:
  wasm: m.wasm
  input: a
  outputs: [b]
---
apiVersion: sluice/v1
kind: Transform
metadata:
  name: ba
spec:
  wasm: m.wasm
  input: b
  outputs:
    - a
    - nowhere
---
apiVersion: sluice/v1
kind: Pipeline
metadata:
  name: loop
spec:
  topics: [a, b]
  transforms: [ab, ba, ghost]
";
    let (_dir, path) = fixture(text);
    assert_eq!(
        problems(&path, &["b"]),
        [
            "10:9: metadata.name: duplicate Topic \"a\" (first declared at DIR/x.yaml:4:9)",
            "31:7: spec.outputs[1]: topic \"nowhere\" neither exists on the broker nor is declared (add a Topic document)",
            "39:3: spec.transforms: pipeline \"loop\" has a cycle: a -> [ab] -> b -> [ba] -> a",
            "39:15: spec.transforms[2]: transform \"ghost\" is not declared in these manifests",
        ]
    );
}

/// Broken YAML is reported at serde_norway's position in the file (not in the document).
#[test]
fn yaml_syntax_error_position() {
    let text = "apiVersion: sluice/v1\nkind: Topic\nmetadata: {name: ok}\nspec: {}\n---\nkind: Topic\nmetadata:\n  name: [unclosed\n";
    let (_dir, path) = fixture(text);
    let got = problems(&path, &[]);
    assert_eq!(got, ["9:1: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 8 column 9"]);
}

/// Plans: create everything on an empty broker; unchanged when it matches; exactly the
/// differences otherwise; shrinking a topic is refused.
#[test]
fn plan_apply() {
    let (_dir, path) = fixture(GOOD);
    let docs = load_checked(&[path], &BTreeSet::new()).unwrap();
    let shas: BTreeMap<String, String> = [("up".to_string(), "aa".repeat(32))].into();
    let steps = plan::apply(&docs, &Current::default(), &shas).unwrap();
    let text: Vec<String> = steps.iter().map(|s| s.describe(false)).collect();
    assert_eq!(text, ["topic/in created", "topic/out created", "transform/up created", "pipeline/p created"]);

    let mut current = Current::default();
    let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "3600000".to_string())].into();
    current.topics.insert("in".into(), CurrentTopic { partitions: 2, configs });
    current.topics.insert("out".into(), CurrentTopic { partitions: 1, configs: BTreeMap::new() });
    let Object::Transform(t) = &docs[2].doc.object else { panic!() };
    current.transforms.insert("up".into(), CurrentTransform { spec: t.to_spec(), module_sha256: "aa".repeat(32) });
    current.manifests.insert(plan::store_key(Kind::Pipeline, "p"), docs[3].doc.raw.clone());
    let steps = plan::apply(&docs, &current, &shas).unwrap();
    assert!(steps.iter().all(|s| s.action == Action::Unchanged), "{steps:?}");

    current.topics.get_mut("out").unwrap().configs.insert("cleanup.policy".into(), "compact".into());
    let mut spec = t.to_spec();
    spec.batch_records_max = 7;
    current.transforms.insert("up".into(), CurrentTransform { spec, module_sha256: "bb".repeat(32) });
    let steps = plan::apply(&docs, &current, &shas).unwrap();
    let text: Vec<String> = steps.iter().map(|s| s.describe(true)).collect();
    assert_eq!(
        text,
        [
            "topic/in unchanged",
            "topic/out would be updated (cleanup.policy compact -> (default))",
            "transform/up would be updated (module bbbbbbbbbbbb -> aaaaaaaaaaaa; batch_records_max changed)",
            "pipeline/p unchanged",
        ]
    );

    current.topics.get_mut("in").unwrap().partitions = 5;
    let problems = plan::apply(&docs, &current, &shas).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!((problems[0].line, problems[0].column), (6, 15));
    assert!(problems[0].message.contains("has 5 partitions; partitions can only grow"));
}

/// Delete removes transforms first and keeps topics unless asked.
#[test]
fn plan_delete() {
    let (_dir, path) = fixture(GOOD);
    let docs = load_checked(&[path], &BTreeSet::new()).unwrap();
    let mut current = Current::default();
    current.topics.insert("in".into(), CurrentTopic { partitions: 2, configs: BTreeMap::new() });
    let Object::Transform(t) = &docs[2].doc.object else { panic!() };
    current.transforms.insert("up".into(), CurrentTransform { spec: t.to_spec(), module_sha256: String::new() });
    let ids =
        |include| -> Vec<(String, Removal)> { plan::delete(&docs, &current, include).into_iter().map(|(d, r)| (d.id(), r)).collect() };
    assert_eq!(
        ids(false),
        [
            ("transform/up".into(), Removal::Delete),
            ("pipeline/p".into(), Removal::Absent),
            ("topic/in".into(), Removal::Kept),
            ("topic/out".into(), Removal::Absent),
        ]
    );
    assert_eq!(ids(true)[2], ("topic/in".into(), Removal::Delete));
}

/// A directory is read recursively in path order; only .yaml/.yml files.
#[test]
fn directory_loading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(dir.path(), "b.yaml", "apiVersion: sluice/v1\nkind: Topic\nmetadata: {name: b}\nspec: {}\n");
    write(&dir.path().join("sub"), "a.yml", "apiVersion: sluice/v1\nkind: Topic\nmetadata: {name: a}\nspec: {}\n");
    write(dir.path(), "notes.txt", "not yaml: [");
    let docs = load(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<&str> = docs.iter().map(|l| l.doc.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(load(&[empty.path().to_path_buf()]), Err(ManifestError::Empty { .. })));
}
