//! IncrementalAlterConfigs: SET / DELETE (and APPEND / SUBTRACT for `cleanup.policy`) on topic
//! configs; validated, recorded in the metadata log and applied to the live logs. Broker configs
//! are static (flags, environment, file) and cannot be altered.

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::topic_config::{self, TopicConfigs};
use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, Operation, Resource};
use crate::protocol::RequestContext;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Handles one IncrementalAlterConfigs request. Errors are reported inside the response's error codes.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let checked = match resource.resource_type {
            RESOURCE_TOPIC => authorize(broker, ctx, Operation::AlterConfigs, Resource::Topic(name)),
            RESOURCE_BROKER => authorize(broker, ctx, Operation::AlterConfigs, Resource::Cluster),
            _ => Ok(()),
        };
        let outcome = match resource.resource_type {
            _ if checked.is_err() => checked,
            RESOURCE_TOPIC => alter_topic(broker, resource, request.validate_only).await,
            RESOURCE_BROKER => Err(BrokerError::InvalidConfig {
                name: "broker".into(),
                value: resource.resource_name.to_string(),
                reason: "broker configs are static: set them with flags, SLUICE_* variables or the config file".into(),
            }),
            other => Err(BrokerError::InvalidRequest { reason: format!("resource type {other} is not supported") }),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let (code, message) = super::alter_configs::outcome_error(&outcome);
        responses.push(response.with_error_code(code).with_error_message(message));
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter_topic(broker: &Arc<Broker>, resource: &AlterConfigsResource, validate_only: bool) -> Result<(), BrokerError> {
    let name = resource.resource_name.as_str();
    let topic = broker.topic(name).ok_or_else(|| BrokerError::UnknownTopic { topic: name.into() })?;
    let mut configs: TopicConfigs = topic.configs.clone();
    for change in &resource.configs {
        let key = change.name.to_string();
        let value = change.value.as_ref().map(|v| v.to_string());
        let invalid = |reason: &str| BrokerError::InvalidConfig {
            name: key.clone(),
            value: value.clone().unwrap_or_default(),
            reason: reason.into(),
        };
        let known = topic_config::lookup(&key).ok_or_else(|| invalid("unknown topic config"))?;
        match change.config_operation {
            OP_SET => {
                let value = value.clone().ok_or_else(|| invalid("SET needs a value"))?;
                topic_config::set_or_reset(&mut configs, key, Some(value))?;
            }
            OP_DELETE => topic_config::set_or_reset(&mut configs, key, None)?,
            OP_APPEND | OP_SUBTRACT if known.kind == topic_config::ConfigKind::List => {
                let value = value.clone().ok_or_else(|| invalid("APPEND/SUBTRACT need a value"))?;
                let current = topic_config::effective(&configs, known).to_string();
                let mut items: Vec<String> = current.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if change.config_operation == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                let joined = items.join(",");
                topic_config::validate(&key, &joined)?;
                configs.insert(key, joined);
            }
            OP_APPEND | OP_SUBTRACT => return Err(invalid("APPEND and SUBTRACT apply only to list configs")),
            other => return Err(BrokerError::InvalidRequest { reason: format!("unknown config operation {other}") }),
        }
    }
    broker.set_topic_configs(name, configs, validate_only).await
}
