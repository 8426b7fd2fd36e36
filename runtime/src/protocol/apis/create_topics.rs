//! CreateTopics: validates names, partition counts, replication factor (1 or -1) and configs,
//! then records each topic in the metadata log and opens its partitions.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::topic_config::{self, TopicConfigs};
use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{denied, may_create_topic, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Kafka's `DYNAMIC_TOPIC_CONFIG` config source: a topic override.
pub const SOURCE_TOPIC_CONFIG: i8 = 1;
/// Kafka's `DEFAULT_CONFIG` config source.
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Handles one CreateTopics request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let version = ctx.api_version;
    let mut results = Vec::with_capacity(request.topics.len());
    for (i, topic) in request.topics.iter().enumerate() {
        let name = topic.name.0.as_str();
        let duplicate = request.topics.iter().enumerate().any(|(j, t)| j != i && t.name == topic.name);
        let outcome = if duplicate {
            Err(BrokerError::InvalidRequest { reason: format!("topic {name} appears more than once in the request") })
        } else if !may_create_topic(broker, ctx, name) {
            // CREATE on the cluster or the topic; the refusal names the topic.
            Err(denied(ctx, Operation::Create, Resource::Topic(name)))
        } else {
            create(broker, topic, request.validate_only).await
        };
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        results.push(match outcome {
            Ok((id, partitions, configs)) => {
                let result = result.with_num_partitions(partitions).with_replication_factor(1);
                let result = if version >= 7 && !request.validate_only { result.with_topic_id(id) } else { result };
                if version >= 5 {
                    result.with_configs(Some(describe(&configs)))
                } else {
                    result
                }
            }
            Err(e) => result
                .with_error_code(error_code::code(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create(broker: &Arc<Broker>, topic: &CreatableTopic, validate_only: bool) -> Result<(uuid::Uuid, i32, TopicConfigs), BrokerError> {
    let mut configs = TopicConfigs::new();
    for c in &topic.configs {
        // A null value means "use the default", like Kafka.
        if let Some(value) = &c.value {
            topic_config::validate(c.name.as_str(), value.as_str())?;
            configs.insert(c.name.to_string(), value.to_string());
        }
    }
    let mut partitions = topic.num_partitions;
    let mut replication_factor = topic.replication_factor;
    if !topic.assignments.is_empty() {
        // Manual assignment: every replica list must be exactly this broker.
        let me = broker.config.node_id;
        if partitions != -1 || replication_factor != -1 || topic.assignments.iter().any(|a| a.broker_ids.iter().map(|b| b.0).ne([me])) {
            return Err(BrokerError::InvalidReplicaAssignment {
                reason: format!("replica assignments must list only broker {me}, with num_partitions and replication_factor -1"),
            });
        }
        partitions = topic.assignments.len() as i32;
        replication_factor = 1;
    }
    let created = broker.create_topic(topic.name.0.as_str(), partitions, replication_factor, configs, validate_only).await?;
    let count = if validate_only {
        if partitions == -1 {
            broker.config.num_partitions
        } else {
            partitions
        }
    } else {
        created.partitions.len() as i32
    };
    Ok((created.id, count, created.configs.clone()))
}

/// Every known config with its effective value and source.
fn describe(overrides: &TopicConfigs) -> Vec<CreatableTopicConfigs> {
    topic_config::KNOWN
        .iter()
        .map(|k| {
            let source = if overrides.contains_key(k.name) { SOURCE_TOPIC_CONFIG } else { SOURCE_DEFAULT_CONFIG };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(k.name))
                .with_value(Some(StrBytes::from_string(topic_config::effective(overrides, k).to_string())))
                .with_config_source(source)
        })
        .collect()
}
