//! The guest side of the ABI (see `sluice_abi`): the input buffer the host writes into, config
//! parsing at `init`, the per-batch loop that calls the user's function for each record and
//! returns the output buffer's location, and (v2) the state machine's commands. Written without `unsafe`: the host writes into a buffer
//! we own, and we hand back addresses as integers.

use std::any::Any;
use std::cell::RefCell;
use std::sync::OnceLock;

use rkyv::util::AlignedVec;
use serde::de::DeserializeOwned;
use sluice_abi::{access_batch, pack_location, ArchivedBatch, OutputWriter, StateCommand, NO_RECORD};

use crate::logging::{set_current, take_logs};
use crate::stateful::{Machine, StatefulTransform};
use crate::{Header, Output, Record};

thread_local! {
    /// Where the host writes the next call's input (16-byte aligned, as rkyv requires).
    static INPUT: RefCell<AlignedVec<16>> = RefCell::new(AlignedVec::new());
    /// The last call's output; the host reads it before the next call.
    static OUTPUT: RefCell<Output> = RefCell::new(Output::new());
    /// A stateful transform's state (ABI v2); unused by stateless ones.
    static MACHINE: RefCell<Machine> = RefCell::new(Machine::default());
}

/// The parsed config (a wasm guest is single-threaded and `init` runs once per instance).
static CONFIG: OnceLock<Box<dyn Any + Send + Sync>> = OnceLock::new();

/// `sluice_transform_v1_alloc`: a buffer of `len` bytes for the host to fill.
pub fn alloc(len: i32) -> i32 {
    INPUT.with(|input| {
        let mut input = input.borrow_mut();
        input.clear();
        input.resize(usize::try_from(len).unwrap_or(0), 0);
        input.as_mut_ptr() as usize as i32
    })
}

fn input_matches(ptr: i32, len: i32, input: &AlignedVec<16>) -> bool {
    input.as_ptr() as usize as i32 == ptr && usize::try_from(len).ok() == Some(input.len())
}

fn finish(writer: &OutputWriter) -> i64 {
    pack_location(writer.bytes().as_ptr() as usize as u32, writer.bytes().len() as u32)
}

/// `sluice_transform_v1_init`: parses the config parameters into `C`.
pub fn init<C: DeserializeOwned + Send + Sync + 'static>(ptr: i32, len: i32) -> i64 {
    let parsed: Result<C, String> = INPUT.with(|input| {
        let input = input.borrow();
        if !input_matches(ptr, len, &input) {
            return Err("init was called with a buffer that alloc did not return".into());
        }
        let text: &[u8] = if input.is_empty() { b"{}" } else { input.as_slice() };
        serde_json::from_slice::<C>(text).map_err(|e| format!("invalid config parameters: {e}"))
    });
    OUTPUT.with(|out| {
        let mut out = out.borrow_mut();
        let writer = out.writer();
        writer.clear();
        match parsed {
            Ok(config) => {
                if CONFIG.set(Box::new(config)).is_err() {
                    writer.fail("init was called twice on one instance");
                }
            }
            Err(message) => writer.fail(&message),
        }
        finish(writer)
    })
}

/// `sluice_transform_v1_process`: runs `f` over every record of the archived batch.
pub fn process<C: 'static>(f: &dyn Fn(&Record<'_>, &mut Output, &C) -> crate::Result, ptr: i32, len: i32) -> i64 {
    with_batch::<C>(ptr, len, &|batch, config, out| {
        for_each_record(batch, out, &mut |record, out| f(record, out, config));
    })
}

/// `sluice_transform_v2_process`: runs the stateful transform `T` over the archived batch and
/// reports the state changes (provisional until the host commits them).
pub fn process_stateful<T: StatefulTransform>(ptr: i32, len: i32) -> i64 {
    with_batch::<T::Config>(ptr, len, &|batch, config, out| {
        MACHINE.with(|machine| {
            let mut machine = machine.borrow_mut();
            for_each_record(batch, out, &mut |record, out| machine.run_record::<T>(record, out, config));
            machine.finish_batch(out);
        })
    })
}

/// `sluice_transform_v2_state`: commit, abort or restore (see `sluice_abi::StateCommand`).
pub fn state_command(ptr: i32, len: i32) -> i64 {
    let command = INPUT.with(|input| {
        let input = input.borrow();
        if !input_matches(ptr, len, &input) {
            return Err("state was called with a buffer that alloc did not return".to_string());
        }
        StateCommand::decode(input.as_slice()).map_err(|e| e.to_string())
    });
    OUTPUT.with(|out| {
        let mut out = out.borrow_mut();
        out.input_index = 0;
        let writer = out.writer();
        writer.clear();
        match command {
            Ok(command) => MACHINE.with(|m| m.borrow_mut().command(command)),
            Err(message) => writer.fail(&message),
        }
        finish(out.writer())
    })
}

/// Validates the input buffer and the config, then runs `body` over the batch.
fn with_batch<C: 'static>(ptr: i32, len: i32, body: &dyn Fn(&ArchivedBatch, &C, &mut Output)) -> i64 {
    OUTPUT.with(|out| {
        let mut out = out.borrow_mut();
        out.writer().clear();
        out.input_index = 0;
        INPUT.with(|input| {
            let input = input.borrow();
            if !input_matches(ptr, len, &input) {
                out.writer().fail("process was called with a buffer that alloc did not return");
                return;
            }
            let Some(config) = CONFIG.get().and_then(|c| c.downcast_ref::<C>()) else {
                out.writer().fail("process was called before init");
                return;
            };
            run_archived(input.as_slice(), config, &mut out, body);
        });
        finish(out.writer())
    })
}

/// Validates the archived batch in `bytes` and runs `body` over it into `out` (cleared first):
/// everything a `process` call does between the host's copy in and its read out.
fn run_archived<C>(bytes: &[u8], config: &C, out: &mut Output, body: &dyn Fn(&ArchivedBatch, &C, &mut Output)) {
    out.writer().clear();
    out.input_index = 0;
    match access_batch(bytes) {
        Ok(batch) => body(batch, config, out),
        Err(e) => out.writer().fail(&format!("the batch does not validate: {e}")),
    }
}

/// The guest's `process` body run natively over an encoded batch, for the benchmark's native
/// baseline: the same validation, per-record loop and output encoding as in wasm, without the
/// sandbox. `out`'s buffer is reused across calls, as the guest's is.
pub fn process_native<C: 'static>(f: &dyn Fn(&Record<'_>, &mut Output, &C) -> crate::Result, bytes: &[u8], config: &C, out: &mut Output) {
    run_archived(bytes, config, out, &|batch, config, out| {
        for_each_record(batch, out, &mut |record, out| f(record, out, config));
    });
}

fn for_each_record(batch: &ArchivedBatch, out: &mut Output, f: &mut dyn FnMut(&Record<'_>, &mut Output) -> crate::Result) {
    let partition = batch.partition.to_native();
    for (i, r) in batch.records.iter().enumerate() {
        let index = i as u32;
        out.input_index = index;
        set_current(index);
        let record = Record {
            topic: batch.topic.as_str(),
            partition,
            offset: r.offset.to_native(),
            timestamp: r.timestamp.to_native(),
            key: r.key.as_ref().map(|k| k.as_slice()),
            value: r.value.as_ref().map(|v| v.as_slice()),
            headers: r.headers.iter().map(|h| Header { key: h.key.as_str(), value: h.value.as_ref().map(|v| v.as_slice()) }).collect(),
        };
        if let Err(e) = f(&record, out) {
            out.writer().record_error(index, &e.to_string());
        }
    }
    set_current(NO_RECORD);
    for line in take_logs() {
        out.writer().log(line.input_index, line.level as u8, &line.message);
    }
}
