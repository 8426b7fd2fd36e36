//! One guest instance: instantiate with limits, `init` with the config parameters, then one
//! `process` call per batch. Any failure of a call ([`GuestError`]) leaves the instance in an
//! unknown state; the owner drops it and instantiates a fresh one (cheap with the pooling
//! allocator) before the next call.

use sluice_abi::{encode_batch, unpack_location, Batch, Decoded, Exports, StateCommand, Status};
use wasmtime::{Engine, InstancePre, Linker, Memory, Module, Store, StoreLimitsBuilder, Trap, TypedFunc};

use super::engine::TransformEngine;
use super::wasi::{self, GuestState};
use super::{GuestError, TransformError};

/// Resource limits of one transform's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestLimits {
    /// Linear memory an instance may grow to.
    pub memory_bytes: u64,
    /// Wall-clock time one `process` (or `init`) call may take.
    pub batch_time_ms: u64,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits { memory_bytes: 64 << 20, batch_time_ms: 2_000 }
    }
}

/// A module linked against the sandbox's imports, ready to instantiate many times.
#[derive(Clone)]
pub struct Linked {
    pre: InstancePre<GuestState>,
    abi: Exports,
}

impl Linked {
    /// Links `module`: WASI functions from `wasi`, any other WASI import traps when called.
    pub fn new(engine: &Engine, module: &Module) -> Result<Self, TransformError> {
        let link_error = |e: wasmtime::Error| TransformError::Compile { reason: format!("linking: {e:#}") };
        let mut linker = Linker::new(engine);
        wasi::add_to_linker(&mut linker).map_err(link_error)?;
        linker.define_unknown_imports_as_traps(module).map_err(link_error)?;
        let pre = linker.instantiate_pre(module).map_err(link_error)?;
        let abi = super::module::abi_of(module)?;
        Ok(Linked { pre, abi })
    }

    /// Whether the module keeps state (ABI v2).
    pub fn is_stateful(&self) -> bool {
        self.abi.state.is_some()
    }
}

/// A live instance.
pub struct Guest {
    store: Store<GuestState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    process: TypedFunc<(i32, i32), i64>,
    /// ABI v2's `state` export; `None` for a stateless module.
    state: Option<TypedFunc<(i32, i32), i64>>,
    limits: GuestLimits,
}

impl Guest {
    /// Instantiates and initialises with `config_json` (a JSON object's bytes).
    pub fn new(linked: &Linked, limits: GuestLimits, config_json: &[u8]) -> Result<Guest, GuestError> {
        let engine = linked.pre.module().engine().clone();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX))
            .instances(1)
            .tables(4)
            .memories(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&engine, GuestState::new(store_limits));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(TransformEngine::ticks_for(limits.batch_time_ms) + 1);
        let instantiate_error = |e: wasmtime::Error| GuestError::Instantiate { reason: format!("{e:#}") };
        let instance = linked.pre.instantiate(&mut store).map_err(instantiate_error)?;
        let memory =
            instance.get_memory(&mut store, "memory").ok_or_else(|| GuestError::Instantiate { reason: "no memory export".into() })?;
        let abi = linked.abi;
        let alloc = instance.get_typed_func::<i32, i32>(&mut store, abi.alloc).map_err(instantiate_error)?;
        let init = instance.get_typed_func::<(i32, i32), i64>(&mut store, abi.init).map_err(instantiate_error)?;
        let process = instance.get_typed_func::<(i32, i32), i64>(&mut store, abi.process).map_err(instantiate_error)?;
        let state = match abi.state {
            Some(name) => Some(instance.get_typed_func::<(i32, i32), i64>(&mut store, name).map_err(instantiate_error)?),
            None => None,
        };
        let mut guest = Guest { store, memory, alloc, process, state, limits };
        if let Ok(start) = instance.get_typed_func::<(), ()>(&mut guest.store, "_initialize") {
            start.call(&mut guest.store, ()).map_err(|e| guest.classify(e))?;
        }
        let decoded = guest.call(&init, config_json, 0)?;
        if let Status::Failed(reason) = decoded.status {
            return Err(GuestError::Failed { reason });
        }
        Ok(guest)
    }

    /// Runs one batch. The WASI clock reads the first record's timestamp and randomness is seeded
    /// with its offset, so a replay of the same batch behaves identically.
    pub fn process(&mut self, batch: &Batch) -> Result<Decoded, GuestError> {
        self.process_within(batch, self.limits.batch_time_ms)
    }

    /// [`Guest::process`] with a time budget other than the transform's limit (a replay of a
    /// batch whose decision is already stored runs with a looser one).
    pub fn process_within(&mut self, batch: &Batch, time_ms: u64) -> Result<Decoded, GuestError> {
        let first = batch.records.first();
        let clock_ms = first.map_or(0, |r| r.timestamp);
        let seed = first.map_or(0, |r| r.offset as u64) ^ u64::from(batch.partition as u32).rotate_left(48);
        self.store.data_mut().reset_for_batch(clock_ms, seed);
        let bytes = encode_batch(batch).map_err(|e| GuestError::Failed { reason: format!("cannot encode the batch: {e}") })?;
        let forced = super::failpoint::get().time_limit_at.is_some_and(|at| batch.records.iter().any(|r| r.offset == at));
        // A deadline of 0 ticks has passed already: the first epoch check interrupts the call.
        self.store.set_epoch_deadline(if forced { 0 } else { TransformEngine::ticks_for(time_ms) + 1 });
        let process = self.process.clone();
        let decoded = self.call(&process, &bytes, batch.records.len())?;
        match decoded.status {
            Status::Ok => Ok(decoded),
            Status::Failed(reason) => Err(GuestError::Failed { reason }),
        }
    }

    /// Sends a state command (ABI v2): commit or abort the last batch's changes, or restore
    /// entries. A stateless guest has no state: every command succeeds and does nothing.
    pub fn state_command(&mut self, command: &StateCommand) -> Result<(), GuestError> {
        let Some(func) = self.state.clone() else { return Ok(()) };
        self.store.set_epoch_deadline(TransformEngine::ticks_for(self.limits.batch_time_ms) + 1);
        let decoded = self.call(&func, &command.encode(), 0)?;
        match decoded.status {
            Status::Ok => Ok(()),
            Status::Failed(reason) => Err(GuestError::Failed { reason }),
        }
    }

    /// Whether the instance keeps state (ABI v2).
    pub fn is_stateful(&self) -> bool {
        self.state.is_some()
    }

    /// Bytes of linear memory the instance holds now.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// What the guest wrote to stdout/stderr during the last call, as text.
    pub fn captured_output(&self) -> String {
        String::from_utf8_lossy(&self.store.data().captured).into_owned()
    }

    fn call(&mut self, func: &TypedFunc<(i32, i32), i64>, input: &[u8], batch_len: usize) -> Result<Decoded, GuestError> {
        let too_big = || GuestError::Failed { reason: format!("input of {} bytes does not fit a 32-bit guest", input.len()) };
        let len = i32::try_from(input.len()).map_err(|_| too_big())?;
        let ptr = self.alloc.call(&mut self.store, len).map_err(|e| self.classify(e))?;
        self.memory
            .write(&mut self.store, ptr as u32 as usize, input)
            .map_err(|e| GuestError::Failed { reason: format!("alloc returned a buffer outside memory: {e}") })?;
        let packed = func.call(&mut self.store, (ptr, len)).map_err(|e| self.classify(e))?;
        let (out_ptr, out_len) = unpack_location(packed);
        let data = self.memory.data(&self.store);
        let out = data
            .get(out_ptr as usize..(out_ptr as usize).saturating_add(out_len as usize))
            .ok_or_else(|| GuestError::Failed { reason: format!("output buffer {out_ptr}+{out_len} is outside memory") })?;
        Decoded::parse(out, batch_len).map_err(|e| GuestError::Failed { reason: e.to_string() })
    }

    fn classify(&self, e: wasmtime::Error) -> GuestError {
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return GuestError::TimeLimit { limit_ms: self.limits.batch_time_ms };
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") || text.contains("memory growth failure") {
            return GuestError::MemoryLimit { limit_bytes: self.limits.memory_bytes };
        }
        // A trap's own text ("wasm `unreachable` instruction executed"); otherwise the host
        // function's error (e.g. proc_exit) is the root cause.
        let what = match e.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        let captured = self.captured_output();
        let captured = captured.trim();
        // A Rust panic prints its message to stderr before aborting: that is the useful part.
        let reason = if captured.is_empty() { what } else { format!("{what}; guest output: {captured}") };
        GuestError::Trap { reason }
    }
}
