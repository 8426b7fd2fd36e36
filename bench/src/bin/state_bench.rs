//! Stateful transform benchmark, guest side: the `windowed-count` plugin as wasm in the broker's
//! host, fed batches of 1,000 records over 10k and 1M distinct keys (every key's window open, so
//! state holds one entry per key), each batch processed and committed as the runner does. Then
//! the restore of that state into a fresh instance from its net changelog, in the runner's
//! restore-command chunks.
//!
//! The same run also counts the same records natively, twice: the `windowed-count` plugin's
//! own code through the SDK's host harness (`Harness`, no wasm), and a hand-written baseline
//! (a hash map of per-window counts, no undo log, no changelog), so the wasm figure can be read
//! against what the logic costs without the sandbox and without the SDK's exactly-once
//! bookkeeping.
//!
//! What it leaves out: the broker's changelog and output writes (fsyncs) and reading the
//! changelog from disk; `bench/state_e2e.py` measures those through a real broker.
//!
//! Run: `plugins/build && cargo run --release -p sluice-bench --bin state_bench [-- WASM]`.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use sluice::transform::engine::{EngineLimits, TransformEngine};
use sluice::transform::instance::{Guest, GuestLimits, Linked};
use sluice::transform::module::compile;
use sluice::transform::state::RESTORE_READ_BYTES;
use sluice_abi::{Batch, Record, StateCommand, StateOp};

const RECORDS_PER_BATCH: usize = 1000;

/// This thread's CPU time in seconds (`/proc/thread-self/schedstat`, nanoseconds on CPU):
/// a figure the other load on a shared machine does not inflate, unlike wall time.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

/// "N records/s (M records/s of CPU)" for `records` done since `started` / `cpu0`.
fn rates(records: usize, started: Instant, cpu0: f64) -> String {
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    format!("{:>10.0} records/s ({:>8.0} per CPU second)", records as f64 / wall, records as f64 / cpu.max(1e-9))
}
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

/// The wasm guest in the broker's host; returns the changelog (every batch's net changes, in
/// order, as the runner appends them).
fn run(linked: &Linked, limits: GuestLimits, keys: usize, records: usize) -> anyhow::Result<Vec<StateOp>> {
    let mut guest = Guest::new(linked, limits, b"{}")?;
    let mut changelog = Vec::new();
    let batches: Vec<Batch> = (0..records / RECORDS_PER_BATCH).map(|b| batch(keys, b * RECORDS_PER_BATCH)).collect();
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let mut state_bytes = 0;
    for b in &batches {
        let out = guest.process(b)?;
        guest.state_command(&StateCommand::Commit)?;
        state_bytes = out.state_bytes.unwrap_or(0);
        changelog.extend(out.state);
    }
    println!(
        "wasm            keys={keys:>9}  records={records:>9}  {}  state={:.1} MB  changelog={} records  instance memory={} MB",
        rates(records, started, cpu0),
        state_bytes as f64 / 1e6,
        changelog.len(),
        guest.memory_bytes() >> 20
    );
    Ok(changelog)
}

/// The plugin's own code natively, through the SDK's test harness (one `feed` + commit per
/// batch, as the runner does in wasm).
fn run_sdk_native(keys: usize, records: usize) {
    let mut harness = sluice_sdk::Harness::<windowed_count::WindowedCount>::new(windowed_count::Config::default());
    let batches: Vec<Batch> = (0..records / RECORDS_PER_BATCH).map(|b| batch(keys, b * RECORDS_PER_BATCH)).collect();
    let (started, cpu0) = (Instant::now(), cpu_secs());
    for b in &batches {
        let records: Vec<sluice_sdk::Record<'_>> = b
            .records
            .iter()
            .map(|r| {
                let mut rec =
                    sluice_sdk::Record::new(r.value.as_deref().unwrap_or_default()).with_key(r.key.as_deref().unwrap_or_default());
                rec.timestamp = r.timestamp;
                rec
            })
            .collect();
        harness.feed(&records);
    }
    println!(
        "sdk native      keys={keys:>9}  records={records:>9}  {}  (plugin code, host harness, no wasm)",
        rates(records, started, cpu0)
    );
}

/// Hand-written windowed count: counts per (window start, key) in hash maps; a window closes
/// (its counts are emitted in key order) when the watermark reaches its end. What the logic
/// costs with no sandbox, no undo log and no changelog.
fn run_baseline(keys: usize, records: usize) {
    const WINDOW_MS: i64 = 60_000;
    let batches: Vec<Batch> = (0..records / RECORDS_PER_BATCH).map(|b| batch(keys, b * RECORDS_PER_BATCH)).collect();
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let mut windows: HashMap<i64, HashMap<Vec<u8>, u64>> = HashMap::new();
    let (mut watermark, mut emitted) = (i64::MIN, 0usize);
    for b in &batches {
        for r in &b.records {
            let start = r.timestamp.div_euclid(WINDOW_MS) * WINDOW_MS;
            if start + WINDOW_MS > watermark {
                *windows.entry(start).or_default().entry(r.key.clone().unwrap_or_default()).or_default() += 1;
            }
            watermark = watermark.max(r.timestamp);
            let due: Vec<i64> = windows.keys().copied().filter(|s| s + WINDOW_MS <= watermark).collect();
            for s in due {
                let mut counts: Vec<_> = windows.remove(&s).unwrap_or_default().into_iter().collect();
                counts.sort_unstable();
                emitted += counts.len();
            }
        }
    }
    let open: usize = windows.values().map(HashMap::len).sum();
    println!(
        "native baseline keys={keys:>9}  records={records:>9}  {}  ({open} open counts, {emitted} emitted)",
        rates(records, started, cpu0)
    );
}

/// Restores the compacted changelog (last value per key, as compaction leaves it) into a fresh
/// instance in the runner's restore-command chunks.
fn restore(linked: &Linked, limits: GuestLimits, changelog: Vec<StateOp>) -> anyhow::Result<()> {
    let mut last: HashMap<Vec<u8>, StateOp> = HashMap::new();
    for op in changelog {
        last.insert(op.key().to_vec(), op);
    }
    let ops: Vec<StateOp> = last.into_values().collect();
    let entries = ops.len();
    let mut guest = Guest::new(linked, limits, b"{}")?;
    let (started, cpu0) = (Instant::now(), cpu_secs());
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
    println!(
        "restore         entries={entries:>9}  {:.2} s ({:.2} s CPU; guest side: restore commands)",
        started.elapsed().as_secs_f64(),
        cpu_secs() - cpu0
    );
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
    for (keys, records) in [(10_000, 1_000_000), (1_000_000, 2_000_000)] {
        run_baseline(keys, records);
        run_sdk_native(keys, records);
    }
    run(&linked, limits, 10_000, 1_000_000)?;
    let changelog = run(&linked, limits, 1_000_000, 2_000_000)?;
    restore(&linked, limits, changelog)?;
    Ok(())
}
