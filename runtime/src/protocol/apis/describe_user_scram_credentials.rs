//! DescribeUserScramCredentials (v0): which mechanisms (and iterations) each user has. Never the
//! salts or keys.

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{CredentialInfo, DescribeUserScramCredentialsResult};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerError};
use crate::protocol::authorize::{authorize, Operation, Resource};
use crate::protocol::{error_code, RequestContext};

/// Handles one DescribeUserScramCredentials request. `users` null or empty: every user.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if let Err(e) = authorize(broker, ctx, Operation::Describe, Resource::Cluster) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(error_code::code(&e))
            .with_error_message(Some(StrBytes::from_string(e.to_string())));
    }
    let store = broker.credentials();
    let users: Vec<String> = match request.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => store.user_names(),
    };
    let mut results = Vec::with_capacity(users.len());
    for user in users {
        let result = DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.clone()));
        results.push(match store.describe(&user) {
            Some(infos) => result.with_credential_infos(
                infos.into_iter().map(|(m, i)| CredentialInfo::default().with_mechanism(m.wire_id()).with_iterations(i)).collect(),
            ),
            None => {
                let e = BrokerError::UnknownCredential { user: user.clone(), mechanism: "SCRAM" };
                result
                    .with_error_code(error_code::code(&e))
                    .with_error_message(Some(StrBytes::from_string(format!("user {user} has no SCRAM credentials"))))
            }
        });
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
