//! One runner per (transform, input partition): a tokio task that reads the partition from the
//! committed position, runs each batch on the guest (on a blocking thread), writes the outputs,
//! and commits the new position.
//!
//! # Exactly-once, and how it is kept
//! Every input record's outputs (including dead-letter records) appear exactly once in the
//! output partitions, across `kill -9` and restarts. Per batch:
//! 1. Choose the batch `[next_offset, end)`, run the guest over it and apply the error policy,
//!    then store `pending_end = end` and the policy's decision (which records failed, with what
//!    text, and whether the batch was run record by record) in the checkpoint (fsync), before
//!    anything is written. After a crash the same batch is replayed: same records, same
//!    boundaries (even though more input may have arrived since), same decision.
//! 2. The guest is deterministic (clock = record time, seeded randomness, no I/O), so the replay
//!    produces the same output records, grouped into one RecordBatch per output partition.
//!    The one outcome that is not deterministic is the time limit (wall-clock time, on a
//!    machine whose load changes): a record killed by it on the first run could finish on the
//!    replay, or the reverse. So the replay does not decide again: the stored failed records
//!    are dead-lettered (or skipped) again with their stored error text without running, and
//!    the others run under a looser time budget (`attempt::REPLAY_TIME_FACTOR`); if one of them
//!    still fails, the batch is retried later, never given a new failure. Epoch interruption
//!    stays the only limit on the fast path; no fuel is needed. A crash before the decision is
//!    stored has written nothing for the batch, so deciding afresh then is safe.
//! 3. Each output batch carries the runner's idempotent producer id and the checkpoint's next
//!    sequence number for that partition. The partition's producer state (recovered from its
//!    log after a crash) answers a batch it already holds as a duplicate and appends nothing.
//!    One output batch per partition per input batch keeps any replay within the 5 batches the
//!    producer state remembers.
//! 4. Only after every output batch is durable (acks=all) is the checkpoint advanced (fsync):
//!    `next_offset = end`, sequences advanced, `pending_end` cleared.
//!
//! Pipelining: while batch N's outputs are written (step 3: appends and fsyncs, time the runner
//! would spend waiting), the guest already runs N+1 (step 1 without its store). Step 4 for N
//! then stores N+1's boundary and decision in the same checkpoint write, which is exactly the
//! checkpoint the sequential order would have reached after step 1 for N+1; N+1's outputs are
//! written only after it. If N+1 cannot go on (no instance, the state cap, `halt`), the
//! checkpoint records N alone and N+1 is handled as if it had not run ahead.
//!
//! Stateful transforms (ABI v2) add one write per batch, before the outputs: the batch's state
//! changes go to the changelog partition with the same producer id and a checkpointed sequence,
//! and the checkpoint's `state_end` advances with `next_offset` (see `state` for the argument).
//!
//! `failpoint` can abort the process right after step 1's store or right before step 4's, so the
//! end-to-end tests crash exactly inside those windows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sluice_abi::Batch;
use tokio::sync::watch;

use super::attempt::{run_batch, BatchOutcome, GuestSlot};
use super::batch_output::{log_lines, resolve, write_batch};
use super::checkpoint::{Checkpoint, Decision};
use super::failpoint;
use super::records;
use super::spec::{ErrorAction, StartPosition, TransformSpec};
use super::state::{self, StateLog};
use super::stats::TransformStats;
use super::{GuestError, TransformError};
use crate::broker::partition::blocking;
use crate::broker::{Broker, Partition};

/// Bytes read from the input partition per batch, at most (whole Kafka batches; the first one
/// always, however large).
pub const INPUT_READ_BYTES_MAX: usize = 256 * 1024;
/// Where guest log lines go as records (besides the broker's `tracing` output): key = transform
/// name, value = the line, headers naming the transform, version, level and input position.
/// Written like any other output, so they are exactly-once too.
pub const TRANSFORM_LOGS_TOPIC: &str = "_sluice_transform_logs";
/// Wait before retrying a batch for which no instance could be created.
pub const INSTANTIATE_RETRY_MS: u64 = 1000;

/// Everything a runner needs; shared by a transform's runners.
pub struct RunnerShared {
    /// The broker (partitions, topic creation, producer ids).
    pub broker: Arc<Broker>,
    /// The spec of the deployed version.
    pub spec: TransformSpec,
    /// The deployed version number.
    pub version: u64,
    /// `<data_dir>/transforms/<name>`.
    pub dir: PathBuf,
    /// The linked module.
    pub linked: super::instance::Linked,
    /// Counters.
    pub stats: Arc<TransformStats>,
    /// `spec.parallelism`: how many runners may be in the guest at once.
    pub gate: super::gate::Gate,
    /// Next input offset per partition (for lag).
    pub positions: parking_lot::Mutex<BTreeMap<i32, i64>>,
    /// Why a partition's current batch waits to be run again (for status); removed once a batch
    /// of that partition completes.
    pub retrying: parking_lot::Mutex<BTreeMap<i32, String>>,
}

/// How a runner ended.
#[derive(Debug)]
pub enum RunnerExit {
    /// Asked to stop.
    Stopped,
    /// The error policy is `halt` and a record failed, or the runner cannot continue.
    Failed(String),
}

/// Runs partition `partition` until `stop` turns true or the runner fails. `added` marks a
/// partition created after the transform was deployed (CreatePartitions): with no checkpoint
/// yet, it starts at its earliest offset whatever the spec's `start`, so records produced to it
/// before its runner came up are not skipped.
pub async fn run(shared: Arc<RunnerShared>, partition: i32, mut stop: watch::Receiver<bool>, added: bool) -> RunnerExit {
    match run_inner(&shared, partition, &mut stop, added).await {
        Ok(()) => RunnerExit::Stopped,
        Err(reason) => {
            tracing::error!(transform = %shared.spec.name, partition, "transform runner stopped: {reason}");
            RunnerExit::Failed(reason)
        }
    }
}

async fn run_inner(shared: &Arc<RunnerShared>, partition: i32, stop: &mut watch::Receiver<bool>, added: bool) -> Result<(), String> {
    let spec = &shared.spec;
    let input = shared
        .broker
        .partition(&spec.input, partition)
        .ok_or_else(|| format!("input partition {}-{partition} does not exist", spec.input))?;
    let path = Checkpoint::path(&shared.dir, partition);
    let start = if added { StartPosition::Earliest } else { spec.start };
    let mut checkpoint = open_checkpoint(shared, &input, &path, start).await.map_err(|e| e.to_string())?;
    if let Some(end) = checkpoint.pending_end {
        tracing::info!(transform = %spec.name, partition, from = checkpoint.next_offset, end, "replaying an interrupted batch");
    }
    let config_json = serde_json::to_vec(&spec.config).map_err(|e| e.to_string())?;
    let mut slot = GuestSlot::new(shared.linked.clone(), spec.limits, config_json);
    if shared.linked.is_stateful() {
        slot.state = Some(open_state(shared, partition, &mut checkpoint, &path).await?);
    }
    let mut slot = Some(slot);
    let mut state_reported = 0u64;
    let mut hwm_changes = input.subscribe();
    // A batch already run on the guest (while the one before it was being written) whose
    // decision the last checkpoint stored: it goes straight to writing.
    let mut ready: Option<Ran> = None;
    let result = loop {
        if *stop.borrow() {
            break Ok(());
        }
        shared.positions.lock().insert(partition, checkpoint.next_offset);
        let Ran { batch, end, outcome, failed, started } = match ready.take() {
            Some(ran) => ran,
            None => {
                let hwm = input.high_watermark();
                let end_bound = checkpoint.pending_end.unwrap_or(hwm).min(hwm);
                if checkpoint.next_offset < input.log_start_offset() {
                    tracing::warn!(transform = %spec.name, partition, from = checkpoint.next_offset, to = input.log_start_offset(), "input records were deleted by retention before the transform read them; skipping ahead");
                    checkpoint.next_offset = input.log_start_offset();
                    checkpoint.pending_end = None;
                    checkpoint.pending_decision = None;
                    continue;
                }
                if checkpoint.next_offset >= end_bound {
                    tokio::select! {
                        _ = hwm_changes.changed() => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                let (batch, end) =
                    match read_batch(&input, checkpoint.next_offset, checkpoint.pending_end, end_bound, spec.batch_records_max).await {
                        Ok(read) => read,
                        Err(e) => break Err(e),
                    };
                let started = Instant::now();
                let decided = checkpoint.pending_decision.clone().filter(|_| checkpoint.pending_end == Some(end));
                let (outcome, back, batch) = run_on_guest(shared, slot.take(), batch, decided.clone()).await?;
                slot = Some(back);
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(e @ GuestError::Restore { .. }) => break Err(e.to_string()),
                    Err(e) => {
                        // No instance (pool exhausted), or a replay that ran out of time where the first
                        // run did not: not the records' fault. Same batch, later.
                        tracing::warn!(transform = %spec.name, partition, "{e}; retrying in {INSTANTIATE_RETRY_MS} ms");
                        shared.stats.batch_retried();
                        shared.retrying.lock().insert(partition, e.to_string());
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_millis(INSTANTIATE_RETRY_MS)) => {}
                            _ = stop.changed() => {}
                        }
                        continue;
                    }
                };
                let failed = match check_outcome(shared, &batch, &outcome, &mut state_reported) {
                    Ok(failed) => failed,
                    Err(e) => break Err(e),
                };
                // The batch's boundary and decision are durable before any of its outputs is.
                if decided.is_none() {
                    checkpoint.pending_end = Some(end);
                    checkpoint.pending_decision = Some(outcome.decision(&batch));
                    store(&checkpoint, &path).await.map_err(|e| e.to_string())?;
                    failpoint::abort_if(failpoint::get().abort_after_decision, "after storing a batch's decision");
                }
                Ran { batch, end, outcome, failed, started }
            }
        };
        let outputs = resolve(shared, &batch, &outcome, failed);
        log_lines(shared, &batch, &outcome);
        let written = outputs.values().map(|v| v.len() as u64).sum::<u64>();
        // (A clone of the partition: no borrow of the guest slot is held across the write.)
        let changelog = slot.as_ref().and_then(|s| s.state.as_ref()).map(|s| Arc::clone(&s.partition));
        // While this batch's changelog and outputs are written (fsyncs: the runner would wait),
        // the guest runs the next one. That is only computation on the guest's own memory: its
        // outputs and state changes are written after this batch's, and its decision is stored
        // with this batch's final checkpoint, never before this batch's outputs are durable.
        let run_ahead = !*stop.borrow() && input.high_watermark() > end && end >= input.log_start_offset();
        let ahead_slot = if run_ahead { slot.take() } else { None };
        let write = write_batch(shared, &mut checkpoint, changelog, &batch, &outcome, outputs);
        let ahead = read_and_run(shared, &input, end, ahead_slot);
        let (write_result, (back, ahead)) = tokio::join!(write, ahead);
        if run_ahead {
            slot = back;
        }
        if let Err(e) = write_result {
            break Err(e);
        }
        failpoint::abort_if(failpoint::get().abort_after_outputs, "after a batch's outputs are durable, before its checkpoint");
        checkpoint.next_offset = end;
        checkpoint.pending_end = None;
        checkpoint.pending_decision = None;
        // The batch run ahead joins this checkpoint write as the next pending batch (one write
        // instead of two), unless it cannot go on: then it is run again by the next iteration,
        // or the runner stops right after this batch's checkpoint.
        let mut stop_with = None;
        match ahead {
            Ok(Some((next, next_end, next_started, Ok(next_outcome)))) => {
                match check_outcome(shared, &next, &next_outcome, &mut state_reported) {
                    Ok(next_failed) => {
                        checkpoint.pending_end = Some(next_end);
                        checkpoint.pending_decision = Some(next_outcome.decision(&next));
                        ready = Some(Ran { batch: next, end: next_end, outcome: next_outcome, failed: next_failed, started: next_started });
                    }
                    Err(e) => stop_with = Some(e),
                }
            }
            Ok(Some((_, _, _, Err(e @ GuestError::Restore { .. })))) => stop_with = Some(e.to_string()),
            Ok(Some((_, _, _, Err(e)))) => tracing::warn!(transform = %spec.name, partition, "{e}; the batch is run again"),
            Ok(None) => {}
            Err(e) => stop_with = Some(e),
        }
        store(&checkpoint, &path).await.map_err(|e| e.to_string())?;
        if ready.is_some() {
            failpoint::abort_if(failpoint::get().abort_after_decision, "after storing a batch's decision");
            failpoint::abort_if(
                failpoint::get().abort_after_ahead_decision,
                "after storing a checkpoint that ends a batch and holds the next batch's decision",
            );
        }
        if let (Some(slot), Some(state_end)) = (slot.as_mut(), checkpoint.state_end) {
            slot.state_written(state_end);
        }
        shared.stats.batch(batch.records.len() as u64, written, started.elapsed().as_micros() as u64);
        shared.retrying.lock().remove(&partition);
        if let Some(e) = stop_with {
            break Err(e);
        }
    };
    if let Some(mut slot) = slot {
        slot.release(&shared.stats);
    }
    shared.stats.state_changed(state_reported, 0);
    result
}

/// A batch run on the guest, its decision stored, waiting to be written.
struct Ran {
    batch: Batch,
    end: i64,
    outcome: BatchOutcome,
    /// Failed records to dead-letter.
    failed: Vec<(usize, String)>,
    started: Instant,
}

/// What running ahead produced: the batch, its end, when it started and the guest's outcome.
type RunAhead = Option<(Batch, i64, Instant, Result<BatchOutcome, GuestError>)>;

/// Reads the batch at `from` and runs it on the guest in `slot` (a fresh batch: no stored
/// decision). Returns the slot back (`None` if it was lost) and what ran; nothing without a slot.
async fn read_and_run(
    shared: &Arc<RunnerShared>,
    input: &Arc<Partition>,
    from: i64,
    slot: Option<GuestSlot>,
) -> (Option<GuestSlot>, Result<RunAhead, String>) {
    let Some(slot) = slot else { return (None, Ok(None)) };
    let (batch, end) = match read_batch(input, from, None, input.high_watermark(), shared.spec.batch_records_max).await {
        Ok(read) => read,
        Err(e) => return (Some(slot), Err(e)),
    };
    let started = Instant::now();
    match run_on_guest(shared, Some(slot), batch, None).await {
        Ok((outcome, back, batch)) => (Some(back), Ok(Some((batch, end, started, outcome)))),
        Err(e) => (None, Err(e)),
    }
}

/// The checks between running a batch and storing its decision: the state size cap, topic
/// confinement and the error policy. Returns the failed records to dead-letter; `Err` stops the
/// runner.
fn check_outcome(
    shared: &Arc<RunnerShared>,
    batch: &Batch,
    outcome: &BatchOutcome,
    state_reported: &mut u64,
) -> Result<Vec<(usize, String)>, String> {
    if let Some(bytes) = outcome.state_bytes {
        shared.stats.state_changed(*state_reported, bytes);
        *state_reported = bytes;
        if bytes > shared.spec.state.bytes_max {
            shared.stats.state_cap_hit();
            return Err(GuestError::StateCap { bytes, cap: shared.spec.state.bytes_max }.to_string());
        }
    }
    confined(shared, outcome)?;
    apply_policy(shared, batch, outcome)
}

/// The runner's changelog partition and committed state range; a first start records the
/// changelog's current end as where its state begins.
async fn open_state(
    shared: &Arc<RunnerShared>,
    partition: i32,
    checkpoint: &mut Checkpoint,
    path: &std::path::Path,
) -> Result<StateLog, String> {
    let topic = state::changelog_topic(&shared.spec.name);
    let changelog = match shared.broker.partition(&topic, partition) {
        Some(changelog) => changelog,
        None => grow_changelog(shared, &topic, partition).await?,
    };
    let from = match checkpoint.state_from {
        Some(from) => from,
        None => {
            let from = changelog.high_watermark();
            checkpoint.state_from = Some(from);
            checkpoint.state_end = Some(from);
            store(checkpoint, path).await.map_err(|e| e.to_string())?;
            from
        }
    };
    Ok(StateLog::new(changelog, from, checkpoint.state_end.unwrap_or(from)))
}

/// An input partition added after deploy has no changelog partition yet: the changelog grows to
/// the input's partition count (the changelog partition of input partition p is p). Runners of
/// several new partitions may race here; the broker's admin lock serialises them and the loser
/// finds the partition already added.
async fn grow_changelog(shared: &Arc<RunnerShared>, topic: &str, partition: i32) -> Result<Arc<Partition>, String> {
    let want = shared.broker.topic(&shared.spec.input).map_or(0, |t| t.partitions.len() as i32).max(partition + 1);
    match shared.broker.create_partitions(topic, want, false).await {
        Ok(()) => tracing::info!(transform = %shared.spec.name, partitions = want, "state changelog grown with the input"),
        Err(crate::broker::BrokerError::InvalidPartitions { .. }) => {}
        Err(e) => return Err(format!("cannot add partition {partition} to the state changelog {topic}: {e}")),
    }
    shared
        .broker
        .partition(topic, partition)
        .ok_or_else(|| format!("state changelog partition {topic}-{partition} does not exist and could not be added"))
}

async fn open_checkpoint(
    shared: &Arc<RunnerShared>,
    input: &Arc<Partition>,
    path: &std::path::Path,
    start: StartPosition,
) -> Result<Checkpoint, TransformError> {
    let load_path = path.to_path_buf();
    if let Some(c) = blocking("load checkpoint", move || Checkpoint::load(&load_path)).await?? {
        return Ok(c);
    }
    let producer_id = shared.broker.allocate_producer_id().await?;
    let start = match start {
        StartPosition::Earliest => input.log_start_offset(),
        StartPosition::Latest => input.high_watermark(),
        StartPosition::Offset(o) => o.clamp(input.log_start_offset(), input.high_watermark()),
        StartPosition::Timestamp(ts) => {
            let p = Arc::clone(input);
            let found = blocking("offset for timestamp", move || p.log().offset_for_timestamp(ts)).await?;
            found.ok().flatten().map_or(input.high_watermark(), |(offset, _)| offset)
        }
    };
    let checkpoint = Checkpoint::new(producer_id, start);
    store(&checkpoint, path).await?;
    Ok(checkpoint)
}

async fn store(checkpoint: &Checkpoint, path: &std::path::Path) -> Result<(), TransformError> {
    let (c, p) = (checkpoint.clone(), path.to_path_buf());
    blocking("store checkpoint", move || c.store(&p)).await?
}

/// Reads records `[next_offset, end_bound)`, at most `records_max`. Returns the batch and its
/// end offset (exclusive). A replay (`pending_end` set) keeps the boundary chosen before the
/// crash: the log below the high watermark does not change, so the same read returns the same
/// records.
async fn read_batch(
    input: &Arc<Partition>,
    from: i64,
    pending_end: Option<i64>,
    end_bound: i64,
    records_max: usize,
) -> Result<(Batch, i64), String> {
    let p = Arc::clone(input);
    let read =
        blocking("read input", move || p.read(from, INPUT_READ_BYTES_MAX)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let (mut records, seen_end) = records::decode(read.records, from, end_bound)
        .map_err(|e| format!("input {}-{} at offset {from}: {e}", input.topic, input.index))?;
    let end = if records.len() > records_max {
        records.truncate(records_max);
        records.last().map_or(from + 1, |r| r.offset + 1)
    } else {
        // Past control records and compaction gaps too; at least one offset of progress.
        seen_end.unwrap_or(from + 1)
    };
    let end = pending_end.unwrap_or(end);
    records.retain(|r| r.offset < end);
    Ok((Batch { topic: input.topic.clone(), partition: input.index, records }, end))
}

/// Runs `batch` on the guest on a blocking thread; hands back the slot and the batch (moved
/// there and back, not copied: the runner needs its records for the outputs).
async fn run_on_guest(
    shared: &Arc<RunnerShared>,
    slot: Option<GuestSlot>,
    batch: Batch,
    decided: Option<Decision>,
) -> Result<(Result<BatchOutcome, GuestError>, GuestSlot, Batch), String> {
    let mut slot = slot.ok_or("the guest slot was lost")?;
    let (stats, policy) = (Arc::clone(&shared.stats), shared.spec.error_policy.clone());
    // Held until the guest call returns; waiting here is the `parallelism` bound.
    let _entered = shared.gate.enter().await;
    blocking("run transform", move || {
        let outcome = run_batch(&mut slot, &batch, policy.retries, policy.backoff_ms, &stats, decided.as_ref());
        (outcome, slot, batch)
    })
    .await
    .map_err(|e| e.to_string())
}

/// With the authorizer on, a record routed to a topic the spec does not declare halts the
/// transform (before anything of the batch is written): deploying checked the deployer's rights
/// on the declared topics only. Deterministic, so a restart halts at the same record.
fn confined(shared: &Arc<RunnerShared>, outcome: &BatchOutcome) -> Result<(), String> {
    if !crate::protocol::authorize::authorizer_enabled(&shared.broker) {
        return Ok(());
    }
    let spec = &shared.spec;
    match outcome.outputs.iter().filter_map(|e| e.topic.as_deref()).find(|t| !spec.routes_to(t)) {
        None => Ok(()),
        Some(topic) => Err(format!("a record was routed to topic {topic:?}, which the transform does not declare; with the authorizer on, redeploy with it in named_outputs (a manifest's spec.outputs) so the deployer's WRITE right on it is checked")),
    }
}

/// Returns the failed records to dead-letter (empty for `skip`); `Err` for `halt`.
fn apply_policy(shared: &Arc<RunnerShared>, batch: &Batch, outcome: &BatchOutcome) -> Result<Vec<(usize, String)>, String> {
    if outcome.failures.is_empty() {
        return Ok(Vec::new());
    }
    let spec = &shared.spec;
    for (i, error) in &outcome.failures {
        let offset = batch.records.get(*i).map_or(-1, |r| r.offset);
        tracing::warn!(transform = %spec.name, input = %spec.input, partition = batch.partition, offset, "record failed: {error}");
    }
    match &spec.error_policy.action {
        ErrorAction::Halt => {
            let (i, error) = &outcome.failures[0];
            let offset = batch.records.get(*i).map_or(-1, |r| r.offset);
            Err(format!("halted at {}-{} offset {offset}: {error}", spec.input, batch.partition))
        }
        ErrorAction::Skip => {
            shared.stats.skipped(outcome.failures.len() as u64);
            Ok(Vec::new())
        }
        ErrorAction::DeadLetter { .. } => {
            shared.stats.dead_lettered(outcome.failures.len() as u64);
            Ok(outcome.failures.clone())
        }
    }
}
