//! `produce-batches`: the produce run with rskafka, a pure-Rust Kafka client whose producer takes
//! a batch the application built (one Produce request per call, acks=all, records encoded straight
//! into the request) rather than queueing records one by one like librdkafka.
//!
//! Why a second client: with librdkafka the client's own core is the produce ceiling on this
//! 2-core machine (its per-record enqueue, copy and batch build cost ~1.3 CPU ms/MB, more than
//! twice the broker's), so the librdkafka rows measure the client. This run shows what the broker
//! takes when the client costs less per record. Same records (1 KiB, the same payload pattern),
//! same timing rule (first send to last acknowledgement).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use serde_json::json;

/// Settings of a `produce-batches` run.
pub struct BatchRun<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub partitions: i32,
    pub records: u64,
    pub batch_records: usize,
    /// Produce requests in flight at once per partition.
    pub in_flight: usize,
    pub values: &'a [Vec<u8>],
}

/// Produces `records` records in batches of `batch_records`, `in_flight` requests at a time per
/// partition, on a single-threaded runtime (the client is pinned to one core).
pub fn produce_batches(run: &BatchRun<'_>) -> Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(async {
        let client = ClientBuilder::new(vec![run.bootstrap.to_string()]).build().await.context("connect")?;
        let mut partitions = Vec::new();
        for p in 0..run.partitions.max(1) {
            let pc = client.partition_client(run.topic.to_string(), p, UnknownTopicHandling::Retry).await.context("partition client")?;
            partitions.push(Arc::new(pc));
        }
        let batches = run.records.div_ceil(run.batch_records as u64);
        let lanes = partitions.len() * run.in_flight.max(1);
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..lanes {
            let pc = Arc::clone(&partitions[lane % partitions.len()]);
            let values: Vec<Vec<u8>> = run.values.to_vec();
            let (records, batch_records) = (run.records, run.batch_records as u64);
            tasks.spawn(async move {
                let mut sent = 0u64;
                // Lane `lane` sends batches lane, lane + lanes, ...
                let mut batch = lane as u64;
                while batch < batches {
                    let first = batch * batch_records;
                    let n = batch_records.min(records - first);
                    let now = chrono::Utc::now();
                    let recs: Vec<Record> = (first..first + n)
                        .map(|i| Record {
                            key: None,
                            value: Some(values[(i % values.len() as u64) as usize].clone()),
                            headers: BTreeMap::new(),
                            timestamp: now,
                        })
                        .collect();
                    pc.produce(recs, Compression::NoCompression).await.context("produce")?;
                    sent += n;
                    batch += lanes as u64;
                }
                anyhow::Ok(sent)
            });
        }
        let mut acked = 0u64;
        while let Some(done) = tasks.join_next().await {
            acked += done.context("producer task")??;
        }
        let seconds = start.elapsed().as_secs_f64();
        anyhow::ensure!(acked == run.records, "{acked} of {} records acknowledged", run.records);
        let bytes: u64 = (0..run.records).map(|i| run.values[(i % run.values.len() as u64) as usize].len() as u64).sum();
        Ok(json!({
            "records": run.records, "bytes": bytes, "seconds": seconds,
            "mb_s": bytes as f64 / seconds / 1e6, "rec_s": run.records as f64 / seconds,
            "client_conf": { "client": "rskafka 0.6", "acks": "all (rskafka's fixed setting)", "compression": "none",
                             "records_per_request": run.batch_records, "requests_in_flight_per_partition": run.in_flight },
        }))
    })
}
