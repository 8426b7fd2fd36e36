//! DescribeLogDirs: the one log directory of this broker (the data directory, as an absolute
//! path) with the size of every partition in it, and (v4+) the volume's total and usable bytes.
//!
//! As in Kafka: DESCRIBE on the cluster is required (refused: no results, and from v3 the
//! top-level CLUSTER_AUTHORIZATION_FAILED); `topics` null means every partition, and partitions
//! that do not exist are left out rather than reported. The offset lag is Kafka's for a leader,
//! `max(high watermark - log end offset, 0)`: it is non-zero only for a future replica being
//! moved between directories, which a single directory never has.

use std::path::Path;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::{Broker, Partition};
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Handles one DescribeLogDirs request.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !allowed(broker, ctx, Operation::Describe, Resource::Cluster) {
        return DescribeLogDirsResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics.iter().any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
    };
    let mut topics = Vec::new();
    for topic in broker.topics() {
        let partitions: Vec<DescribeLogDirsPartition> =
            topic.partitions.iter().filter(|p| wanted(&topic.name, p.index)).map(|p| describe_partition(p)).collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default().with_name(TopicName(StrBytes::from_string(topic.name.clone()))).with_partitions(partitions),
            );
        }
    }
    let data_dir = &broker.config.data_dir;
    let (total_bytes, usable_bytes) = volume_bytes(data_dir);
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(data_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    DescribeLogDirsResponse::default().with_results(vec![result])
}

fn describe_partition(p: &Partition) -> DescribeLogDirsPartition {
    let lag = (p.high_watermark() - p.log_end_offset()).max(0);
    DescribeLogDirsPartition::default()
        .with_partition_index(p.index)
        .with_partition_size(i64::try_from(p.log().size_bytes()).unwrap_or(i64::MAX))
        .with_offset_lag(lag)
        .with_is_future_key(false)
}

/// (total, usable) bytes of the volume holding `dir`, as Java's `FileStore.getTotalSpace` and
/// `getUsableSpace` report them; -1 each (Kafka's "unknown") if the volume cannot be asked.
fn volume_bytes(dir: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(s.f_frsize)).unwrap_or(i64::MAX);
            (bytes(s.f_blocks), bytes(s.f_bavail))
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot read the data directory's volume size: {e}");
            (-1, -1)
        }
    }
}
