//! Stateful transform benchmark, guest side: the `windowed-count` plugin as wasm in the broker's
//! host, fed batches of 1,000 records over 10k and 1M distinct keys (every key's window open, so
//! state holds one entry per key), each batch processed and committed as the runner does. Then
//! the restore of that state into a fresh instance from its net changelog, in the runner's
//! restore-command chunks.
//!
//! What it leaves out: the broker's changelog and output writes (fsyncs) and reading the
//! changelog from disk; `bench/state_e2e.py` measures those through a real broker.
//!
//! Run: `plugins/build && cargo run --release -p sluice-bench --bin state_bench [-- WASM]`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use sluice::transform::engine::{EngineLimits, TransformEngine};
use sluice::transform::instance::{Guest, GuestLimits, Linked};
use sluice::transform::module::compile;
use sluice::transform::state::RESTORE_READ_BYTES;
use sluice_abi::{Batch, Record, StateCommand, StateOp};

const RECORDS_PER_BATCH: usize = 1000;
const T0: i64 = 1_700_000_040_000;

fn batch(keys: usize, first: usize) -> Batch {
    let records = (first..first + RECORDS_PER_BATCH)
        .map(|n| Record {
            offset: n as i64,
            // All inside one 1-minute window: state keeps one entry per key (nothing closes).
            timestamp: T0 + (n % 50_000) as i64,
            key: Some(format!("user-{:07}", (n.wrapping_mul(7919)) % keys).into_bytes()),
            value: Some(b"click".to_vec()),
            headers: vec![],
        })
        .collect();
    Batch { topic: "in".into(), partition: 0, records }
}

fn run(linked: &Linked, limits: GuestLimits, keys: usize, records: usize) -> anyhow::Result<BTreeMap<Vec<u8>, StateOp>> {
    let mut guest = Guest::new(linked, limits, b"{}")?;
    let mut changelog = BTreeMap::new();
    let batches: Vec<Batch> = (0..records / RECORDS_PER_BATCH).map(|b| batch(keys, b * RECORDS_PER_BATCH)).collect();
    let started = Instant::now();
    let mut state_bytes = 0;
    for b in &batches {
        let out = guest.process(b)?;
        guest.state_command(&StateCommand::Commit)?;
        state_bytes = out.state_bytes.unwrap_or(0);
        for op in out.state {
            changelog.insert(op.key().to_vec(), op);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "process+commit  keys={keys:>9}  records={records:>9}  {:>10.0} records/s  state={:.1} MB ({} entries)  instance memory={} MB",
        records as f64 / secs,
        state_bytes as f64 / 1e6,
        changelog.len(),
        guest.memory_bytes() >> 20
    );
    Ok(changelog)
}

fn restore(linked: &Linked, limits: GuestLimits, changelog: BTreeMap<Vec<u8>, StateOp>) -> anyhow::Result<()> {
    let ops: Vec<StateOp> = changelog.into_values().collect();
    let entries = ops.len();
    let mut guest = Guest::new(linked, limits, b"{}")?;
    let started = Instant::now();
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0;
    for op in ops {
        chunk_bytes += op.key().len() + 16;
        chunk.push(op);
        if chunk_bytes >= RESTORE_READ_BYTES {
            guest.state_command(&StateCommand::Restore(std::mem::take(&mut chunk)))?;
            chunk_bytes = 0;
        }
    }
    guest.state_command(&StateCommand::Restore(chunk))?;
    println!("restore         entries={entries:>9}  {:.2} s (guest side: restore commands)", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "plugins/target/wasm32-wasip1/release/windowed_count.wasm".into());
    let wasm = std::fs::read(&path).with_context(|| format!("{path}: run plugins/build first"))?;
    let dir = tempfile::tempdir()?;
    let engine = TransformEngine::new(&dir.path().join("cache"), EngineLimits { instances_max: 4, memory_bytes_max: 1 << 30 })?;
    let compiled = compile(engine.engine(), &wasm)?;
    let linked = Linked::new(engine.engine(), &compiled.module)?;
    let limits = GuestLimits { memory_bytes: 1 << 30, batch_time_ms: 60_000 };
    run(&linked, limits, 10_000, 1_000_000)?;
    let changelog = run(&linked, limits, 1_000_000, 2_000_000)?;
    restore(&linked, limits, changelog)?;
    Ok(())
}
