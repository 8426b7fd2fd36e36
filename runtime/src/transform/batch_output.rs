//! What a batch run on the guest writes (exactly-once step 3 in `runner`): its outputs resolved
//! from the guest's emissions (inherited fields, log lines, dead letters), its state changes
//! written to the changelog, then one idempotent batch per output partition, each durable
//! (acks=all) before the next.
//!
//! Why apart from `runner`: the runner is the order of the steps (decision stored, writes, then
//! the checkpoint that ends the batch, with the batch run ahead folded into it) and its argument
//! is easiest to check with nothing else in view; these are the bytes one step writes. Nothing
//! here stores the checkpoint: it only advances the in-memory sequences and `state_end` that the
//! runner's next store makes durable.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_abi::{Batch, Emitted, Inherit, Record, StateOp};

use super::attempt::BatchOutcome;
use super::checkpoint::Checkpoint;
use super::records::{self, OutRecord};
use super::runner::{RunnerShared, TRANSFORM_LOGS_TOPIC};
use super::spec::Partitioning;
use super::state;
use crate::broker::Partition;

/// Output records by topic, in emission order, with nothing left to inherit. Dead-letter
/// records are keyed by the dead-letter topic.
pub(super) fn resolve(
    shared: &Arc<RunnerShared>,
    batch: &Batch,
    outcome: &BatchOutcome,
    dead: Vec<(usize, String)>,
) -> BTreeMap<String, Vec<(i32, OutRecord)>> {
    let spec = &shared.spec;
    let mut by_topic: BTreeMap<String, Vec<(i32, OutRecord)>> = BTreeMap::new();
    for e in &outcome.outputs {
        let Some(input) = batch.records.get(e.input_index as usize) else { continue };
        let topic = e.topic.clone().unwrap_or_else(|| spec.output.clone());
        by_topic.entry(topic).or_default().push((batch.partition, inherit(e, input)));
    }
    for line in &outcome.logs {
        let input = batch.records.get(line.input_index as usize);
        let level = ["error", "warn", "info", "debug", "trace"].get(usize::from(line.level)).copied().unwrap_or("trace");
        let headers = [
            ("transform", spec.name.clone()),
            ("transform_version", shared.version.to_string()),
            ("level", level.to_string()),
            ("input_topic", spec.input.clone()),
            ("input_partition", batch.partition.to_string()),
            ("input_offset", input.map_or(-1, |r| r.offset).to_string()),
        ];
        let timestamp = input.or(batch.records.first()).map_or(0, |r| r.timestamp);
        let record = OutRecord {
            key: Some(spec.name.clone().into_bytes()),
            value: Some(line.message.clone().into_bytes()),
            headers: headers.into_iter().map(|(k, v)| (k.to_string(), Some(v.into_bytes()))).collect(),
            timestamp,
        };
        by_topic.entry(TRANSFORM_LOGS_TOPIC.to_string()).or_default().push((batch.partition, record));
    }
    if let Some(dlq) = spec.dead_letter_topic() {
        for (i, error) in dead {
            let Some(input) = batch.records.get(i) else { continue };
            let mut headers: Vec<(String, Option<Vec<u8>>)> = input.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect();
            for (k, v) in [
                ("transform", spec.name.clone()),
                ("transform_version", shared.version.to_string()),
                ("input_topic", spec.input.clone()),
                ("input_partition", batch.partition.to_string()),
                ("input_offset", input.offset.to_string()),
                ("error", error),
            ] {
                headers.push((k.to_string(), Some(v.into_bytes())));
            }
            let record = OutRecord { key: input.key.clone(), value: input.value.clone(), headers, timestamp: input.timestamp };
            by_topic.entry(dlq.clone()).or_default().push((batch.partition, record));
        }
    }
    by_topic
}

fn inherit(e: &Emitted, input: &Record) -> OutRecord {
    OutRecord {
        key: match &e.key {
            Inherit::Inherit => input.key.clone(),
            Inherit::Set(k) => k.clone(),
        },
        value: e.value.clone(),
        headers: match &e.headers {
            Inherit::Inherit => input.headers.iter().map(|h| (h.key.clone(), h.value.clone())).collect(),
            Inherit::Set(h) => h.clone(),
        },
        timestamp: match e.timestamp {
            Inherit::Inherit => input.timestamp,
            Inherit::Set(ts) => ts,
        },
    }
}

/// Echoes the guest's log lines into the broker's own log (`resolve` also turns them into
/// records of the transform logs topic).
pub(super) fn log_lines(shared: &Arc<RunnerShared>, batch: &Batch, outcome: &BatchOutcome) {
    for line in &outcome.logs {
        let offset = batch.records.get(line.input_index as usize).map_or(-1, |r| r.offset);
        let name = &shared.spec.name;
        match line.level {
            0 => tracing::error!(transform = %name, input_offset = offset, "{}", line.message),
            1 => tracing::warn!(transform = %name, input_offset = offset, "{}", line.message),
            2 => tracing::info!(transform = %name, input_offset = offset, "{}", line.message),
            _ => tracing::debug!(transform = %name, input_offset = offset, "{}", line.message),
        }
    }
}

/// Writes a batch's state changes (changelog) and outputs, each durable (acks=all) before this
/// returns; advances the sequences and `state_end` in `checkpoint` (in memory).
pub(super) async fn write_batch(
    shared: &Arc<RunnerShared>,
    checkpoint: &mut Checkpoint,
    changelog: Option<Arc<Partition>>,
    batch: &Batch,
    outcome: &BatchOutcome,
    outputs: BTreeMap<String, Vec<(i32, OutRecord)>>,
) -> Result<(), String> {
    if let Some(changelog) = changelog.filter(|_| !outcome.state.is_empty()) {
        let timestamp = batch.records.last().map_or(0, |r| r.timestamp);
        checkpoint.state_end = Some(write_changelog(checkpoint, &changelog, &outcome.state, timestamp).await?);
        shared.stats.changelog_written(outcome.state.len() as u64);
    }
    write_outputs(shared, checkpoint, outputs).await
}
/// Writes a batch's state changes as one changelog batch (acks=all) and returns the
/// changelog's end after it. A replayed batch is answered as a duplicate and appends nothing.
async fn write_changelog(checkpoint: &mut Checkpoint, changelog: &Arc<Partition>, ops: &[StateOp], timestamp: i64) -> Result<i64, String> {
    let name = format!("{}-{}", changelog.topic, changelog.index);
    let key = Checkpoint::key(&changelog.topic, changelog.index);
    let sequence = checkpoint.sequences.get(&key).copied().unwrap_or(0);
    let bytes = state::changelog_batch(ops, timestamp, checkpoint.producer_id, sequence)?;
    let appended = changelog.append_records(bytes).await.map_err(|e| format!("writing state changelog {name}: {e}"))?;
    changelog.complete(appended, -1).await.map_err(|e| format!("flushing state changelog {name}: {e}"))?;
    checkpoint.sequences.insert(key, sequence.wrapping_add(ops.len() as i32));
    Ok(changelog.high_watermark())
}
/// Writes one batch per output partition and waits until each is durable; advances the
/// sequences in `checkpoint` (in memory) as batches are accepted.
async fn write_outputs(
    shared: &Arc<RunnerShared>,
    checkpoint: &mut Checkpoint,
    by_topic: BTreeMap<String, Vec<(i32, OutRecord)>>,
) -> Result<(), String> {
    for (topic_name, records) in by_topic {
        let topic = shared
            .broker
            .auto_create_topic(&topic_name)
            .await
            .map_err(|e| format!("output topic {topic_name}: {e}"))?
            .ok_or_else(|| format!("output topic {topic_name} does not exist and auto-creation is off"))?;
        let count = topic.partitions.len() as i32;
        let mut by_partition: BTreeMap<i32, Vec<OutRecord>> = BTreeMap::new();
        for (input_partition, r) in records {
            let p = match (shared.spec.partitioning, &r.key) {
                (Partitioning::KeyHash, Some(key)) => records::key_partition(key, count),
                _ => input_partition % count.max(1),
            };
            by_partition.entry(p).or_default().push(r);
        }
        for (p, records) in by_partition {
            let partition = topic.partitions.get(p as usize).ok_or_else(|| format!("output partition {topic_name}-{p} vanished"))?;
            let key = Checkpoint::key(&topic_name, p);
            let sequence = checkpoint.sequences.get(&key).copied().unwrap_or(0);
            let bytes = records::encode_batch(&records, checkpoint.producer_id, sequence)?;
            let appended = partition.append_records(bytes).await.map_err(|e| format!("writing to {topic_name}-{p}: {e}"))?;
            partition.complete(appended, -1).await.map_err(|e| format!("flushing {topic_name}-{p}: {e}"))?;
            checkpoint.sequences.insert(key, sequence.wrapping_add(records.len() as i32));
        }
    }
    Ok(())
}
