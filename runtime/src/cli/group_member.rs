//! `sluice consume --group G` as a real consumer-group member: JoinGroup (with the v4+
//! MEMBER_ID_REQUIRED round trip), SyncGroup (computing the `range` assignment when elected
//! leader), Heartbeat between fetches, a rejoin when the coordinator rebalances, commits as the
//! member of the current generation, and LeaveGroup on exit. So two `sluice consume --group`
//! processes split a topic's partitions, and Java, librdkafka or kafka-python members of the same
//! group interoperate with them (they all speak the `consumer` protocol with `range`).
//!
//! Everything runs on the consumer's one connection: a fetch waits at most `FETCH_WAIT_MS`
//! (500 ms), far below the heartbeat interval, so a second connection would buy nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::kafka_client::KafkaClient;

const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 3;
/// The member is dropped if no heartbeat arrives for this long (Kafka's consumer default is 45 s;
/// a CLI that was killed should let its partitions go sooner).
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the coordinator waits for every member to rejoin during a rebalance.
pub const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Heartbeats are sent this often (a third of the session timeout, as Kafka clients do).
pub const HEARTBEAT_INTERVAL_MS: u64 = 3_000;
/// Join attempts (MEMBER_ID_REQUIRED, UNKNOWN_MEMBER_ID, a rebalance racing the sync) before
/// giving up.
const JOIN_ATTEMPTS_MAX: usize = 10;
/// The one assignor offered: every Kafka client implements it.
const ASSIGNOR: &str = "range";

// Kafka error codes the join loop reacts to.
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// This process's membership of `group`, consuming `topic`.
#[derive(Debug)]
pub struct Member {
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    /// The partitions of `topic` assigned to this member in this generation.
    pub assigned: Vec<i32>,
    last_heartbeat: Instant,
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn code_name(code: i16) -> String {
    use kafka_protocol::error::ParseResponseErrorCode;
    code.err().map_or_else(|| format!("error {code}"), |e| e.to_string())
}

impl Member {
    /// Joins `group` and waits for this member's assignment.
    pub async fn join(client: &mut KafkaClient, group: &str, topic: &str) -> anyhow::Result<Member> {
        let mut member = Member {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            assigned: Vec::new(),
            last_heartbeat: Instant::now(),
        };
        member.rejoin(client).await?;
        Ok(member)
    }

    /// The member id and generation, for commits.
    pub fn identity(&self) -> (i32, &str) {
        (self.generation, &self.member_id)
    }

    /// Joins (again) and syncs; afterwards `assigned` is this generation's assignment.
    pub async fn rejoin(&mut self, client: &mut KafkaClient) -> anyhow::Result<()> {
        for _ in 0..JOIN_ATTEMPTS_MAX {
            let subscription = encode_versioned(&ConsumerProtocolSubscription::default().with_topics(vec![s(&self.topic)]))?;
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(s(&self.member_id))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s(ASSIGNOR)).with_metadata(subscription)]);
            let joined = client.call(&request, JOIN_GROUP_VERSION).await?;
            match joined.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = joined.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                code => bail!("joining group {}: {}", self.group, code_name(code)),
            }
            self.member_id = joined.member_id.to_string();
            self.generation = joined.generation_id;
            let assignments =
                if joined.leader == joined.member_id { leader_assignments(client, &joined.members).await? } else { Vec::new() };
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(s(&self.member_id))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s(ASSIGNOR)))
                .with_assignments(assignments);
            let synced = client.call(&request, SYNC_GROUP_VERSION).await?;
            match synced.error_code {
                0 => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => continue,
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                code => bail!("syncing group {}: {}", self.group, code_name(code)),
            }
            self.assigned = decode_assignment(&synced.assignment, &self.topic)?;
            self.last_heartbeat = Instant::now();
            return Ok(());
        }
        bail!("could not join group {} in {JOIN_ATTEMPTS_MAX} attempts (the group keeps rebalancing)", self.group)
    }

    /// Heartbeats if the interval has passed; `true` when the group is rebalancing and this
    /// member must commit and rejoin.
    pub async fn heartbeat_if_due(&mut self, client: &mut KafkaClient) -> anyhow::Result<bool> {
        if self.last_heartbeat.elapsed() < Duration::from_millis(HEARTBEAT_INTERVAL_MS) {
            return Ok(false);
        }
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id));
        let response = client.call(&request, HEARTBEAT_VERSION).await?;
        self.last_heartbeat = Instant::now();
        match response.error_code {
            0 => Ok(false),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => Ok(true),
            UNKNOWN_MEMBER_ID => {
                // Dropped (e.g. the session expired): join as a new member.
                self.member_id.clear();
                Ok(true)
            }
            code => bail!("heartbeat to group {}: {}", self.group, code_name(code)),
        }
    }

    /// Leaves the group so its partitions move to the other members at once (not after the
    /// session timeout).
    pub async fn leave(&self, client: &mut KafkaClient) -> anyhow::Result<()> {
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_members(vec![MemberIdentity::default().with_member_id(s(&self.member_id))]);
        let response = client.call(&request, LEAVE_GROUP_VERSION).await?;
        if response.error_code != 0 {
            bail!("leaving group {}: {}", self.group, code_name(response.error_code));
        }
        Ok(())
    }
}

/// A consumer-protocol message with its version prefix (version 0: what every client reads).
fn encode_versioned(message: &impl Encodable) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    message.encode(&mut buf, 0)?;
    Ok(buf.freeze())
}

/// This member's partitions of `topic` from a SyncGroup assignment (empty bytes: none).
pub fn decode_assignment(bytes: &Bytes, topic: &str) -> anyhow::Result<Vec<i32>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        bail!("the group assignment is truncated");
    }
    let version = buf.get_i16();
    // Later versions only add fields at the end, so the highest version we know reads them.
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)).context("cannot decode the group assignment")?;
    let mut partitions: Vec<i32> =
        assignment.assigned_partitions.into_iter().filter(|tp| tp.topic.0.as_str() == topic).flat_map(|tp| tp.partitions).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

/// The leader's job: the `range` assignment for every member's subscription.
async fn leader_assignments(
    client: &mut KafkaClient,
    members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
) -> anyhow::Result<Vec<SyncGroupRequestAssignment>> {
    let mut subscriptions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in members {
        let mut buf = m.metadata.clone();
        let topics = if buf.remaining() >= 2 {
            let version = buf.get_i16();
            ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3))
                .map(|sub| sub.topics.iter().map(|t| t.to_string()).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        subscriptions.insert(m.member_id.to_string(), topics);
    }
    let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for topic in subscriptions.values().flatten() {
        if !partitions.contains_key(topic) {
            let found = client.partitions(topic, false).await.unwrap_or_default();
            partitions.insert(topic.clone(), found);
        }
    }
    let plan = range_assign(&subscriptions, &partitions);
    let mut out = Vec::new();
    for (member, topics) in plan {
        let assigned = topics
            .into_iter()
            .map(|(topic, parts)| AssignedPartitions::default().with_topic(TopicName(s(&topic))).with_partitions(parts))
            .collect();
        let bytes = encode_versioned(&ConsumerProtocolAssignment::default().with_assigned_partitions(assigned))?;
        out.push(SyncGroupRequestAssignment::default().with_member_id(s(&member)).with_assignment(bytes));
    }
    Ok(out)
}

/// Kafka's `range` assignor: per topic, its subscribers sorted by member id each take a
/// contiguous run of the sorted partitions, the first `partitions % members` one more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, Vec<i32>>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut plan: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions.keys().map(|m| (m.clone(), BTreeMap::new())).collect();
    for (topic, parts) in partitions {
        let mut parts = parts.clone();
        parts.sort_unstable();
        let subscribers: Vec<&String> = subscriptions.iter().filter(|(_, topics)| topics.contains(topic)).map(|(m, _)| m).collect();
        if subscribers.is_empty() {
            continue;
        }
        let (each, extra) = (parts.len() / subscribers.len(), parts.len() % subscribers.len());
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = each + usize::from(i < extra);
            if let Some(member_plan) = plan.get_mut(member) {
                member_plan.insert(topic.clone(), parts[next..next + take].to_vec());
            }
            next += take;
        }
    }
    plan
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 5 partitions over 2 subscribers: 3 + 2, contiguous, by member id; a member not subscribed
    /// to a topic gets none of it.
    #[test]
    fn range_assignment_matches_kafka() {
        let subs: BTreeMap<String, Vec<String>> = [("b".into(), vec!["t".into()]), ("a".into(), vec!["t".into(), "u".into()])].into();
        let parts: BTreeMap<String, Vec<i32>> = [("t".into(), vec![4, 3, 2, 1, 0]), ("u".into(), vec![0])].into();
        let plan = range_assign(&subs, &parts);
        assert_eq!(plan["a"]["t"], vec![0, 1, 2]);
        assert_eq!(plan["b"]["t"], vec![3, 4]);
        assert_eq!(plan["a"]["u"], vec![0]);
        assert!(!plan["b"].contains_key("u"));
    }

    /// An assignment encoded as this module writes it decodes to this topic's partitions only.
    #[test]
    fn assignment_round_trips() {
        let assigned = vec![
            AssignedPartitions::default().with_topic(TopicName(s("t"))).with_partitions(vec![2, 0]),
            AssignedPartitions::default().with_topic(TopicName(s("other"))).with_partitions(vec![1]),
        ];
        let bytes = encode_versioned(&ConsumerProtocolAssignment::default().with_assigned_partitions(assigned)).unwrap();
        assert_eq!(decode_assignment(&bytes, "t").unwrap(), vec![0, 2]);
        assert!(decode_assignment(&Bytes::new(), "t").unwrap().is_empty());
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0xff]), "t").is_err());
    }
}
