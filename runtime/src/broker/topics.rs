//! Topic lifecycle and producer ids: every change is validated, recorded in the metadata log
//! (fsynced), and only then published in memory. Changes are serialised by `Broker::admin`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use super::flusher::Flusher;
use super::metadata_log::{MetadataImage, MetadataRecord, METADATA_DIR};
use super::partition::{blocking, Partition, PartitionSettings};
use super::topic_config::{self, TopicConfigs};
use super::{Broker, BrokerError, Topic};
use crate::tier::Tier;

/// Kafka's limit on topic name length (`Topic.MAX_NAME_LENGTH`).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// The most partitions one topic may have; a limit on files and memory per request.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Producer ids handed out per metadata record.
const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Names used by the broker's own logs under the data directory.
const RESERVED_TOPICS: &[&str] = &["__cluster_metadata", "__consumer_offsets"];

/// `<data_dir>/<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let invalid = |reason: &str| BrokerError::InvalidTopic { topic: name.into(), reason: reason.into() };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not allowed"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(invalid(&format!("longer than {TOPIC_NAME_BYTES_MAX} characters")));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(invalid("only ASCII letters, digits, '.', '_' and '-' are allowed"));
    }
    if RESERVED_TOPICS.contains(&name) {
        return Err(invalid("reserved for the broker's internal log"));
    }
    Ok(())
}

/// Opens every partition of every topic in `image`. Blocking.
pub(super) fn open_all(
    data_dir: &Path,
    image: &MetadataImage,
    tier: &Arc<Tier>,
    flusher: &Arc<Flusher>,
) -> Result<HashMap<String, Arc<Topic>>, BrokerError> {
    let mut topics = HashMap::with_capacity(image.topics.len());
    for t in image.topics.values() {
        let partitions = open_partitions(data_dir, &t.name, t.topic_id, 0..t.partitions, &t.configs, tier, flusher)?;
        let topic = Topic { name: t.name.clone(), id: t.topic_id, partitions, configs: t.configs.clone() };
        topics.insert(t.name.clone(), Arc::new(topic));
    }
    Ok(topics)
}

fn open_partitions(
    data_dir: &Path,
    topic: &str,
    topic_id: Uuid,
    range: std::ops::Range<i32>,
    configs: &TopicConfigs,
    tier: &Arc<Tier>,
    flusher: &Arc<Flusher>,
) -> Result<Vec<Arc<Partition>>, BrokerError> {
    let settings = partition_settings(configs)?;
    range
        .map(|p| Partition::open(topic, topic_id, p, &partition_dir(data_dir, topic, p), settings.clone(), tier, flusher).map(Arc::new))
        .collect()
}

/// Topic configs converted to a partition's settings.
fn partition_settings(configs: &TopicConfigs) -> Result<PartitionSettings, BrokerError> {
    Ok(PartitionSettings { log: topic_config::to_log_config(configs)?, tier: topic_config::to_tier_settings(configs)? })
}

/// Removes directories of topics deleted in the metadata log whose removal a crash interrupted.
pub(super) fn remove_deleted_topic_dirs(data_dir: &Path, image: &MetadataImage) {
    if image.deleted_topics.is_empty() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((topic, partition)) = name.rsplit_once('-') else { continue };
        let is_partition = !partition.is_empty() && partition.bytes().all(|b| b.is_ascii_digit());
        if is_partition && name != METADATA_DIR && image.deleted_topics.contains(topic) && !image.topics.contains_key(topic) {
            if let Err(e) = super::fsutil::remove_dir_via_rename(&entry.path()) {
                tracing::warn!("cannot remove the directory of deleted topic {topic}: {e}");
            }
        }
    }
}

impl Broker {
    /// Creates a topic. `partitions` -1 means the broker default; `replication_factor` must be 1
    /// or -1. With `validate_only` nothing changes.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: TopicConfigs,
        validate_only: bool,
    ) -> Result<Arc<Topic>, BrokerError> {
        validate_topic_name(name)?;
        let partitions = if partitions == -1 { self.config.num_partitions } else { partitions };
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(BrokerError::InvalidPartitions {
                topic: name.into(),
                reason: format!("{partitions} is not in 1..={PARTITIONS_PER_TOPIC_MAX}"),
            });
        }
        if replication_factor != 1 && replication_factor != -1 {
            return Err(BrokerError::InvalidReplicationFactor { factor: replication_factor });
        }
        let settings = partition_settings(&configs)?;
        let _admin = self.admin.lock().await;
        if self.shutting_down() {
            return Err(BrokerError::ShuttingDown);
        }
        if self.topic(name).is_some() {
            return Err(BrokerError::TopicExists { topic: name.into() });
        }
        let topic_id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic { name: name.into(), id: topic_id, partitions: Vec::new(), configs }));
        }
        let record = MetadataRecord::TopicCreated { name: name.into(), topic_id, partitions, configs: configs.clone() };
        let (metadata, data_dir, topic, tier, flusher) =
            (Arc::clone(&self.metadata), self.config.data_dir.clone(), name.to_string(), Arc::clone(&self.tier), Arc::clone(&self.flusher));
        let opened = blocking("create topic", move || -> Result<Vec<Arc<Partition>>, BrokerError> {
            metadata.append(&[record])?;
            (0..partitions)
                .map(|p| {
                    Partition::open(&topic, topic_id, p, &partition_dir(&data_dir, &topic, p), settings.clone(), &tier, &flusher)
                        .map(Arc::new)
                })
                .collect()
        })
        .await??;
        let topic = Arc::new(Topic { name: name.into(), id: topic_id, partitions: opened, configs });
        self.topics.write().insert(name.into(), Arc::clone(&topic));
        tracing::info!(topic = name, partitions, %topic_id, "created topic");
        Ok(topic)
    }

    /// Creates `name` with the broker defaults if auto-creation is on and it does not exist.
    /// Returns the topic if it exists afterwards.
    pub async fn auto_create_topic(&self, name: &str) -> Result<Option<Arc<Topic>>, BrokerError> {
        if let Some(t) = self.topic(name) {
            return Ok(Some(t));
        }
        if !self.config.auto_create_topics {
            return Ok(None);
        }
        match self.create_topic(name, -1, -1, TopicConfigs::new(), false).await {
            Ok(t) => Ok(Some(t)),
            // Another request created it meanwhile.
            Err(BrokerError::TopicExists { .. }) => Ok(self.topic(name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic: records the deletion, unpublishes it, closes and removes its partitions.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, BrokerError> {
        let _admin = self.admin.lock().await;
        let topic = self.topic(name).ok_or_else(|| BrokerError::UnknownTopic { topic: name.into() })?;
        let record = MetadataRecord::TopicDeleted { name: name.into(), topic_id: topic.id };
        let metadata = Arc::clone(&self.metadata);
        blocking("delete topic", move || metadata.append(&[record])).await??;
        self.topics.write().remove(name);
        let dirs: Vec<PathBuf> = topic.partitions.iter().map(|p| p.log().dir().to_path_buf()).collect();
        let id = topic.id;
        drop(topic);
        // Requests still holding a partition finish against the open files; the rename keeps
        // the data out of sight of a restart either way.
        blocking("delete topic", move || {
            for dir in dirs {
                if let Err(e) = super::fsutil::remove_dir_via_rename(&dir) {
                    tracing::warn!("{e}");
                }
            }
        })
        .await?;
        // Kafka drops a deleted topic's committed offsets too. A failure leaves them behind, and
        // a consumer of a re-created topic with the same name could resume from them: warn.
        if let Err(e) = self.groups.delete_topic_offsets(name).await {
            tracing::warn!(topic = name, "cannot delete committed offsets of the deleted topic: {e}");
        }
        // The remote data goes too (descriptor first, so a restore never brings the topic back);
        // in the background, since a large topic has many objects and the store may be slow.
        let tier = Arc::clone(&self.tier);
        let topic_name = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = tier.delete_topic(&topic_name, id).await {
                tracing::warn!(topic = %topic_name, "cannot delete the deleted topic's remote data (left as garbage): {e}");
            }
        });
        tracing::info!(topic = name, topic_id = %id, "deleted topic");
        Ok(id)
    }

    /// Grows a topic to `total` partitions.
    pub async fn create_partitions(&self, name: &str, total: i32, validate_only: bool) -> Result<(), BrokerError> {
        let _admin = self.admin.lock().await;
        let topic = self.topic(name).ok_or_else(|| BrokerError::UnknownTopic { topic: name.into() })?;
        let current = topic.partitions.len() as i32;
        if total <= current || total > PARTITIONS_PER_TOPIC_MAX {
            return Err(BrokerError::InvalidPartitions {
                topic: name.into(),
                reason: format!(
                    "topic has {current} partitions; the new count {total} must be larger and at most {PARTITIONS_PER_TOPIC_MAX}"
                ),
            });
        }
        if validate_only {
            return Ok(());
        }
        let record = MetadataRecord::PartitionsAdded { name: name.into(), topic_id: topic.id, partitions: total };
        let (metadata, data_dir, t, tier, flusher) = (
            Arc::clone(&self.metadata),
            self.config.data_dir.clone(),
            Arc::clone(&topic),
            Arc::clone(&self.tier),
            Arc::clone(&self.flusher),
        );
        let added = blocking("create partitions", move || -> Result<Vec<Arc<Partition>>, BrokerError> {
            metadata.append(&[record])?;
            open_partitions(&data_dir, &t.name, t.id, current..total, &t.configs, &tier, &flusher)
        })
        .await??;
        let mut partitions = topic.partitions.clone();
        partitions.extend(added);
        let grown = Topic { name: topic.name.clone(), id: topic.id, partitions, configs: topic.configs.clone() };
        self.topics.write().insert(name.into(), Arc::new(grown));
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its live logs.
    pub async fn set_topic_configs(&self, name: &str, configs: TopicConfigs, validate_only: bool) -> Result<(), BrokerError> {
        let settings = partition_settings(&configs)?;
        let _admin = self.admin.lock().await;
        let topic = self.topic(name).ok_or_else(|| BrokerError::UnknownTopic { topic: name.into() })?;
        let enable = |c: &TopicConfigs| c.get("remote.storage.enable").is_none_or(|v| v == "true");
        if enable(&topic.configs) && !enable(&configs) {
            // The log's own retention would then delete segments never uploaded, leaving a gap
            // between remote and local history that no later upload can bridge (Kafka refuses
            // this change too). Switching to compaction stops uploads but deletes nothing.
            return Err(BrokerError::InvalidConfig {
                name: "remote.storage.enable".into(),
                value: "false".into(),
                reason: "tiered storage cannot be turned off for a topic once it is on".into(),
            });
        }
        if validate_only || topic.configs == configs {
            return Ok(());
        }
        let record = MetadataRecord::TopicConfigChanged { name: name.into(), topic_id: topic.id, configs: configs.clone() };
        let metadata = Arc::clone(&self.metadata);
        blocking("alter configs", move || metadata.append(&[record])).await??;
        for p in &topic.partitions {
            p.update_config(settings.clone());
        }
        let changed = Topic { name: topic.name.clone(), id: topic.id, partitions: topic.partitions.clone(), configs };
        self.topics.write().insert(name.into(), Arc::new(changed));
        Ok(())
    }

    /// Hands out a producer id that was never handed out before, even across restarts: ids come
    /// from blocks recorded in the metadata log before use.
    pub async fn allocate_producer_id(&self) -> Result<i64, BrokerError> {
        {
            let mut ids = self.producer_ids.lock();
            if ids.0 < ids.1 {
                ids.0 += 1;
                return Ok(ids.0 - 1);
            }
        }
        let _admin = self.admin.lock().await;
        let first_id = {
            let mut ids = self.producer_ids.lock();
            // Another request may have recorded a new block while we waited for the lock.
            if ids.0 < ids.1 {
                ids.0 += 1;
                return Ok(ids.0 - 1);
            }
            ids.1
        };
        let record = MetadataRecord::ProducerIdBlock { first_id, size: PRODUCER_ID_BLOCK_SIZE };
        let metadata = Arc::clone(&self.metadata);
        blocking("allocate producer ids", move || metadata.append(&[record])).await??;
        let mut ids = self.producer_ids.lock();
        *ids = (first_id + 1, first_id + PRODUCER_ID_BLOCK_SIZE);
        Ok(first_id)
    }

    fn shutting_down(&self) -> bool {
        self.is_shutting_down()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ü", "__consumer_offsets"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }
}
