//! CreateAcls (v1–3): adds ACL bindings. Needs ALTER on the cluster, as in Kafka; answers
//! SECURITY_DISABLED on a broker without the authorizer. Bindings are recorded in the metadata
//! log before they take effect.

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, authorizer_enabled, Operation, Resource};
use crate::protocol::{error_code, RequestContext};
use crate::security::acl::AclBinding;

/// Handles one CreateAcls request. Errors are reported per creation.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let refusal = if authorizer_enabled(broker) {
        authorize(broker, ctx, Operation::Alter, Resource::Cluster).err()
    } else {
        Some(BrokerError::SecurityDisabled)
    };
    let results = match refusal {
        Some(e) => request.creations.iter().map(|_| failed(&e)).collect(),
        None => {
            let parsed = request
                .creations
                .iter()
                .map(|c| {
                    AclBinding::from_wire(
                        c.resource_type,
                        c.resource_name.as_str(),
                        c.resource_pattern_type,
                        c.principal.as_str(),
                        c.host.as_str(),
                        c.operation,
                        c.permission_type,
                    )
                })
                .collect();
            broker
                .create_acls(parsed)
                .await
                .into_iter()
                .map(|r| match r {
                    Ok(()) => AclCreationResult::default(),
                    Err(e) => failed(&e),
                })
                .collect()
        }
    };
    CreateAclsResponse::default().with_results(results)
}

fn failed(e: &BrokerError) -> AclCreationResult {
    AclCreationResult::default().with_error_code(error_code::code(e)).with_error_message(Some(StrBytes::from_string(e.to_string())))
}
