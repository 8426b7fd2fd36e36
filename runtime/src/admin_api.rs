//! The JSON bodies of the admin HTTP API's topic and group routes, in one place: the server
//! (`admin_topics`) serialises them and the CLI (`cli::admin_client`) deserialises the same
//! types, so the two cannot drift apart. Transform bodies are `transform::{TransformSpec,
//! TransformStatus, ResetTo}`.
//!
//! Architecture Invariant: these are plain data; nothing here knows the broker or HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An error answer of every admin route: `{"error": kind, "message": text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable kind (`unknown_topic`, `topic_exists`, `invalid_config`, …).
    pub error: String,
    /// One human-readable line.
    pub message: String,
}

/// One topic in `GET /v1/topics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSummary {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Overrides only (configs at their default are left out).
    pub configs: BTreeMap<String, String>,
    /// Written by the broker itself (e.g. `_sluice_transform_logs`), not by users.
    pub internal: bool,
}

/// One partition in `GET /v1/topics/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// First offset still readable (local or tiered).
    pub log_start_offset: i64,
    /// Offset of the next record to be written and acknowledged.
    pub high_watermark: i64,
    /// Bytes on local disk.
    pub size_bytes: u64,
    /// Local segment files.
    pub segments: usize,
}

/// Where a config's effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// The broker's default for topics.
    Default,
    /// This topic's override.
    Topic,
}

/// One config with its effective value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    /// The effective value.
    pub value: String,
    /// Default or override.
    pub source: ConfigSource,
}

/// `GET /v1/topics/{name}` and the answer of `POST` / `PATCH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDetail {
    /// Topic name.
    pub name: String,
    /// Topic id (Kafka's topic UUID), empty for a `validate_only` create.
    pub topic_id: String,
    /// Written by the broker itself.
    pub internal: bool,
    /// Every partition, by index.
    pub partitions: Vec<PartitionInfo>,
    /// Every known config, by name, with its effective value and source.
    pub configs: BTreeMap<String, ConfigValue>,
}

/// `POST /v1/topics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// Topic name (Kafka's rules).
    pub name: String,
    /// Partition count; `None` uses the broker default.
    #[serde(default)]
    pub partitions: Option<i32>,
    /// Config overrides.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Validate only: nothing changes, the answer shows what would be created.
    #[serde(default)]
    pub validate_only: bool,
}

/// `PATCH /v1/topics/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlterTopic {
    /// Grow to this many partitions (never shrinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Config changes: a value sets the override, `null` removes it (back to the default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, Option<String>>,
}

/// One group in `GET /v1/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name (Empty, Stable, PreparingRebalance, …).
    pub state: String,
    /// The protocol type (`consumer`), empty for a group with only committed offsets.
    pub protocol: String,
    /// Member count.
    pub members: usize,
}

/// One assigned topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// One member in `GET /v1/groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The coordinator-assigned member id.
    pub member_id: String,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address as the broker saw it.
    pub host: String,
    /// Partitions assigned to it (decoded from the consumer protocol; empty while rebalancing or
    /// when the group uses another protocol).
    pub assignment: Vec<TopicPartitions>,
}

/// One committed partition in `GET /v1/groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The committed offset (next to consume).
    pub committed_offset: i64,
    /// The partition's high watermark; -1 when the topic or partition no longer exists.
    pub high_watermark: i64,
    /// `high_watermark - committed_offset` (never negative); -1 when unknown.
    pub lag: i64,
}

/// `GET /v1/groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetail {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name.
    pub state: String,
    /// Protocol type (`consumer`) or empty.
    pub protocol_type: String,
    /// Selected assignor (e.g. `range`), only while Stable.
    pub protocol: String,
    /// Members, by member id.
    pub members: Vec<MemberInfo>,
    /// Committed offsets, by topic and partition.
    pub offsets: Vec<GroupOffset>,
    /// Sum of the known lags.
    pub total_lag: i64,
}

/// Lag of a committed offset against a high watermark, never negative.
pub fn lag(high_watermark: i64, committed: i64) -> i64 {
    (high_watermark - committed).max(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `null` in a PATCH removes an override and a value sets one; unknown fields are refused so
    /// a typo does not silently do nothing.
    #[test]
    fn alter_topic_null_means_reset_and_unknown_fields_fail() {
        let alter: AlterTopic = serde_json::from_str(r#"{"configs": {"retention.ms": null, "segment.ms": "1000"}}"#).unwrap();
        assert_eq!(alter.configs.get("retention.ms"), Some(&None));
        assert_eq!(alter.configs.get("segment.ms"), Some(&Some("1000".to_string())));
        assert_eq!(alter.partitions, None);
        assert!(serde_json::from_str::<AlterTopic>(r#"{"partitons": 3}"#).is_err());
        let create: CreateTopic = serde_json::from_str(r#"{"name": "t"}"#).unwrap();
        assert_eq!((create.partitions, create.validate_only, create.configs.len()), (None, false, 0));
    }

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag(10, 4), 6);
        assert_eq!(lag(3, 5), 0);
    }
}
