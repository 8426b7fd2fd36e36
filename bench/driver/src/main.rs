//! `sluice-bench-driver`: the load side of `bench/broker_bench.py`, in librdkafka at C speed.
//!
//! The Python client spends about as much CPU per record as the broker does, so on a 2-core
//! machine it, not the broker, set the produce ceiling; and `Consumer.consume(n, timeout)` returns
//! a batch only when it holds `n` records or the timeout passes, which added up to ~20 ms of
//! client-side waiting to every latency figure at 50 MB/s. This driver uses the same library
//! (librdkafka, through the `rdkafka` crate) with one `poll` per record and no batching of its own.
//!
//! Three subcommands, each printing one JSON object on stdout (the harness parses it):
//! - `produce`: a fixed number of records as fast as the producer accepts them; timed from the
//!   first send to the last acknowledgement.
//! - `consume`: reads them back from the start by partition assignment; timed from the first
//!   record received to the last.
//! - `latency`: a producer paced at a fixed rate and a consumer in the same process (so both read
//!   one monotonic clock); each record carries its send time in its first 8 bytes. Reports the
//!   end-to-end (send to receive) and the acknowledgement (send to delivery report) percentiles.
//!
//! Every client setting is printed in the output (`client_conf`), so a reader sees what the
//! client was asked to do; the harness prints them beside the figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

mod batch_producer;

#[derive(Parser)]
#[command(about = "librdkafka load driver for bench/broker_bench.py (one JSON object on stdout)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce `--records` records as fast as possible.
    Produce(ProduceArgs),
    /// Read `--records` records from the beginning of every partition.
    Consume(ConsumeArgs),
    /// Produce at `--rate-mb` and measure send-to-receive and send-to-ack latency.
    Latency(LatencyArgs),
    /// Produce `--records` records with rskafka in whole batches (acks=all): see batch_producer.rs.
    ProduceBatches(ProduceBatchesArgs),
}

#[derive(Args)]
struct ProduceBatchesArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 300_000)]
    records: u64,
    /// Records per Produce request (1,000 of 1 KiB: about librdkafka's 1 MB batch.size).
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    /// Produce requests in flight at once per partition.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
}

#[derive(Args, Clone)]
struct Target {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Extra librdkafka settings, `key=value`, applied last (repeatable).
    #[arg(long = "conf", value_parser = parse_kv)]
    conf: Vec<(String, String)>,
}

#[derive(Args, Clone)]
struct ProducerSettings {
    #[arg(long, default_value = "1")]
    acks: String,
    #[arg(long, default_value = "none")]
    codec: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u64,
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    producer: ProducerSettings,
    #[arg(long, default_value_t = 300_000)]
    records: u64,
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 300_000)]
    records: u64,
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

#[derive(Args)]
struct LatencyArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    producer: ProducerSettings,
    #[arg(long, default_value_t = 50.0)]
    rate_mb: f64,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The consumer's `fetch.wait.max.ms` (librdkafka's default is 500).
    #[arg(long, default_value_t = 500)]
    fetch_wait_max_ms: u64,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expected key=value, got {s:?}"))
}

fn main() -> Result<()> {
    let out = match Cli::parse().command {
        Command::Produce(a) => produce(&a)?,
        Command::Consume(a) => consume(&a)?,
        Command::Latency(a) => latency(&a)?,
        Command::ProduceBatches(a) => {
            let values: Vec<Vec<u8>> = (0..1000).map(|i| payload(i, a.target.record_bytes)).collect();
            batch_producer::produce_batches(&batch_producer::BatchRun {
                bootstrap: &a.target.bootstrap,
                topic: &a.target.topic,
                partitions: a.target.partitions,
                records: a.records,
                batch_records: a.batch_records.max(1),
                in_flight: a.in_flight,
                values: &values,
            })?
        }
    };
    println!("{out}");
    Ok(())
}

// ------------------------------------------------------------------ configuration

/// The settings a client is created with, kept to print them.
struct Conf(BTreeMap<String, String>);

impl Conf {
    fn new(target: &Target) -> Self {
        let mut m = BTreeMap::new();
        m.insert("bootstrap.servers".to_string(), target.bootstrap.clone());
        Conf(m)
    }
    fn set(mut self, k: &str, v: impl ToString) -> Self {
        self.0.insert(k.to_string(), v.to_string());
        self
    }
    fn producer(target: &Target, p: &ProducerSettings) -> Self {
        Conf::new(target)
            .set("acks", &p.acks)
            .set("compression.type", &p.codec)
            .set("linger.ms", p.linger_ms)
            .set("batch.size", p.batch_size)
            .set("queue.buffering.max.messages", 500_000)
            .set("queue.buffering.max.kbytes", 1_048_576)
    }
    fn extra(mut self, target: &Target) -> Self {
        for (k, v) in &target.conf {
            self.0.insert(k.clone(), v.clone());
        }
        self
    }
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.0 {
            c.set(k, v);
        }
        c
    }
    fn json(&self) -> serde_json::Value {
        json!(self.0)
    }
}

/// The same compressible pattern as the Python harness: JSON-ish text, not zeros, not random.
fn payload(i: u64, bytes: usize) -> Vec<u8> {
    let one = format!(r#"{{"seq":{i},"user":"u{:05}","event":"click","path":"/items/{}"}}"#, i % 10_000, i % 977);
    one.repeat(bytes / one.len() + 1).into_bytes()[..bytes].to_vec()
}

// ------------------------------------------------------------------ producer side

/// Counts delivery reports; remembers the first error and, for latency runs, each ack's delay.
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Set in latency runs: send-to-ack delays in ns (send time read from the payload).
    ack_ns: Option<Mutex<Vec<u64>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                if let (Some(acks), Some(sent)) = (&self.ack_ns, m.payload().and_then(sent_ns)) {
                    if let Ok(mut v) = acks.lock() {
                        v.push(now_ns().saturating_sub(sent));
                    }
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

fn new_producer(conf: &Conf, track_acks: bool) -> Result<BaseProducer<Deliveries>> {
    let ctx = Deliveries {
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
        ack_ns: track_acks.then(|| Mutex::new(Vec::new())),
    };
    conf.client_config().create_with_context(ctx).context("cannot create the producer")
}

/// Enqueues one record, serving delivery reports while librdkafka's queue is full.
fn send(p: &BaseProducer<Deliveries>, topic: &str, partition: i32, value: &[u8]) -> Result<()> {
    let mut record = BaseRecord::<(), [u8]>::to(topic).payload(value).partition(partition);
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("produce failed: {e}"),
        }
    }
}

fn finish(p: &BaseProducer<Deliveries>, expected: u64) -> Result<()> {
    p.flush(Duration::from_secs(120)).context("flush")?;
    let ctx = p.context();
    let (acked, failed) = (ctx.acked.load(Ordering::Relaxed), ctx.failed.load(Ordering::Relaxed));
    if acked != expected || failed > 0 {
        let first = ctx.first_error.lock().ok().and_then(|f| f.clone()).unwrap_or_default();
        bail!("{acked} of {expected} records acknowledged, {failed} failed (first error: {first})");
    }
    Ok(())
}

fn produce(a: &ProduceArgs) -> Result<serde_json::Value> {
    let conf = Conf::producer(&a.target, &a.producer).extra(&a.target);
    let p = new_producer(&conf, false)?;
    let values: Vec<Vec<u8>> = (0..1000).map(|i| payload(i, a.target.record_bytes)).collect();
    let partitions = a.target.partitions.max(1);
    let start = Instant::now();
    for i in 0..a.records {
        let partition = i32::try_from(i % partitions as u64).unwrap_or(0);
        send(&p, &a.target.topic, partition, &values[(i % 1000) as usize])?;
        if i % 1024 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    finish(&p, a.records)?;
    let seconds = start.elapsed().as_secs_f64();
    let bytes = a.records * a.target.record_bytes as u64;
    Ok(json!({
        "records": a.records, "bytes": bytes, "seconds": seconds,
        "mb_s": bytes as f64 / seconds / 1e6, "rec_s": a.records as f64 / seconds,
        "client_conf": conf.json(),
    }))
}

// ------------------------------------------------------------------ consumer side

fn new_consumer(conf: &Conf) -> Result<BaseConsumer> {
    conf.client_config().create().context("cannot create the consumer")
}

fn consume(a: &ConsumeArgs) -> Result<serde_json::Value> {
    let conf = Conf::new(&a.target)
        .set("group.id", format!("bench-driver-{}", std::process::id()))
        .set("enable.auto.commit", false)
        .set("fetch.max.bytes", 52_428_800)
        .set("max.partition.fetch.bytes", 10_485_760)
        .extra(&a.target);
    let c = new_consumer(&conf)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..a.target.partitions {
        tpl.add_partition_offset(&a.target.topic, p, Offset::Beginning).context("assignment")?;
    }
    c.assign(&tpl).context("assign")?;
    let deadline = Instant::now() + Duration::from_secs(a.timeout_s);
    let (mut got, mut bytes, mut start) = (0u64, 0u64, None);
    while got < a.records && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                start.get_or_insert_with(Instant::now);
                got += 1;
                bytes += m.payload().map_or(0, |v| v.len() as u64);
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            None => {}
        }
    }
    if got < a.records {
        bail!("consumed {got} of {} records in {} s", a.records, a.timeout_s);
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(json!({
        "records": got, "bytes": bytes, "seconds": seconds,
        "mb_s": if seconds > 0.0 { bytes as f64 / seconds / 1e6 } else { f64::NAN },
        "client_conf": conf.json(),
    }))
}

// ------------------------------------------------------------------ latency

/// The process's monotonic clock, in ns since the first call (both sides share it).
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The send time a latency record carries in its first 8 bytes.
fn sent_ns(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

fn percentile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

fn latency(a: &LatencyArgs) -> Result<serde_json::Value> {
    now_ns();
    let rate = a.rate_mb * 1e6 / a.target.record_bytes as f64;
    let total = (rate * a.seconds) as u64;
    let consumer_conf = Conf::new(&a.target)
        .set("group.id", format!("bench-latency-{}", std::process::id()))
        .set("enable.auto.commit", false)
        .set("fetch.wait.max.ms", a.fetch_wait_max_ms)
        .extra(&a.target);
    let c = new_consumer(&consumer_conf)?;
    // Start at the current end of every partition, resolved now (not when the first fetch runs).
    let mut tpl = TopicPartitionList::new();
    for p in 0..a.target.partitions {
        let (_, high) = c.fetch_watermarks(&a.target.topic, p, Duration::from_secs(10)).context("watermarks")?;
        tpl.add_partition_offset(&a.target.topic, p, Offset::Offset(high)).context("assignment")?;
    }
    c.assign(&tpl).context("assign")?;
    let received = Arc::new(Mutex::new(Vec::<u64>::with_capacity(total as usize)));
    let sink = Arc::clone(&received);
    let consumer = std::thread::spawn(move || -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lat = Vec::with_capacity(total as usize);
        while (lat.len() as u64) < total && Instant::now() < deadline {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if let Some(sent) = m.payload().and_then(sent_ns) {
                        lat.push(now_ns().saturating_sub(sent));
                    }
                }
                Some(Err(e)) => bail!("consume failed: {e}"),
                None => {}
            }
        }
        if let Ok(mut out) = sink.lock() {
            *out = lat;
        }
        Ok(())
    });
    // Let the consumer's first fetches reach the broker and park there.
    std::thread::sleep(Duration::from_secs(1));

    let producer_conf = Conf::producer(&a.target, &a.producer).extra(&a.target);
    let p = new_producer(&producer_conf, true)?;
    let filler = payload(0, a.target.record_bytes);
    let mut value = filler.clone();
    let partitions = a.target.partitions.max(1);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * rate) as u64 + 1).min(total);
        while sent < due {
            value[..8].copy_from_slice(&now_ns().to_be_bytes());
            send(&p, &a.target.topic, i32::try_from(sent % partitions as u64).unwrap_or(0), &value)?;
            sent += 1;
        }
        // The pacing pause serves delivery reports for its whole length: `poll(ZERO)` serves at
        // most one event (one Produce response), and at 8 partitions librdkafka gets more
        // responses a second than this loop has turns, so the reports queued up and the ack
        // figures grew to seconds while the records themselves were already consumed.
        p.poll(Duration::from_micros(200));
    }
    finish(&p, total)?;
    let achieved = (total * a.target.record_bytes as u64) as f64 / start.elapsed().as_secs_f64() / 1e6;
    match consumer.join() {
        Ok(r) => r?,
        Err(_) => bail!("the consumer thread panicked"),
    }
    let mut e2e = received.lock().map(|v| v.clone()).unwrap_or_default();
    let mut acks = p.context().ack_ns.as_ref().and_then(|m| m.lock().ok().map(|v| v.clone())).unwrap_or_default();
    e2e.sort_unstable();
    acks.sort_unstable();
    Ok(json!({
        "sent": total, "received": e2e.len(), "achieved_mb_s": achieved,
        "p50_ms": percentile_ms(&e2e, 0.50), "p99_ms": percentile_ms(&e2e, 0.99), "max_ms": percentile_ms(&e2e, 1.0),
        "ack_p50_ms": percentile_ms(&acks, 0.50), "ack_p99_ms": percentile_ms(&acks, 0.99),
        "client_conf": { "producer": producer_conf.json(), "consumer": consumer_conf.json() },
    }))
}
