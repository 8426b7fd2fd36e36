//! Running one batch on the guest under the error policy's retries: a failed call discards the
//! instance, waits (exponential backoff) and tries again on a fresh one; once retries are spent,
//! a batch-level failure (trap, time or memory limit) is narrowed down by running each record on
//! its own, so only the records that fail get the policy's action. Blocking (CPU-bound).
//!
//! A stateful guest (ABI v2) holds each call's state changes provisionally: the slot commits
//! them when it accepts a call's result and aborts them before a retry, so every attempt starts
//! from the same state. A re-created instance is restored from the changelog plus the changes
//! accepted earlier in the same batch (`StateLog::pending`).

use std::time::Duration;

use std::collections::BTreeMap;

use sluice_abi::{Batch, Decoded, Emitted, LogLine, StateCommand, StateOp};

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
    /// Net state changes of the batch, one per key in key order (stateful guests).
    pub state: Vec<StateOp>,
    /// The guest's state size after the batch, as it reported it.
    pub state_bytes: Option<u64>,
}

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
    fn call(&mut self, batch: &Batch, stats: &TransformStats) -> Result<Decoded, GuestError> {
        let result = match &mut self.guest {
            Some(guest) => guest.process(batch),
            None => self.instantiate(stats).and_then(|mut g| {
                let r = g.process(batch);
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
    /// with the changes, which are kept in `pending` until the changelog has them.
    fn accept(&mut self, decoded: &Decoded) {
        let Some(state) = &mut self.state else { return };
        state.pending.extend(decoded.state.iter().cloned());
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

    /// The batch's changes are in the changelog up to `end`: nothing is pending any more.
    pub fn state_written(&mut self, end: i64) {
        if let Some(state) = &mut self.state {
            state.end = end;
            state.pending.clear();
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
pub fn run_batch(slot: &mut GuestSlot, batch: &Batch, retries: u32, backoff_ms: u64, stats: &TransformStats) -> Result<BatchOutcome, GuestError> {
    // An earlier run of this batch that ended early (no instance) left accepted changes in the
    // instance and in `pending`: start again from the committed state.
    if let Some(state) = slot.state.as_mut().filter(|s| !s.pending.is_empty()) {
        state.pending.clear();
        slot.guest = None;
    }
    let mut last_error = None;
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(backoff_ms.saturating_mul(1 << (attempt - 1).min(10))));
        }
        match slot.call(batch, stats) {
            Ok(decoded) if decoded.errors.is_empty() || attempt == retries => {
                slot.accept(&decoded);
                return Ok(outcome(decoded, 0));
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
        return Ok(BatchOutcome { failures: vec![(0, batch_error.to_string())], ..BatchOutcome::default() });
    }
    let mut all = BatchOutcome::default();
    for (i, record) in batch.records.iter().enumerate() {
        let single = Batch { topic: batch.topic.clone(), partition: batch.partition, records: vec![record.clone()] };
        match slot.call(&single, stats) {
            Ok(decoded) => {
                slot.accept(&decoded);
                let part = outcome(decoded, i);
                all.outputs.extend(part.outputs);
                all.failures.extend(part.failures);
                all.logs.extend(part.logs);
                all.state_bytes = part.state_bytes.or(all.state_bytes);
            }
            Err(e @ (GuestError::Instantiate { .. } | GuestError::Restore { .. })) => return Err(e),
            Err(e) => all.failures.push((i, e.to_string())),
        }
    }
    if let Some(state) = &slot.state {
        all.state = net_changes(&state.pending);
    }
    Ok(all)
}

/// The net effect of changes applied in order: the last one per key, in key order.
fn net_changes(ops: &[StateOp]) -> Vec<StateOp> {
    let mut last: BTreeMap<&[u8], &StateOp> = BTreeMap::new();
    for op in ops {
        last.insert(op.key(), op);
    }
    last.into_values().cloned().collect()
}

/// Converts a decoded output, shifting indexes by `base` (for single-record calls).
fn outcome(decoded: Decoded, base: usize) -> BatchOutcome {
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
    BatchOutcome { outputs, failures: failed, logs, state: decoded.state, state_bytes: decoded.state_bytes }
}
