//! Running one batch on the guest under the error policy's retries: a failed call discards the
//! instance, waits (exponential backoff) and tries again on a fresh one; once retries are spent,
//! a batch-level failure (trap, time or memory limit) is narrowed down by running each record on
//! its own, so only the records that fail get the policy's action. Blocking (CPU-bound).
//!
//! A stateful guest (ABI v2) holds each call's state changes provisionally: the slot commits
//! them when it accepts a call's result and aborts them before a retry, so every attempt starts
//! from the same state. A re-created instance is restored from the changelog plus the changes
//! of earlier batches not yet confirmed in it (`StateLog::unwritten`) and those accepted
//! earlier in the same batch (`StateLog::pending`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_abi::{Batch, Decoded, Emitted, LogLine, StateCommand, StateOp};

use super::checkpoint::{Decision, FailedRecord};
use super::instance::{Guest, GuestLimits, Linked};
use super::state::StateLog;
use super::stats::{FailureKind, TransformStats};
use super::GuestError;

/// What a batch produced.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Output records; `input_index` refers to the batch.
    pub outputs: Vec<Emitted>,
    /// Records that failed after all retries: (index in the batch, error text).
    pub failures: Vec<(usize, String)>,
    /// Guest log lines; `input_index` refers to the batch.
    pub logs: Vec<LogLine>,
    /// Net state changes of the batch, at most one per key (stateful guests). Shared with
    /// `StateLog::unwritten` until the changelog has them.
    pub state: Arc<Vec<StateOp>>,
    /// The guest's state size after the batch, as it reported it.
    pub state_bytes: Option<u64>,
    /// The batch was run record by record (see [`Decision::isolated`]).
    pub isolated: bool,
}

impl BatchOutcome {
    /// What the runner stores before writing outputs, so a replay decides the same.
    pub fn decision(&self, batch: &Batch) -> Decision {
        let failed = self
            .failures
            .iter()
            .map(|(i, error)| FailedRecord { offset: batch.records.get(*i).map_or(-1, |r| r.offset), error: error.clone() })
            .collect();
        Decision { isolated: self.isolated, failed }
    }
}

/// A replay's time budget is this many times the transform's limit: its decision is already
/// stored, so the limit only guards against a guest that never returns, and a record that the
/// first run finished in time should not miss it now because the machine is busier.
pub const REPLAY_TIME_FACTOR: u64 = 4;

/// The instance a runner keeps between batches, and what it needs to make a new one.
pub struct GuestSlot {
    linked: Linked,
    limits: GuestLimits,
    config_json: Vec<u8>,
    guest: Option<Guest>,
    memory_reported: u64,
    /// Where a stateful guest's state is restored from (`None`: stateless).
    pub state: Option<StateLog>,
}

impl GuestSlot {
    /// An empty slot; the first call instantiates.
    pub fn new(linked: Linked, limits: GuestLimits, config_json: Vec<u8>) -> Self {
        GuestSlot { linked, limits, config_json, guest: None, memory_reported: 0, state: None }
    }

    /// A new instance, its state restored.
    fn instantiate(&self, stats: &TransformStats) -> Result<Guest, GuestError> {
        let mut guest = Guest::new(&self.linked, self.limits, &self.config_json)?;
        if let Some(state) = &self.state {
            let restored = state.restore(&mut guest)?;
            stats.restored(restored.records, restored.millis);
            tracing::info!(changelog = %state.partition.topic, partition = state.partition.index, records = restored.records, millis = restored.millis, "state restored");
        }
        Ok(guest)
    }

    /// One call on a live instance (created if needed). A failure drops the instance.
    fn call(&mut self, batch: &Batch, time_ms: u64, stats: &TransformStats) -> Result<Decoded, GuestError> {
        let result = match &mut self.guest {
            Some(guest) => guest.process_within(batch, time_ms),
            None => self.instantiate(stats).and_then(|mut g| {
                let r = g.process_within(batch, time_ms);
                self.guest = Some(g);
                r
            }),
        };
        if let Err(e) = &result {
            self.guest = None;
            stats.failure(match e {
                GuestError::TimeLimit { .. } => FailureKind::TimeLimit,
                GuestError::MemoryLimit { .. } => FailureKind::MemoryLimit,
                _ => FailureKind::Trap,
            });
        }
        let memory = self.guest.as_ref().map_or(0, |g| g.memory_bytes() as u64);
        stats.memory_changed(self.memory_reported, memory);
        self.memory_reported = memory;
        result
    }

    /// Makes a call's state changes final in the instance (the runner writes them to the
    /// changelog next). If the guest fails to, it is dropped; the next instance is restored
    /// with the changes, which are kept in `pending` (then `unwritten`) until the changelog
    /// has them.
    fn accept(&mut self, changes: &Arc<Vec<StateOp>>) {
        let Some(state) = &mut self.state else { return };
        state.pending.push(Arc::clone(changes));
        if let Some(guest) = &mut self.guest {
            if let Err(e) = guest.state_command(&StateCommand::Commit) {
                tracing::warn!("state commit failed, the instance is re-created: {e}");
                self.guest = None;
            }
        }
    }

    /// Takes back a call's state changes before the batch is retried.
    fn abort(&mut self) {
        if self.state.is_none() {
            return;
        }
        if let Some(guest) = &mut self.guest {
            if guest.state_command(&StateCommand::Abort).is_err() {
                self.guest = None;
            }
        }
    }

    /// The oldest run batch's changes are in the changelog, which ends at `end` after them.
    /// Called once per batch [`run_batch`] returned, in order.
    pub fn state_written(&mut self, end: i64) {
        if let Some(state) = &mut self.state {
            state.end = end;
            state.unwritten.pop_front();
        }
    }

    /// Releases the instance (its memory goes back to the pool).
    pub fn release(&mut self, stats: &TransformStats) {
        self.guest = None;
        stats.memory_changed(self.memory_reported, 0);
        self.memory_reported = 0;
    }
}

/// Runs `batch` with up to `retries` extra attempts, then isolates failing records.
///
/// `Err` only when no instance could be created (the pool is exhausted): that says nothing
/// about the records, so the caller retries the batch later instead of applying the policy.
/// With `decided` (a replay after a crash, the decision stored by the first run) the batch is
/// run the way the first run ended up running it, and the stored failures are taken as they are:
/// those records are not run again. A record that the first run accepted and that fails now is
/// [`GuestError::ReplayDiverged`] (the caller retries later), never a new failure.
pub fn run_batch(
    slot: &mut GuestSlot,
    batch: &Batch,
    retries: u32,
    backoff_ms: u64,
    stats: &TransformStats,
    decided: Option<&Decision>,
) -> Result<BatchOutcome, GuestError> {
    let outcome = run_batch_inner(slot, batch, retries, backoff_ms, stats, decided)?;
    // The batch's changes move from "this batch" to "run, not yet in the changelog".
    if let Some(state) = &mut slot.state {
        state.pending.clear();
        state.unwritten.push_back(Arc::clone(&outcome.state));
    }
    Ok(outcome)
}

fn run_batch_inner(
    slot: &mut GuestSlot,
    batch: &Batch,
    retries: u32,
    backoff_ms: u64,
    stats: &TransformStats,
    decided: Option<&Decision>,
) -> Result<BatchOutcome, GuestError> {
    // An earlier run of this batch that ended early (no instance) left accepted changes in the
    // instance and in `pending`: start again from the committed state.
    if let Some(state) = slot.state.as_mut().filter(|s| !s.pending.is_empty()) {
        state.pending.clear();
        slot.guest = None;
    }
    if let Some(decided) = decided {
        return replay(slot, batch, decided, stats);
    }
    let time_ms = slot.limits.batch_time_ms;
    let mut last_error = None;
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(backoff_ms.saturating_mul(1 << (attempt - 1).min(10))));
        }
        match slot.call(batch, time_ms, stats) {
            Ok(decoded) if decoded.errors.is_empty() || attempt == retries => {
                let (decoded, changes) = take_state(decoded);
                slot.accept(&changes);
                return Ok(outcome(decoded, changes, 0));
            }
            Ok(_) => {
                slot.abort();
                last_error = None;
            }
            Err(e @ GuestError::Restore { .. }) => return Err(e),
            Err(e) => last_error = Some(e),
        }
    }
    // Retries are spent on a batch-level failure: find the records that cause it.
    let Some(batch_error) = last_error else { return Ok(BatchOutcome::default()) };
    if let GuestError::Instantiate { .. } = batch_error {
        return Err(batch_error);
    }
    if batch.records.len() == 1 {
        return Ok(BatchOutcome { failures: vec![(0, batch_error.to_string())], isolated: true, ..BatchOutcome::default() });
    }
    isolate(slot, batch, time_ms, stats, &|i, e| Ok((i, e.to_string())))
}

/// Runs each record of `batch` on its own. A record's failure becomes what `failed` makes of it:
/// a failure for the policy, or (in a replay) an error that ends the run.
fn isolate(
    slot: &mut GuestSlot,
    batch: &Batch,
    time_ms: u64,
    stats: &TransformStats,
    failed: &dyn Fn(usize, GuestError) -> Result<(usize, String), GuestError>,
) -> Result<BatchOutcome, GuestError> {
    let mut all = BatchOutcome { isolated: true, ..BatchOutcome::default() };
    for (i, record) in batch.records.iter().enumerate() {
        let single = Batch { topic: batch.topic.clone(), partition: batch.partition, records: vec![record.clone()] };
        match slot.call(&single, time_ms, stats) {
            Ok(decoded) => {
                let (decoded, changes) = take_state(decoded);
                slot.accept(&changes);
                let part = outcome(decoded, changes, i);
                all.outputs.extend(part.outputs);
                all.failures.extend(part.failures);
                all.logs.extend(part.logs);
                all.state_bytes = part.state_bytes.or(all.state_bytes);
            }
            Err(e @ (GuestError::Instantiate { .. } | GuestError::Restore { .. })) => return Err(e),
            Err(e) => all.failures.push(failed(i, e)?),
        }
    }
    if let Some(state) = &slot.state {
        all.state = Arc::new(net_changes(state.pending.iter().flat_map(|ops| ops.iter())));
    }
    Ok(all)
}

/// Re-runs a batch whose decision is stored, with a looser time budget, the way the first run
/// ended up running it: as one call (its failures were errors the guest returned, which it
/// returns again), or record by record, leaving out the stored failures (they fail again, with
/// the stored text, without running). The outputs are the first run's, because the guest is
/// deterministic and the one non-deterministic outcome, the time limit, is not decided again.
fn replay(slot: &mut GuestSlot, batch: &Batch, decided: &Decision, stats: &TransformStats) -> Result<BatchOutcome, GuestError> {
    let time_ms = slot.limits.batch_time_ms.saturating_mul(REPLAY_TIME_FACTOR);
    let failed_at = |offset: i64| decided.failed.iter().find(|f| f.offset == offset);
    let offset_of = |i: usize| batch.records.get(i).map_or(-1, |r| r.offset);
    let mut got = if decided.isolated {
        // Indexes into `kept` map back to indexes into `batch`.
        let index: Vec<usize> = (0..batch.records.len()).filter(|i| failed_at(offset_of(*i)).is_none()).collect();
        let kept = Batch {
            topic: batch.topic.clone(),
            partition: batch.partition,
            records: index.iter().filter_map(|i| batch.records.get(*i).cloned()).collect(),
        };
        let diverged = |i: usize, e: GuestError| GuestError::ReplayDiverged {
            offset: kept.records.get(i).map_or(-1, |r| r.offset),
            reason: e.to_string(),
        };
        let mut got = isolate(slot, &kept, time_ms, stats, &|i, e| Err(diverged(i, e)))?;
        let back = |i: u32| index.get(i as usize).map_or(u32::MAX, |j| *j as u32);
        got.outputs.iter_mut().for_each(|r| r.input_index = back(r.input_index));
        got.logs.iter_mut().filter(|l| l.input_index != sluice_abi::NO_RECORD).for_each(|l| l.input_index = back(l.input_index));
        got.failures.iter_mut().for_each(|f| f.0 = back(f.0 as u32) as usize);
        got
    } else {
        let first = batch.records.first().map_or(-1, |r| r.offset);
        let decoded = slot.call(batch, time_ms, stats).map_err(|e| GuestError::ReplayDiverged { offset: first, reason: e.to_string() })?;
        let (decoded, changes) = take_state(decoded);
        slot.accept(&changes);
        outcome(decoded, changes, 0)
    };
    if let Some((i, e)) = got.failures.iter().find(|(i, _)| failed_at(offset_of(*i)).is_none()) {
        return Err(GuestError::ReplayDiverged { offset: offset_of(*i), reason: e.clone() });
    }
    got.failures = (0..batch.records.len()).filter_map(|i| failed_at(offset_of(i)).map(|f| (i, f.error.clone()))).collect();
    Ok(got)
}

/// A call's state changes, moved out of the decoded output to be shared.
fn take_state(mut decoded: Decoded) -> (Decoded, Arc<Vec<StateOp>>) {
    let changes = Arc::new(std::mem::take(&mut decoded.state));
    (decoded, changes)
}

/// The net effect of changes applied in order: the last one per key, in key order.
fn net_changes<'a>(ops: impl Iterator<Item = &'a StateOp>) -> Vec<StateOp> {
    let mut last: BTreeMap<&[u8], &StateOp> = BTreeMap::new();
    for op in ops {
        last.insert(op.key(), op);
    }
    last.into_values().cloned().collect()
}

/// Converts a decoded output (its state changes taken out as `state`), shifting indexes by
/// `base` (for single-record calls).
fn outcome(decoded: Decoded, state: Arc<Vec<StateOp>>, base: usize) -> BatchOutcome {
    let shift = |i: u32| (i as usize + base) as u32;
    let failed: Vec<(usize, String)> = decoded.errors.into_iter().map(|e| (shift(e.input_index) as usize, e.message)).collect();
    // Outputs of a record that reported an error are dropped with it: the record is handled by
    // the policy as a whole.
    let outputs = decoded
        .records
        .into_iter()
        .map(|mut r| {
            r.input_index = shift(r.input_index);
            r
        })
        .filter(|r| !failed.iter().any(|(i, _)| *i == r.input_index as usize))
        .collect();
    let logs = decoded
        .logs
        .into_iter()
        .map(|mut l| {
            if l.input_index != sluice_abi::NO_RECORD {
                l.input_index = shift(l.input_index);
            }
            l
        })
        .collect();
    BatchOutcome { outputs, failures: failed, logs, state, state_bytes: decoded.state_bytes, isolated: false }
}
