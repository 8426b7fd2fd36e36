//! Partition log benchmark: append MB/s per flush policy beside the raw disk (`dd`), fetch MB/s
//! cold and warm, and startup time of 1,000 partitions after a clean close and after `kill -9`.
//!
//! ```sh
//! cargo run --release -p sluice-bench --bin log_bench [-- <data-parent-dir>]
//! ```
//! Data goes to a temporary directory under `<data-parent-dir>` (default `target/`, so the same
//! disk as the build) and is deleted at the end. Runs in about a minute; asserts nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use sluice::log::{BatchStart, BatchWriter, CleanupPolicy, FlushPolicy, LogConfig, PartitionLog};

const MIB: usize = 1 << 20;
/// Bytes appended per case (or less if the time budget runs out first).
const APPEND_BYTES_PER_CASE: usize = 512 * MIB;
const APPEND_SECONDS_PER_CASE: f64 = 4.0;
const PARTITIONS: usize = 1000;
const SEGMENTS_PER_PARTITION: usize = 10;

fn config(segment_bytes: u64, flush_policy: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: u64::MAX / 4,
        retention_ms: None,
        retention_bytes: None,
        cleanup_policy: CleanupPolicy { delete: true, compact: false },
        delete_retention_ms: 0,
        flush_policy,
        index_interval_bytes: 4096,
        max_batch_bytes: 2 * MIB as u32,
        compression: None,
    }
}

/// An uncompressed RecordBatch v2 of `batch_bytes` (approximately) in 1 KiB records, written
/// with the log's own batch writer.
fn make_batch(batch_bytes: usize) -> Result<Vec<u8>> {
    let value = vec![b'x'; 1000];
    let n = (batch_bytes / 1024).max(1);
    let mut out = BytesMut::with_capacity(n * 1024 + 128);
    let start = BatchStart {
        partition_leader_epoch: 0,
        attributes: 0,
        base_timestamp: now_ms(),
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
    let mut batch = BatchWriter::begin(&mut out, start);
    for _ in 0..n {
        batch.push(0, None, Some(&value));
    }
    batch.finish().map_err(anyhow::Error::msg)?;
    Ok(out.to_vec())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// Raw sequential write with fdatasync, as `dd` reports it, in MB/s (MiB/s).
fn dd(dir: &Path) -> Result<f64> {
    let target = dir.join("dd.tmp");
    let out = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", target.display()), "bs=1M", "count=1024", "conv=fdatasync"])
        .output()
        .context("running dd")?;
    let _ = std::fs::remove_file(&target);
    let text = String::from_utf8_lossy(&out.stderr);
    // "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.234 s, 870 MB/s"
    let line = text.lines().find(|l| l.contains("copied")).context("dd printed no summary")?;
    let bytes: f64 = line.split_whitespace().next().context("dd bytes")?.parse()?;
    let secs: f64 = line.split(", ").nth(2).and_then(|s| s.strip_suffix(" s")).context("dd seconds")?.parse()?;
    Ok(bytes / MIB as f64 / secs)
}

/// Appends `batch` repeatedly from `threads` threads under `policy`; returns MiB/s.
fn append_case(dir: &Path, batch_bytes: usize, policy: FlushPolicy, threads: usize) -> Result<f64> {
    let log = Arc::new(PartitionLog::open(dir, config(256 * MIB as u64, policy), now_ms())?);
    let batch = make_batch(batch_bytes)?;
    let per_thread = APPEND_BYTES_PER_CASE / threads;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (log, batch) = (Arc::clone(&log), batch.clone());
            std::thread::spawn(move || -> Result<usize> {
                let mut written = 0;
                let mut last_flush = Instant::now();
                while written < per_thread && start.elapsed().as_secs_f64() < APPEND_SECONDS_PER_CASE {
                    let info = log.append(&batch, 0, now_ms())?;
                    written += batch.len();
                    match policy {
                        FlushPolicy::EveryBatch => log.flush_to(info.last_offset + 1)?,
                        FlushPolicy::IntervalMs(ms) if last_flush.elapsed() >= Duration::from_millis(ms) => {
                            log.flush_to(info.last_offset + 1)?;
                            last_flush = Instant::now();
                        }
                        _ => {}
                    }
                }
                Ok(written)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| anyhow::anyhow!("append thread panicked"))??;
    }
    let elapsed = start.elapsed();
    log.close()?;
    Ok(mbps(total, elapsed))
}

/// Reads the whole log in 1 MiB fetches; returns MiB/s.
fn fetch_all(log: &PartitionLog) -> Result<f64> {
    let start = Instant::now();
    let (mut at, mut bytes) = (log.log_start_offset(), 0usize);
    while at < log.log_end_offset() {
        let r = log.read(at, MIB, i64::MAX)?;
        bytes += r.records.len();
        at = last_offset(&r.records).context("empty read")? + 1;
    }
    Ok(mbps(bytes, start.elapsed()))
}

fn last_offset(records: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let mut last = None;
    while pos + 61 <= records.len() {
        let base = i64::from_be_bytes(records[pos..pos + 8].try_into().ok()?);
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().ok()?) as usize;
        let delta = i32::from_be_bytes(records[pos + 23..pos + 27].try_into().ok()?);
        last = Some(base + i64::from(delta));
        pos += len + 12;
    }
    last
}

/// Drops the page cache of every segment file (POSIX_FADV_DONTNEED; pages must be clean).
fn drop_cache(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let f = std::fs::File::open(&path)?;
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
        }
    }
    Ok(())
}

fn partition_dir(root: &Path, p: usize) -> PathBuf {
    root.join(format!("t-{p}"))
}

/// Creates PARTITIONS logs of SEGMENTS_PER_PARTITION segments each, closed cleanly.
fn populate(root: &Path) -> Result<()> {
    let batch = make_batch(2048)?;
    let seg = (batch.len() * 4) as u64; // 4 batches per segment
    for p in 0..PARTITIONS {
        let log = PartitionLog::open(&partition_dir(root, p), config(seg, FlushPolicy::Os), now_ms())?;
        for _ in 0..SEGMENTS_PER_PARTITION * 4 - 1 {
            log.append(&batch, 0, now_ms())?;
        }
        log.close()?;
    }
    Ok(())
}

/// Opens every partition; returns the time and the bytes scanned.
fn open_all(root: &Path) -> Result<(Duration, u64, usize)> {
    let start = Instant::now();
    let mut logs = Vec::with_capacity(PARTITIONS);
    for p in 0..PARTITIONS {
        logs.push(PartitionLog::open(&partition_dir(root, p), config(1 << 30, FlushPolicy::Os), now_ms())?);
    }
    let elapsed = start.elapsed();
    let scanned = logs.iter().map(|l| l.stats().bytes_scanned_at_open).sum();
    let segments = logs.iter().map(|l| l.segment_count()).sum();
    Ok((elapsed, scanned, segments))
}

/// Child mode: dirty every partition with one more append, say so, and wait to be SIGKILLed.
fn writer_child(root: &Path) -> Result<()> {
    let batch = make_batch(2048)?;
    let mut logs = Vec::new();
    for p in 0..PARTITIONS {
        let log = PartitionLog::open(&partition_dir(root, p), config((batch.len() * 4) as u64, FlushPolicy::Os), now_ms())?;
        log.append(&batch, 0, now_ms())?;
        logs.push(log);
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

fn startup(root: &Path) -> Result<()> {
    populate(root)?;
    let (clean, scanned, segments) = open_all(root)?;
    println!("startup, {PARTITIONS} partitions x {SEGMENTS_PER_PARTITION} segments ({segments} segments) after clean close: {:.0} ms, {scanned} bytes scanned", clean.as_secs_f64() * 1e3);
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe).arg("--writer-child").arg(root).stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("writer child said {line:?}");
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    let (unclean, scanned, _) = open_all(root)?;
    println!("startup after SIGKILL of a writer process (every partition dirty): {:.0} ms, {:.1} MiB scanned (the active segment of each partition)", unclean.as_secs_f64() * 1e3, scanned as f64 / MIB as f64);
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--writer-child") {
        return writer_child(Path::new(args.get(2).context("writer child needs a directory")?));
    }
    let parent = PathBuf::from(args.get(1).map_or("target", String::as_str));
    std::fs::create_dir_all(&parent)?;
    let tmp = tempfile::Builder::new().prefix("log-bench-").tempdir_in(&parent)?;
    println!("data under {}", tmp.path().display());
    let _ = dd(tmp.path()); // the first dd after a delete is slow (FACTS.md): warm up
    let raw = dd(tmp.path())?;
    println!("raw disk: dd bs=1M count=1024 conv=fdatasync: {raw:.0} MiB/s");
    println!("{:<28} {:>10} {:>12}", "append (1 thread)", "batch", "MiB/s");
    let policies = [
        ("flush=every batch", FlushPolicy::EveryBatch),
        ("flush=interval 1000 ms", FlushPolicy::IntervalMs(1000)),
        ("flush=os", FlushPolicy::Os),
    ];
    for (i, (name, policy)) in policies.iter().enumerate() {
        for (j, batch) in [MIB, 16 * 1024].into_iter().enumerate() {
            let dir = tmp.path().join(format!("append-{i}-{j}"));
            let rate = append_case(&dir, batch, *policy, 1)?;
            println!("{name:<28} {:>9}K {rate:>12.0}", batch / 1024);
            if !(i == 2 && j == 0) {
                std::fs::remove_dir_all(&dir)?;
            }
        }
    }
    let dir = tmp.path().join("append-group");
    let rate = append_case(&dir, 16 * 1024, FlushPolicy::EveryBatch, 4)?;
    println!("{:<28} {:>9}K {rate:>12.0}   (4 threads, group commit)", "flush=every batch", 16);
    std::fs::remove_dir_all(&dir)?;
    let fetch_dir = tmp.path().join("append-2-0");
    let log = PartitionLog::open(&fetch_dir, config(256 * MIB as u64, FlushPolicy::Os), now_ms())?;
    println!("fetch data: {:.0} MiB in {} segments", log.size_bytes() as f64 / MIB as f64, log.segment_count());
    match drop_cache(&fetch_dir) {
        Ok(()) => println!("fetch cold (after POSIX_FADV_DONTNEED), 1 MiB reads: {:.0} MiB/s", fetch_all(&log)?),
        Err(e) => println!("fetch cold: not measurable ({e})"),
    }
    println!("fetch warm, 1 MiB reads: {:.0} MiB/s", fetch_all(&log)?);
    drop(log);
    std::fs::remove_dir_all(&fetch_dir)?;
    startup(&tmp.path().join("startup"))?;
    Ok(())
}
