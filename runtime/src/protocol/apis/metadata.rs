//! Metadata: this broker as the only node and leader of every partition, and the requested
//! topics (auto-created when the broker and the request allow it).

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::partition::LEADER_EPOCH;
use crate::broker::{Broker, Topic};
use crate::protocol::authorize::{
    allowed, authorized_operations, may_create_topic, Operation, Resource, CLUSTER_OPERATIONS, TOPIC_OPERATIONS,
};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Handles one Metadata request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let version = ctx.api_version;
    let node_id = BrokerId(broker.config.node_id);
    let (host, port) = ctx.advertised();
    let node = MetadataResponseBroker::default().with_node_id(node_id).with_host(StrBytes::from_string(host.to_string())).with_port(port);
    // v0: an empty list means all topics (v1+ uses null for that). Before v4 there is no flag
    // and clients expect Kafka's default behaviour: auto-create.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let topic_operations = version >= 8 && request.include_topic_authorized_operations;
    let cluster_operations = (8..=10).contains(&version) && request.include_cluster_authorized_operations;
    let requested = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let topics = match requested {
        // "Every topic" means every topic this principal may describe; the rest stay hidden.
        None => broker
            .topics()
            .iter()
            .filter(|t| allowed(broker, ctx, Operation::Describe, Resource::Topic(&t.name)))
            .map(|t| describe(t, node_id, version))
            .collect(),
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for wanted in requested {
                out.push(lookup(broker, ctx, wanted.name.as_ref().map(|n| n.as_str()), wanted.topic_id, allow_auto_create).await);
            }
            out
        }
    };
    let mut topics: Vec<MetadataResponseTopic> = topics;
    if topic_operations {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.topic_authorized_operations = authorized_operations(broker, ctx, Resource::Topic(name.0.as_str()), &TOPIC_OPERATIONS);
            }
        }
    }
    let mut response = MetadataResponse::default().with_brokers(vec![node]).with_controller_id(node_id).with_topics(topics);
    if cluster_operations {
        response.cluster_authorized_operations = authorized_operations(broker, ctx, Resource::Cluster, &CLUSTER_OPERATIONS);
    }
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(broker.cluster_id().to_string()));
    }
    response
}

async fn lookup(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    name: Option<&str>,
    topic_id: uuid::Uuid,
    auto_create: bool,
) -> MetadataResponseTopic {
    let version = ctx.api_version;
    let describable = |name: &str| allowed(broker, ctx, Operation::Describe, Resource::Topic(name));
    let unknown = |code: ResponseError| {
        MetadataResponseTopic::default()
            .with_error_code(code.code())
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
            .with_topic_id(if version >= 10 { topic_id } else { uuid::Uuid::nil() })
    };
    let Some(name) = name else {
        // v12+ may ask by id only.
        // An id the principal may not describe is answered as unknown, as Kafka does.
        return match broker.topic_by_id(topic_id) {
            Some(t) if describable(&t.name) => describe(&t, broker_node(broker), version),
            _ => unknown(ResponseError::UnknownTopicId),
        };
    };
    if !describable(name) {
        return unknown(ResponseError::TopicAuthorizationFailed);
    }
    if auto_create && broker.topic(name).is_none() && !may_create_topic(broker, ctx, name) {
        return unknown(ResponseError::TopicAuthorizationFailed);
    }
    let found = if auto_create {
        match broker.auto_create_topic(name).await {
            Ok(t) => t,
            Err(e) => return unknown(error_code::response_error(&e)),
        }
    } else {
        broker.topic(name)
    };
    match found {
        Some(t) => describe(&t, broker_node(broker), version),
        None => {
            let invalid = crate::broker::validate_topic_name(name).is_err();
            unknown(if invalid { ResponseError::InvalidTopicException } else { ResponseError::UnknownTopicOrPartition })
        }
    }
}

fn broker_node(broker: &Broker) -> BrokerId {
    BrokerId(broker.config.node_id)
}

fn describe(topic: &Topic, me: BrokerId, version: i16) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut out =
                MetadataResponsePartition::default().with_partition_index(p.index).with_replica_nodes(vec![me]).with_isr_nodes(vec![me]);
            out.leader_id = me;
            if version >= 7 {
                out.leader_epoch = LEADER_EPOCH;
            }
            out
        })
        .collect();
    let mut out =
        MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.name.clone())))).with_partitions(partitions);
    if version >= 10 {
        out.topic_id = topic.id;
    }
    out
}
