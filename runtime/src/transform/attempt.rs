//! Running one batch on the guest under the error policy's retries: a failed call discards the
//! instance, waits (exponential backoff) and tries again on a fresh one; once retries are spent,
//! a batch-level failure (trap, time or memory limit) is narrowed down by running each record on
//! its own, so only the records that fail get the policy's action. Blocking (CPU-bound).

use std::time::Duration;

use sluice_abi::{Batch, Decoded, Emitted, LogLine};

use super::instance::{Guest, GuestLimits, Linked};
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
}

/// The instance a runner keeps between batches, and what it needs to make a new one.
pub struct GuestSlot {
    linked: Linked,
    limits: GuestLimits,
    config_json: Vec<u8>,
    guest: Option<Guest>,
    memory_reported: u64,
}

impl GuestSlot {
    /// An empty slot; the first call instantiates.
    pub fn new(linked: Linked, limits: GuestLimits, config_json: Vec<u8>) -> Self {
        GuestSlot { linked, limits, config_json, guest: None, memory_reported: 0 }
    }

    /// One call on a live instance (created if needed). A failure drops the instance.
    fn call(&mut self, batch: &Batch, stats: &TransformStats) -> Result<Decoded, GuestError> {
        let result = match &mut self.guest {
            Some(guest) => guest.process(batch),
            None => Guest::new(&self.linked, self.limits, &self.config_json).and_then(|mut g| {
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
    let mut last_error = None;
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(backoff_ms.saturating_mul(1 << (attempt - 1).min(10))));
        }
        match slot.call(batch, stats) {
            Ok(decoded) if decoded.errors.is_empty() || attempt == retries => return Ok(outcome(decoded, 0)),
            Ok(_) => last_error = None,
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
                let part = outcome(decoded, i);
                all.outputs.extend(part.outputs);
                all.failures.extend(part.failures);
                all.logs.extend(part.logs);
            }
            Err(e @ GuestError::Instantiate { .. }) => return Err(e),
            Err(e) => all.failures.push((i, e.to_string())),
        }
    }
    Ok(all)
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
    BatchOutcome { outputs, failures: failed, logs }
}
