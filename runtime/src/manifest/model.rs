//! The typed objects a manifest declares, after decoding and before conversion. These are the
//! manifest's own types: [`TransformDef::to_spec`] converts a transform to the broker's
//! [`TransformSpec`] at the edge, and nothing outside `manifest` and the apply commands sees them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::transform::TransformSpec;

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "sluice/v1";

/// The kinds of object a manifest can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A topic: partitions and config overrides.
    Topic,
    /// A WebAssembly transform from one input topic to output topics.
    Transform,
    /// A named group of topics and transforms forming a DAG (stored, checked for cycles).
    Pipeline,
    /// ACL bindings: one principal, one resource pattern, the operations allowed or denied.
    Acl,
}

impl Kind {
    /// Every kind, in apply order (topics exist before the transforms that read them; ACLs
    /// right after the topics they protect).
    pub const ALL: [Kind; 4] = [Kind::Topic, Kind::Acl, Kind::Transform, Kind::Pipeline];

    /// The name used in `kind:` and in output (`topic/x`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Topic => "Topic",
            Kind::Transform => "Transform",
            Kind::Pipeline => "Pipeline",
            Kind::Acl => "Acl",
        }
    }

    /// Lower-case, as printed in `topic/x created`.
    pub fn lower(self) -> &'static str {
        match self {
            Kind::Topic => "topic",
            Kind::Transform => "transform",
            Kind::Pipeline => "pipeline",
            Kind::Acl => "acl",
        }
    }

    /// Parses `kind:` (exact spelling, as Kubernetes does).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a document came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as displayed in messages.
    pub file: String,
    /// The file's path on disk (wasm paths are relative to its directory).
    pub path: PathBuf,
    /// 1-based line of the document's first content line.
    pub line: usize,
}

/// A topic's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDef {
    /// Partition count (a topic can grow, never shrink).
    pub partitions: i32,
    /// Config overrides by Kafka name. They are the full set: keys not listed are reset to the
    /// broker's default by apply.
    pub configs: BTreeMap<String, String>,
}

/// Where a transform's module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmSource {
    /// A file, already resolved against the manifest's directory.
    File(PathBuf),
    /// An `http://` or `https://` URL, fetched at apply/diff time; always pinned by
    /// `wasmSha256`, so the same manifest deploys the same module.
    Url(String),
}

/// A transform's declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformDef {
    /// The module.
    pub wasm: WasmSource,
    /// `wasmSha256`: the module's expected hex SHA-256 (required for a URL, optional for a
    /// file); apply refuses a module whose bytes hash otherwise.
    pub wasm_sha256: Option<String>,
    /// The broker's spec (name, input, default output, config, start, policy, limits).
    pub spec: TransformSpec,
    /// Every output topic the transform writes: the first is the default output, the others are
    /// the named outputs its code routes to. They are the DAG's edges.
    pub outputs: Vec<String>,
}

impl TransformDef {
    /// The spec the admin API takes.
    pub fn to_spec(&self) -> TransformSpec {
        self.spec.clone()
    }
}

/// A pipeline: names of Topic and Transform objects declared in the same manifest set (topics
/// may also be existing broker topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineDef {
    /// Member topics.
    pub topics: Vec<String>,
    /// Member transforms; their inputs and outputs form the pipeline's graph.
    pub transforms: Vec<String>,
}

/// A declared object's body.
// Not boxed: a manifest set holds a handful of documents, each built once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    #[allow(missing_docs)]
    Topic(TopicDef),
    #[allow(missing_docs)]
    Transform(TransformDef),
    #[allow(missing_docs)]
    Pipeline(PipelineDef),
    #[allow(missing_docs)]
    Acl(super::acl::AclDef),
}

impl Object {
    /// This object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Topic(_) => Kind::Topic,
            Object::Transform(_) => Kind::Transform,
            Object::Pipeline(_) => Kind::Pipeline,
            Object::Acl(_) => Kind::Acl,
        }
    }
}

/// One decoded document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `metadata.name`.
    pub name: String,
    /// The object.
    pub object: Object,
    /// The document as written (YAML converted to JSON): what the broker stores and `sluice get
    /// -o yaml` prints.
    pub raw: serde_json::Value,
    /// Where it came from.
    pub origin: Origin,
}

impl Document {
    /// `kind/name` as printed (`transform/uppercase`).
    pub fn id(&self) -> String {
        format!("{}/{}", self.object.kind().lower(), self.name)
    }
}
