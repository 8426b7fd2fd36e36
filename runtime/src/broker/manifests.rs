//! Applied manifest documents as cluster metadata: each change is recorded in the metadata log
//! (fsynced) and only then published, so `sluice get … -o yaml` returns what was applied, also
//! after a restart. The broker does not read the documents: `manifest` owns their fields.

use std::collections::BTreeMap;

use super::metadata_log::MetadataRecord;
use super::{Broker, BrokerError};

/// Largest stored document (as JSON), a bound on metadata record size.
pub const MANIFEST_BYTES_MAX: usize = 256 * 1024;
/// Stored documents, at most.
pub const MANIFESTS_MAX: usize = 10_000;

impl Broker {
    /// Every stored manifest document by `Kind/name`.
    pub async fn manifests(&self) -> BTreeMap<String, serde_json::Value> {
        self.manifests.lock().await.clone()
    }

    /// Stores `document` under `key` (replacing any), durably.
    pub async fn put_manifest(&self, key: String, document: serde_json::Value) -> Result<(), BrokerError> {
        let size = serde_json::to_vec(&document).map_or(usize::MAX, |v| v.len());
        if size > MANIFEST_BYTES_MAX {
            return Err(BrokerError::InvalidRequest {
                reason: format!("manifest {key} is {size} bytes as JSON; at most {MANIFEST_BYTES_MAX}"),
            });
        }
        // Held across the append so the log and the map change in the same order.
        let mut manifests = self.manifests.lock().await;
        if !manifests.contains_key(&key) && manifests.len() >= MANIFESTS_MAX {
            return Err(BrokerError::InvalidRequest { reason: format!("{MANIFESTS_MAX} manifests are stored already") });
        }
        self.append_metadata(vec![MetadataRecord::ManifestApplied { key: key.clone(), document: document.clone() }]).await?;
        manifests.insert(key, document);
        Ok(())
    }

    /// Deletes the document under `key`, durably; `false` when there is none.
    pub async fn delete_manifest(&self, key: &str) -> Result<bool, BrokerError> {
        let mut manifests = self.manifests.lock().await;
        if !manifests.contains_key(key) {
            return Ok(false);
        }
        self.append_metadata(vec![MetadataRecord::ManifestDeleted { key: key.to_string() }]).await?;
        manifests.remove(key);
        Ok(true)
    }
}
