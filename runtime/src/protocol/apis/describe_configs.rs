//! DescribeConfigs: topic configs (every known one, with its effective value and whether it is
//! a topic override or the default) and this broker's static settings.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::create_topics::{SOURCE_DEFAULT_CONFIG, SOURCE_TOPIC_CONFIG};
use crate::broker::topic_config::{self, ConfigKind};
use crate::broker::Broker;
use crate::protocol::authorize::{allowed, Operation, Resource};
use crate::protocol::RequestContext;

/// Kafka's `ConfigResource.Type` code for a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` code for a broker.
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's `STATIC_BROKER_CONFIG` source.
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;

/// One described config before filtering and encoding.
struct Entry {
    name: String,
    value: String,
    source: i8,
    read_only: bool,
    kind: ConfigKind,
    doc: &'static str,
}

/// Handles one DescribeConfigs request. Errors are reported inside the response's error codes.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let version = ctx.api_version;
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let entries = match resource.resource_type {
            RESOURCE_TOPIC if !allowed(broker, ctx, Operation::DescribeConfigs, Resource::Topic(name)) => {
                Err((ResponseError::TopicAuthorizationFailed, format!("{} may not DESCRIBE_CONFIGS topic {name}", ctx.principal)))
            }
            RESOURCE_BROKER if !allowed(broker, ctx, Operation::DescribeConfigs, Resource::Cluster) => {
                Err((ResponseError::ClusterAuthorizationFailed, format!("{} may not DESCRIBE_CONFIGS the cluster", ctx.principal)))
            }
            RESOURCE_TOPIC => match broker.topic(name) {
                Some(topic) => Ok(topic_entries(&topic.configs)),
                None => Err((ResponseError::UnknownTopicOrPartition, format!("unknown topic {name}"))),
            },
            RESOURCE_BROKER if name.is_empty() || name == broker.config.node_id.to_string() => Ok(broker_entries(broker)),
            RESOURCE_BROKER => Err((ResponseError::InvalidRequest, format!("this is broker {}, not {name}", broker.config.node_id))),
            other => Err((ResponseError::InvalidRequest, format!("resource type {other} is not supported"))),
        };
        let result =
            DescribeConfigsResult::default().with_resource_type(resource.resource_type).with_resource_name(resource.resource_name.clone());
        results.push(match entries {
            Ok(entries) => {
                let wanted = |e: &Entry| resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name));
                let configs = entries
                    .into_iter()
                    .filter(wanted)
                    .map(|e| encode(e, version, request.include_synonyms, request.include_documentation))
                    .collect();
                result.with_configs(configs)
            }
            Err((code, message)) => result.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_entries(overrides: &topic_config::TopicConfigs) -> Vec<Entry> {
    topic_config::KNOWN
        .iter()
        .map(|k| Entry {
            name: k.name.to_string(),
            value: topic_config::effective(overrides, k).to_string(),
            source: if overrides.contains_key(k.name) { SOURCE_TOPIC_CONFIG } else { SOURCE_DEFAULT_CONFIG },
            read_only: false,
            kind: k.kind,
            doc: k.doc,
        })
        .collect()
}

fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let c = &broker.config;
    let entry = |name: &str, value: String, kind: ConfigKind, doc: &'static str| Entry {
        name: name.to_string(),
        value,
        source: SOURCE_STATIC_BROKER_CONFIG,
        read_only: true,
        kind,
        doc,
    };
    vec![
        entry("auto.create.topics.enable", c.auto_create_topics.to_string(), ConfigKind::String, "create unknown topics on Metadata"),
        entry("broker.id", c.node_id.to_string(), ConfigKind::Int, "this node's id"),
        entry("log.dirs", c.data_dir.display().to_string(), ConfigKind::String, "the data directory"),
        entry("log.retention.check.interval.ms", c.log_maintenance_interval_ms.to_string(), ConfigKind::Long, "how often retention runs"),
        entry("node.id", c.node_id.to_string(), ConfigKind::Int, "this node's id"),
        entry("num.partitions", c.num_partitions.to_string(), ConfigKind::Int, "partitions of auto-created topics"),
        entry("socket.request.max.bytes", c.max_frame_bytes.to_string(), ConfigKind::Int, "largest request accepted"),
    ]
}

fn encode(e: Entry, version: i16, synonyms: bool, documentation: bool) -> DescribeConfigsResourceResult {
    let value = Some(StrBytes::from_string(e.value.clone()));
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name.clone()))
        .with_value(value.clone())
        .with_read_only(e.read_only)
        .with_config_source(e.source);
    if synonyms {
        out.synonyms =
            vec![DescribeConfigsSynonym::default().with_name(StrBytes::from_string(e.name)).with_value(value).with_source(e.source)];
    }
    if version >= 3 {
        out.config_type = e.kind as i8;
        if documentation {
            out.documentation = Some(StrBytes::from_static_str(e.doc));
        }
    }
    out
}
