//! The error codes inside a response, for `sluice_request_errors_total`.
//!
//! Every non-zero `error_code` at any level of a response is one error: a Produce answering three
//! partitions with UNKNOWN_TOPIC_OR_PARTITION counts three. Codes of 0 are skipped without any
//! allocation, so a successful response costs one walk over its partitions.

use kafka_protocol::messages::ResponseKind;

/// Calls `f` with every non-zero error code in `response`.
pub fn for_each_error(response: &ResponseKind, mut f: impl FnMut(i16)) {
    let mut emit = |code: i16| {
        if code != 0 {
            f(code);
        }
    };
    match response {
        ResponseKind::Produce(r) => r.responses.iter().flat_map(|t| &t.partition_responses).for_each(|p| emit(p.error_code)),
        ResponseKind::Fetch(r) => {
            emit(r.error_code);
            r.responses.iter().flat_map(|t| &t.partitions).for_each(|p| emit(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| emit(p.error_code)),
        ResponseKind::Metadata(r) => {
            emit(r.error_code);
            for t in &r.topics {
                emit(t.error_code);
                t.partitions.iter().for_each(|p| emit(p.error_code));
            }
        }
        ResponseKind::OffsetCommit(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| emit(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            emit(r.error_code);
            r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| emit(p.error_code));
            for g in &r.groups {
                emit(g.error_code);
                g.topics.iter().flat_map(|t| &t.partitions).for_each(|p| emit(p.error_code));
            }
        }
        ResponseKind::FindCoordinator(r) => {
            emit(r.error_code);
            r.coordinators.iter().for_each(|c| emit(c.error_code));
        }
        ResponseKind::JoinGroup(r) => emit(r.error_code),
        ResponseKind::Heartbeat(r) => emit(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            emit(r.error_code);
            r.members.iter().for_each(|m| emit(m.error_code));
        }
        ResponseKind::SyncGroup(r) => emit(r.error_code),
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| emit(g.error_code)),
        ResponseKind::ListGroups(r) => emit(r.error_code),
        ResponseKind::ApiVersions(r) => emit(r.error_code),
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| emit(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| emit(t.error_code)),
        ResponseKind::DeleteRecords(r) => r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| emit(p.error_code)),
        ResponseKind::InitProducerId(r) => emit(r.error_code),
        ResponseKind::DescribeConfigs(r) => r.results.iter().for_each(|x| emit(x.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|x| emit(x.error_code)),
        ResponseKind::DeleteGroups(r) => r.results.iter().for_each(|x| emit(x.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => r.responses.iter().for_each(|x| emit(x.error_code)),
        ResponseKind::DescribeCluster(r) => emit(r.error_code),
        // APIs we do not serve never reach here (the connection refuses them first).
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::MetadataResponse;

    #[test]
    fn every_level_counts_and_zero_is_skipped() {
        let topic = MetadataResponseTopic::default()
            .with_error_code(3)
            .with_partitions(vec![MetadataResponsePartition::default(), MetadataResponsePartition::default().with_error_code(5)]);
        let response = ResponseKind::Metadata(MetadataResponse::default().with_topics(vec![topic, MetadataResponseTopic::default()]));
        let mut seen = Vec::new();
        for_each_error(&response, |c| seen.push(c));
        assert_eq!(seen, vec![3, 5]);
    }
}
