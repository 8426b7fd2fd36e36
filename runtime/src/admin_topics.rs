//! The topic and consumer-group routes of the admin HTTP API (bodies in [`crate::admin_api`]):
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/topics` | | 200 list of [`TopicSummary`] |
//! | `GET /v1/topics/{name}` | | 200 [`TopicDetail`] / 404 |
//! | `POST /v1/topics` | [`CreateTopic`] | 201 [`TopicDetail`] (200 with `validate_only`) / 409 / 400 |
//! | `PATCH /v1/topics/{name}` | [`AlterTopic`] | 200 [`TopicDetail`] / 404 / 400 |
//! | `DELETE /v1/topics/{name}` | | 204 / 404 |
//! | `GET /v1/groups` | | 200 list of [`GroupSummary`] |
//! | `GET /v1/groups/{id}` | | 200 [`GroupDetail`] / 404 |
//!
//! Every change goes through the same `Broker` functions as the Kafka APIs (CreateTopics,
//! CreatePartitions, IncrementalAlterConfigs, DeleteTopics), so validation and error messages
//! are the same whichever way a change arrives.
//!
//! Architecture Invariant: no topic or group rule lives here; this file only converts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;

use crate::admin::BrokerCell;
use crate::admin_api::{
    lag, AlterTopic, ConfigSource, ConfigValue, CreateTopic, GroupDetail, GroupOffset, GroupSummary, MemberInfo, PartitionInfo,
    TopicDetail, TopicPartitions, TopicSummary,
};
use crate::admin_auth::{may, require, AdminAuth};
use crate::admin_error::ApiError;
use crate::broker::topic_config::{self, TopicConfigs};
use crate::broker::{Broker, BrokerError, Topic};
use crate::group::GroupState;
use crate::protocol::authorize::{Operation, Resource};

/// Topics whose names start with this are written by the broker itself
/// (`_sluice_transform_logs`).
const INTERNAL_TOPIC_PREFIX: &str = "_sluice";

/// The routes, with the broker's cell as state.
pub fn routes(broker: BrokerCell) -> Router {
    Router::new()
        .route("/v1/topics", get(list_topics).post(create_topic))
        .route("/v1/topics/{name}", get(describe_topic).patch(alter_topic).delete(delete_topic))
        .route("/v1/groups", get(list_groups))
        .route("/v1/groups/{id}", get(describe_group))
        .with_state(broker)
}

fn open(cell: &BrokerCell) -> Result<Arc<Broker>, ApiError> {
    cell.get().cloned().ok_or_else(ApiError::starting)
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let (status, kind) = match &e {
            BrokerError::UnknownTopic { .. } => (StatusCode::NOT_FOUND, "unknown_topic"),
            BrokerError::TopicExists { .. } => (StatusCode::CONFLICT, "topic_exists"),
            BrokerError::InvalidTopic { .. } => (StatusCode::BAD_REQUEST, "invalid_topic"),
            BrokerError::InvalidPartitions { .. } => (StatusCode::BAD_REQUEST, "invalid_partitions"),
            BrokerError::InvalidReplicationFactor { .. } => (StatusCode::BAD_REQUEST, "invalid_replication_factor"),
            BrokerError::InvalidConfig { .. } => (StatusCode::BAD_REQUEST, "invalid_config"),
            BrokerError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            BrokerError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            BrokerError::AuthorizationFailed { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError { status, kind, message: e.to_string() }
    }
}

/// A JSON body that does not parse is a 400 naming the problem (axum's default is plain text).
fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))
}

fn is_internal(name: &str) -> bool {
    name.starts_with(INTERNAL_TOPIC_PREFIX)
}

async fn list_topics(State(cell): State<BrokerCell>, auth: Option<Extension<AdminAuth>>) -> Result<Json<Vec<TopicSummary>>, ApiError> {
    let broker = open(&cell)?;
    // Like Metadata: topics the principal may not describe are left out.
    let topics = broker
        .topics()
        .iter()
        .filter(|t| may(auth.as_ref().map(|e| &e.0), Operation::Describe, Resource::Topic(&t.name)))
        .map(|t| TopicSummary {
            name: t.name.clone(),
            partitions: t.partitions.len() as i32,
            configs: t.configs.clone(),
            internal: is_internal(&t.name),
        })
        .collect();
    Ok(Json(topics))
}

/// Every known config with its effective value and source (as DescribeConfigs reports them).
fn effective_configs(overrides: &TopicConfigs) -> BTreeMap<String, ConfigValue> {
    topic_config::KNOWN
        .iter()
        .map(|k| {
            let source = if overrides.contains_key(k.name) { ConfigSource::Topic } else { ConfigSource::Default };
            (k.name.to_string(), ConfigValue { value: topic_config::effective(overrides, k).to_string(), source })
        })
        .collect()
}

fn detail(topic: &Topic) -> TopicDetail {
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| PartitionInfo {
            partition: i as i32,
            log_start_offset: p.log_start_offset(),
            high_watermark: p.high_watermark(),
            size_bytes: p.log().size_bytes(),
            segments: p.log().segment_count(),
        })
        .collect();
    TopicDetail {
        name: topic.name.clone(),
        topic_id: topic.id.to_string(),
        internal: is_internal(&topic.name),
        partitions,
        configs: effective_configs(&topic.configs),
    }
}

fn existing(broker: &Broker, name: &str) -> Result<Arc<Topic>, ApiError> {
    broker.topic(name).ok_or_else(|| BrokerError::UnknownTopic { topic: name.into() }.into())
}

async fn describe_topic(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
) -> Result<Json<TopicDetail>, ApiError> {
    let broker = open(&cell)?;
    require(auth.as_ref().map(|e| &e.0), Operation::Describe, Resource::Topic(&name))?;
    Ok(Json(detail(existing(&broker, &name)?.as_ref())))
}

async fn create_topic(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    json: Result<Json<CreateTopic>, JsonRejection>,
) -> Result<(StatusCode, Json<TopicDetail>), ApiError> {
    let broker = open(&cell)?;
    let req = body(json)?;
    // CreateTopics' rule, the same function.
    crate::protocol::authorize::create_topic_rule(|op, resource| require(auth.as_ref().map(|e| &e.0), op, resource), &req.name)?;
    // The same call CreateTopics makes: it validates the name, count and every config.
    let created = broker.create_topic(&req.name, req.partitions.unwrap_or(-1), -1, req.configs, req.validate_only).await?;
    if req.validate_only {
        // Nothing was opened: describe what would be created.
        let count = req.partitions.unwrap_or(broker.config.num_partitions);
        let partitions = (0..count)
            .map(|partition| PartitionInfo { partition, log_start_offset: 0, high_watermark: 0, size_bytes: 0, segments: 0 })
            .collect();
        let would_be = TopicDetail {
            name: created.name.clone(),
            topic_id: String::new(),
            internal: is_internal(&created.name),
            partitions,
            configs: effective_configs(&created.configs),
        };
        return Ok((StatusCode::OK, Json(would_be)));
    }
    Ok((StatusCode::CREATED, Json(detail(&created))))
}

async fn alter_topic(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
    json: Result<Json<AlterTopic>, JsonRejection>,
) -> Result<Json<TopicDetail>, ApiError> {
    let broker = open(&cell)?;
    let req = body(json)?;
    // IncrementalAlterConfigs needs ALTER_CONFIGS, CreatePartitions ALTER.
    if !req.configs.is_empty() {
        require(auth.as_ref().map(|e| &e.0), Operation::AlterConfigs, Resource::Topic(&name))?;
    }
    if req.partitions.is_some() {
        require(auth.as_ref().map(|e| &e.0), Operation::Alter, Resource::Topic(&name))?;
    }
    let topic = existing(&broker, &name)?;
    if !req.configs.is_empty() {
        // IncrementalAlterConfigs' SET and DELETE, then the same broker call it makes.
        let mut configs = topic.configs.clone();
        for (key, value) in req.configs {
            topic_config::set_or_reset(&mut configs, key, value)?;
        }
        broker.set_topic_configs(&name, configs, false).await?;
    }
    if let Some(total) = req.partitions {
        // CreatePartitions' call; asking for the current count is not a change, so not an error.
        if total != topic.partitions.len() as i32 {
            broker.create_partitions(&name, total, false).await?;
        }
    }
    Ok(Json(detail(existing(&broker, &name)?.as_ref())))
}

async fn delete_topic(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let broker = open(&cell)?;
    require(auth.as_ref().map(|e| &e.0), Operation::Delete, Resource::Topic(&name))?;
    broker.delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(State(cell): State<BrokerCell>, auth: Option<Extension<AdminAuth>>) -> Result<Json<Vec<GroupSummary>>, ApiError> {
    let broker = open(&cell)?;
    // Like ListGroups: only groups the principal may describe.
    let groups = broker
        .groups
        .list_groups(&[])
        .into_iter()
        .filter(|g| may(auth.as_ref().map(|e| &e.0), Operation::Describe, Resource::Group(&g.group_id)))
        .map(|g| {
            let members = broker.groups.describe_group(&g.group_id).members.len();
            GroupSummary { group_id: g.group_id, state: g.state.as_str().to_string(), protocol: g.protocol_type, members }
        })
        .collect();
    Ok(Json(groups))
}

/// The partitions in a consumer-protocol assignment; empty if it is not one (another protocol
/// type, or not Stable yet).
fn decode_assignment(bytes: &[u8]) -> Vec<TopicPartitions> {
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = bytes::Buf::get_i16(&mut buf);
    // Later versions only add fields at the end, so the highest version we know reads them.
    let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) else { return Vec::new() };
    assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| TopicPartitions { topic: tp.topic.0.to_string(), partitions: tp.partitions })
        .collect()
}

async fn describe_group(
    State(cell): State<BrokerCell>,
    auth: Option<Extension<AdminAuth>>,
    Path(id): Path<String>,
) -> Result<Json<GroupDetail>, ApiError> {
    let broker = open(&cell)?;
    require(auth.as_ref().map(|e| &e.0), Operation::Describe, Resource::Group(&id))?;
    let d = broker.groups.describe_group(&id);
    if d.state == GroupState::Dead {
        return Err(ApiError { status: StatusCode::NOT_FOUND, kind: "unknown_group", message: format!("unknown consumer group {id}") });
    }
    let consumer = d.protocol_type == "consumer";
    let members = d
        .members
        .into_iter()
        .map(|m| MemberInfo {
            member_id: m.member_id,
            client_id: m.client_id,
            host: m.client_host,
            assignment: if consumer { decode_assignment(&m.assignment) } else { Vec::new() },
        })
        .collect();
    let offsets: Vec<GroupOffset> = broker
        .groups
        .committed_offsets(&id)
        .into_iter()
        .map(|(topic, partition, committed)| {
            let high_watermark = broker.partition(&topic, partition).map_or(-1, |p| p.high_watermark());
            let lag = if high_watermark < 0 { -1 } else { lag(high_watermark, committed.offset) };
            GroupOffset { topic, partition, committed_offset: committed.offset, high_watermark, lag }
        })
        .collect();
    let total_lag = offsets.iter().map(|o| o.lag.max(0)).sum();
    Ok(Json(GroupDetail {
        group_id: id,
        state: d.state.as_str().to_string(),
        protocol_type: d.protocol_type,
        protocol: d.protocol,
        members,
        offsets,
        total_lag,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// A member's assignment as a Java/librdkafka consumer writes it decodes to topic → partitions;
    /// bytes that are not an assignment give an empty list instead of an error.
    #[test]
    fn assignments_decode_and_garbage_is_empty() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![0, 2])]);
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, 1);
        assignment.encode(&mut buf, 1).unwrap();
        let decoded = decode_assignment(&buf);
        assert_eq!(decoded, vec![TopicPartitions { topic: "orders".into(), partitions: vec![0, 2] }]);
        assert!(decode_assignment(&[0, 1, 0xff, 0xff, 0xff]).is_empty());
        assert!(decode_assignment(&[]).is_empty());
    }
}
