//! `sluice consume TOPIC`: reads every partition of a topic over the Kafka protocol and prints
//! one line per record.
//!
//! With `--group` it is a member of that consumer group (`consume_group`, `group_member`): it
//! reads the partitions the group assigns it, from the group's commits, and commits as it goes.

use std::collections::BTreeMap;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, ValueEnum};

use super::args::{out, run, KafkaArgs};
use super::kafka_client::KafkaClient;
use super::kafka_data::{Consumed, Fetched, EARLIEST, LATEST};

/// How long one fetch waits for new records.
pub const FETCH_WAIT_MS: i32 = 500;

/// Read records from a topic.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  sluice consume orders --from-beginning -n 10
  sluice consume orders --from-beginning --exit-at-end --format json
  sluice consume orders --group audit            # resumes where the last `--group audit` run stopped
  sluice consume orders --group audit & sluice consume orders --group audit   # two members split the partitions
  sluice consume orders --from-beginning --key-sep :  # prints key:value
  sluice consume orders --partition 2 --offset 1000 -n 5")]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Start at the log start of partitions without a committed offset (default: only new records).
    #[arg(long)]
    pub from_beginning: bool,
    /// Join this consumer group: read the partitions it assigns (range assignor, shared with
    /// any Kafka client in the group), from its committed offsets, committing as records are
    /// printed and on exit (Ctrl-C included).
    #[arg(short, long)]
    pub group: Option<String>,
    /// Read only this partition (default: every partition).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Start at this offset (needs --partition; overrides --from-beginning and --group's commit).
    #[arg(short, long, requires = "partition")]
    pub offset: Option<i64>,
    /// Stop after this many records.
    #[arg(short = 'n', long = "max-records", value_name = "N")]
    pub max_records: Option<u64>,
    /// Stop once every partition has been read up to its high watermark.
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Output: `text` prints the value (and the key with --key-sep); `json` one object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub format: RecordFormat,
    /// In text format, print KEY SEP VALUE.
    #[arg(short = 'K', long, value_name = "SEP")]
    pub key_sep: Option<String>,
    /// How to reach the Kafka listener.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// The value as text (invalid UTF-8 replaced).
    Text,
    /// `{"partition","offset","timestamp","key","value","headers"}` per line.
    Json,
}

/// Runs `sluice consume`.
pub fn main(args: ConsumeArgs) -> ExitCode {
    run("consume", consume(args))
}

/// When a read stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopAt {
    /// After this many accepted records.
    pub records: Option<u64>,
    /// Once every partition is at its high watermark.
    pub at_end: bool,
}

/// Reads `topic` from `positions` until `stop`, handing each record to `on_record` (which
/// returns whether it counts towards `stop.records`). With `group`, commits after each fetch.
pub async fn read(
    client: &mut KafkaClient,
    topic: &str,
    mut positions: BTreeMap<i32, i64>,
    stop: StopAt,
    group: Option<&str>,
    mut on_record: impl FnMut(&Consumed) -> anyhow::Result<bool>,
) -> anyhow::Result<u64> {
    let mut accepted = 0u64;
    loop {
        let fetched = client.fetch(topic, &positions, FETCH_WAIT_MS).await?;
        let before = positions.clone();
        let Walked { done, at_end } = walk(&fetched, &mut positions, &mut accepted, stop.records, &mut on_record)?;
        if let Some(group) = group {
            if positions != before {
                client.commit(group, topic, &positions).await?;
            }
        }
        if done || (stop.at_end && at_end) {
            return Ok(accepted);
        }
    }
}

/// What [`walk`] saw of one fetch.
pub(super) struct Walked {
    /// The record limit was reached (records after it were not handed on).
    pub done: bool,
    /// Every fetched partition is at its high watermark.
    pub at_end: bool,
}

/// Hands the records of one fetch to `on_record` (which returns whether a record counts towards
/// `limit`) and advances `positions` past what was handed on — past control records and gaps
/// too, unless the limit stopped the walk inside that partition.
pub(super) fn walk(
    fetched: &[Fetched],
    positions: &mut BTreeMap<i32, i64>,
    accepted: &mut u64,
    limit: Option<u64>,
    on_record: &mut impl FnMut(&Consumed) -> anyhow::Result<bool>,
) -> anyhow::Result<Walked> {
    let (mut done, mut at_end) = (false, true);
    for f in fetched {
        for record in &f.records {
            if done {
                break;
            }
            if on_record(record)? {
                *accepted += 1;
            }
            positions.insert(f.partition, record.offset + 1);
            done = limit.is_some_and(|n| *accepted >= n);
        }
        if !done {
            if let Some(next) = f.next_offset {
                positions.insert(f.partition, next);
            }
        }
        if positions.get(&f.partition).is_some_and(|&p| p < f.high_watermark) {
            at_end = false;
        }
    }
    Ok(Walked { done, at_end })
}

/// Where each partition starts: the group's commit, else the log start or the end.
pub(super) async fn start_positions(
    client: &mut KafkaClient,
    topic: &str,
    partitions: &[i32],
    group: Option<&str>,
    from_beginning: bool,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let committed = match group {
        Some(group) => {
            client.find_coordinator(group).await?;
            client.committed(group, topic, partitions).await?
        }
        None => BTreeMap::new(),
    };
    let missing: Vec<i32> = partitions.iter().copied().filter(|p| !committed.contains_key(p)).collect();
    let mut positions = if missing.is_empty() {
        BTreeMap::new()
    } else {
        client.list_offsets(topic, &missing, if from_beginning { EARLIEST } else { LATEST }).await?
    };
    positions.extend(committed);
    Ok(positions)
}

async fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    if args.max_records == Some(0) {
        return Ok(());
    }
    let mut client = args.kafka.connect().await?;
    let mut partitions = client.partitions(&args.topic, false).await?;
    if let Some(group) = args.group.as_deref() {
        return super::consume_group::consume_in_group(client, &args, group).await;
    }
    if let Some(p) = args.partition {
        if !partitions.contains(&p) {
            anyhow::bail!("topic {} has no partition {p} (it has {})", args.topic, partitions.len());
        }
        partitions = vec![p];
    }
    let mut positions = start_positions(&mut client, &args.topic, &partitions, args.group.as_deref(), args.from_beginning).await?;
    if let (Some(p), Some(offset)) = (args.partition, args.offset) {
        positions.insert(p, offset);
    }
    let stop = StopAt { records: args.max_records, at_end: args.exit_at_end };
    let (format, key_sep) = (args.format, args.key_sep.clone());
    read(&mut client, &args.topic, positions, stop, args.group.as_deref(), |r| {
        out(&render(r, format, key_sep.as_deref()))?;
        Ok(true)
    })
    .await?;
    Ok(())
}

fn text(bytes: &Option<Bytes>) -> Option<String> {
    bytes.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// One output line for `r`.
pub fn render(r: &Consumed, format: RecordFormat, key_sep: Option<&str>) -> String {
    match format {
        RecordFormat::Text => {
            let value = text(&r.value).unwrap_or_default();
            match key_sep {
                Some(sep) => format!("{}{sep}{value}\n", text(&r.key).unwrap_or_default()),
                None => format!("{value}\n"),
            }
        }
        RecordFormat::Json => {
            let headers: serde_json::Map<String, serde_json::Value> =
                r.headers.iter().map(|(k, v)| (k.clone(), text(v).map_or(serde_json::Value::Null, serde_json::Value::String))).collect();
            let line = serde_json::json!({
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": text(&r.key),
                "value": text(&r.value),
                "headers": headers,
            });
            format!("{line}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_text_and_json() {
        let r = Consumed {
            partition: 1,
            offset: 5,
            timestamp: 9,
            key: Some(Bytes::from("k")),
            value: Some(Bytes::from("v")),
            headers: vec![("h".into(), None)],
        };
        assert_eq!(render(&r, RecordFormat::Text, None), "v\n");
        assert_eq!(render(&r, RecordFormat::Text, Some("=")), "k=v\n");
        assert_eq!(
            render(&r, RecordFormat::Json, None),
            "{\"headers\":{\"h\":null},\"key\":\"k\",\"offset\":5,\"partition\":1,\"timestamp\":9,\"value\":\"v\"}\n"
        );
    }
}
