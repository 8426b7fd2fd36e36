//! AlterConfigs (KIP-133, the non-incremental API): the request's configs *replace* the
//! resource's whole set of dynamic configs; a key left out goes back to its default. Older admin
//! clients (kafka-python's `alter_configs` before IncrementalAlterConfigs, librdkafka's
//! `AlterConfigs`) use it. Values are validated exactly as IncrementalAlterConfigs' SET
//! (`broker::topic_config`), and the change goes through the same `Broker::set_topic_configs`.
//!
//! Broker configs are static here (flags, environment, file), so the broker resource has no
//! dynamic configs: replacing that empty set with an empty set succeeds, anything else is
//! INVALID_CONFIG, as IncrementalAlterConfigs answers.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::topic_config::{self, TopicConfigs};
use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, Operation, Resource};
use crate::protocol::error_code;
use crate::protocol::RequestContext;

/// Handles one AlterConfigs request. Errors are reported per resource.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let outcome = alter(broker, ctx, resource, request.validate_only).await;
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let (code, message) = outcome_error(&outcome);
        responses.push(response.with_error_code(code).with_error_message(message));
    }
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), BrokerError> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => {
            authorize(broker, ctx, Operation::AlterConfigs, Resource::Topic(name))?;
            let configs = replacement(resource)?;
            broker.topic(name).ok_or_else(|| BrokerError::UnknownTopic { topic: name.into() })?;
            broker.set_topic_configs(name, configs, validate_only).await
        }
        RESOURCE_BROKER => {
            authorize(broker, ctx, Operation::AlterConfigs, Resource::Cluster)?;
            if !(name.is_empty() || name == broker.config.node_id.to_string()) {
                return Err(BrokerError::InvalidRequest { reason: format!("this is broker {}, not {name}", broker.config.node_id) });
            }
            let first = distinct_entries(resource)?.into_iter().next();
            match first {
                None => Ok(()),
                Some((key, value)) => Err(BrokerError::InvalidConfig {
                    name: key,
                    value,
                    reason: "broker configs are static: set them with flags, SLUICE_* variables or the config file".into(),
                }),
            }
        }
        other => Err(BrokerError::InvalidRequest { reason: format!("AlterConfigs does not support resource type {other}") }),
    }
}

/// The topic's new set of overrides: exactly the request's entries, each validated.
fn replacement(resource: &AlterConfigsResource) -> Result<TopicConfigs, BrokerError> {
    let mut configs = TopicConfigs::new();
    for (key, value) in distinct_entries(resource)? {
        topic_config::set_or_reset(&mut configs, key, Some(value))?;
    }
    Ok(configs)
}

/// The entries as (name, value), refusing what Kafka refuses before looking at values: a null
/// value (there is nothing to reset to with a full replacement; leave the key out instead) and a
/// key named twice.
fn distinct_entries(resource: &AlterConfigsResource) -> Result<Vec<(String, String)>, BrokerError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(resource.configs.len());
    for entry in &resource.configs {
        let key = entry.name.to_string();
        if !seen.insert(key.clone()) {
            return Err(BrokerError::InvalidRequest { reason: format!("config {key} is named twice") });
        }
        let Some(value) = &entry.value else {
            return Err(BrokerError::InvalidRequest { reason: format!("null value not supported for {key}: leave it out to reset it") });
        };
        out.push((key, value.to_string()));
    }
    Ok(out)
}

/// A config change's result as the (error code, message) pair both AlterConfigs APIs answer
/// per resource: (0, none) when it succeeded.
pub(super) fn outcome_error(outcome: &Result<(), BrokerError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (error_code::code(e), Some(StrBytes::from_string(e.to_string()))),
    }
}
