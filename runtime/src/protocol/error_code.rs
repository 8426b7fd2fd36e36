//! The one place internal errors are mapped to Kafka error codes.
//!
//! Handlers call [`code`] (or [`response_error`]) on a [`BrokerError`] and put the result in the
//! response; nothing else in the crate picks Kafka codes for internal failures.

use kafka_protocol::ResponseError;

use crate::broker::BrokerError;
use crate::group::GroupError;
use crate::log::LogError;
use crate::protocol::session::{HandshakeRefusal, SessionAuthError};
use crate::security::acl::ResourceType;
use crate::security::sasl::AuthError;
use crate::tier::TierError;

/// The Kafka error for a broker error.
pub fn response_error(e: &BrokerError) -> ResponseError {
    use BrokerError as B;
    match e {
        B::Log { source, .. } => log_error(source),
        B::MetadataLog { .. } | B::MetadataCorrupt { .. } | B::Io { .. } => ResponseError::KafkaStorageError,
        B::Task { .. } => ResponseError::UnknownServerError,
        B::Tier { source, .. } => tier_error(source),
        B::TierSetup { .. } => ResponseError::KafkaStorageError,
        B::Groups { source } => group_error(source),
        B::UnknownTopic { .. } | B::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
        B::UnknownTopicId { .. } => ResponseError::UnknownTopicId,
        B::TopicExists { .. } => ResponseError::TopicAlreadyExists,
        B::InvalidTopic { .. } => ResponseError::InvalidTopicException,
        B::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        B::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        B::InvalidReplicaAssignment { .. } => ResponseError::InvalidReplicaAssignment,
        B::InvalidConfig { .. } => ResponseError::InvalidConfig,
        B::InvalidRequest { .. } => ResponseError::InvalidRequest,
        B::UnsupportedMessageFormat { .. } => ResponseError::UnsupportedForMessageFormat,
        B::CorruptRecords { .. } => ResponseError::CorruptMessage,
        B::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        B::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        B::InvalidRequiredAcks { .. } => ResponseError::InvalidRequiredAcks,
        B::TransactionsUnsupported => ResponseError::TransactionalIdAuthorizationFailed,
        B::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        B::ShuttingDown => ResponseError::NotLeaderOrFollower,
        B::UnknownCredential { .. } => ResponseError::ResourceNotFound,
        B::UnacceptableCredential { .. } => ResponseError::UnacceptableCredential,
        B::UnsupportedSaslMechanism { .. } => ResponseError::UnsupportedSaslMechanism,
        B::DuplicateUser { .. } => ResponseError::DuplicateResource,
        B::AuthorizationFailed { resource_type, .. } => match resource_type {
            ResourceType::Topic => ResponseError::TopicAuthorizationFailed,
            ResourceType::Group => ResponseError::GroupAuthorizationFailed,
            ResourceType::Cluster => ResponseError::ClusterAuthorizationFailed,
            ResourceType::TransactionalId => ResponseError::TransactionalIdAuthorizationFailed,
        },
        B::SecurityDisabled => ResponseError::SecurityDisabled,
        B::InvalidAcl { .. } => ResponseError::InvalidRequest,
    }
}

/// The Kafka error for a failed SASL exchange. Every failure is SASL_AUTHENTICATION_FAILED, as
/// in Kafka: clients treat it as fatal rather than retrying with the same credentials.
pub fn sasl_error(e: &AuthError) -> ResponseError {
    match e {
        AuthError::InvalidCredentials { .. } | AuthError::Malformed { .. } | AuthError::AlreadyComplete { .. } => {
            ResponseError::SaslAuthenticationFailed
        }
    }
}

/// The Kafka error for a storage engine error.
pub fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage,
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Io { .. } | LogError::Poisoned { .. } | LogError::StorageFull { .. } => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error for a remote read failure: a damaged remote object is CORRUPT_MESSAGE (the
/// bytes are wrong and retrying will not fix them); anything else (store unreachable, object
/// missing, manifest not loaded) is KAFKA_STORAGE_ERROR, as for a failing local disk.
pub fn tier_error(e: &TierError) -> ResponseError {
    match e {
        TierError::Corrupt { .. } => ResponseError::CorruptMessage,
        _ => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error for a group coordinator failure (all of them are storage failures: protocol
/// outcomes are not `GroupError`s). COORDINATOR_NOT_AVAILABLE makes clients retry.
pub fn group_error(e: &GroupError) -> ResponseError {
    match e {
        GroupError::Write { .. } | GroupError::Task { .. } => ResponseError::CoordinatorNotAvailable,
        _ => ResponseError::KafkaStorageError,
    }
}

/// `response_error(e).code()`.
pub fn code(e: &BrokerError) -> i16 {
    response_error(e).code()
}

/// The Kafka error for a failed SaslAuthenticate.
pub fn session_auth_error(e: &SessionAuthError) -> ResponseError {
    match e {
        SessionAuthError::IllegalState => ResponseError::IllegalSaslState,
        SessionAuthError::Failed(e) => sasl_error(e),
    }
}

/// The Kafka error for a refused SaslHandshake.
pub fn handshake_refusal(e: HandshakeRefusal) -> ResponseError {
    match e {
        HandshakeRefusal::IllegalState => ResponseError::IllegalSaslState,
        HandshakeRefusal::UnsupportedMechanism => ResponseError::UnsupportedSaslMechanism,
    }
}
