//! DescribeAcls (v1–3): the bindings that pass a filter, grouped by resource pattern. Needs
//! DESCRIBE on the cluster, as in Kafka; SECURITY_DISABLED without the authorizer.

use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, authorizer_enabled, Operation, Resource};
use crate::protocol::{error_code, RequestContext};
use crate::security::acl::AclFilter;

/// Handles one DescribeAcls request. Errors are reported at the top of the response.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let failed = |e: BrokerError| {
        DescribeAclsResponse::default().with_error_code(error_code::code(&e)).with_error_message(Some(StrBytes::from_string(e.to_string())))
    };
    if !authorizer_enabled(broker) {
        return failed(BrokerError::SecurityDisabled);
    }
    if let Err(e) = authorize(broker, ctx, Operation::Describe, Resource::Cluster) {
        return failed(e);
    }
    let filter = AclFilter::from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_ref().map(|s| s.as_str()),
        request.pattern_type_filter,
        request.principal_filter.as_ref().map(|s| s.as_str()),
        request.host_filter.as_ref().map(|s| s.as_str()),
        request.operation,
        request.permission_type,
    );
    let filter = match filter {
        Ok(f) => f,
        Err(source) => return failed(BrokerError::InvalidAcl { source }),
    };
    // The store is ordered by resource type, name and pattern first, so one pass groups them.
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in broker.acls().matching(&filter) {
        let description = AclDescription::default()
            .with_principal(StrBytes::from_string(acl.principal.clone()))
            .with_host(StrBytes::from_string(acl.host.clone()))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        let same = |r: &DescribeAclsResource| {
            r.resource_type == acl.resource_type.code()
                && r.resource_name.as_str() == acl.resource_name
                && r.pattern_type == acl.pattern_type.code()
        };
        match resources.last_mut() {
            Some(last) if same(last) => last.acls.push(description),
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(acl.resource_type.code())
                    .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
                    .with_pattern_type(acl.pattern_type.code())
                    .with_acls(vec![description]),
            ),
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}
