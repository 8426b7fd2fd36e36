//! ACLs as cluster metadata: each change is validated, recorded in the metadata log (fsynced),
//! and only then published to the [`AclStore`] the authorizer reads. Changes are serialised with
//! topic and credential changes by `Broker::admin`, like `users`.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::metadata_log::MetadataRecord;
use super::partition::blocking;
use super::{Broker, BrokerError};
use crate::security::acl::{AclBinding, AclFilter, AclStore, InvalidAcl};

/// Most bindings one CreateAcls or DeleteAcls request may add or remove (a bound on one metadata
/// batch; Kafka has none).
pub const ACL_CHANGES_PER_REQUEST_MAX: usize = 10_000;

impl Broker {
    /// The published ACLs (the authorizer reads these).
    pub fn acls(&self) -> &AclStore {
        &self.acls
    }

    /// Adds `creations` (each already parsed, or why it could not be); one result per creation,
    /// in order. Creating a binding that exists succeeds without a record, as in Kafka.
    pub async fn create_acls(&self, creations: Vec<Result<AclBinding, InvalidAcl>>) -> Vec<Result<(), BrokerError>> {
        let _admin = self.admin.lock().await;
        let mut results = Vec::with_capacity(creations.len());
        let mut fresh = BTreeSet::new();
        for creation in creations {
            results.push(match creation {
                Err(source) => Err(BrokerError::InvalidAcl { source }),
                Ok(_) if fresh.len() >= ACL_CHANGES_PER_REQUEST_MAX => {
                    Err(BrokerError::InvalidRequest { reason: format!("more than {ACL_CHANGES_PER_REQUEST_MAX} ACLs in one request") })
                }
                Ok(binding) => {
                    if !self.acls.contains(&binding) {
                        fresh.insert(binding);
                    }
                    Ok(())
                }
            });
        }
        if fresh.is_empty() {
            return results;
        }
        let records: Vec<MetadataRecord> = fresh.iter().map(|acl| MetadataRecord::AclCreated { acl: acl.clone() }).collect();
        if let Err(e) = self.record_acl_changes(records).await {
            return results.into_iter().map(|r| r.and(Err(unrecorded(&e)))).collect();
        }
        for binding in fresh {
            tracing::info!(acl = %binding, "ACL created");
            self.acls.insert(binding);
        }
        results
    }

    /// Removes every binding each filter matches; per filter, the bindings it removed (a binding
    /// matched by two filters is reported under both, as in Kafka).
    pub async fn delete_acls(&self, filters: Vec<Result<AclFilter, InvalidAcl>>) -> Vec<Result<Vec<AclBinding>, BrokerError>> {
        let _admin = self.admin.lock().await;
        let mut results: Vec<Result<Vec<AclBinding>, BrokerError>> = Vec::with_capacity(filters.len());
        let mut doomed = BTreeSet::new();
        for filter in filters {
            results.push(match filter {
                Err(source) => Err(BrokerError::InvalidAcl { source }),
                Ok(filter) => {
                    let matched = self.acls.matching(&filter);
                    doomed.extend(matched.iter().cloned());
                    Ok(matched)
                }
            });
        }
        if doomed.is_empty() {
            return results;
        }
        if doomed.len() > ACL_CHANGES_PER_REQUEST_MAX {
            let e = BrokerError::InvalidRequest { reason: format!("the filters match more than {ACL_CHANGES_PER_REQUEST_MAX} ACLs") };
            return results.into_iter().map(|r| r.and(Err(unrecorded(&e)))).collect();
        }
        let records: Vec<MetadataRecord> = doomed.iter().map(|acl| MetadataRecord::AclDeleted { acl: acl.clone() }).collect();
        if let Err(e) = self.record_acl_changes(records).await {
            return results.into_iter().map(|r| r.and(Err(unrecorded(&e)))).collect();
        }
        for binding in doomed {
            tracing::info!(acl = %binding, "ACL deleted");
            self.acls.remove(&binding);
        }
        results
    }

    /// Appends and fsyncs; the caller holds the admin lock.
    async fn record_acl_changes(&self, records: Vec<MetadataRecord>) -> Result<(), BrokerError> {
        if self.is_shutting_down() {
            return Err(BrokerError::ShuttingDown);
        }
        let metadata = Arc::clone(&self.metadata);
        let written = blocking("record ACL changes", move || metadata.append(&records)).await;
        written.and_then(|r| r).inspect_err(|e| tracing::error!("cannot record ACL changes: {e}"))
    }
}

/// The error every change of a batch that could not be recorded gets.
fn unrecorded(e: &BrokerError) -> BrokerError {
    match e {
        BrokerError::ShuttingDown => BrokerError::ShuttingDown,
        BrokerError::InvalidRequest { reason } => BrokerError::InvalidRequest { reason: reason.clone() },
        other => BrokerError::MetadataCorrupt { offset: -1, reason: format!("ACL change not recorded: {other}") },
    }
}
