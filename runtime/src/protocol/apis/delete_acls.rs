//! DeleteAcls (v1–3): removes the bindings each filter matches and reports them. Needs ALTER on
//! the cluster, as in Kafka; SECURITY_DISABLED without the authorizer. Deletions are recorded in
//! the metadata log before they take effect.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, authorizer_enabled, Operation, Resource};
use crate::protocol::{error_code, RequestContext};
use crate::security::acl::AclFilter;

/// Handles one DeleteAcls request. Errors are reported per filter.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let refusal = if authorizer_enabled(broker) {
        authorize(broker, ctx, Operation::Alter, Resource::Cluster).err()
    } else {
        Some(BrokerError::SecurityDisabled)
    };
    if let Some(e) = refusal {
        return DeleteAclsResponse::default().with_filter_results(request.filters.iter().map(|_| failed(&e)).collect());
    }
    let filters = request
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.as_str()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.as_str()),
                f.host_filter.as_ref().map(|s| s.as_str()),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let results = broker
        .delete_acls(filters)
        .await
        .into_iter()
        .map(|r| match r {
            Err(e) => failed(&e),
            Ok(deleted) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted
                    .into_iter()
                    .map(|acl| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.resource_type.code())
                            .with_resource_name(StrBytes::from_string(acl.resource_name))
                            .with_pattern_type(acl.pattern_type.code())
                            .with_principal(StrBytes::from_string(acl.principal))
                            .with_host(StrBytes::from_string(acl.host))
                            .with_operation(acl.operation.code())
                            .with_permission_type(acl.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn failed(e: &BrokerError) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default().with_error_code(error_code::code(e)).with_error_message(Some(StrBytes::from_string(e.to_string())))
}
