//! The transform spec: what the admin API accepts as JSON next to the wasm bytes, and what the
//! metadata log stores. Manifests (YAML) convert to this type at their edge.

use serde::{Deserialize, Serialize};

use super::instance::GuestLimits;
use super::TransformError;

/// Records handed to the guest per call, at most.
pub const BATCH_RECORDS_MAX: usize = 10_000;
/// Named outputs one transform may declare, at most.
pub const NAMED_OUTPUTS_MAX: usize = 64;

/// Where a transform starts reading on its first deploy. Later deploys resume at the committed
/// position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The log start offset.
    #[default]
    Earliest,
    /// The high watermark at deploy time.
    Latest,
    /// This offset (clamped to the log).
    Offset(i64),
    /// The first record with a timestamp at or after this (ms since the Unix epoch).
    Timestamp(i64),
}

/// How an output record's partition is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Partitioning {
    /// Kafka's default partitioner: murmur2 of the key; a null key goes to the input's partition
    /// number (modulo the output's partition count).
    #[default]
    KeyHash,
    /// The input's partition number (modulo the output's partition count).
    Input,
}

/// What happens to a record the transform fails on, after `retries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ErrorAction {
    /// Write the input record to `topic` (default `<transform>.dlq`) with headers naming the
    /// transform, version, input position and error.
    DeadLetter {
        /// The dead-letter topic; `None`: `<transform>.dlq`.
        #[serde(default)]
        topic: Option<String>,
    },
    /// Drop the record and go on.
    Skip,
    /// Stop the transform (state `failed` with the error) until resumed or reset.
    Halt,
}

/// The error policy. (serde cannot deny unknown fields next to a flattened enum.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorPolicy {
    /// What to do once retries are exhausted.
    #[serde(flatten)]
    pub action: ErrorAction,
    /// Extra attempts at a failing batch, each on a fresh instance.
    pub retries: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff_ms: u64,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy { action: ErrorAction::DeadLetter { topic: None }, retries: 2, backoff_ms: 100 }
    }
}

/// Limits of a stateful transform's keyed state (ignored for stateless modules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateLimits {
    /// State a runner (one input partition) may hold, in bytes of keys plus values as the guest
    /// counts them. Past it the transform halts (state `failed`, the reason names this field)
    /// and `sluice_transform_state_cap_hits_total` counts it; the batch that crossed the cap is
    /// not committed, so raising the cap (redeploy) and resuming continues exactly. Keep it well
    /// under `limits.memory_bytes`: in-memory maps take a few times the raw bytes.
    pub bytes_max: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits { bytes_max: 8 << 20 }
    }
}

/// A transform's declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// Unique name (topic-name rules; it names the dead-letter topic and the state directory).
    pub name: String,
    /// The input topic.
    pub input: String,
    /// The default output topic.
    pub output: String,
    /// The other topics the code routes records to by name (`Output::emit_to`). Deploying needs
    /// WRITE on each, and with the authorizer on a record routed to any topic not declared here
    /// (nor the default output) halts the transform: it cannot write where its deployer was not
    /// authorized to. Without the authorizer undeclared names are still written, as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_outputs: Vec<String>,
    /// Config parameters handed to the guest's `init` (a JSON object).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// First-deploy start position.
    #[serde(default)]
    pub start: StartPosition,
    /// Output partitioning.
    #[serde(default)]
    pub partitioning: Partitioning,
    /// Error policy.
    #[serde(default)]
    pub error_policy: ErrorPolicy,
    /// Memory and time limits.
    #[serde(default)]
    pub limits: GuestLimits,
    /// Records per guest call, at most.
    #[serde(default = "default_batch_records")]
    pub batch_records_max: usize,
    /// Keyed-state limits (stateful modules).
    #[serde(default)]
    pub state: StateLimits,
    /// At most this many of the transform's runners (one per input partition) run a batch in
    /// the guest at the same time; the others wait their turn. `None`: no bound (every
    /// partition at once). Bounds the cores one transform can take, not its partitions' order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn default_batch_records() -> usize {
    1000
}

impl TransformSpec {
    /// Checks what serde cannot: names, limits, the config's shape.
    pub fn validate(&self, memory_bytes_max: u64) -> Result<(), TransformError> {
        let invalid = |field: &'static str, reason: String| TransformError::InvalidSpec { field, reason };
        crate::broker::validate_topic_name(&self.name).map_err(|e| invalid("name", e.to_string()))?;
        crate::broker::validate_topic_name(&self.input).map_err(|e| invalid("input", e.to_string()))?;
        crate::broker::validate_topic_name(&self.output).map_err(|e| invalid("output", e.to_string()))?;
        if let Some(dlq) = self.dead_letter_topic() {
            crate::broker::validate_topic_name(&dlq).map_err(|e| invalid("error_policy.topic", e.to_string()))?;
            if dlq == self.input {
                return Err(invalid("error_policy.topic", "the dead-letter topic cannot be the input topic".into()));
            }
        }
        if self.named_outputs.len() > NAMED_OUTPUTS_MAX {
            return Err(invalid("named_outputs", format!("at most {NAMED_OUTPUTS_MAX} topics")));
        }
        for topic in &self.named_outputs {
            crate::broker::validate_topic_name(topic).map_err(|e| invalid("named_outputs", e.to_string()))?;
            if *topic == self.input {
                return Err(invalid("named_outputs", format!("{topic} is the input topic (the transform would read its own output)")));
            }
        }
        if self.output == self.input {
            return Err(invalid("output", "the output topic cannot be the input topic (the transform would read its own output)".into()));
        }
        if !self.config.is_object() {
            return Err(invalid("config", "must be a JSON object".into()));
        }
        if self.limits.memory_bytes < 1 << 20 || self.limits.memory_bytes > memory_bytes_max {
            return Err(invalid("limits.memory_bytes", format!("{} is not in 1 MiB..={memory_bytes_max}", self.limits.memory_bytes)));
        }
        if !(1..=600_000).contains(&self.limits.batch_time_ms) {
            return Err(invalid("limits.batch_time_ms", format!("{} is not in 1..=600000", self.limits.batch_time_ms)));
        }
        if !(1..=BATCH_RECORDS_MAX).contains(&self.batch_records_max) {
            return Err(invalid("batch_records_max", format!("{} is not in 1..={BATCH_RECORDS_MAX}", self.batch_records_max)));
        }
        if self.state.bytes_max == 0 {
            return Err(invalid("state.bytes_max", "must be at least 1".into()));
        }
        if self.parallelism == Some(0) {
            return Err(invalid("parallelism", "must be at least 1 (leave it out for no bound)".into()));
        }
        if self.error_policy.retries > 100 {
            return Err(invalid("error_policy.retries", "at most 100".into()));
        }
        Ok(())
    }

    /// Whether the code may route a record to `topic`: the default output or a named one.
    pub fn routes_to(&self, topic: &str) -> bool {
        topic == self.output || self.named_outputs.iter().any(|t| t == topic)
    }

    /// Every topic the transform writes records of its own to, and so needs WRITE on: the
    /// default and named outputs, and the dead-letter topic. (A stateful transform's changelog
    /// is the caller's to add: only the module says whether it has one.)
    pub fn written_topics(&self) -> Vec<String> {
        let mut topics = vec![self.output.clone()];
        topics.extend(self.named_outputs.iter().cloned());
        topics.extend(self.dead_letter_topic());
        topics
    }

    /// The dead-letter topic, if the policy dead-letters.
    pub fn dead_letter_topic(&self) -> Option<String> {
        match &self.error_policy.action {
            ErrorAction::DeadLetter { topic } => Some(topic.clone().unwrap_or_else(|| format!("{}.dlq", self.name))),
            _ => None,
        }
    }
}
