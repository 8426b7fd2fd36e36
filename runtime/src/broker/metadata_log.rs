//! The metadata log (KRaft-style): every change to cluster metadata is a versioned JSON record,
//! appended in a RecordBatch to the internal partition `<data_dir>/__cluster_metadata-0`, fsynced
//! before the change takes effect, and replayed into a [`MetadataImage`] at start.
//!
//! Replication will later put this log under Raft; until then this broker is its only writer.
//!
//! # Record format
//! Each record value is `{"version":1,"type":"<kind>",...fields}`; see [`MetadataRecord`]. Keys are
//! empty. A record with an unknown `version` stops the broker (refusing to start beats silently
//! ignoring metadata written by a newer Sluice).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::topic_config::{metadata_log_config, TopicConfigs};
use super::{now_ms, BrokerError};
use crate::log::PartitionLog;
use crate::security::acl::AclBinding;
use crate::security::credentials::{ScramCredential, ScramMechanism};

/// The metadata log's directory name under the data directory (Kafka's KRaft topic name).
pub const METADATA_DIR: &str = "__cluster_metadata-0";
/// The record format version this code writes and can read.
const RECORD_VERSION: u32 = 1;
/// Bytes read per step while replaying.
const REPLAY_READ_BYTES: usize = 1024 * 1024;

/// One metadata change. Fields carry Kafka's names for the same things.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// Written once, when the data directory is first used.
    ClusterCreated {
        cluster_id: String,
    },
    TopicCreated {
        name: String,
        topic_id: Uuid,
        partitions: i32,
        configs: TopicConfigs,
    },
    TopicDeleted {
        name: String,
        topic_id: Uuid,
    },
    /// `partitions` is the new total.
    PartitionsAdded {
        name: String,
        topic_id: Uuid,
        partitions: i32,
    },
    /// `configs` replaces all of the topic's overrides.
    TopicConfigChanged {
        name: String,
        topic_id: Uuid,
        configs: TopicConfigs,
    },
    /// Producer ids `[first_id, first_id + size)` are handed out; after a restart allocation
    /// continues after the highest recorded block, so an id is never reused.
    ProducerIdBlock {
        first_id: i64,
        size: i64,
    },
    /// A transform deployed or redeployed. `spec` is the transform's own JSON document: the
    /// broker stores it without knowing its fields (`transform::spec` owns them).
    /// (`transform_version`, not `version`: the record envelope owns that name.)
    TransformDeployed {
        name: String,
        transform_version: u64,
        module_sha256: String,
        spec: serde_json::Value,
    },
    TransformDeleted {
        name: String,
    },
    /// Paused by an operator or halted by its error policy (`reason`), or resumed.
    TransformStateChanged {
        name: String,
        paused: bool,
        reason: Option<String>,
    },
    /// A user's SCRAM credential for one mechanism was set (salted and hashed: the password is
    /// never recorded). Binary fields are base64.
    UserScramCredentialUpserted {
        user: String,
        mechanism: ScramMechanism,
        iterations: i32,
        salt: String,
        stored_key: String,
        server_key: String,
    },
    /// A user's SCRAM credential for one mechanism was removed.
    UserScramCredentialDeleted {
        user: String,
        mechanism: ScramMechanism,
    },
    /// A manifest document applied by `sluice apply`, as written (YAML as JSON), under
    /// `Kind/name`. The broker stores it without knowing its fields (`manifest` owns them).
    ManifestApplied {
        key: String,
        document: serde_json::Value,
    },
    /// The stored manifest document under `key` was deleted.
    ManifestDeleted {
        key: String,
    },
    /// An ACL binding was added (see `security::acl::model`).
    AclCreated {
        acl: AclBinding,
    },
    /// An ACL binding was removed.
    AclDeleted {
        acl: AclBinding,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    version: u32,
    #[serde(flatten)]
    record: MetadataRecord,
}

/// One topic as the metadata log describes it.
#[allow(missing_docs)] // the fields of `MetadataRecord::TopicCreated`
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: i32,
    pub configs: TopicConfigs,
}

/// One transform as the metadata log describes it.
#[allow(missing_docs)] // the fields of `MetadataRecord::TransformDeployed` and `TransformStateChanged`
#[derive(Debug, Clone, PartialEq)]
pub struct TransformImage {
    pub name: String,
    pub version: u64,
    pub module_sha256: String,
    pub spec: serde_json::Value,
    pub paused: bool,
    pub reason: Option<String>,
}

/// The state that replaying the metadata log produces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    /// Set by the first record ever written.
    pub cluster_id: Option<String>,
    /// Live topics by name.
    pub topics: BTreeMap<String, TopicImage>,
    /// First producer id not yet covered by a recorded block.
    pub next_producer_id: i64,
    /// Names of deleted topics (not re-created since): leftover directories may be removed.
    pub deleted_topics: BTreeSet<String>,
    /// Deployed transforms by name.
    pub transforms: BTreeMap<String, TransformImage>,
    /// SCRAM credentials by user, then mechanism.
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Applied manifest documents by `Kind/name`.
    pub manifests: BTreeMap<String, serde_json::Value>,
    /// ACL bindings in force.
    pub acls: BTreeSet<AclBinding>,
}

impl MetadataImage {
    /// Applies one record. An inconsistent record is an error: the log is the source of truth
    /// and must replay exactly as it was written.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), String> {
        match record {
            MetadataRecord::ClusterCreated { cluster_id } => {
                self.cluster_id.get_or_insert_with(|| cluster_id.clone());
            }
            MetadataRecord::TopicCreated { name, topic_id, partitions, configs } => {
                if self.topics.contains_key(name) {
                    return Err(format!("topic {name} created twice"));
                }
                self.deleted_topics.remove(name);
                let topic = TopicImage { name: name.clone(), topic_id: *topic_id, partitions: *partitions, configs: configs.clone() };
                self.topics.insert(name.clone(), topic);
            }
            MetadataRecord::TopicDeleted { name, topic_id } => {
                self.topic_mut(name, topic_id)?;
                self.topics.remove(name);
                self.deleted_topics.insert(name.clone());
            }
            MetadataRecord::PartitionsAdded { name, topic_id, partitions } => {
                let topic = self.topic_mut(name, topic_id)?;
                if *partitions < topic.partitions {
                    return Err(format!("topic {name} shrinks from {} to {partitions} partitions", topic.partitions));
                }
                topic.partitions = *partitions;
            }
            MetadataRecord::TopicConfigChanged { name, topic_id, configs } => {
                self.topic_mut(name, topic_id)?.configs = configs.clone();
            }
            MetadataRecord::ProducerIdBlock { first_id, size } => {
                self.next_producer_id = self.next_producer_id.max(first_id.saturating_add(*size));
            }
            MetadataRecord::TransformDeployed { name, transform_version: version, module_sha256, spec } => {
                // A redeploy keeps the paused state; the new version resumes where the old stopped.
                let (paused, reason) = self.transforms.get(name).map_or((false, None), |t| (t.paused, t.reason.clone()));
                let image = TransformImage {
                    name: name.clone(),
                    version: *version,
                    module_sha256: module_sha256.clone(),
                    spec: spec.clone(),
                    paused,
                    reason,
                };
                self.transforms.insert(name.clone(), image);
            }
            MetadataRecord::TransformDeleted { name } => {
                self.transforms.remove(name).ok_or_else(|| format!("no transform {name} to delete"))?;
            }
            MetadataRecord::TransformStateChanged { name, paused, reason } => {
                let t = self.transforms.get_mut(name).ok_or_else(|| format!("no transform {name}"))?;
                t.paused = *paused;
                t.reason = reason.clone();
            }
            MetadataRecord::UserScramCredentialUpserted { user, mechanism, iterations, salt, stored_key, server_key } => {
                let credential = credential_from_record(*iterations, salt, stored_key, server_key)?;
                self.scram_credentials.entry(user.clone()).or_default().insert(*mechanism, credential);
            }
            MetadataRecord::UserScramCredentialDeleted { user, mechanism } => {
                let Some(credentials) = self.scram_credentials.get_mut(user) else {
                    return Err(format!("no SCRAM credentials for user {user} to delete"));
                };
                credentials.remove(mechanism);
                if credentials.is_empty() {
                    self.scram_credentials.remove(user);
                }
            }
            MetadataRecord::ManifestApplied { key, document } => {
                self.manifests.insert(key.clone(), document.clone());
            }
            MetadataRecord::ManifestDeleted { key } => {
                self.manifests.remove(key).ok_or_else(|| format!("no manifest {key} to delete"))?;
            }
            MetadataRecord::AclCreated { acl } => {
                self.acls.insert(acl.clone());
            }
            MetadataRecord::AclDeleted { acl } => {
                if !self.acls.remove(acl) {
                    return Err(format!("no ACL {acl} to delete"));
                }
            }
        }
        Ok(())
    }

    fn topic_mut(&mut self, name: &str, topic_id: &Uuid) -> Result<&mut TopicImage, String> {
        match self.topics.get_mut(name) {
            Some(t) if t.topic_id == *topic_id => Ok(t),
            _ => Err(format!("no topic {name} with id {topic_id}")),
        }
    }
}

/// The record for an upserted credential.
pub fn credential_record(user: &str, mechanism: ScramMechanism, credential: &ScramCredential) -> MetadataRecord {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    MetadataRecord::UserScramCredentialUpserted {
        user: user.to_string(),
        mechanism,
        iterations: credential.iterations,
        salt: b64.encode(&credential.salt),
        stored_key: b64.encode(&credential.stored_key),
        server_key: b64.encode(&credential.server_key),
    }
}

fn credential_from_record(iterations: i32, salt: &str, stored_key: &str, server_key: &str) -> Result<ScramCredential, String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |field: &str, value: &str| b64.decode(value).map_err(|e| format!("credential {field} is not base64: {e}"));
    Ok(ScramCredential {
        salt: decode("salt", salt)?,
        iterations,
        stored_key: decode("stored_key", stored_key)?,
        server_key: decode("server_key", server_key)?,
    })
}

/// The metadata log: append-and-fsync, replay.
pub struct MetadataLog {
    log: PartitionLog,
}

impl MetadataLog {
    /// Opens (or creates) the metadata log in `data_dir` and replays it. Blocking.
    pub fn open(data_dir: &Path) -> Result<(Self, MetadataImage), BrokerError> {
        let log = PartitionLog::open(&data_dir.join(METADATA_DIR), metadata_log_config(), now_ms())
            .map_err(|source| BrokerError::MetadataLog { source })?;
        let metadata = MetadataLog { log };
        let image = metadata.replay()?;
        Ok((metadata, image))
    }

    fn replay(&self) -> Result<MetadataImage, BrokerError> {
        let mut image = MetadataImage::default();
        let end = self.log.log_end_offset();
        let mut offset = self.log.log_start_offset();
        while offset < end {
            let read = self.log.read(offset, REPLAY_READ_BYTES, end).map_err(|source| BrokerError::MetadataLog { source })?;
            let mut bytes: Bytes = read.records;
            if bytes.is_empty() {
                return Err(BrokerError::MetadataCorrupt { offset, reason: "no batch where one was expected".into() });
            }
            let corrupt = |reason: String| BrokerError::MetadataCorrupt { offset, reason };
            let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| corrupt(format!("{e:#}")))?;
            for record in sets.iter().flat_map(|s| s.records.iter()) {
                if record.offset < offset {
                    continue;
                }
                let corrupt = |reason: String| BrokerError::MetadataCorrupt { offset: record.offset, reason };
                let value = record.value.as_deref().ok_or_else(|| corrupt("record without a value".into()))?;
                let envelope: Envelope = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
                if envelope.version != RECORD_VERSION {
                    return Err(corrupt(format!(
                        "record version {} is not supported (this build reads version {RECORD_VERSION})",
                        envelope.version
                    )));
                }
                image.apply(&envelope.record).map_err(corrupt)?;
                offset = record.offset + 1;
            }
        }
        Ok(image)
    }

    /// Appends `records` as one batch and fsyncs it. Blocking. The caller applies them to its
    /// in-memory state only after this returns `Ok`.
    pub fn append(&self, records: &[MetadataRecord]) -> Result<(), BrokerError> {
        let now = now_ms();
        let encode_error = |reason: String| BrokerError::MetadataCorrupt { offset: self.log.log_end_offset(), reason };
        let mut batch = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let value = serde_json::to_vec(&Envelope { version: RECORD_VERSION, record: record.clone() })
                .map_err(|e| encode_error(e.to_string()))?;
            let i = i32::try_from(i).map_err(|_| encode_error("too many records".into()))?;
            batch.push(Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                // offset - sequence constant keeps all records in one batch (see FACTS.md).
                sequence: i,
                timestamp: now,
                key: None,
                value: Some(Bytes::from(value)),
                headers: Default::default(),
                delete_horizon: false,
            });
        }
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &batch, &options).map_err(|e| encode_error(format!("{e:#}")))?;
        let info = self.log.append(&buf, 0, now).map_err(|source| BrokerError::MetadataLog { source })?;
        self.log.flush_to(info.last_offset + 1).map_err(|source| BrokerError::MetadataLog { source })?;
        self.log.set_high_watermark(info.last_offset + 1);
        Ok(())
    }

    /// Writes the clean-shutdown checkpoint.
    pub fn close(&self) -> Result<(), BrokerError> {
        self.log.close().map_err(|source| BrokerError::MetadataLog { source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written survive a reopen and replay to the same image.
    #[test]
    fn append_then_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Uuid::new_v4();
        {
            let (log, image) = MetadataLog::open(dir.path()).expect("open");
            assert_eq!(image, MetadataImage::default());
            log.append(&[MetadataRecord::ClusterCreated { cluster_id: "c1".into() }]).expect("append");
            log.append(&[
                MetadataRecord::TopicCreated { name: "t".into(), topic_id: id, partitions: 2, configs: TopicConfigs::new() },
                MetadataRecord::ProducerIdBlock { first_id: 0, size: 1000 },
            ])
            .expect("append");
            log.append(&[MetadataRecord::PartitionsAdded { name: "t".into(), topic_id: id, partitions: 3 }]).expect("append");
            let spec = serde_json::json!({"name": "x", "version": 9});
            log.append(&[
                MetadataRecord::TransformDeployed {
                    name: "x".into(),
                    transform_version: 2,
                    module_sha256: "ab".into(),
                    spec: spec.clone(),
                },
                MetadataRecord::TransformStateChanged { name: "x".into(), paused: true, reason: Some("halted".into()) },
            ])
            .expect("append");
        }
        let (_, image) = MetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(image.cluster_id.as_deref(), Some("c1"));
        assert_eq!(image.topics["t"].partitions, 3);
        assert_eq!(image.next_producer_id, 1000);
        let x = &image.transforms["x"];
        assert_eq!((x.version, x.paused, x.reason.as_deref()), (2, true, Some("halted")));
        assert_eq!(x.spec["version"], 9);
    }

    /// Credentials replay salted and hashed; a deletion removes the user's last mechanism.
    #[test]
    fn credentials_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ScramCredential::from_password(ScramMechanism::Sha512, "clear-password-0042", 4096).expect("rng");
        {
            let (log, _) = MetadataLog::open(dir.path()).expect("open");
            log.append(&[credential_record("alice", ScramMechanism::Sha512, &c)]).expect("append");
            log.append(&[credential_record("bob", ScramMechanism::Sha512, &c)]).expect("append");
            log.append(&[MetadataRecord::UserScramCredentialDeleted { user: "bob".into(), mechanism: ScramMechanism::Sha512 }])
                .expect("append");
        }
        let (_, image) = MetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(image.scram_credentials["alice"][&ScramMechanism::Sha512], c);
        assert!(!image.scram_credentials.contains_key("bob"));
        let raw = std::fs::read_dir(dir.path().join(METADATA_DIR)).expect("dir");
        for entry in raw.flatten() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert!(!bytes.windows(19).any(|w| w == b"clear-password-0042"), "no clear password on disk");
        }
    }

    /// ACL bindings replay: created ones stay, deleted ones are gone.
    #[test]
    fn acls_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = AclBinding::from_wire(2, "orders", 4, "User:alice", "*", 3, 3).expect("valid");
        let deny = AclBinding::from_wire(2, "orders", 3, "User:alice", "*", 4, 2).expect("valid");
        {
            let (log, _) = MetadataLog::open(dir.path()).expect("open");
            log.append(&[MetadataRecord::AclCreated { acl: read.clone() }, MetadataRecord::AclCreated { acl: deny.clone() }])
                .expect("append");
            log.append(&[MetadataRecord::AclDeleted { acl: deny.clone() }]).expect("append");
        }
        let (_, image) = MetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(image.acls.iter().collect::<Vec<_>>(), vec![&read]);
    }
}
