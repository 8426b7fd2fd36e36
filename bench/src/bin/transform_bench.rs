//! Transform benchmark: the `uppercase` plugin as wasm inside the broker's host (rkyv batch in,
//! length-prefixed buffer out, per-batch call) beside the same Rust function compiled natively and
//! run over the same batches in the same process, plus instantiate time and memory per idle
//! instance.
//!
//! Run: `plugins/build && cargo build --release -p sluice-bench --bin transform_bench &&
//! taskset -c 1 target/release/transform_bench [WASM]`.
//! Prints figures; asserts nothing.

use std::time::{Duration, Instant};

use anyhow::Context;
use rkyv::util::AlignedVec;
use sluice::transform::engine::{EngineLimits, TransformEngine};
use sluice::transform::instance::{Guest, GuestLimits, Linked};
use sluice::transform::module::compile;
use sluice_abi::{encode_batch, Batch, Decoded, Record, Status};
use sluice_sdk::{NoConfig, Output};

const RECORDS_PER_BATCH: usize = 500;
const VALUE_BYTES: usize = 100;
const BATCHES: usize = 400;
const IDLE_INSTANCES: usize = 100;
/// Timed passes over all batches, per side.
const ROUNDS: usize = 5;

fn batches() -> Vec<Batch> {
    (0..BATCHES)
        .map(|b| Batch {
            topic: "in".into(),
            partition: 0,
            records: (0..RECORDS_PER_BATCH)
                .map(|i| {
                    let n = b * RECORDS_PER_BATCH + i;
                    let mut value = format!("record {n} the quick brown fox jumps over the lazy dog ").into_bytes();
                    value.resize(VALUE_BYTES, b'x');
                    Record {
                        offset: n as i64,
                        timestamp: 1_700_000_000_000,
                        key: Some(format!("k{n}").into_bytes()),
                        value: Some(value),
                        headers: vec![],
                    }
                })
                .collect(),
        })
        .collect()
}

/// The native path runs exactly what a `process` call runs, minus the sandbox: the host encodes
/// the batch and copies it into a zero-filled buffer (the guest's `alloc` + the host's write into
/// linear memory), the SDK's own guest body (`process_native`: rkyv validation, per-record loop,
/// output encoding, with the output buffer reused across batches as in the guest), then the host
/// decodes the output buffer.
fn native(batch: &Batch, input: &mut AlignedVec<16>, out: &mut Output) -> anyhow::Result<usize> {
    let bytes = encode_batch(batch)?;
    input.clear();
    input.resize(bytes.len(), 0);
    input.copy_from_slice(&bytes);
    sluice_sdk::__private::process_native(
        &|r: &sluice_sdk::Record<'_>, o: &mut Output, _: &NoConfig| uppercase::uppercase(r, o),
        input,
        &NoConfig,
        out,
    );
    let decoded = Decoded::parse(out.encoded(), batch.records.len())?;
    anyhow::ensure!(decoded.status == Status::Ok, "native call failed: {:?}", decoded.status);
    Ok(decoded.records.len())
}

/// CPU time of the calling thread: unlike wall time, it does not count the time other processes
/// on this shared machine hold the core.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Wall and thread-CPU time of one pass of `f` over every batch.
fn timed(batches: &[Batch], mut f: impl FnMut(&Batch) -> anyhow::Result<usize>) -> anyhow::Result<(Duration, Duration)> {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let mut out = 0;
    for b in batches {
        out += f(b)?;
    }
    let elapsed = (wall.elapsed(), thread_cpu().saturating_sub(cpu));
    anyhow::ensure!(out == BATCHES * RECORDS_PER_BATCH, "a pass produced {out} records");
    Ok(elapsed)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "plugins/target/wasm32-wasip1/release/uppercase.wasm".into());
    let wasm = std::fs::read(&path).with_context(|| format!("{path}: run plugins/build first"))?;
    let dir = tempfile::tempdir()?;
    let engine = TransformEngine::new(
        &dir.path().join("cache"),
        EngineLimits { instances_max: (IDLE_INSTANCES + 2) as u32, memory_bytes_max: 1 << 30 },
    )?;
    let started = Instant::now();
    let compiled = compile(engine.engine(), &wasm)?;
    let compile_time = started.elapsed();
    // A restart: a new engine over the same cache directory (the cache is written by a worker
    // thread, so give it a moment) finds the compiled code instead of compiling again.
    std::thread::sleep(Duration::from_millis(500));
    let restarted = TransformEngine::new(&dir.path().join("cache"), EngineLimits { instances_max: 2, memory_bytes_max: 1 << 30 })?;
    let started = Instant::now();
    compile(restarted.engine(), &wasm)?;
    let cached_time = started.elapsed();
    drop(restarted);
    let linked = Linked::new(engine.engine(), &compiled.module)?;
    let limits = GuestLimits::default();
    let batches = batches();
    let total = (BATCHES * RECORDS_PER_BATCH) as f64;

    let mut guest = Guest::new(&linked, limits, b"{}")?;
    let (mut input, mut output) = (AlignedVec::<16>::new(), Output::new());
    guest.process(&batches[0])?; // warm up
    native(&batches[0], &mut input, &mut output)?;
    // Alternate the two so both see the same machine load; keep each one's best pass.
    let (mut wasm_wall, mut wasm_cpu, mut native_wall, mut native_cpu) = (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        let (wall, cpu) = timed(&batches, |b| Ok(guest.process(b)?.records.len()))?;
        (wasm_wall, wasm_cpu) = (wasm_wall.min(wall), wasm_cpu.min(cpu));
        let (wall, cpu) = timed(&batches, |b| native(b, &mut input, &mut output))?;
        (native_wall, native_cpu) = (native_wall.min(wall), native_cpu.min(cpu));
    }

    let instantiate: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let g = Guest::new(&linked, limits, b"{}");
            let d = t.elapsed();
            drop(g);
            d
        })
        .collect();

    let before = rss_kib();
    let mut idle = Vec::with_capacity(IDLE_INSTANCES);
    for _ in 0..IDLE_INSTANCES {
        let mut g = Guest::new(&linked, limits, b"{}")?;
        g.process(&batches[0])?; // an idle transform has processed something
        idle.push(g);
    }
    let after = rss_kib();
    let linear: usize = idle.iter().map(|g| g.memory_bytes()).sum();

    let rate = |d: Duration| total / d.as_secs_f64();
    println!("transform_bench: uppercase, {BATCHES} batches x {RECORDS_PER_BATCH} records x {VALUE_BYTES} B values, one thread");
    println!("  best of {ROUNDS} alternating passes; wall time / thread CPU time");
    println!("  wasm   (host encode + guest + host decode): {:>12.0} / {:>12.0} records/s", rate(wasm_wall), rate(wasm_cpu));
    println!(
        "  native (same function, same steps):         {:>12.0} / {:>12.0} records/s   <- reference",
        rate(native_wall),
        rate(native_cpu)
    );
    println!(
        "  wasm/native time ratio:                     {:>12.2} / {:>12.2}x",
        wasm_wall.as_secs_f64() / native_wall.as_secs_f64(),
        wasm_cpu.as_secs_f64() / native_cpu.as_secs_f64()
    );
    println!("  compile, empty cache:                       {:>12.1} ms   <- reference", compile_time.as_secs_f64() * 1e3);
    println!("  compile after a restart (cache hit):        {:>12.1} ms", cached_time.as_secs_f64() * 1e3);
    println!("  instantiate + init, median of 50:           {:>12.1} us", median(instantiate).as_secs_f64() * 1e6);
    println!(
        "  idle instances: {IDLE_INSTANCES}, RSS delta {:.1} MiB = {:.0} KiB each; linear memory {:.2} MiB each",
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / IDLE_INSTANCES as f64,
        linear as f64 / IDLE_INSTANCES as f64 / (1 << 20) as f64
    );
    Ok(())
}
