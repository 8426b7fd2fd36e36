//! [`Harness`]: runs a [`StatefulTransform`] natively, batch by batch, through the same state
//! machine the broker drives in wasm: feed records, move event time, look at what was emitted,
//! at the state, and at the changelog the broker would have written; rebuild an instance from
//! that changelog to test restore.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use sluice_abi::{Decoded, Emitted, RecordError, StateCommand, StateOp};

use crate::state::key_part;
use crate::stateful::{Machine, StatefulTransform};
use crate::{Output, Record};

/// What one batch (or one move of event time) produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fed {
    /// Output records (those of failed records already dropped, as the broker does).
    pub records: Vec<Emitted>,
    /// Records the transform failed on: their state changes were taken back.
    pub errors: Vec<RecordError>,
    /// The batch's state changes: what the broker writes to the changelog.
    pub state: Vec<StateOp>,
}

impl Fed {
    /// Output values as text.
    pub fn values(&self) -> Vec<String> {
        self.records.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()).collect()
    }
}

/// A stateful transform under test. See the crate docs for an example.
pub struct Harness<T: StatefulTransform> {
    config: T::Config,
    machine: Machine,
    changelog: Vec<StateOp>,
    _transform: PhantomData<T>,
}

impl<T: StatefulTransform> Harness<T> {
    /// A fresh instance with empty state.
    pub fn new(config: T::Config) -> Self {
        Harness { config, machine: Machine::default(), changelog: Vec::new(), _transform: PhantomData }
    }

    /// An instance restored from a changelog (as the broker does after a restart).
    pub fn restored(config: T::Config, changelog: &[StateOp]) -> Self {
        let mut h = Harness::new(config);
        h.machine.command(StateCommand::Restore(changelog.to_vec()));
        h.changelog = changelog.to_vec();
        h
    }

    /// Runs `records` as one batch and commits it.
    pub fn feed(&mut self, records: &[Record<'_>]) -> Fed {
        let mut out = Output::new();
        for (i, record) in records.iter().enumerate() {
            out.input_index = i as u32;
            if let Err(e) = self.machine.run_record::<T>(record, &mut out, &self.config) {
                out.writer().record_error(i as u32, &e.to_string());
            }
        }
        self.finish(out, records.len())
    }

    /// Moves event time to `timestamp_ms` without a record (as a record with no effect of its
    /// own would), closing windows and firing timers that become due.
    pub fn advance_to(&mut self, timestamp_ms: i64) -> Fed {
        let mut out = Output::new();
        if let Err(e) = self.machine.advance::<T>(timestamp_ms, &mut out, &self.config) {
            out.writer().record_error(0, &e.to_string());
        }
        self.finish(out, 1)
    }

    fn finish(&mut self, mut out: Output, batch_len: usize) -> Fed {
        self.machine.finish_batch(&mut out);
        self.machine.command(StateCommand::Commit);
        let decoded = Decoded::parse(out.writer().bytes(), batch_len.max(1))
            .unwrap_or_else(|e| panic!("the SDK wrote a malformed output buffer: {e}"));
        let state = decoded.state;
        self.changelog.extend(state.iter().cloned());
        let failed: Vec<u32> = decoded.errors.iter().map(|e| e.input_index).collect();
        let records = decoded.records.into_iter().filter(|r| !failed.contains(&r.input_index)).collect();
        Fed { records, errors: decoded.errors, state }
    }

    /// The state value of `key` (what [`crate::Context::get`] returns for it); `None::<&[u8]>`
    /// for null-keyed records.
    pub fn get<V: DeserializeOwned>(&self, key: Option<impl AsRef<[u8]>>) -> Option<V> {
        let key = key.as_ref().map(|k| k.as_ref());
        self.machine.store.get(&key_part(key)).and_then(|b| crate::codec::decode(b).ok())
    }

    /// Every state change committed so far, in order: the changelog the broker would hold.
    pub fn changelog(&self) -> &[StateOp] {
        &self.changelog
    }

    /// The current watermark.
    pub fn watermark(&self) -> i64 {
        self.machine.watermark(T::allowed_lateness_ms(&self.config))
    }

    /// State entries held (user state, open windows, timers, bookkeeping).
    pub fn state_entries(&self) -> usize {
        self.machine.store.len()
    }

    /// State size in bytes (keys plus values): what the broker's state size cap measures.
    pub fn state_bytes(&self) -> u64 {
        self.machine.store.bytes()
    }
}
