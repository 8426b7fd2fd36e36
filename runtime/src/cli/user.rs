//! `sluice user create|delete|list`: SCRAM users through the Kafka admin APIs, so the broker's
//! own authorization applies (the CLI authenticates as a super-user on SASL listeners).
//!
//! `create` salts and hashes the password here (PBKDF2, a fresh random salt per mechanism) and
//! sends only the salted password, as Kafka's own tools do.

use anyhow::bail;
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;

use super::kafka_client::{ConnectOptions, KafkaClient};
use crate::security::credentials::{DEFAULT_ITERATIONS, SALT_BYTES};
use crate::security::ScramMechanism;

/// What to do.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, Clone)]
pub enum UserCommand {
    /// Create or replace `user`'s credentials for `mechanisms`.
    Create { user: String, password: String, mechanisms: Vec<ScramMechanism>, iterations: i32 },
    /// Delete `user`'s credentials for `mechanisms`.
    Delete { user: String, mechanisms: Vec<ScramMechanism> },
    /// Print every user and their mechanisms.
    List,
}

/// Runs one command; returns what to print.
pub async fn run(options: &ConnectOptions, command: UserCommand) -> anyhow::Result<String> {
    let mut client = KafkaClient::connect(options).await?;
    match command {
        UserCommand::Create { user, password, mechanisms, iterations } => {
            let mut upsertions = Vec::new();
            for mechanism in &mechanisms {
                let mut salt = vec![0u8; SALT_BYTES];
                getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for a salt: {e}"))?;
                let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations.unsigned_abs());
                upsertions.push(
                    ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_string(user.clone()))
                        .with_mechanism(mechanism.wire_id())
                        .with_iterations(iterations)
                        .with_salt(Bytes::from(salt))
                        .with_salted_password(Bytes::from(salted)),
                );
            }
            // One request per mechanism: Kafka refuses a user named twice in one request.
            for upsertion in upsertions {
                alter(&mut client, AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion])).await?;
            }
            Ok(format!("created {user} ({})\n", names(&mechanisms)))
        }
        UserCommand::Delete { user, mechanisms } => {
            let deletions: Vec<ScramCredentialDeletion> = mechanisms
                .iter()
                .map(|m| ScramCredentialDeletion::default().with_name(StrBytes::from_string(user.clone())).with_mechanism(m.wire_id()))
                .collect();
            let mut deleted = Vec::new();
            let mut last_error = None;
            for deletion in deletions {
                let mechanism = ScramMechanism::from_wire_id(deletion.mechanism);
                match alter(&mut client, AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion])).await {
                    Ok(()) => deleted.extend(mechanism),
                    Err(e) => last_error = Some(e),
                }
            }
            match (deleted.is_empty(), last_error) {
                (true, Some(e)) => Err(e),
                _ => Ok(format!("deleted {user} ({})\n", names(&deleted))),
            }
        }
        UserCommand::List => {
            let response = client.call(&DescribeUserScramCredentialsRequest::default().with_users(None::<Vec<UserName>>), 0).await?;
            if response.error_code != 0 {
                bail!("listing users failed (error {}): {}", response.error_code, response.error_message.as_deref().unwrap_or(""));
            }
            let mut out = String::new();
            for result in response.results {
                let mechanisms: Vec<String> = result
                    .credential_infos
                    .iter()
                    .map(|i| match ScramMechanism::from_wire_id(i.mechanism) {
                        Some(m) => format!("{} (iterations={})", m.name(), i.iterations),
                        None => format!("mechanism {}", i.mechanism),
                    })
                    .collect();
                out.push_str(&format!("{}\t{}\n", result.user.as_str(), mechanisms.join(", ")));
            }
            Ok(out)
        }
    }
}

async fn alter(client: &mut KafkaClient, request: AlterUserScramCredentialsRequest) -> anyhow::Result<()> {
    let response = client.call(&request, 0).await?;
    for result in response.results {
        if result.error_code != 0 {
            bail!(
                "user {}: error {}: {}",
                result.user.as_str(),
                result.error_code,
                result.error_message.as_deref().unwrap_or("no message")
            );
        }
    }
    Ok(())
}

fn names(mechanisms: &[ScramMechanism]) -> String {
    mechanisms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

/// Checks an iteration count against the broker's bounds before sending.
pub fn validate_iterations(iterations: i32) -> anyhow::Result<i32> {
    use crate::security::credentials::{MAX_ITERATIONS, MIN_ITERATIONS};
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        bail!("--iterations must be within {MIN_ITERATIONS}..={MAX_ITERATIONS}");
    }
    Ok(iterations)
}

/// The default for `--iterations`.
pub const ITERATIONS_DEFAULT: i32 = DEFAULT_ITERATIONS;
