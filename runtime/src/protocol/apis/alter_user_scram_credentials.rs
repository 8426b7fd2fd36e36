//! AlterUserScramCredentials (v0): upsert or delete users' SCRAM credentials. Clients send the
//! salted password (never the password); the broker keeps only StoredKey and ServerKey.

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::users::CredentialChange;
use crate::broker::Broker;
use crate::protocol::authorize::{authorize, Operation, Resource};
use crate::protocol::{error_code, RequestContext};

/// Handles one AlterUserScramCredentials request. Errors are reported per user.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut changes = Vec::with_capacity(request.deletions.len() + request.upsertions.len());
    for d in request.deletions {
        changes.push(CredentialChange::Delete { user: d.name.to_string(), mechanism: d.mechanism });
    }
    for u in request.upsertions {
        changes.push(CredentialChange::Upsert {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        });
    }
    let users: Vec<String> = changes.iter().map(|c| c.user().to_string()).collect();
    if let Err(e) = authorize(broker, ctx, Operation::Alter, Resource::Cluster) {
        let mut seen = std::collections::HashSet::new();
        let refused = users
            .into_iter()
            .filter(|u| seen.insert(u.clone()))
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(u))
                    .with_error_code(error_code::code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string())))
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(refused);
    }
    let results = broker.alter_scram_credentials(changes).await;
    // Kafka answers one result per user; the first error for a user wins.
    let mut out: Vec<AlterUserScramCredentialsResult> = Vec::new();
    for (user, result) in users.into_iter().zip(results) {
        let entry = match out.iter_mut().position(|r| r.user.as_str() == user) {
            Some(i) => &mut out[i],
            None => {
                out.push(AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user)));
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        if let Err(e) = result {
            if entry.error_code == 0 {
                entry.error_code = error_code::code(&e);
                entry.error_message = Some(StrBytes::from_string(e.to_string()));
            }
        }
    }
    AlterUserScramCredentialsResponse::default().with_results(out)
}
