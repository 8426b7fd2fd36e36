//! SCRAM credentials as cluster metadata: each change is validated, recorded in the metadata log
//! (fsynced), and only then published to the [`CredentialStore`] that logins read. Changes are
//! serialised with topic changes by `Broker::admin`.

use std::collections::HashSet;

use super::metadata_log::{credential_record, MetadataRecord};
use super::partition::blocking;
use super::{Broker, BrokerError};
use crate::security::credentials::{MAX_ITERATIONS, MIN_ITERATIONS};
use crate::security::{CredentialStore, ScramCredential, ScramMechanism};

/// Longest user name accepted (a bound on metadata record size; Kafka has none).
pub const USER_NAME_BYTES_MAX: usize = 256;

#[allow(missing_docs)] // fields are named for what they hold
/// One requested change, as AlterUserScramCredentials carries it (mechanism still a wire id).
#[derive(Debug)]
pub enum CredentialChange {
    /// Set the credential derived from a client-salted password.
    Upsert { user: String, mechanism: i8, iterations: i32, salt: Vec<u8>, salted_password: Vec<u8> },
    /// Remove the user's credential for one mechanism.
    Delete { user: String, mechanism: i8 },
}

impl CredentialChange {
    /// The user this change concerns.
    pub fn user(&self) -> &str {
        match self {
            CredentialChange::Upsert { user, .. } | CredentialChange::Delete { user, .. } => user,
        }
    }
}

impl Broker {
    /// The published SCRAM credentials (logins read these).
    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// Applies `changes`; one result per change, in order. Valid changes are recorded in one
    /// metadata batch; a user named twice in one request fails every change for that user, as
    /// in Kafka.
    pub async fn alter_scram_credentials(&self, changes: Vec<CredentialChange>) -> Vec<Result<(), BrokerError>> {
        let _admin = self.admin.lock().await;
        let mut seen = HashSet::new();
        let duplicates: HashSet<String> =
            changes.iter().filter(|c| !seen.insert(c.user().to_string())).map(|c| c.user().to_string()).collect();
        let mut results = Vec::with_capacity(changes.len());
        let mut records = Vec::new();
        let mut publish = Vec::new();
        for change in &changes {
            let checked = if duplicates.contains(change.user()) {
                Err(BrokerError::DuplicateUser { user: change.user().to_string() })
            } else {
                self.check_change(change)
            };
            match checked {
                Ok((record, effect)) => {
                    records.push(record);
                    publish.push(effect);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if records.is_empty() {
            return results;
        }
        let metadata = std::sync::Arc::clone(&self.metadata);
        let written = blocking("alter SCRAM credentials", move || metadata.append(&records)).await;
        if let Err(e) = written.and_then(|r| r) {
            tracing::error!("cannot record SCRAM credential changes: {e}");
            // Every change that was going to be written failed the same way.
            return results
                .into_iter()
                .map(|r| r.and(Err(BrokerError::MetadataCorrupt { offset: -1, reason: format!("credential change not recorded: {e}") })))
                .collect();
        }
        for effect in publish {
            match effect {
                Effect::Upsert(user, mechanism, credential) => self.credentials.upsert(&user, mechanism, credential),
                Effect::Delete(user, mechanism) => {
                    self.credentials.delete(&user, mechanism);
                }
            }
        }
        results
    }

    /// Validates one change and prepares its record and in-memory effect.
    fn check_change(&self, change: &CredentialChange) -> Result<(MetadataRecord, Effect), BrokerError> {
        let user = change.user();
        let unacceptable = |reason: &str| BrokerError::UnacceptableCredential { user: user.to_string(), reason: reason.into() };
        if user.is_empty() {
            return Err(unacceptable("the user name is empty"));
        }
        if user.len() > USER_NAME_BYTES_MAX {
            return Err(unacceptable(&format!("the user name is longer than {USER_NAME_BYTES_MAX} bytes")));
        }
        match change {
            CredentialChange::Upsert { mechanism, iterations, salt, salted_password, .. } => {
                let mechanism =
                    ScramMechanism::from_wire_id(*mechanism).ok_or(BrokerError::UnsupportedSaslMechanism { mechanism: *mechanism })?;
                if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(iterations) {
                    return Err(unacceptable(&format!("iterations {iterations} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")));
                }
                if salt.is_empty() || salted_password.is_empty() {
                    return Err(unacceptable("empty salt or salted password"));
                }
                let credential = ScramCredential::from_salted_password(mechanism, salt.clone(), *iterations, salted_password);
                Ok((credential_record(user, mechanism, &credential), Effect::Upsert(user.to_string(), mechanism, credential)))
            }
            CredentialChange::Delete { mechanism, .. } => {
                let mechanism =
                    ScramMechanism::from_wire_id(*mechanism).ok_or(BrokerError::UnsupportedSaslMechanism { mechanism: *mechanism })?;
                if self.credentials.get(user, mechanism).is_none() {
                    return Err(BrokerError::UnknownCredential { user: user.to_string(), mechanism: mechanism.name() });
                }
                let record = MetadataRecord::UserScramCredentialDeleted { user: user.to_string(), mechanism };
                Ok((record, Effect::Delete(user.to_string(), mechanism)))
            }
        }
    }

    /// Creates `user` with both SCRAM credentials for `password` unless the user already exists
    /// (so a password changed later through the API survives restarts). For a fresh SASL-only
    /// broker to be usable at all.
    pub async fn ensure_bootstrap_user(&self, user: &str, password: &str) -> Result<(), BrokerError> {
        if self.credentials.contains_user(user) {
            return Ok(());
        }
        let mut changes = Vec::new();
        for mechanism in ScramMechanism::ALL {
            let mut salt = vec![0u8; crate::security::credentials::SALT_BYTES];
            getrandom::fill(&mut salt).map_err(|e| BrokerError::InvalidRequest { reason: format!("no randomness for a salt: {e}") })?;
            let iterations = crate::security::credentials::DEFAULT_ITERATIONS;
            let salted_password = mechanism.salted_password(password.as_bytes(), &salt, iterations.unsigned_abs());
            changes.push(CredentialChange::Upsert { user: user.into(), mechanism: mechanism.wire_id(), iterations, salt, salted_password });
        }
        // Two changes for one user are one logical upsert here, not a duplicate: apply each alone.
        for change in changes {
            if let Some(Err(e)) = self.alter_scram_credentials(vec![change]).await.into_iter().next() {
                return Err(e);
            }
        }
        tracing::info!(user, "created the bootstrap SASL user");
        Ok(())
    }
}

enum Effect {
    Upsert(String, ScramMechanism, ScramCredential),
    Delete(String, ScramMechanism),
}
