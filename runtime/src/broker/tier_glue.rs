//! Glue between the broker and tiered storage: the periodic tier loop (topic descriptors, then
//! one uploader pass per partition) and restoring topics from the store into a brand-new data
//! directory.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::metadata_log::{MetadataImage, MetadataLog, MetadataRecord};
use super::{now_ms, Broker, BrokerError};
use crate::tier::{Tier, TopicDescriptor};

/// Re-creates, in the metadata log, every topic this node has descriptors for in the store (same
/// names, ids, partition counts and configs). Called once, for a data directory with no cluster
/// id yet. An unreachable store is logged and skipped: the broker starts empty rather than not at
/// all. Blocking.
pub(super) fn restore_topics(tier: &Arc<Tier>, metadata: &MetadataLog, image: &mut MetadataImage) -> Result<(), BrokerError> {
    let descriptors = match tier.block_on(tier.list_topics()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("cannot list tiered topics to restore (starting without them): {e}");
            return Ok(());
        }
    };
    for d in descriptors {
        if image.topics.contains_key(&d.name) {
            continue;
        }
        let record = MetadataRecord::TopicCreated {
            name: d.name.clone(),
            topic_id: d.topic_id,
            partitions: d.partitions,
            configs: d.configs.clone(),
        };
        metadata.append(std::slice::from_ref(&record))?;
        image.apply(&record).map_err(|reason| BrokerError::MetadataCorrupt { offset: -1, reason })?;
        tracing::info!(topic = %d.name, topic_id = %d.topic_id, partitions = d.partitions, "restored topic from the object store");
    }
    Ok(())
}

/// Every `log_maintenance_interval_ms`: publishes changed topic descriptors, then runs one
/// uploader pass per partition. Holds only a weak reference so it never keeps the broker alive.
pub(super) async fn tier_loop(broker: Weak<Broker>) {
    let interval_ms = match broker.upgrade() {
        Some(b) => b.config.log_maintenance_interval_ms.max(1),
        None => return,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(b) = broker.upgrade() else { return };
        if b.is_shutting_down() {
            return;
        }
        for topic in b.topics() {
            let descriptor = TopicDescriptor {
                version: crate::tier::restore::DESCRIPTOR_VERSION,
                name: topic.name.clone(),
                topic_id: topic.id,
                partitions: topic.partitions.len() as i32,
                configs: topic.configs.clone(),
            };
            if let Err(e) = b.tier.publish_topic(&descriptor).await {
                tracing::warn!(topic = %topic.name, "cannot publish the topic descriptor (retried next pass): {e}");
            }
            for p in &topic.partitions {
                p.tier_pass(now_ms()).await;
            }
        }
    }
}
