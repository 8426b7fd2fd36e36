//! One file per Kafka API. Each exposes `handle(broker, ctx, request) -> response`.
//! [`dispatch`] (in this file) routes a decoded request to its handler, and [`SUPPORTED_APIS`] is
//! the version table that ApiVersions advertises and the connection enforces.
//!
//! Adding an API: a file here, a row in `SUPPORTED_APIS`, an arm in `dispatch`.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::RequestContext;
use crate::broker::Broker;

pub mod alter_configs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_user_scram_credentials;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;

/// (API, lowest version, highest version) we implement correctly. Every range lies inside what
/// kafka-protocol 0.18 can decode (checked by a unit test). Deliberately absent: transactions,
/// ConsumerGroupHeartbeat (KIP-848) and share groups.
///
/// Why these maxima: Produce v12+ is KIP-890 (transactions v2) and v13 topic ids; Fetch v17+
/// carries replica directory ids; ListOffsets v9+ is tiered-storage offsets; Metadata v13 adds a
/// top-level error for KIP-1102 rebootstrap; ApiVersions v4 only adds semantics we do not need.
/// OffsetForLeaderEpoch v0–1 and DescribeLogDirs v0 (Kafka 3.9 serves them) are below what the
/// codec decodes (Kafka 4.0 removed them, KIP-896).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTopicPartitions, 0, 0),
];

/// Whether we serve `api_key` at `version`.
pub fn is_supported(api_key: ApiKey, version: i16) -> bool {
    SUPPORTED_APIS.iter().any(|&(key, min, max)| key == api_key && (min..=max).contains(&version))
}

/// Routes one decoded request to its handler. `Err` (a request kind we never advertised; the
/// connection checks versions first, so this is defensive) closes the connection.
pub async fn dispatch(broker: &Arc<Broker>, ctx: &RequestContext, request: RequestKind) -> Result<ResponseKind, String> {
    Ok(match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(broker, ctx, r).await),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(broker, ctx, r).await),
        RequestKind::Produce(r) => ResponseKind::Produce(produce::handle(broker, ctx, r).await),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(broker, ctx, r).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(broker, ctx, r).await),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(broker, ctx, r).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(broker, ctx, r).await),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(create_partitions::handle(broker, ctx, r).await),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(describe_configs::handle(broker, ctx, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(broker, ctx, r).await)
        }
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id::handle(broker, ctx, r).await),
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(describe_cluster::handle(broker, ctx, r).await),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(delete_records::handle(broker, ctx, r).await),
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(find_coordinator::handle(broker, ctx, r).await),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(join_group::handle(broker, ctx, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(sync_group::handle(broker, ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(broker, ctx, r).await),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(broker, ctx, r).await),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit::handle(broker, ctx, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch::handle(broker, ctx, r).await),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(broker, ctx, r).await),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(describe_groups::handle(broker, ctx, r).await),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups::handle(broker, ctx, r).await),
        RequestKind::SaslHandshake(r) => ResponseKind::SaslHandshake(sasl_handshake::handle(broker, ctx, r).await),
        RequestKind::SaslAuthenticate(r) => ResponseKind::SaslAuthenticate(sasl_authenticate::handle(broker, ctx, r).await),
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(alter_user_scram_credentials::handle(broker, ctx, r).await)
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            ResponseKind::DescribeUserScramCredentials(describe_user_scram_credentials::handle(broker, ctx, r).await)
        }
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(create_acls::handle(broker, ctx, r).await),
        RequestKind::DescribeAcls(r) => ResponseKind::DescribeAcls(describe_acls::handle(broker, ctx, r).await),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(delete_acls::handle(broker, ctx, r).await),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(alter_configs::handle(broker, ctx, r).await),
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, ctx, r).await),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete::handle(broker, ctx, r).await),
        RequestKind::DescribeLogDirs(r) => ResponseKind::DescribeLogDirs(describe_log_dirs::handle(broker, ctx, r).await),
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(describe_producers::handle(broker, ctx, r).await),
        RequestKind::DescribeTopicPartitions(r) => {
            ResponseKind::DescribeTopicPartitions(describe_topic_partitions::handle(broker, ctx, r).await)
        }
        other => return Err(format!("no handler for {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every advertised range must be decodable by kafka-protocol, or a client that picks our
    /// maximum would get its connection closed.
    #[test]
    fn supported_versions_lie_within_the_codec() {
        for &(key, min, max) in SUPPORTED_APIS {
            let codec = key.valid_versions();
            assert!(min <= max, "{key:?}");
            assert!(codec.min <= min && max <= codec.max, "{key:?} {min}..={max} outside {codec}");
        }
    }
}
