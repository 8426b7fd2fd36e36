//! OffsetDelete: removing some committed offsets of a group, by Kafka's rules
//! (`GroupCoordinator.handleDeleteOffsets`):
//! - a group with neither members nor committed offsets (or a deleted one) is GROUP_ID_NOT_FOUND;
//! - an Empty group loses the offsets asked for;
//! - a `consumer` group with members keeps the offsets of topics some member subscribes to
//!   (GROUP_SUBSCRIBED_TO_TOPIC for those partitions) and loses the others;
//! - a group with members of another protocol type is NON_EMPTY_GROUP.
//!
//! Deletions are tombstones in `__consumer_offsets`, fsynced before the answer, so they survive a
//! restart like a group deletion does. A partition without a committed offset is answered
//! without an error, as Kafka does.

use std::collections::BTreeSet;

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use super::state::Group;
use super::{now_ms, GroupCoordinator, GroupOpError, GroupState};

/// The newest ConsumerProtocolSubscription version kafka-protocol decodes; newer members' metadata
/// starts with the same fields, so it is read as this version (Kafka's `ConsumerProtocol` rule).
const SUBSCRIPTION_VERSION_MAX: i16 = 3;

impl GroupCoordinator {
    /// Deletes the committed offsets of `partitions` in `group_id`. `Ok` holds, per partition in
    /// order, `None` (deleted, or nothing to delete) or GROUP_SUBSCRIBED_TO_TOPIC; `Err(Rejected)`
    /// is a group-level error for the whole request.
    pub async fn delete_offsets(&self, group_id: &str, partitions: &[(String, i32)]) -> Result<Vec<Option<ResponseError>>, GroupOpError> {
        let subscribed = match self.group(group_id) {
            Some(cell) => {
                let g = cell.lock();
                match g.state {
                    GroupState::Dead => return Err(GroupOpError::Rejected(ResponseError::GroupIdNotFound)),
                    GroupState::Empty => BTreeSet::new(),
                    _ if g.protocol_type.as_deref() == Some("consumer") => subscribed_topics(&g),
                    _ => return Err(GroupOpError::Rejected(ResponseError::NonEmptyGroup)),
                }
            }
            None if self.offsets.has_group(group_id) => BTreeSet::new(),
            None => return Err(GroupOpError::Rejected(ResponseError::GroupIdNotFound)),
        };
        let results: Vec<Option<ResponseError>> =
            partitions.iter().map(|(topic, _)| subscribed.contains(topic).then_some(ResponseError::GroupSubscribedToTopic)).collect();
        let doomed: Vec<(String, i32)> =
            partitions.iter().zip(&results).filter(|(_, error)| error.is_none()).map(|(p, _)| p.clone()).collect();
        let deleted = self.offsets.delete_partitions(group_id, &doomed, now_ms()).await?;
        if deleted > 0 {
            tracing::info!(group = %group_id, offsets = deleted, "committed offsets deleted");
        }
        Ok(results)
    }
}

/// Every topic any member subscribes to, from its metadata for the group's protocol (all of its
/// protocols while none is selected yet). Metadata that does not decode subscribes to nothing,
/// as in Kafka.
fn subscribed_topics(g: &Group) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    for member in g.members.values() {
        let chosen: Vec<&bytes::Bytes> = match &g.protocol_name {
            Some(name) => member.protocols.iter().filter(|(n, _)| n == name).map(|(_, m)| m).collect(),
            None => member.protocols.iter().map(|(_, m)| m).collect(),
        };
        for metadata in chosen {
            let mut buf = metadata.clone();
            if buf.remaining() < 2 {
                continue;
            }
            let version = buf.get_i16().clamp(0, SUBSCRIPTION_VERSION_MAX);
            if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut buf, version) {
                topics.extend(subscription.topics.iter().map(|t| t.to_string()));
            }
        }
    }
    topics
}
