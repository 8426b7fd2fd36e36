//! The scrape-time source for the broker's own state: per-topic traffic, per-partition log
//! gauges, consumer groups and lag. Reads current state on every scrape, so deleted topics and
//! forgotten groups vanish from the output by themselves.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::scrape::{MetricsSource, Scrape};
use crate::broker::{Broker, Topic};
use crate::group::GroupState;

/// Reads a broker (weakly: metrics never keep a stopped broker alive).
pub struct BrokerSource {
    broker: Weak<Broker>,
}

impl BrokerSource {
    /// A source over `broker`.
    pub fn new(broker: &Arc<Broker>) -> Self {
        BrokerSource { broker: Arc::downgrade(broker) }
    }
}

impl MetricsSource for BrokerSource {
    fn collect(&self, scrape: &mut Scrape) {
        let Some(broker) = self.broker.upgrade() else { return };
        let topics = broker.topics();
        topic_families(scrape, &topics);
        group_families(scrape, &broker, &topics);
    }
}

fn topic_families(scrape: &mut Scrape, topics: &[Arc<Topic>]) {
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    scrape.gauge("sluice_topics", "Topics on this broker.", &[], topics.len() as f64);
    scrape.gauge("sluice_partitions", "Partitions on this broker.", &[], partitions as f64);
    for topic in topics {
        let name = topic.name.as_str();
        let (mut bytes_in, mut records_in, mut bytes_out) = (0u64, 0u64, 0u64);
        for p in &topic.partitions {
            let t = p.traffic.snapshot();
            bytes_in += t.bytes_in;
            records_in += t.records_in;
            bytes_out += t.bytes_out;
            partition_families(scrape, name, p);
        }
        let labels = [("topic", name)];
        scrape.counter(
            "sluice_topic_bytes_in_total",
            "Record batch bytes producers sent that were appended to the topic (as sent, before any compression.type rewrite).",
            &labels,
            bytes_in as f64,
        );
        scrape.counter("sluice_topic_records_in_total", "Records appended to the topic's logs by producers.", &labels, records_in as f64);
        scrape.counter(
            "sluice_topic_bytes_out_total",
            "Record batch bytes sent to consumers in Fetch responses.",
            &labels,
            bytes_out as f64,
        );
    }
}

fn partition_families(scrape: &mut Scrape, topic: &str, p: &crate::broker::Partition) {
    let index = p.index.to_string();
    let labels = [("topic", topic), ("partition", index.as_str())];
    let log = p.log();
    scrape.gauge("sluice_log_start_offset", "First offset still in the partition's log.", &labels, log.log_start_offset() as f64);
    scrape.gauge("sluice_log_end_offset", "Offset the next record appended to the partition gets.", &labels, log.log_end_offset() as f64);
    scrape.gauge("sluice_log_high_watermark", "Offset below which records are visible to consumers.", &labels, log.high_watermark() as f64);
    scrape.gauge("sluice_log_size_bytes", "Bytes of the partition's segment files.", &labels, log.size_bytes() as f64);
    scrape.gauge("sluice_log_segments", "Segment files of the partition.", &labels, log.segment_count() as f64);
    scrape.counter(
        "sluice_log_flushes_total",
        "Group-commit fsync rounds of the partition since it was opened.",
        &labels,
        log.stats().flush_fsyncs as f64,
    );
}

fn group_families(scrape: &mut Scrape, broker: &Broker, topics: &[Arc<Topic>]) {
    let snapshot = broker.groups.stats();
    let states = [GroupState::Empty, GroupState::PreparingRebalance, GroupState::CompletingRebalance, GroupState::Stable];
    for state in states {
        let n = snapshot.groups.iter().filter(|g| g.state == state).count();
        scrape.gauge(
            "sluice_groups",
            "Consumer groups by state (groups with only committed offsets are Empty).",
            &[("state", state.as_str())],
            n as f64,
        );
    }
    for g in &snapshot.groups {
        let labels = [("group", g.group_id.as_str())];
        scrape.gauge("sluice_group_members", "Members of the consumer group.", &labels, g.members as f64);
        scrape.gauge("sluice_group_generation", "The consumer group's generation.", &labels, f64::from(g.generation));
        scrape.counter(
            "sluice_group_rebalances_total",
            "Rebalances the consumer group completed since the coordinator began tracking it (each starts a generation).",
            &labels,
            f64::from(g.generation.max(0)),
        );
    }
    let by_name: HashMap<&str, &Topic> = topics.iter().map(|t| (t.name.as_str(), t.as_ref())).collect();
    for c in &snapshot.committed {
        let partition = c.partition.to_string();
        let labels = [("group", c.group_id.as_str()), ("topic", c.topic.as_str()), ("partition", partition.as_str())];
        scrape.gauge(
            "sluice_group_committed_offset",
            "The next offset the group will consume from the partition.",
            &labels,
            c.offset as f64,
        );
        let hwm = by_name
            .get(c.topic.as_str())
            .and_then(|t| usize::try_from(c.partition).ok().and_then(|i| t.partitions.get(i)))
            .map(|p| p.high_watermark());
        if let Some(hwm) = hwm {
            scrape.gauge(
                "sluice_group_lag",
                "Records between the group's committed offset and the partition's high watermark.",
                &labels,
                (hwm - c.offset).max(0) as f64,
            );
        }
    }
}
