//! `sluice produce TOPIC`: one record per input line (stdin or `--file`), sent over the Kafka
//! protocol in batches with acks=all. Keys come from `--key-sep`; partitions from `--partition`
//! or Kafka's default partitioner (murmur2 of the key; unkeyed records fill one partition's batch
//! at a time, like the Java client's sticky partitioner).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;

use super::args::{run, KafkaArgs};
use super::kafka_data::{encode_batch, Outgoing};
use super::progress::Progress;
use crate::broker::now_ms;
use crate::transform::records::key_partition;

/// Records per produce request, at most.
pub const BATCH_RECORDS_MAX: usize = 5_000;
/// Record bytes per produce request, at most (below the broker's default max.message.bytes).
pub const BATCH_BYTES_MAX: usize = 512 * 1024;
/// Longest input line accepted (a larger record belongs in a real producer).
pub const LINE_BYTES_MAX: usize = 1024 * 1024;

/// Produce lines from stdin or a file as records.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  echo hello | sluice produce greetings
  sluice produce orders --file orders.txt --key-sep :      # lines like  customer-7:{\"total\":3}
  seq 1 1000000 | sluice produce numbers --partition 0
  sluice produce events --bootstrap-server broker:9093 --security-protocol SASL_SSL \\
      --ca-file ca.crt --user app   # password from SLUICE_PASSWORD")]
pub struct ProduceArgs {
    /// Topic to write to (created if the broker auto-creates topics).
    pub topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value; a line without SEP is an error.
    #[arg(short = 'K', long, value_name = "SEP")]
    pub key_sep: Option<String>,
    /// Write every record to this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Keep empty lines as records with an empty value (skipped by default).
    #[arg(long)]
    pub keep_empty: bool,
    /// How to reach the Kafka listener.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Runs `sluice produce`.
pub fn main(args: ProduceArgs) -> ExitCode {
    run("produce", produce(args))
}

/// Splits `line` into (key, value) at the first `sep`.
pub fn split_line(line: &str, sep: Option<&str>, line_no: u64) -> anyhow::Result<Outgoing> {
    let timestamp = now_ms();
    match sep {
        None => Ok(Outgoing { key: None, value: Some(Bytes::copy_from_slice(line.as_bytes())), timestamp }),
        Some(sep) => {
            let (key, value) = line.split_once(sep).ok_or_else(|| anyhow::anyhow!("line {line_no} has no key separator {sep:?}"))?;
            Ok(Outgoing {
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                timestamp,
            })
        }
    }
}

/// Records waiting per partition.
#[derive(Default)]
struct Pending {
    records: Vec<Outgoing>,
    bytes: usize,
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    if args.key_sep.as_deref() == Some("") {
        anyhow::bail!("--key-sep must not be empty");
    }
    let mut client = args.kafka.connect().await?;
    let partitions = client.partitions(&args.topic, true).await?;
    let count = i32::try_from(partitions.len()).context("too many partitions")?;
    if count == 0 {
        anyhow::bail!("topic {} has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if !partitions.contains(&p) {
            anyhow::bail!("topic {} has no partition {p} (it has {count})", args.topic);
        }
    }
    let (input, name): (Box<dyn Read>, String) = match &args.file {
        Some(path) => {
            (Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?), path.display().to_string())
        }
        None => (Box::new(std::io::stdin().lock()), "stdin".to_string()),
    };
    let mut progress = Progress::new(std::io::stderr().is_terminal(), Duration::from_millis(250));
    let mut reader = BufReader::new(input);
    let mut pending: BTreeMap<i32, Pending> = BTreeMap::new();
    // The sticky partition for unkeyed records: moves on each time its batch is sent.
    let mut sticky = i32::try_from(now_ms().rem_euclid(i64::from(count))).unwrap_or(0);
    let (mut line_no, mut sent) = (0u64, 0u64);
    let started = Instant::now();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read =
            (&mut reader).take(LINE_BYTES_MAX as u64 + 1).read_until(b'\n', &mut buf).with_context(|| format!("cannot read {name}"))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if buf.len() > LINE_BYTES_MAX && buf.last() != Some(&b'\n') {
            anyhow::bail!("{name} line {line_no} is longer than {LINE_BYTES_MAX} bytes");
        }
        let line = std::str::from_utf8(&buf).with_context(|| format!("{name} line {line_no} is not UTF-8"))?;
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() && !args.keep_empty {
            continue;
        }
        let record = split_line(line, args.key_sep.as_deref(), line_no).with_context(|| name.clone())?;
        let partition = match (args.partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => key_partition(key, count),
            (None, None) => partitions[usize::try_from(sticky).unwrap_or(0) % partitions.len()],
        };
        let size = record.key.as_ref().map_or(0, Bytes::len) + record.value.as_ref().map_or(0, Bytes::len) + 16;
        let batch = pending.entry(partition).or_default();
        batch.records.push(record);
        batch.bytes += size;
        if batch.records.len() >= BATCH_RECORDS_MAX || batch.bytes >= BATCH_BYTES_MAX {
            let batch = std::mem::take(batch);
            sent += send(&mut client, &args.topic, partition, batch).await?;
            if args.partition.is_none() && partition == sticky {
                sticky = (sticky + 1) % count;
            }
            progress.update(|| format!("{sent} records sent to {}", args.topic));
        }
    }
    for (partition, batch) in std::mem::take(&mut pending) {
        if !batch.records.is_empty() {
            sent += send(&mut client, &args.topic, partition, batch).await?;
        }
    }
    progress.finish(&format!("{sent} records sent to {} in {:.1}s", args.topic, started.elapsed().as_secs_f64()));
    Ok(())
}

async fn send(client: &mut super::kafka_client::KafkaClient, topic: &str, partition: i32, batch: Pending) -> anyhow::Result<u64> {
    let bytes = encode_batch(&batch.records)?;
    client.produce(topic, partition, bytes).await?;
    Ok(batch.records.len() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        let r = split_line("k1:v:1", Some(":"), 1).unwrap();
        assert_eq!((r.key, r.value), (Some(Bytes::from("k1")), Some(Bytes::from("v:1"))));
        let r = split_line("plain", None, 1).unwrap();
        assert_eq!((r.key, r.value), (None, Some(Bytes::from("plain"))));
        let e = split_line("nokey", Some(":"), 7).unwrap_err();
        assert_eq!(e.to_string(), "line 7 has no key separator \":\"");
    }
}
