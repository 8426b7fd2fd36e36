//! `sluice transform test`: runs a transform module on sample records with the broker's own wasm
//! host (same validation, limits, deterministic WASI and failing-record isolation), without a
//! broker, and prints what it emitted, logged and failed on.
//!
//! Sample records come one per line (`--format lines`, optionally `key<sep>value`) or as JSON
//! objects per line (`--format jsonl`: `{"key": …, "value": …, "headers": {…}, "timestamp": …}`).
//! Offsets count from 0 in input order; timestamps default to the offset in milliseconds after
//! the Unix epoch, so runs are repeatable.

use std::io::Write;

use anyhow::{bail, Context};
use sluice_abi::{Batch, Emitted, Header, Inherit, Record};

use crate::transform::attempt::{run_batch, GuestSlot};
use crate::transform::engine::{EngineLimits, TransformEngine};
use crate::transform::instance::{GuestLimits, Linked};
use crate::transform::spec::BATCH_RECORDS_MAX;
use crate::transform::stats::TransformStats;

/// How sample input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One record per line: the value, or `key<sep>value` with `--key-sep`.
    Lines,
    /// One JSON object per line: `value` (string or null), optional `key`, `headers`, `timestamp`.
    Jsonl,
}

/// How outputs are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// `<offset> <topic> key=<key> <value>`, one line per output record.
    Text,
    /// One JSON object per output record.
    Json,
}

/// One local run.
pub struct LocalRun<'a> {
    /// The module's bytes.
    pub wasm: &'a [u8],
    /// The sample input.
    pub input: &'a [u8],
    /// How to read it.
    pub input_format: InputFormat,
    /// Separates key from value in `lines` input.
    pub key_sep: Option<&'a str>,
    /// The config parameters (a JSON object), as the manifest would pass them.
    pub config_json: &'a [u8],
    /// Memory and time limits per batch.
    pub limits: GuestLimits,
    /// How to print outputs.
    pub output_format: OutputFormat,
}

/// Topic name the input records claim to come from (the guest sees it in the batch).
const LOCAL_TOPIC: &str = "sample-input";

/// Runs the module over the input; writes outputs to `out` and logs/errors to `err`. Returns how
/// many input records failed (the caller exits non-zero when any did).
pub fn run(job: &LocalRun<'_>, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<usize> {
    let records = parse_input(job.input, job.input_format, job.key_sep)?;
    // The compiled-code cache lives in a throwaway directory: a test run must not leave files.
    let cache = std::env::temp_dir().join(format!("sluice-transform-test-{}", std::process::id()));
    let result = run_with_cache(job, records, &cache, out, err);
    let _ = std::fs::remove_dir_all(&cache);
    result
}

fn run_with_cache(
    job: &LocalRun<'_>,
    records: Vec<Record>,
    cache: &std::path::Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<usize> {
    let engine = TransformEngine::new(cache, EngineLimits { instances_max: 2, memory_bytes_max: job.limits.memory_bytes.max(1 << 20) })?;
    let compiled = crate::transform::module::compile(engine.engine(), job.wasm)?;
    let linked = Linked::new(engine.engine(), &compiled.module)?;
    let mut slot = GuestSlot::new(linked, job.limits, job.config_json.to_vec());
    let stats = TransformStats::default();
    let mut failed = 0;
    for chunk in records.chunks(BATCH_RECORDS_MAX) {
        let batch = Batch { topic: LOCAL_TOPIC.into(), partition: 0, records: chunk.to_vec() };
        let outcome = run_batch(&mut slot, &batch, 0, 0, &stats, None).map_err(|e| anyhow::anyhow!("the module cannot run: {e}"))?;
        let offset_of = |index: u32| batch.records.get(index as usize).map_or(-1, |r| r.offset);
        for line in &outcome.logs {
            let at = if line.input_index == sluice_abi::NO_RECORD {
                String::from("init")
            } else {
                format!("offset {}", offset_of(line.input_index))
            };
            writeln!(err, "log {} {at}: {}", level_name(line.level), line.message)?;
        }
        for record in &outcome.outputs {
            let input = batch.records.get(record.input_index as usize);
            writeln!(out, "{}", format_output(record, input, job.output_format))?;
        }
        for (index, message) in &outcome.failures {
            writeln!(err, "error at offset {}: {message}", offset_of(*index as u32))?;
        }
        failed += outcome.failures.len();
    }
    Ok(failed)
}

fn level_name(level: u8) -> &'static str {
    match level {
        0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}

/// Sample input → records. Bytes need not be UTF-8 in `lines` format.
pub fn parse_input(input: &[u8], format: InputFormat, key_sep: Option<&str>) -> anyhow::Result<Vec<Record>> {
    let lines = input.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut records = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let offset = records.len() as i64;
        let record = match format {
            InputFormat::Lines => {
                let (key, value) = split_key(line, key_sep);
                Record { offset, timestamp: offset, key: key.map(<[u8]>::to_vec), value: Some(value.to_vec()), headers: Vec::new() }
            }
            InputFormat::Jsonl => json_record(line, offset).with_context(|| format!("input line {}", n + 1))?,
        };
        records.push(record);
    }
    Ok(records)
}

fn split_key<'a>(line: &'a [u8], key_sep: Option<&str>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = key_sep.map(str::as_bytes).filter(|s| !s.is_empty()) else { return (None, line) };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

/// One JSONL sample record.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRecord {
    #[serde(default)]
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, Option<String>>,
    #[serde(default)]
    timestamp: Option<i64>,
}

fn json_record(line: &[u8], offset: i64) -> anyhow::Result<Record> {
    let parsed: JsonRecord =
        serde_json::from_slice(line).context("expected {\"value\": …, \"key\"?: …, \"headers\"?: {…}, \"timestamp\"?: ms}")?;
    if parsed.timestamp.is_some_and(|t| t < 0) {
        bail!("timestamp must be milliseconds since the Unix epoch (>= 0)");
    }
    Ok(Record {
        offset,
        timestamp: parsed.timestamp.unwrap_or(offset),
        key: parsed.key.map(String::into_bytes),
        value: parsed.value.map(String::into_bytes),
        headers: parsed.headers.into_iter().map(|(key, value)| Header { key, value: value.map(String::into_bytes) }).collect(),
    })
}

/// One output line; inherited fields are resolved against the input record.
fn format_output(record: &Emitted, input: Option<&Record>, format: OutputFormat) -> String {
    let offset = input.map_or(-1, |r| r.offset);
    let key = match &record.key {
        Inherit::Inherit => input.and_then(|r| r.key.clone()),
        Inherit::Set(key) => key.clone(),
    };
    let text = |b: &Option<Vec<u8>>| b.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
    match format {
        OutputFormat::Text => format!(
            "{offset} {} key={} {}",
            record.topic.as_deref().unwrap_or("(default output)"),
            text(&key).unwrap_or_else(|| "(null)".into()),
            text(&record.value).unwrap_or_else(|| "(null)".into())
        ),
        OutputFormat::Json => {
            let timestamp = match record.timestamp {
                Inherit::Inherit => input.map_or(0, |r| r.timestamp),
                Inherit::Set(t) => t,
            };
            let headers: Vec<(String, Option<String>)> = match &record.headers {
                Inherit::Inherit => input.map(|r| r.headers.iter().map(|h| (h.key.clone(), text(&h.value))).collect()).unwrap_or_default(),
                Inherit::Set(list) => list.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            };
            serde_json::json!({
                "input_offset": offset,
                "topic": record.topic,
                "key": text(&key),
                "value": text(&record.value),
                "headers": headers,
                "timestamp": timestamp,
            })
            .to_string()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_keys_and_skip_blank_lines() {
        let records = parse_input(b"k1=v1\r\n\nno-key\n", InputFormat::Lines, Some("=")).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].key.as_deref(), records[0].value.as_deref()), (Some(&b"k1"[..]), Some(&b"v1"[..])));
        assert_eq!((records[1].offset, records[1].key.as_deref()), (1, None));
    }

    #[test]
    fn jsonl_reads_every_field_and_names_the_bad_line() {
        let input = b"{\"key\":\"k\",\"value\":\"v\",\"headers\":{\"h\":\"x\"},\"timestamp\":5}\n{\"value\":null}\n";
        let records = parse_input(input, InputFormat::Jsonl, None).unwrap();
        assert_eq!((records[0].timestamp, records[0].headers.len(), records[1].value.clone()), (5, 1, None));
        let err = parse_input(b"{\"value\":\"a\"}\n{\"valu\":1}\n", InputFormat::Jsonl, None).unwrap_err();
        assert!(format!("{err:#}").contains("input line 2"), "{err:#}");
    }
}
