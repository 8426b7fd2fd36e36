//! Broker state shared by every connection: topics and their partitions, the metadata log,
//! producer ids, and the consumer group coordinator.
//!
//! # Layout
//! - `metadata_log`: versioned metadata records, appended and fsynced before they take effect,
//!   replayed into a `MetadataImage` at start.
//! - `topics`: topic lifecycle (create, delete, add partitions, alter configs) and producer ids.
//! - `topic_config`: Kafka topic config names, validation, conversion to `LogConfig`.
//! - `flusher`: the threads that fsync dirty partitions (`flush.policy=batch`), coalescing the
//!   requests that arrive during a flush, and advance their high watermarks; acks=all waits on it.
//! - `partition`: one partition's log, high watermark and produce/read paths, and the glue to its
//!   remote (tiered) side.
//! - `tier_glue`: the tiered-storage loop (uploads, descriptors) and restore of topics from the store.
//! - `producer_state`: idempotent-producer sequence tracking.
//! - `leader_epochs`: each partition's leader epoch → start offset cache and its checkpoint.
//! - `acls`: ACL bindings recorded in the metadata log, published to the ACL store.
//! - `users`: SCRAM credentials recorded in the metadata log, published to the credential store.
//! - `manifests`: applied manifest documents recorded in the metadata log.
//! - `error`: [`BrokerError`]; `protocol::error_code` maps it to Kafka codes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;

mod acls;
mod error;
pub mod flusher;
pub(crate) mod fsutil;
pub mod leader_epochs;
pub mod manifests;
pub mod metadata_log;
pub mod partition;
pub mod producer_state;
mod tier_glue;
pub mod topic_config;
mod topics;
pub mod users;

pub use acls::ACL_CHANGES_PER_REQUEST_MAX;
pub use error::BrokerError;
use metadata_log::MetadataLog;
pub use partition::Partition;
pub use topic_config::TopicConfigs;
pub use topics::{partition_dir, validate_topic_name};

/// One topic: immutable once published. Adding partitions or changing configs publishes a new
/// `Arc<Topic>` (copy-on-write), so readers never lock more than the map lookup.
pub struct Topic {
    /// The topic name (Kafka's rules, see `validate_topic_name`).
    pub name: String,
    /// Fetch v13+ and Metadata v10+ identify topics by this id.
    pub id: Uuid,
    /// Index `i` is partition `i`.
    pub partitions: Vec<Arc<Partition>>,
    /// Overrides only; defaults come from `topic_config::KNOWN`.
    pub configs: TopicConfigs,
}

/// The shared state of one broker node. Handlers receive `&Arc<Broker>`.
pub struct Broker {
    /// Resolved configuration.
    pub config: BrokerConfig,
    /// Consumer groups and committed offsets.
    pub groups: GroupCoordinator,
    /// Prometheus metrics (`/metrics`); the hot path counts through it.
    pub metrics: Arc<Metrics>,
    advertised_host: String,
    advertised_port: i32,
    cluster_id: String,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    metadata: Arc<MetadataLog>,
    /// Serialises metadata changes (each one: validate, append + fsync, publish).
    admin: tokio::sync::Mutex<()>,
    /// SCRAM credentials (published after they are durable; see `users`).
    credentials: crate::security::CredentialStore,
    /// ACL bindings (published after they are durable; see `acls`).
    acls: crate::security::acl::AclStore,
    /// `[next, end)` of the producer-id block being handed out.
    producer_ids: Mutex<(i64, i64)>,
    maintenance: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The tiered-storage loop (uploads, retention, topic descriptors).
    tier_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Tiered storage: the object store, read cache and counters.
    pub tier: Arc<crate::tier::Tier>,
    /// Makes appends durable for every partition (`flush.policy=batch`); partitions hold it too.
    flusher: Arc<flusher::Flusher>,
    shutting_down: AtomicBool,
    /// Turns true when a stop begins, so long-poll fetches answer at once instead of holding the
    /// stop up for their `max_wait_ms`.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Transforms as replayed at open; the transform manager takes them once at start.
    transforms_at_open: Mutex<BTreeMap<String, metadata_log::TransformImage>>,
    /// Applied manifest documents (see `manifests`).
    manifests: tokio::sync::Mutex<BTreeMap<String, serde_json::Value>>,
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Arc<Broker>>();
}

/// Milliseconds since the Unix epoch (the clock logs and producer expiry use).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Broker {
    /// Opens the data directory: replays the metadata log, opens (recovers) every partition,
    /// restores committed offsets, and starts periodic log maintenance.
    pub async fn open(config: BrokerConfig, addrs: &crate::serve::BoundAddrs) -> Result<Arc<Broker>, BrokerError> {
        let started = std::time::Instant::now();
        let (advertised_host, advertised_port) = parse_host_port(&addrs.advertised)?;
        let metrics = Metrics::new(&config).map_err(|e| BrokerError::Task { what: "metrics registry".into(), reason: e.to_string() })?;
        let data_dir = config.data_dir.clone();
        let group_config = config.clone();
        let tier = crate::tier::Tier::open(&config.object_store, config.node_id, config.remote_cache_bytes)
            .map_err(|source| BrokerError::TierSetup { source: Box::new(source) })?;
        let tier_for_open = Arc::clone(&tier);
        let flusher = flusher::Flusher::start()?;
        let flusher_for_open = Arc::clone(&flusher);
        let opened = partition::blocking("broker open", move || -> Result<_, BrokerError> {
            std::fs::create_dir_all(&data_dir).map_err(|source| BrokerError::Io { op: "create", path: data_dir.clone(), source })?;
            fsutil::remove_leftover_deleted(&data_dir);
            let (metadata, mut image) = MetadataLog::open(&data_dir)?;
            if image.cluster_id.is_none() {
                let record = metadata_log::MetadataRecord::ClusterCreated { cluster_id: new_cluster_id() };
                metadata.append(std::slice::from_ref(&record))?;
                image.apply(&record).map_err(|reason| BrokerError::MetadataCorrupt { offset: -1, reason })?;
                // A brand-new data directory: bring back the topics this node tiered before.
                tier_glue::restore_topics(&tier_for_open, &metadata, &mut image)?;
            }
            topics::remove_deleted_topic_dirs(&data_dir, &image);
            let topics = topics::open_all(&data_dir, &image, &tier_for_open, &flusher_for_open)?;
            let groups = GroupCoordinator::open(&data_dir, &group_config).map_err(|source| BrokerError::Groups { source })?;
            Ok((metadata, image, topics, groups))
        })
        .await??;
        let (metadata, image, topics, groups) = opened;
        let broker = Arc::new(Broker {
            config,
            groups,
            metrics,
            advertised_host,
            advertised_port,
            cluster_id: image.cluster_id.clone().unwrap_or_default(),
            topics: RwLock::new(topics),
            metadata: Arc::new(metadata),
            admin: tokio::sync::Mutex::new(()),
            credentials: crate::security::CredentialStore::new(image.scram_credentials.clone()),
            acls: crate::security::acl::AclStore::new(image.acls.clone()),
            producer_ids: Mutex::new((image.next_producer_id, image.next_producer_id)),
            maintenance: Mutex::new(None),
            tier_task: Mutex::new(None),
            tier,
            flusher,
            shutting_down: AtomicBool::new(false),
            stopping: tokio::sync::watch::channel(false).0,
            transforms_at_open: Mutex::new(image.transforms.clone()),
            manifests: tokio::sync::Mutex::new(image.manifests.clone()),
        });
        broker.record_recovery(started.elapsed());
        broker.metrics.add_source(Box::new(crate::metrics::broker_state::BrokerSource::new(&broker)));
        broker.metrics.add_source(Box::new(crate::metrics::tier_source::TierSource::new(Arc::clone(&broker.tier))));
        let task = tokio::spawn(maintenance_loop(Arc::downgrade(&broker)));
        *broker.maintenance.lock() = Some(task);
        let task = tokio::spawn(tier_glue::tier_loop(Arc::downgrade(&broker)));
        *broker.tier_task.lock() = Some(task);
        tracing::info!(cluster_id = %broker.cluster_id, topics = broker.topics.read().len(), "broker open");
        Ok(broker)
    }

    /// The cluster id, generated once and kept in the metadata log.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The host and port clients are told to connect to (Metadata, FindCoordinator).
    pub fn advertised(&self) -> (&str, i32) {
        (&self.advertised_host, self.advertised_port)
    }

    /// The topic named `name`, if it exists.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// The topic with id `id`, if it exists.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.topics.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One partition, if its topic and index exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let topic = self.topic(topic)?;
        usize::try_from(partition).ok().and_then(|i| topic.partitions.get(i).cloned())
    }

    /// Whether `topic`-`partition` exists. The group coordinator uses this to answer
    /// UNKNOWN_TOPIC_OR_PARTITION for offset commits to partitions that do not exist.
    pub fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.partition(topic, partition).is_some()
    }

    /// Stops maintenance, flushes and closes every log (clean-shutdown checkpoints), then the
    /// group coordinator and the metadata log.
    pub async fn shutdown(&self) -> Result<(), BrokerError> {
        self.shutting_down.store(true, Ordering::Release);
        let tasks = [self.maintenance.lock().take(), self.tier_task.lock().take()];
        for task in tasks.into_iter().flatten() {
            // An upload cut short leaves unreferenced objects, never a wrong manifest.
            task.abort();
            let _ = task.await;
        }
        let partitions: Vec<Arc<Partition>> = self.topics().iter().flat_map(|t| t.partitions.iter().cloned()).collect();
        let metadata = Arc::clone(&self.metadata);
        let closed = partition::blocking("shutdown", move || {
            let mut first_error = None;
            for p in partitions {
                if let Err(e) = p.close() {
                    tracing::error!("cannot close {}-{}: {e}", p.topic, p.index);
                    first_error.get_or_insert(e);
                }
            }
            if let Err(e) = metadata.close() {
                first_error.get_or_insert(e);
            }
            first_error.map_or(Ok(()), Err)
        })
        .await?;
        let groups = self.groups.shutdown().await.map_err(|source| BrokerError::Groups { source });
        closed.and(groups)
    }

    /// A stop has begun: parked long-poll fetches answer now with what they have.
    pub fn begin_stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true when [`Broker::begin_stop`] is called.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Reports how long opening took and what log recovery read and cut off.
    fn record_recovery(&self, elapsed: Duration) {
        let (mut scanned, mut truncated) = (0, 0);
        for p in self.topics().iter().flat_map(|t| t.partitions.iter()) {
            let stats = p.log().stats();
            scanned += stats.bytes_scanned_at_open;
            truncated += stats.bytes_truncated_at_open;
        }
        self.metrics.set_recovery(elapsed, scanned, truncated);
    }

    /// The transforms recorded in the metadata log at open (empty after the first call).
    pub fn take_transforms_at_open(&self) -> BTreeMap<String, metadata_log::TransformImage> {
        std::mem::take(&mut *self.transforms_at_open.lock())
    }

    /// Appends records to the metadata log (fsynced) under the admin lock. For subsystems that
    /// keep their own state in the log (transforms); they apply the change only after `Ok`.
    pub async fn append_metadata(&self, records: Vec<metadata_log::MetadataRecord>) -> Result<(), BrokerError> {
        let _admin = self.admin.lock().await;
        if self.is_shutting_down() {
            return Err(BrokerError::ShuttingDown);
        }
        let metadata = Arc::clone(&self.metadata);
        partition::blocking("metadata append", move || metadata.append(&records)).await?
    }

    /// Whether [`Broker::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// Runs `maintain()` on every partition (and the group coordinator) every
/// `log_maintenance_interval_ms`. Holds only a weak reference so it never keeps the broker alive.
async fn maintenance_loop(broker: Weak<Broker>) {
    let interval_ms = match broker.upgrade() {
        Some(b) => b.config.log_maintenance_interval_ms.max(1),
        None => return,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; recovery just ran
    loop {
        ticker.tick().await;
        let Some(b) = broker.upgrade() else { return };
        if b.is_shutting_down() {
            return;
        }
        let partitions: Vec<Arc<Partition>> = b.topics().iter().flat_map(|t| t.partitions.iter().cloned()).collect();
        let weak = Arc::downgrade(&b);
        drop(b);
        let done = partition::blocking("maintenance", move || {
            let now = now_ms();
            for p in partitions {
                if let Err(e) = p.maintain(now) {
                    tracing::warn!("maintenance of {}-{} failed: {e}", p.topic, p.index);
                }
            }
            if let Some(b) = weak.upgrade() {
                if let Err(e) = b.groups.maintain(now) {
                    tracing::warn!("group coordinator maintenance failed: {e}");
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!("{e}");
        }
    }
}

fn new_cluster_id() -> String {
    // Kafka cluster ids are 22-character URL-safe base64 UUIDs; any unique string works for
    // clients, and the simple hex form is easy to grep for in logs.
    Uuid::new_v4().simple().to_string()
}

/// Splits an advertised `host:port` (IPv6 hosts may be bracketed).
pub fn parse_host_port(addr: &str) -> Result<(String, i32), BrokerError> {
    let invalid = |reason: &str| BrokerError::InvalidConfig { name: "advertised_addr".into(), value: addr.into(), reason: reason.into() };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| invalid("expected host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("empty host"));
    }
    Ok((host.to_string(), i32::from(port)))
}
