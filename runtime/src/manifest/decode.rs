//! One document's `serde_norway::Value` → a typed [`Document`], reporting every problem found
//! (unknown fields, wrong types, missing fields, bad values) with its position, instead of
//! stopping at the first as `serde::Deserialize` would. Cross-document checks (references,
//! duplicates, cycles) are `validate`'s.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::error::Problem;
use super::locate::{At, FieldPath, Locator};
use super::model::{Document, Kind, Object, Origin, PipelineDef, TopicDef, TransformDef, WasmSource, API_VERSION};
use crate::transform::spec::{ErrorAction, ErrorPolicy, Partitioning, StartPosition};
use crate::transform::{TransformError, TransformSpec};

/// Partitions a manifest may ask for, at most (a bound on a typo like `partitions: 100000`).
pub const PARTITIONS_MAX: i64 = 10_000;

/// Where problems go, and how to locate them.
pub struct Ctx<'a> {
    /// The file as shown in messages.
    pub file: &'a str,
    /// The document's positions.
    pub loc: &'a Locator,
    /// Found so far.
    pub problems: &'a mut Vec<Problem>,
}

impl Ctx<'_> {
    /// Records a problem at `path`'s key or value.
    pub fn report(&mut self, path: &FieldPath, at: At, message: impl Into<String>) {
        let pos = self.loc.find(path, at);
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// What a value is, for "expected X, found Y".
fn found(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A mapping being read: fields taken are remembered so the rest can be reported as unknown.
pub(super) struct Fields<'v> {
    map: &'v Mapping,
    path: FieldPath,
    allowed: &'static [&'static str],
}

impl<'v> Fields<'v> {
    /// `v` as a mapping whose keys must be among `allowed`; reports unknown and non-string keys.
    pub(super) fn new(ctx: &mut Ctx, v: &'v Value, path: FieldPath, allowed: &'static [&'static str]) -> Option<Fields<'v>> {
        let Value::Mapping(map) = v else {
            ctx.report(&path, At::Value, format!("expected a mapping, found {}", found(v)));
            return None;
        };
        for key in map.keys() {
            match key.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => ctx.report(&path.key(k), At::Key, format!("unknown field `{k}`, expected one of: {}", allowed.join(", "))),
                None => ctx.report(&path, At::Value, format!("keys must be strings, found {}", found(key))),
            }
        }
        Some(Fields { map, path, allowed })
    }

    pub(super) fn get(&self, key: &str) -> Option<(&'v Value, FieldPath)> {
        debug_assert!(self.allowed.contains(&key), "{key} read but not allowed");
        self.map.get(key).map(|v| (v, self.path.key(key)))
    }

    pub(super) fn required(&self, ctx: &mut Ctx, key: &str) -> Option<(&'v Value, FieldPath)> {
        let got = self.get(key);
        if got.is_none() {
            ctx.report(&self.path.key(key), At::Key, "missing field");
        }
        got
    }
}

pub(super) fn string(ctx: &mut Ctx, got: Option<(&Value, FieldPath)>) -> Option<String> {
    let (v, path) = got?;
    match v {
        Value::String(s) => Some(s.clone()),
        other => {
            ctx.report(&path, At::Value, format!("expected a string, found {}", found(other)));
            None
        }
    }
}

fn integer(ctx: &mut Ctx, got: Option<(&Value, FieldPath)>, min: i64, max: i64) -> Option<i64> {
    let (v, path) = got?;
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            ctx.report(&path, At::Value, format!("{n} is not in {min}..={max}"));
            None
        }
        None => {
            ctx.report(&path, At::Value, format!("expected an integer, found {}", found(v)));
            None
        }
    }
}

pub(super) fn string_list(ctx: &mut Ctx, got: Option<(&Value, FieldPath)>) -> Option<Vec<String>> {
    let (v, path) = got?;
    let Value::Sequence(items) = v else {
        ctx.report(&path, At::Value, format!("expected a list of strings, found {}", found(v)));
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match string(ctx, Some((item, path.index(i)))) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The kind and `metadata.name` of a document, if both are readable (no problems reported).
pub fn header(value: &Value) -> Option<(Kind, String)> {
    let kind = Kind::parse(value.get("kind")?.as_str()?)?;
    let name = value.get("metadata")?.get("name")?.as_str()?;
    Some((kind, name.to_string()))
}

/// Decodes one document, reporting every problem; `None` when a part could not be decoded.
pub fn document(ctx: &mut Ctx, value: &Value, origin: &Origin) -> Option<Document> {
    let root = FieldPath::default();
    let top = Fields::new(ctx, value, root, &["apiVersion", "kind", "metadata", "spec"])?;
    let got = top.required(ctx, "apiVersion");
    if let Some(version) = string(ctx, got) {
        if version != API_VERSION {
            ctx.report(
                &FieldPath::default().key("apiVersion"),
                At::Value,
                format!("unsupported apiVersion {version:?}; this build reads {API_VERSION:?}"),
            );
        }
    }
    let got = top.required(ctx, "kind");
    let kind = string(ctx, got).and_then(|k| {
        let kind = Kind::parse(&k);
        if kind.is_none() {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            ctx.report(&FieldPath::default().key("kind"), At::Value, format!("unknown kind {k:?}, expected one of: {}", kinds.join(", ")));
        }
        kind
    });
    let name = top.required(ctx, "metadata").and_then(|(v, path)| {
        let metadata = Fields::new(ctx, v, path, &["name", "labels"])?;
        let got = metadata.required(ctx, "name");
        let name = string(ctx, got);
        if let Some((labels, path)) = metadata.get("labels") {
            string_map(ctx, labels, &path);
        }
        name
    });
    let spec = top.required(ctx, "spec");
    let object = match (kind, spec, &name) {
        (Some(Kind::Topic), Some((v, path)), _) => topic(ctx, v, path).map(Object::Topic),
        (Some(Kind::Transform), Some((v, path)), Some(name)) => transform(ctx, v, path, name, origin).map(Object::Transform),
        (Some(Kind::Pipeline), Some((v, path)), _) => pipeline(ctx, v, path).map(Object::Pipeline),
        (Some(Kind::Acl), Some((v, path)), _) => super::acl::decode(ctx, v, path).map(Object::Acl),
        _ => None,
    };
    let raw = match serde_json::to_value(value) {
        Ok(raw) => Some(raw),
        Err(e) => {
            ctx.report(&FieldPath::default(), At::Key, format!("cannot be stored as JSON: {e}"));
            None
        }
    };
    // A document whose every part decoded is returned even if a problem was reported (a missing
    // wasm file), so the checks across documents still see it and report theirs too.
    Some(Document { name: name?, object: object?, raw: raw?, origin: origin.clone() })
}

/// A mapping of scalars to strings (topic configs, labels). Numbers and booleans are accepted
/// and kept as written (`retention.ms: 3600000`).
fn string_map(ctx: &mut Ctx, v: &Value, path: &FieldPath) -> Option<BTreeMap<String, String>> {
    let Value::Mapping(map) = v else {
        ctx.report(path, At::Value, format!("expected a mapping, found {}", found(v)));
        return None;
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            ctx.report(path, At::Value, format!("keys must be strings, found {}", found(key)));
            continue;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                ctx.report(&path.key(key), At::Value, format!("expected a string, number or boolean, found {}", found(other)));
                continue;
            }
        };
        out.insert(key.to_string(), text);
    }
    Some(out)
}

fn topic(ctx: &mut Ctx, v: &Value, path: FieldPath) -> Option<TopicDef> {
    let f = Fields::new(ctx, v, path, &["partitions", "configs"])?;
    // Not `?` yet: the configs are checked even when the partition count is wrong.
    let partitions = match f.get("partitions") {
        Some(got) => integer(ctx, Some(got), 1, PARTITIONS_MAX),
        None => Some(1),
    };
    let configs = match f.get("configs") {
        Some((v, path)) => {
            let configs = string_map(ctx, v, &path)?;
            for (name, value) in &configs {
                // The broker's own check, so a manifest accepts exactly what CreateTopics does.
                if let Err(e) = crate::broker::topic_config::validate(name, value) {
                    let at = if crate::broker::topic_config::lookup(name).is_none() { At::Key } else { At::Value };
                    ctx.report(&path.key(name), at, config_reason(&e));
                }
            }
            configs
        }
        None => BTreeMap::new(),
    };
    let partitions = i32::try_from(partitions?).ok()?;
    Some(TopicDef { partitions, configs })
}

/// The reason part of a broker config error (the path already names the config).
fn config_reason(e: &crate::broker::BrokerError) -> String {
    match e {
        crate::broker::BrokerError::InvalidConfig { value, reason, .. } => format!("{value:?}: {reason}"),
        other => other.to_string(),
    }
}

const TRANSFORM_FIELDS: &[&str] =
    &["wasm", "wasmSha256", "parallelism", "input", "outputs", "config", "start", "partitioning", "errorPolicy", "limits", "state"];

fn transform(ctx: &mut Ctx, v: &Value, path: FieldPath, name: &str, origin: &Origin) -> Option<TransformDef> {
    let f = Fields::new(ctx, v, path.clone(), TRANSFORM_FIELDS)?;
    let got = f.required(ctx, "wasm");
    let wasm = string(ctx, got).and_then(|w| wasm_source(ctx, &path.key("wasm"), &w, origin));
    let got = f.get("wasmSha256");
    let wasm_sha256 = string(ctx, got).and_then(|pin| super::wasm::pin(ctx, &path.key("wasmSha256"), &pin));
    if let Some(WasmSource::Url(_)) = &wasm {
        if f.get("wasmSha256").is_none() {
            ctx.report(&path.key("wasmSha256"), At::Key, "missing field: a wasm URL needs the module's hex SHA-256, so the manifest always deploys the same bytes (`sha256sum module.wasm`)");
        }
    }
    let parallelism = integer(ctx, f.get("parallelism"), 1, i64::from(u32::MAX));
    let got = f.required(ctx, "input");
    let input = string(ctx, got);
    let got = f.required(ctx, "outputs");
    let outputs = string_list(ctx, got);
    if outputs.as_ref().is_some_and(Vec::is_empty) {
        ctx.report(&path.key("outputs"), At::Value, "needs at least one topic (the first is the default output)");
    }
    let config = f.get("config").and_then(|(v, p)| match v {
        Value::Mapping(_) => serde_json::to_value(v).map_err(|e| ctx.report(&p, At::Value, format!("not representable as JSON: {e}"))).ok(),
        other => {
            ctx.report(&p, At::Value, format!("expected a mapping, found {}", found(other)));
            None
        }
    });
    let start = f.get("start").and_then(|(v, p)| start_position(ctx, v, &p));
    let partitioning = f.get("partitioning").and_then(|(v, p)| match v.as_str() {
        Some("keyHash") => Some(Partitioning::KeyHash),
        Some("input") => Some(Partitioning::Input),
        _ => {
            ctx.report(&p, At::Value, "expected keyHash or input");
            None
        }
    });
    let error_policy = f.get("errorPolicy").and_then(|(v, p)| error_policy(ctx, v, p));
    let limits = f.get("limits").and_then(|(v, p)| Fields::new(ctx, v, p, &["memoryBytes", "batchTimeMs", "batchRecordsMax"]));
    let memory_bytes = limits.as_ref().and_then(|l| integer(ctx, l.get("memoryBytes"), 0, i64::MAX));
    let batch_time_ms = limits.as_ref().and_then(|l| integer(ctx, l.get("batchTimeMs"), 0, i64::MAX));
    let batch_records_max = limits.as_ref().and_then(|l| integer(ctx, l.get("batchRecordsMax"), 0, i64::MAX));
    // Keyed-state limits of a stateful module (a stateless module ignores them).
    let state = f.get("state").and_then(|(v, p)| Fields::new(ctx, v, p, &["bytesMax"]));
    let state_bytes_max = state.as_ref().and_then(|s| integer(ctx, s.get("bytesMax"), 0, i64::MAX));
    let outputs = outputs?;
    // Start from the broker type's own defaults, then set what the manifest says.
    let (input, output) = (input?, outputs.first()?.clone());
    let base = serde_json::json!({ "name": name, "input": input, "output": output });
    let mut spec: TransformSpec = serde_json::from_value(base).ok()?;
    spec.named_outputs = outputs.get(1..).unwrap_or_default().to_vec();
    spec.config = config.unwrap_or(spec.config);
    spec.start = start.unwrap_or(spec.start);
    spec.partitioning = partitioning.unwrap_or(spec.partitioning);
    spec.error_policy = error_policy.unwrap_or(spec.error_policy);
    spec.limits.memory_bytes = memory_bytes.map_or(spec.limits.memory_bytes, |n| n.unsigned_abs());
    spec.limits.batch_time_ms = batch_time_ms.map_or(spec.limits.batch_time_ms, |n| n.unsigned_abs());
    spec.state.bytes_max = state_bytes_max.map_or(spec.state.bytes_max, |n| n.unsigned_abs());
    spec.parallelism = parallelism.and_then(|n| u32::try_from(n).ok());
    spec.batch_records_max = batch_records_max.and_then(|n| usize::try_from(n).ok()).unwrap_or(spec.batch_records_max);
    // The broker's checks (names, ranges, output != input); its memory ceiling is the broker's
    // config, so only the floor is checked here and the deploy enforces the rest.
    if let Err(TransformError::InvalidSpec { field, reason }) = spec.validate(u64::MAX) {
        ctx.report(&spec_field_path(&path, field), At::Value, reason);
        return None;
    }
    for (i, out) in outputs.iter().enumerate().skip(1) {
        if let Err(e) = crate::broker::validate_topic_name(out) {
            ctx.report(&path.key("outputs").index(i), At::Value, e.to_string());
            return None;
        }
    }
    Some(TransformDef { wasm: wasm?, wasm_sha256, spec, outputs })
}

/// A `TransformSpec::validate` field name → where the manifest writes it.
fn spec_field_path(spec: &FieldPath, field: &str) -> FieldPath {
    match field {
        "name" => FieldPath::default().key("metadata").key("name"),
        "output" => spec.key("outputs").index(0),
        "error_policy.topic" => spec.key("errorPolicy").key("topic"),
        "error_policy.retries" => spec.key("errorPolicy").key("retries"),
        "limits.memory_bytes" => spec.key("limits").key("memoryBytes"),
        "limits.batch_time_ms" => spec.key("limits").key("batchTimeMs"),
        "batch_records_max" => spec.key("limits").key("batchRecordsMax"),
        "state.bytes_max" => spec.key("state").key("bytesMax"),
        "named_outputs" => spec.key("outputs"),
        other => spec.key(other),
    }
}

fn wasm_source(ctx: &mut Ctx, path: &FieldPath, wasm: &str, origin: &Origin) -> Option<WasmSource> {
    if wasm.starts_with("http://") || wasm.starts_with("https://") {
        return super::wasm::url(ctx, path, wasm);
    }
    let base = origin.path.parent().unwrap_or(Path::new("."));
    let file = base.join(wasm);
    if !file.is_file() {
        // Reported, but the transform still decodes: its references are checked as well.
        ctx.report(path, At::Value, format!("no such file: {}", file.display()));
    }
    Some(WasmSource::File(file))
}

fn start_position(ctx: &mut Ctx, v: &Value, path: &FieldPath) -> Option<StartPosition> {
    match v {
        Value::String(s) if s == "earliest" => Some(StartPosition::Earliest),
        Value::String(s) if s == "latest" => Some(StartPosition::Latest),
        Value::Mapping(m) if m.len() == 1 => {
            let f = Fields::new(ctx, v, path.clone(), &["offset", "timestamp"])?;
            if let Some(n) = integer(ctx, f.get("offset"), 0, i64::MAX) {
                return Some(StartPosition::Offset(n));
            }
            integer(ctx, f.get("timestamp"), 0, i64::MAX).map(StartPosition::Timestamp)
        }
        _ => {
            ctx.report(path, At::Value, "expected earliest, latest, {offset: N} or {timestamp: MS}");
            None
        }
    }
}

fn error_policy(ctx: &mut Ctx, v: &Value, path: FieldPath) -> Option<ErrorPolicy> {
    let f = Fields::new(ctx, v, path.clone(), &["action", "topic", "retries", "backoffMs"])?;
    let mut policy = ErrorPolicy::default();
    let topic = string(ctx, f.get("topic"));
    match f.get("action") {
        None => policy.action = ErrorAction::DeadLetter { topic: topic.clone() },
        Some((a, p)) => match a.as_str() {
            Some("deadLetter") => policy.action = ErrorAction::DeadLetter { topic: topic.clone() },
            Some("skip") => policy.action = ErrorAction::Skip,
            Some("halt") => policy.action = ErrorAction::Halt,
            _ => ctx.report(&p, At::Value, "expected deadLetter, skip or halt"),
        },
    }
    if topic.is_some() && !matches!(policy.action, ErrorAction::DeadLetter { .. }) {
        ctx.report(&path.key("topic"), At::Key, "only with action deadLetter");
    }
    if let Some(n) = integer(ctx, f.get("retries"), 0, i64::from(u32::MAX)) {
        policy.retries = u32::try_from(n).ok()?;
    }
    if let Some(n) = integer(ctx, f.get("backoffMs"), 0, i64::MAX) {
        policy.backoff_ms = n.unsigned_abs();
    }
    Some(policy)
}

fn pipeline(ctx: &mut Ctx, v: &Value, path: FieldPath) -> Option<PipelineDef> {
    let f = Fields::new(ctx, v, path, &["description", "topics", "transforms"])?;
    string(ctx, f.get("description"));
    let topics = match f.get("topics") {
        Some(got) => string_list(ctx, Some(got))?,
        None => Vec::new(),
    };
    let got = f.required(ctx, "transforms");
    let transforms = string_list(ctx, got)?;
    Some(PipelineDef { topics, transforms })
}
