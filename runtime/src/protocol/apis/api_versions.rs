//! ApiVersions: advertises the (API, min, max) table clients negotiate versions from.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::SUPPORTED_APIS;
use crate::broker::Broker;
use crate::protocol::RequestContext;

/// Handles one ApiVersions request. Errors are reported inside the response's error codes.
///
/// Tagged fields (supported/finalized features, zk_migration_ready) stay at their defaults so the
/// codec leaves them out: Debian's kcat 1.7.1 (librdkafka 2.0.2) cannot read them.
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    let _ = (broker, ctx, request);
    ApiVersionsResponse::default().with_api_keys(version_table())
}

/// The v0 reply to an ApiVersions request whose version we do not support: the client retries
/// with the highest version in our table.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(version_table())
}

fn version_table() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max))
        .collect()
}
