//! Host tests with tiny hand-written modules (WAT): a trap, an infinite loop and a memory bomb
//! each end their call with the right [`GuestError`] (and the engine keeps serving), and every
//! way a module can be invalid gets its own deploy error.
#![allow(clippy::unwrap_used)]

use sluice_abi::{Batch, Record};

use super::engine::{EngineLimits, TransformEngine};
use super::instance::{Guest, GuestLimits, Linked};
use super::module::{compile, MODULE_BYTES_MAX};
use super::{GuestError, TransformError};

/// `(ptr 16, len 1)`: the one-byte "ok, no entries" output the data segment holds at 16.
const OK: &str = "i64.const 68719476737";

fn module(process_body: &str) -> Vec<u8> {
    module_with(process_body, "", "sluice_transform_v1")
}

fn module_with(process_body: &str, extra: &str, prefix: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
          {extra}
          (memory (export "memory") 2)
          (data (i32.const 16) "\00")
          (func (export "{prefix}_alloc") (param i32) (result i32) i32.const 1024)
          (func (export "{prefix}_init") (param i32 i32) (result i64) {OK})
          (func (export "{prefix}_process") (param i32 i32) (result i64) {process_body}))"#
    );
    wat::parse_str(text).unwrap()
}

fn engine() -> (tempfile::TempDir, TransformEngine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = TransformEngine::new(&dir.path().join("cache"), EngineLimits { instances_max: 8, memory_bytes_max: 64 << 20 }).unwrap();
    (dir, engine)
}

fn guest(engine: &TransformEngine, wasm: &[u8], limits: GuestLimits) -> Guest {
    let compiled = compile(engine.engine(), wasm).unwrap();
    let linked = Linked::new(engine.engine(), &compiled.module).unwrap();
    Guest::new(&linked, limits, b"{}").unwrap()
}

fn batch() -> Batch {
    Batch {
        topic: "t".into(),
        partition: 0,
        records: vec![Record { offset: 0, timestamp: 1, key: None, value: Some(b"v".to_vec()), headers: vec![] }],
    }
}

const LIMITS: GuestLimits = GuestLimits { memory_bytes: 4 << 20, batch_time_ms: 100 };

#[test]
fn a_well_behaved_module_returns_its_output() {
    let (_dir, engine) = engine();
    let mut g = guest(&engine, &module(OK), LIMITS);
    let out = g.process(&batch()).unwrap();
    assert!(out.records.is_empty() && out.errors.is_empty());
}

#[test]
fn a_trap_ends_the_call_and_the_engine_keeps_serving() {
    let (_dir, engine) = engine();
    let mut g = guest(&engine, &module("unreachable"), LIMITS);
    let err = g.process(&batch()).unwrap_err();
    assert!(matches!(&err, GuestError::Trap { reason } if reason.contains("unreachable")), "{err:?}");
    let mut healthy = guest(&engine, &module(OK), LIMITS);
    assert!(healthy.process(&batch()).is_ok());
}

#[test]
fn an_infinite_loop_is_killed_by_the_time_limit() {
    let (_dir, engine) = engine();
    let mut g = guest(&engine, &module("(loop $l (br $l)) i64.const 0"), LIMITS);
    let err = g.process(&batch()).unwrap_err();
    assert_eq!(err, GuestError::TimeLimit { limit_ms: 100 });
}

#[test]
fn a_memory_bomb_is_killed_by_the_memory_limit() {
    let (_dir, engine) = engine();
    let body = "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) i64.const 0";
    let mut g = guest(&engine, &module(body), LIMITS);
    let err = g.process(&batch()).unwrap_err();
    assert_eq!(err, GuestError::MemoryLimit { limit_bytes: 4 << 20 });
    assert!(g.memory_bytes() <= 4 << 20);
}

#[test]
fn a_malformed_output_buffer_is_an_error_not_a_panic() {
    let (_dir, engine) = engine();
    // Points the output at 4 GiB - 1 with length 100: outside memory.
    let mut g = guest(&engine, &module("i64.const -4294967196"), LIMITS);
    assert!(matches!(g.process(&batch()), Err(GuestError::Failed { .. })));
}

#[test]
fn invalid_modules_get_one_error_per_kind() {
    let (_dir, engine) = engine();
    let e = engine.engine();
    assert!(matches!(compile(e, b"hello"), Err(TransformError::NotWasm { .. })));
    let mut big = b"\0asm\x01\0\0\0".to_vec();
    big.resize(MODULE_BYTES_MAX + 1, 0);
    assert!(matches!(compile(e, &big), Err(TransformError::ModuleTooLarge { .. })));
    assert!(matches!(compile(e, b"\0asm\x01\0\0\0\x99"), Err(TransformError::Compile { .. })));
    let v3 = module_with(OK, "", "sluice_transform_v3");
    assert!(matches!(compile(e, &v3), Err(TransformError::AbiVersion { found, expected: 2 }) if found == "3"));
    // v2 (stateful) names without the state export.
    let v2 = module_with(OK, "", "sluice_transform_v2");
    assert!(matches!(compile(e, &v2), Err(TransformError::MissingExport { name: "sluice_transform_v2_state", .. })));
    let no_process = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "sluice_transform_v1_alloc") (param i32) (result i32) i32.const 0) (func (export "sluice_transform_v1_init") (param i32 i32) (result i64) i64.const 0))"#).unwrap();
    assert!(matches!(compile(e, &no_process), Err(TransformError::MissingExport { name: "sluice_transform_v1_process", .. })));
    let net = module_with(OK, r#"(import "env" "connect" (func))"#, "sluice_transform_v1");
    assert!(matches!(compile(e, &net), Err(TransformError::ForbiddenImport { module, .. }) if module == "env"));
    let wrong_type = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "sluice_transform_v1_alloc") (param i32) (result i32) i32.const 0) (func (export "sluice_transform_v1_init") (param i32 i32) (result i64) i64.const 0) (func (export "sluice_transform_v1_process") (param i32) (result i32) i32.const 0))"#).unwrap();
    assert!(matches!(compile(e, &wrong_type), Err(TransformError::ExportType { name: "sluice_transform_v1_process", .. })));
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let (dir, engine) = engine();
    compile(engine.engine(), &module(OK)).unwrap();
    // The cache writes on a worker thread; give it a moment, then look for any file.
    let cache = dir.path().join("cache");
    let found = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        walk(&cache) > 0
    });
    assert!(found, "no file under {}", cache.display());
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()).unwrap_or(0)
}

/// A replay follows the stored decision: a stored failure is not run again (the looping module
/// would hit the time limit) and keeps its stored text; a record the first run accepted that
/// fails now is `ReplayDiverged` (retried later), not a new failure.
#[test]
fn a_replay_follows_the_stored_decision() {
    use super::attempt::{run_batch, GuestSlot};
    use super::checkpoint::{Decision, FailedRecord};
    let (_dir, engine) = engine();
    let compiled = compile(engine.engine(), &module("(loop $l (br $l)) i64.const 0")).unwrap();
    let linked = Linked::new(engine.engine(), &compiled.module).unwrap();
    let stats = super::stats::TransformStats::default();
    let mut slot = GuestSlot::new(linked, LIMITS, b"{}".to_vec());
    let stored = Decision { isolated: true, failed: vec![FailedRecord { offset: 0, error: "killed: first run".into() }] };
    let started = std::time::Instant::now();
    let out = run_batch(&mut slot, &batch(), 0, 0, &stats, Some(&stored)).unwrap();
    assert_eq!(out.failures, vec![(0, "killed: first run".to_string())]);
    assert!(out.isolated && out.outputs.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_millis(100), "the stored failure ran again");
    for isolated in [true, false] {
        let accepted = Decision { isolated, failed: vec![] };
        let err = run_batch(&mut slot, &batch(), 0, 0, &stats, Some(&accepted)).unwrap_err();
        assert!(matches!(&err, GuestError::ReplayDiverged { offset: 0, .. }), "{err:?}");
    }
    // Without a stored decision the same batch is decided afresh: the time limit fails it.
    let fresh = run_batch(&mut slot, &batch(), 0, 0, &stats, None).unwrap();
    assert!(matches!(fresh.failures.as_slice(), [(0, e)] if e.contains("100 ms time limit")), "{:?}", fresh.failures);
}
