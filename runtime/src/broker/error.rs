//! Errors of the broker layer. Mapping to Kafka error codes happens in `protocol::error_code`.

use std::path::PathBuf;

use crate::log::LogError;

/// Something the broker could not do, with the topic/partition/path it concerns.
/// (Fields are named for what they hold; each variant's message says the rest.)
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// A partition log operation failed.
    #[error("partition {topic}-{partition}: {source}")]
    Log {
        topic: String,
        partition: i32,
        #[source]
        source: LogError,
    },
    /// Tiered storage failed for a read of this partition. (Boxed: store errors are large.)
    #[error("partition {topic}-{partition}: {source}")]
    Tier {
        topic: String,
        partition: i32,
        #[source]
        source: Box<crate::tier::TierError>,
    },
    /// Tiered storage could not start (bad object store URL).
    #[error("tiered storage: {source}")]
    TierSetup {
        #[source]
        source: Box<crate::tier::TierError>,
    },
    /// The metadata log failed.
    #[error("metadata log: {source}")]
    MetadataLog {
        #[source]
        source: LogError,
    },
    /// The metadata log holds something we cannot replay.
    #[error("metadata log record at offset {offset}: {reason}")]
    MetadataCorrupt { offset: i64, reason: String },
    /// A filesystem operation outside the logs failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Blocking work could not run or panicked.
    #[error("background task for {what} failed: {reason}")]
    Task { what: String, reason: String },
    /// The consumer group coordinator could not start or stop.
    #[error("group coordinator: {source}")]
    Groups {
        #[source]
        source: crate::group::GroupError,
    },
    #[error("unknown topic {topic}")]
    UnknownTopic { topic: String },
    #[error("unknown topic id {topic_id}")]
    UnknownTopicId { topic_id: uuid::Uuid },
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("topic {topic} already exists")]
    TopicExists { topic: String },
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic { topic: String, reason: String },
    #[error("invalid partition count for {topic}: {reason}")]
    InvalidPartitions { topic: String, reason: String },
    #[error("replication factor {factor} is not supported: this broker keeps one replica")]
    InvalidReplicationFactor { factor: i16 },
    #[error("invalid replica assignment: {reason}")]
    InvalidReplicaAssignment { reason: String },
    #[error("invalid config {name}={value:?}: {reason}")]
    InvalidConfig { name: String, value: String, reason: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// Record batches that are not RecordBatch v2 (magic 0 and 1 are pre-0.11 formats).
    #[error("record batch magic {magic} is not supported; only RecordBatch v2")]
    UnsupportedMessageFormat { magic: i8 },
    #[error("corrupt records: {reason}")]
    CorruptRecords { reason: String },
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("producer {producer_id}: expected sequence {expected}, received {received}")]
    OutOfOrderSequence { producer_id: i64, expected: i32, received: i32 },
    #[error("acks={acks} is not one of -1, 0, 1")]
    InvalidRequiredAcks { acks: i16 },
    #[error("transactions are not supported")]
    TransactionsUnsupported,
    #[error("offset {offset} is out of range [{log_start_offset}, {high_watermark}] of {topic}-{partition}")]
    OffsetOutOfRange { topic: String, partition: i32, offset: i64, log_start_offset: i64, high_watermark: i64 },
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("user {user} has no {mechanism} credential")]
    UnknownCredential { user: String, mechanism: &'static str },
    #[error("unacceptable credential for user {user:?}: {reason}")]
    UnacceptableCredential { user: String, reason: String },
    #[error("SCRAM mechanism id {mechanism} is not supported (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512)")]
    UnsupportedSaslMechanism { mechanism: i8 },
    #[error("user {user} appears more than once in the request")]
    DuplicateUser { user: String },
    /// Refused by the authorizer; the Kafka code depends on `resource_type`.
    #[error("{principal} may not {operation} {} {name}", .resource_type.name())]
    AuthorizationFailed { principal: String, operation: &'static str, resource_type: crate::security::acl::ResourceType, name: String },
    /// ACL APIs without an authorizer (Kafka's SECURITY_DISABLED).
    #[error("no authorizer is configured on this broker (start it with --authorizer)")]
    SecurityDisabled,
    #[error("{source}")]
    InvalidAcl {
        #[source]
        source: crate::security::acl::InvalidAcl,
    },
}

impl BrokerError {
    /// Wraps a log error with its partition.
    pub fn log(topic: &str, partition: i32, source: LogError) -> Self {
        BrokerError::Log { topic: topic.to_string(), partition, source }
    }
}
