//! Topic descriptors: each tiered topic's name, id, partition count and config overrides, kept
//! beside its data in the store. A broker started on an empty data directory with the same store
//! and node id reads them back and re-creates its topics (with their ids, so the object keys
//! match); each partition then restarts its empty local log at the remote end offset.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{keys, Tier, TierError};

/// The descriptor format version.
pub const DESCRIPTOR_VERSION: u32 = 1;

/// What is needed to re-create a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TopicDescriptor {
    pub version: u32,
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

impl Tier {
    /// Publishes a topic's descriptor unless this process already published the same one.
    pub async fn publish_topic(&self, descriptor: &TopicDescriptor) -> Result<(), TierError> {
        if self.published_topics.lock().get(&descriptor.topic_id) == Some(descriptor) {
            return Ok(());
        }
        let _descriptors = self.descriptors.lock().await;
        if self.deleted_topics.lock().contains(&descriptor.topic_id) {
            return Ok(());
        }
        let key = keys::topic_dir(&self.handle.prefix, self.node_id, &descriptor.name, descriptor.topic_id).clone().join(keys::TOPIC_FILE);
        // Serialising plain data with string keys cannot fail.
        let bytes = serde_json::to_vec_pretty(descriptor).unwrap_or_default();
        self.handle.store.put(&key, PutPayload::from(bytes)).await.map_err(|e| TierError::store("put", &key, e))?;
        self.published_topics.lock().insert(descriptor.topic_id, descriptor.clone());
        Ok(())
    }

    /// Every topic descriptor of this node in the store, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicDescriptor>, TierError> {
        let root = keys::topics_root(&self.handle.prefix, self.node_id);
        let listing = self.handle.store.list_with_delimiter(Some(&root)).await.map_err(|e| TierError::store("list", &root, e))?;
        let mut out = Vec::new();
        for dir in listing.common_prefixes {
            let key = dir.clone().join(keys::TOPIC_FILE);
            let bytes = match self.handle.store.get(&key).await {
                Ok(got) => got.bytes().await.map_err(|e| TierError::store("get", &key, e))?,
                // A deleted topic whose objects are still being removed.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(TierError::store("get", &key, e)),
            };
            let d: TopicDescriptor =
                serde_json::from_slice(&bytes).map_err(|e| TierError::BadManifest { key: key.to_string(), reason: e.to_string() })?;
            if d.version != DESCRIPTOR_VERSION {
                return Err(TierError::BadManifest {
                    key: key.to_string(),
                    reason: format!("descriptor version {} is not {DESCRIPTOR_VERSION}", d.version),
                });
            }
            out.push(d);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes a topic's remote data: the descriptor first (so a restore no longer sees the
    /// topic), then every object under it.
    pub async fn delete_topic(&self, name: &str, topic_id: Uuid) -> Result<(), TierError> {
        let descriptors = self.descriptors.lock().await;
        self.deleted_topics.lock().insert(topic_id);
        self.published_topics.lock().remove(&topic_id);
        let dir = keys::topic_dir(&self.handle.prefix, self.node_id, name, topic_id);
        let descriptor = dir.clone().join(keys::TOPIC_FILE);
        match self.handle.store.delete(&descriptor).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(TierError::store("delete", &descriptor, e)),
        }
        drop(descriptors);
        let objects: Vec<_> =
            self.handle.store.list(Some(&dir)).map_ok(|m| m.location).try_collect().await.map_err(|e| TierError::store("list", &dir, e))?;
        for key in objects {
            match self.handle.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(TierError::store("delete", &key, e)),
            }
        }
        Ok(())
    }
}
