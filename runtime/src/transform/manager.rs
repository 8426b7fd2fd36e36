//! [`TransformManager`]: the deployed transforms and their runners. Every change is recorded in
//! the metadata log (fsynced) before it takes effect; module bytes live in
//! `<data_dir>/transforms/modules/<sha256>.wasm`, runner checkpoints in
//! `<data_dir>/transforms/<name>/`, compiled code in `<data_dir>/transforms/cache/`. At start the
//! manager replays what the metadata log says and restarts the runners from their checkpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use super::checkpoint::Checkpoint;
use super::engine::{EngineLimits, TransformEngine};
use super::instance::{Guest, Linked};
use super::module::{self, CompiledModule};
use super::runner::{self, RunnerExit, RunnerShared};
use super::state;
use super::stats::{StatsSnapshot, TransformStats};
use super::{GuestError, TransformError, TransformSpec};
use crate::broker::metadata_log::{MetadataRecord, TransformImage};
use crate::broker::partition::blocking;
use crate::broker::{Broker, BrokerError, TopicConfigs};

/// `max.message.bytes` of a state changelog topic: one input batch's state changes are one
/// changelog batch, at most what a guest's memory can return.
pub const CHANGELOG_BATCH_BYTES_MAX: u64 = 64 << 20;

/// `segment.bytes` of a state changelog topic: compaction only cleans closed segments, and the
/// broker default (1 GiB) would leave a restore replaying every batch's changes.
pub const CHANGELOG_SEGMENT_BYTES: u64 = 16 << 20;

/// How often running transforms look for input partitions added after deploy.
const PARTITION_CHECK_MS: u64 = 1_000;

/// Where `reset` moves every partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetTo {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// This offset (clamped to the log).
    Offset(i64),
    /// The first record at or after this time (ms since the Unix epoch).
    Timestamp(i64),
}

/// A transform's state as reported by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformState {
    /// Runners are processing.
    Running,
    /// Paused by an operator.
    Paused,
    /// Halted by its error policy or unable to run; `reason` says why.
    Failed,
}

/// One input partition's position.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionStatus {
    /// Input partition.
    pub partition: i32,
    /// Next input offset to process.
    pub next_offset: i64,
    /// The input's high watermark.
    pub high_watermark: i64,
    /// `high_watermark - next_offset`.
    pub lag: i64,
    /// How old the next unprocessed record is: now minus the first timestamp of the batch holding
    /// it (so at most a batch's time span too old); 0 when caught up; `None` when that batch is
    /// in tiered storage (a scrape never waits on the object store).
    pub lag_seconds: Option<f64>,
    /// Set while the partition's current batch waits to be run again, with the reason (no
    /// instance could be created: the pool is full; or a replay overran its time budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<String>,
}

/// What `describe` and `list` return.
// Deserialize too: the CLI reads it back from the admin API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransformStatus {
    /// The transform's name.
    pub name: String,
    /// Increases with each deploy.
    pub version: u64,
    /// Hex SHA-256 of the module.
    pub module_sha256: String,
    /// running, paused or failed.
    pub state: TransformState,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// Total lag over input partitions.
    pub lag: i64,
    /// The largest partition lag in seconds (see [`PartitionStatus::lag_seconds`]).
    pub lag_seconds: Option<f64>,
    /// Per input partition.
    pub partitions: Vec<PartitionStatus>,
    /// Counters since this broker started.
    pub stats: StatsSnapshot,
    /// The most batches this version ran in the guest at once (bounded by `spec.parallelism`).
    #[serde(default)]
    pub batches_concurrent_peak: u64,
    /// The spec.
    pub spec: TransformSpec,
}

struct Deployed {
    shared: Arc<RunnerShared>,
    module_sha256: String,
    paused: bool,
    reason: Option<String>,
    stop: Option<watch::Sender<bool>>,
    runners: Vec<JoinHandle<()>>,
}

/// The deployed transforms of this broker.
pub struct TransformManager {
    broker: Arc<Broker>,
    engine: TransformEngine,
    dir: PathBuf,
    transforms: Mutex<BTreeMap<String, Deployed>>,
    me: Weak<TransformManager>,
    /// Metrics scrapes that found the map locked (see [`TransformManager::try_list`]).
    scrapes_skipped: std::sync::atomic::AtomicU64,
}

impl TransformManager {
    /// Starts the engine and every transform recorded in the metadata log.
    pub async fn start(broker: Arc<Broker>) -> Result<Arc<Self>, TransformError> {
        let dir = broker.config.data_dir.join("transforms");
        let cache_dir = dir.join("cache");
        let limits = EngineLimits { instances_max: broker.config.transform_instances_max, ..EngineLimits::default() };
        let engine = blocking("transform engine", move || TransformEngine::new(&cache_dir, limits)).await??;
        let manager = Arc::new_cyclic(|me| TransformManager {
            broker: Arc::clone(&broker),
            engine,
            dir,
            transforms: Mutex::new(BTreeMap::new()),
            me: me.clone(),
            scrapes_skipped: Default::default(),
        });
        broker.metrics.add_source(Box::new(crate::metrics::transform_source::TransformSource::new(Arc::downgrade(&manager))));
        for (name, image) in broker.take_transforms_at_open() {
            if let Err(e) = manager.restore(image).await {
                tracing::error!(transform = %name, "cannot restart transform: {e}");
            }
        }
        tokio::spawn(watch_partitions(Arc::downgrade(&manager)));
        Ok(manager)
    }

    async fn restore(&self, image: TransformImage) -> Result<(), TransformError> {
        let spec: TransformSpec =
            serde_json::from_value(image.spec.clone()).map_err(|e| TransformError::InvalidSpec { field: "spec", reason: e.to_string() })?;
        let path = self.module_path(&image.module_sha256);
        let bytes = tokio::fs::read(&path).await.map_err(|source| TransformError::Io { op: "read", path: path.clone(), source })?;
        let compiled = self.compile(bytes).await?;
        let mut transforms = self.transforms.lock().await;
        let mut deployed = self.deployed(spec, image.version, &compiled)?;
        deployed.paused = image.paused;
        deployed.reason = image.reason;
        if !deployed.paused {
            self.start_runners(&mut deployed);
        }
        tracing::info!(transform = %image.name, version = image.version, paused = deployed.paused, "transform restored");
        transforms.insert(image.name, deployed);
        Ok(())
    }

    fn module_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("modules").join(format!("{sha256}.wasm"))
    }

    async fn compile(&self, bytes: Vec<u8>) -> Result<(CompiledModule, Linked), TransformError> {
        let engine = self.engine.engine().clone();
        blocking("compile transform", move || {
            let compiled = module::compile(&engine, &bytes)?;
            let linked = Linked::new(&engine, &compiled.module)?;
            Ok::<_, TransformError>((compiled, linked))
        })
        .await?
    }

    fn deployed(
        &self,
        spec: TransformSpec,
        version: u64,
        (compiled, linked): &(CompiledModule, Linked),
    ) -> Result<Deployed, TransformError> {
        let gate = super::gate::Gate::new(spec.parallelism);
        let shared = RunnerShared {
            broker: Arc::clone(&self.broker),
            dir: self.dir.join(&spec.name),
            spec,
            version,
            linked: linked.clone(),
            stats: Arc::new(TransformStats::default()),
            gate,
            positions: parking_lot::Mutex::new(BTreeMap::new()),
            retrying: parking_lot::Mutex::new(BTreeMap::new()),
        };
        Ok(Deployed {
            shared: Arc::new(shared),
            module_sha256: compiled.sha256.clone(),
            paused: false,
            reason: None,
            stop: None,
            runners: Vec::new(),
        })
    }

    /// Deploys a new transform or a new version of one (which resumes at the committed
    /// positions). The module is validated, compiled and initialised with the spec's config
    /// before anything changes.
    pub async fn deploy(&self, spec: TransformSpec, wasm: Vec<u8>) -> Result<TransformStatus, TransformError> {
        spec.validate(self.engine.limits().memory_bytes_max)?;
        let compiled = self.compile(wasm.clone()).await?;
        let (linked, limits, config) = (compiled.1.clone(), spec.limits, serde_json::to_vec(&spec.config).unwrap_or_default());
        blocking("validate transform", move || Guest::new(&linked, limits, &config).map(drop)).await?.map_err(|e| match e {
            GuestError::Failed { reason } => TransformError::Config { reason },
            other => TransformError::Guest(other),
        })?;
        // Input, default output and dead-letter topics exist from deploy on (consumers can
        // subscribe before the first record); other named outputs are created on first use.
        let topics =
            [("input", Some(spec.input.clone())), ("output", Some(spec.output.clone())), ("error_policy.topic", spec.dead_letter_topic())];
        for (field, topic) in topics {
            let Some(topic) = topic else { continue };
            if self.broker.auto_create_topic(&topic).await?.is_none() {
                return Err(TransformError::InvalidSpec {
                    field,
                    reason: format!("topic {topic} does not exist and auto-creation is off"),
                });
            }
        }
        if compiled.1.is_stateful() {
            self.create_changelog(&spec).await?;
        }
        // The log topic exists whatever the auto-creation setting: a transform that logs must
        // not halt for want of it.
        match self.broker.create_topic(runner::TRANSFORM_LOGS_TOPIC, 1, -1, TopicConfigs::new(), false).await {
            Ok(_) | Err(BrokerError::TopicExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let path = self.module_path(&compiled.0.sha256);
        blocking("store module", move || -> Result<(), TransformError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| TransformError::Io {
                    op: "create",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            if !path.exists() {
                crate::broker::fsutil::write_atomically(&path, &wasm)?;
            }
            Ok(())
        })
        .await??;

        let mut transforms = self.transforms.lock().await;
        let (version, paused, reason) = match transforms.get_mut(&spec.name) {
            Some(old) => {
                if old.shared.spec.input != spec.input {
                    return Err(TransformError::InvalidSpec {
                        field: "input",
                        reason: "a redeploy cannot change the input topic; delete and deploy again".into(),
                    });
                }
                stop_runners(old).await;
                (old.shared.version + 1, old.paused, old.reason.clone())
            }
            None => (1, false, None),
        };
        let spec_json = serde_json::to_value(&spec).map_err(|e| TransformError::InvalidSpec { field: "spec", reason: e.to_string() })?;
        let record = MetadataRecord::TransformDeployed {
            name: spec.name.clone(),
            transform_version: version,
            module_sha256: compiled.0.sha256.clone(),
            spec: spec_json,
        };
        if let Err(e) = self.broker.append_metadata(vec![record]).await {
            if let Some(old) = transforms.get_mut(&spec.name) {
                if !old.paused {
                    self.start_runners(old);
                }
            }
            return Err(e.into());
        }
        let name = spec.name.clone();
        let mut deployed = self.deployed(spec, version, &compiled)?;
        deployed.paused = paused;
        deployed.reason = reason;
        if !paused {
            self.start_runners(&mut deployed);
        }
        tracing::info!(transform = %name, version, sha256 = %deployed.module_sha256, "transform deployed");
        let status = status(&deployed);
        transforms.insert(name, deployed);
        Ok(status)
    }

    /// A stateful transform's changelog: compacted, one partition per input partition. A
    /// redeploy finds it in place and keeps the state.
    async fn create_changelog(&self, spec: &TransformSpec) -> Result<(), TransformError> {
        let topic = state::changelog_topic(&spec.name);
        let partitions = self.broker.topic(&spec.input).map_or(1, |t| t.partitions.len() as i32);
        // One batch's changes are one changelog batch: allow what a guest can return. Segments
        // are small so compaction (closed segments only) keeps restores near one record per key.
        let configs = TopicConfigs::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("max.message.bytes".to_string(), CHANGELOG_BATCH_BYTES_MAX.to_string()),
            ("segment.bytes".to_string(), CHANGELOG_SEGMENT_BYTES.to_string()),
        ]);
        match self.broker.create_topic(&topic, partitions, -1, configs, false).await {
            Ok(_) | Err(BrokerError::TopicExists { .. }) => Ok(()),
            Err(e) => Err(TransformError::InvalidSpec { field: "name", reason: format!("cannot create the state changelog {topic}: {e}") }),
        }
    }

    fn start_runners(&self, deployed: &mut Deployed) {
        let Some(topic) = self.broker.topic(&deployed.shared.spec.input) else {
            deployed.reason = Some(format!("input topic {} does not exist", deployed.shared.spec.input));
            return;
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        deployed.runners =
            (0..topic.partitions.len() as i32).map(|p| self.spawn_runner(&deployed.shared, p, stop_rx.clone(), false)).collect();
        deployed.stop = Some(stop_tx);
    }

    fn spawn_runner(&self, shared: &Arc<RunnerShared>, p: i32, stop: watch::Receiver<bool>, added: bool) -> JoinHandle<()> {
        let (shared, me) = (Arc::clone(shared), self.me.clone());
        tokio::spawn(async move {
            let version = shared.version;
            let name = shared.spec.name.clone();
            if let RunnerExit::Failed(reason) = runner::run(shared, p, stop, added).await {
                // A separate task: whoever holds the transforms lock may be waiting
                // for this runner to finish.
                if let Some(manager) = me.upgrade() {
                    tokio::spawn(async move { manager.halt(&name, version, reason).await });
                }
            }
        })
    }

    /// Starts a runner for every input partition added (CreatePartitions) since a running
    /// transform's runners started; a stateful one grows its changelog as the runner opens its
    /// state. Paused or halted transforms get theirs when they resume.
    async fn start_added_runners(&self) {
        let mut transforms = self.transforms.lock().await;
        for deployed in transforms.values_mut() {
            let Some(stop) = deployed.stop.as_ref().filter(|_| !deployed.paused) else { continue };
            let Some(topic) = self.broker.topic(&deployed.shared.spec.input) else { continue };
            for p in deployed.runners.len() as i32..topic.partitions.len() as i32 {
                tracing::info!(transform = %deployed.shared.spec.name, partition = p, "input partition added: starting its runner");
                deployed.runners.push(self.spawn_runner(&deployed.shared, p, stop.subscribe(), true));
            }
        }
    }

    /// A runner failed: record the transform as halted (survives restart) and stop its runners.
    async fn halt(&self, name: &str, version: u64, reason: String) {
        let mut transforms = self.transforms.lock().await;
        let Some(deployed) = transforms.get_mut(name).filter(|d| d.shared.version == version && !d.paused) else { return };
        if let Some(stop) = deployed.stop.take() {
            let _ = stop.send(true);
        }
        deployed.runners.clear();
        deployed.paused = true;
        deployed.reason = Some(reason.clone());
        let record = MetadataRecord::TransformStateChanged { name: name.to_string(), paused: true, reason: Some(reason) };
        if let Err(e) = self.broker.append_metadata(vec![record]).await {
            tracing::error!(transform = name, "cannot record the halted state: {e}");
        }
    }

    /// Every transform's status, by name.
    pub async fn list(&self) -> Vec<TransformStatus> {
        self.transforms.lock().await.values().map(status).collect()
    }

    /// Every transform's status without waiting: `None` (and counted) while a deploy, pause or
    /// delete holds the map. For metrics scrapes, which run on a blocking thread.
    pub fn try_list(&self) -> Option<Vec<TransformStatus>> {
        match self.transforms.try_lock() {
            Ok(t) => Some(t.values().map(status).collect()),
            Err(_) => {
                self.scrapes_skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }

    /// How many scrapes [`TransformManager::try_list`] turned away.
    pub fn scrapes_skipped(&self) -> u64 {
        self.scrapes_skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One transform's status.
    pub async fn describe(&self, name: &str) -> Result<TransformStatus, TransformError> {
        self.transforms.lock().await.get(name).map(status).ok_or_else(|| TransformError::Unknown { name: name.into() })
    }

    /// Stops the runners after their current batch; the state survives restarts.
    pub async fn pause(&self, name: &str) -> Result<TransformStatus, TransformError> {
        self.set_paused(name, true).await
    }

    /// Restarts the runners (also after a halt) from the committed positions.
    pub async fn resume(&self, name: &str) -> Result<TransformStatus, TransformError> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<TransformStatus, TransformError> {
        let mut transforms = self.transforms.lock().await;
        let deployed = transforms.get_mut(name).ok_or_else(|| TransformError::Unknown { name: name.into() })?;
        let record = MetadataRecord::TransformStateChanged { name: name.into(), paused, reason: None };
        self.broker.append_metadata(vec![record]).await?;
        stop_runners(deployed).await;
        deployed.paused = paused;
        deployed.reason = None;
        if !paused {
            self.start_runners(deployed);
        }
        Ok(status(deployed))
    }

    /// Moves every partition's committed position; outputs already written and keyed state
    /// stay.
    pub async fn reset(&self, name: &str, to: ResetTo) -> Result<TransformStatus, TransformError> {
        let mut transforms = self.transforms.lock().await;
        let deployed = transforms.get_mut(name).ok_or_else(|| TransformError::Unknown { name: name.into() })?;
        stop_runners(deployed).await;
        let result = self.reset_positions(&deployed.shared, to).await;
        if !deployed.paused {
            self.start_runners(deployed);
        }
        result.map(|()| status(deployed))
    }

    async fn reset_positions(&self, shared: &Arc<RunnerShared>, to: ResetTo) -> Result<(), TransformError> {
        let topic = self
            .broker
            .topic(&shared.spec.input)
            .ok_or_else(|| TransformError::InvalidSpec { field: "input", reason: "the input topic no longer exists".into() })?;
        for p in &topic.partitions {
            let offset = match to {
                ResetTo::Earliest => p.log_start_offset(),
                ResetTo::Latest => p.high_watermark(),
                ResetTo::Offset(o) => o.clamp(p.log_start_offset(), p.high_watermark()),
                ResetTo::Timestamp(ts) => {
                    let q = Arc::clone(p);
                    let found = blocking("offset for timestamp", move || q.log().offset_for_timestamp(ts)).await?;
                    found.ok().flatten().map_or(p.high_watermark(), |(o, _)| o)
                }
            };
            let path = Checkpoint::path(&shared.dir, p.index);
            let producer_id = self.broker.allocate_producer_id().await?;
            blocking("reset checkpoint", move || -> Result<(), TransformError> {
                let mut c = Checkpoint::load(&path)?.unwrap_or_else(|| Checkpoint::new(producer_id, offset));
                c.next_offset = offset;
                c.pending_end = None;
                c.pending_decision = None;
                c.store(&path)
            })
            .await??;
            shared.positions.lock().insert(p.index, offset);
        }
        Ok(())
    }

    /// Stops and forgets a transform, its positions and its state changelog (its output topics
    /// stay).
    pub async fn delete(&self, name: &str) -> Result<(), TransformError> {
        let mut transforms = self.transforms.lock().await;
        let deployed = transforms.get_mut(name).ok_or_else(|| TransformError::Unknown { name: name.into() })?;
        self.broker.append_metadata(vec![MetadataRecord::TransformDeleted { name: name.into() }]).await?;
        stop_runners(deployed).await;
        let dir = deployed.shared.dir.clone();
        transforms.remove(name);
        blocking("delete transform", move || crate::broker::fsutil::remove_dir_via_rename(&dir)).await??;
        // Its state goes with it (a later transform of the same name starts empty either way:
        // its checkpoint starts reading the changelog at the end it finds).
        match self.broker.delete_topic(&state::changelog_topic(name)).await {
            Ok(_) | Err(BrokerError::UnknownTopic { .. }) => {}
            Err(e) => tracing::warn!(transform = name, "cannot delete the state changelog: {e}"),
        }
        tracing::info!(transform = name, "transform deleted");
        Ok(())
    }

    /// Stops every runner after its current batch.
    pub async fn shutdown(&self) {
        let mut transforms = self.transforms.lock().await;
        for deployed in transforms.values_mut() {
            stop_runners(deployed).await;
        }
    }
}

/// Polls for input partitions added after deploy until the manager is gone. A poll rather than
/// a hook in the broker's CreatePartitions: the broker layer knows nothing of transforms.
async fn watch_partitions(me: Weak<TransformManager>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(PARTITION_CHECK_MS)).await;
        let Some(manager) = me.upgrade() else { return };
        manager.start_added_runners().await;
    }
}

async fn stop_runners(deployed: &mut Deployed) {
    if let Some(stop) = deployed.stop.take() {
        let _ = stop.send(true);
    }
    for runner in deployed.runners.drain(..) {
        if let Err(e) = runner.await {
            tracing::error!(transform = %deployed.shared.spec.name, "runner task failed: {e}");
        }
    }
}

fn status(d: &Deployed) -> TransformStatus {
    let shared = &d.shared;
    let positions = shared.positions.lock().clone();
    let retrying = shared.retrying.lock().clone();
    let partitions: Vec<PartitionStatus> = shared
        .broker
        .topic(&shared.spec.input)
        .map(|t| {
            t.partitions
                .iter()
                .map(|p| {
                    let hwm = p.high_watermark();
                    // Before its runner has loaded its checkpoint, count a partition's lag from
                    // the log start: never report "caught up" for work not yet looked at.
                    let next = positions.get(&p.index).copied().unwrap_or_else(|| p.log_start_offset());
                    let lag = (hwm - next).max(0);
                    let lag_seconds = if lag == 0 { Some(0.0) } else { record_age_seconds(p, next) };
                    PartitionStatus {
                        partition: p.index,
                        next_offset: next,
                        high_watermark: hwm,
                        lag,
                        lag_seconds,
                        retrying: retrying.get(&p.index).cloned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let state = match (d.paused, &d.reason) {
        (_, Some(_)) => TransformState::Failed,
        (true, None) => TransformState::Paused,
        (false, None) => TransformState::Running,
    };
    TransformStatus {
        name: shared.spec.name.clone(),
        version: shared.version,
        module_sha256: d.module_sha256.clone(),
        state,
        reason: d.reason.clone(),
        lag: partitions.iter().map(|p| p.lag).sum(),
        lag_seconds: partitions.iter().filter_map(|p| p.lag_seconds).reduce(f64::max),
        partitions,
        stats: shared.stats.snapshot(),
        batches_concurrent_peak: shared.gate.peak(),
        spec: shared.spec.clone(),
    }
}

/// Seconds since the first timestamp of the local batch holding `offset`; `None` if that batch is
/// not in the local log (tiered, or removed meanwhile) or cannot be read.
fn record_age_seconds(partition: &crate::broker::partition::Partition, offset: i64) -> Option<f64> {
    if offset < partition.local_log_start_offset() {
        return None;
    }
    let read = partition.read(offset, 1).ok()?;
    let (header, _) = crate::log::batch_header(&read.records).ok()?;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    let age_ms = i64::try_from(now_ms).ok()?.saturating_sub(header.base_timestamp).max(0);
    Some(age_ms as f64 / 1000.0)
}
