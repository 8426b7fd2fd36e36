//! Metrics cost benchmark: what the hot path pays per request for metrics, beside a floor of the
//! work any Produce request costs the broker (decode it, check its batches' CRC-32C, encode the
//! response; the real cost adds task spawns, the append's pwrite and the socket writes), and what
//! one `/metrics` scrape costs with many partitions.
//!
//! ```sh
//! cargo run --release -p sluice-bench --bin metrics_bench
//! ```
//! Runs in a few seconds; asserts nothing. The end-to-end comparison (produce rate and broker CPU
//! with `--metrics=false`) is `bench/run --metrics-overhead`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, ResponseKind, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice::config::BrokerConfig;
use sluice::metrics::{Metrics, MetricsSource, PartitionTraffic, Scrape};

const ITERATIONS: u32 = 2_000_000;
const PRODUCE_VERSION: i16 = 9;
/// Bytes of record data in the reference Produce request (librdkafka's default batch is 1 MB;
/// 16 KiB is a small request, so the reference is a low bar).
const RECORD_BYTES: usize = 16 * 1024;
const SCRAPE_PARTITIONS: usize = 1_000;

/// Nanoseconds per call of `f`, best of three runs of `iterations`.
fn ns_per_call(iterations: u32, mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .fold(f64::INFINITY, f64::min)
}

fn produce_request(partitions: i32) -> Result<Bytes> {
    let data = (0..partitions)
        .map(|p| PartitionProduceData::default().with_index(p).with_records(Some(Bytes::from(vec![7u8; RECORD_BYTES]))))
        .collect();
    let topic = TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("bench"))).with_partition_data(data);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let mut buf = BytesMut::new();
    request.encode(&mut buf, PRODUCE_VERSION)?;
    Ok(buf.freeze())
}

fn produce_response(partitions: i32) -> ProduceResponse {
    let parts = (0..partitions).map(|p| PartitionProduceResponse::default().with_index(p).with_base_offset(1000)).collect();
    ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str("bench")))
        .with_partition_responses(parts)])
}

/// A source shaped like the broker's: six gauges and a counter per partition.
struct ManyPartitions;

impl MetricsSource for ManyPartitions {
    fn collect(&self, scrape: &mut Scrape) {
        for p in 0..SCRAPE_PARTITIONS {
            let partition = p.to_string();
            let labels = [("topic", "bench"), ("partition", partition.as_str())];
            for name in [
                "sluice_log_start_offset",
                "sluice_log_end_offset",
                "sluice_log_high_watermark",
                "sluice_log_size_bytes",
                "sluice_log_segments",
            ] {
                scrape.gauge(name, "bench", &labels, p as f64);
            }
            scrape.counter("sluice_log_flushes_total", "bench", &labels, p as f64);
        }
    }
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let metrics = Metrics::new(&BrokerConfig::for_tests(dir.path()))?;
    println!("Metrics cost per request (best of 3 × {ITERATIONS} calls), beside a floor of the work a Produce costs");
    println!();
    println!("| what | ns per request |");
    println!("|---|---:|");
    for partitions in [1, 8] {
        let response = ResponseKind::Produce(produce_response(partitions));
        let observe = ns_per_call(ITERATIONS, || {
            metrics.observe_request(ApiKey::Produce, PRODUCE_VERSION, black_box(Duration::from_micros(250)), black_box(&response))
        });
        let traffic = PartitionTraffic::default();
        let count = ns_per_call(ITERATIONS, || traffic.appended(black_box(RECORD_BYTES as u64), black_box(10)));
        let frame = produce_request(partitions)?;
        let encoded = produce_response(partitions);
        let reference = ns_per_call(ITERATIONS / 10, || {
            let mut buf = frame.clone();
            let request = ProduceRequest::decode(&mut buf, PRODUCE_VERSION);
            let crcs: u32 = request.as_ref().map_or(0, |r| {
                r.topic_data
                    .iter()
                    .flat_map(|t| &t.partition_data)
                    .filter_map(|p| p.records.as_ref())
                    .map(|b| crc32c::crc32c(b))
                    .fold(0, |a, c| a ^ c)
            });
            let mut out = BytesMut::with_capacity(256);
            let written = encoded.encode(&mut out, PRODUCE_VERSION);
            black_box((crcs, written.is_ok(), out.len()));
        });
        let total = observe + count * f64::from(partitions);
        println!("| {partitions}-partition Produce: `observe_request` (counter, latency histogram, error walk) | {observe:.1} |");
        println!("| {partitions}-partition Produce: `PartitionTraffic::appended` × {partitions} | {:.1} |", count * f64::from(partitions));
        println!("| **{partitions}-partition Produce: metrics total** | **{total:.1}** |");
        println!(
            "| reference: decode the {partitions}-partition request, CRC-32C its {} KiB of records (the log checks every batch), encode the response | {reference:.1} (metrics: {:.1}% of this) |",
            RECORD_BYTES * partitions as usize / 1024,
            total / reference * 100.0
        );
    }
    let flush = ns_per_call(ITERATIONS, || sluice::metrics::traffic::flush_duration().observe(black_box(0.0004)));
    println!("| acks=all: flush-wait histogram observe, per partition | {flush:.1} |");

    metrics.add_source(Box::new(ManyPartitions));
    let renders = 20;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..renders {
        bytes = black_box(metrics.render()).len();
    }
    let per_render = start.elapsed() / renders;
    println!();
    println!(
        "One /metrics render with {SCRAPE_PARTITIONS} partitions (6 families each, plus the broker-wide ones): {:.1} ms, {} KiB of text",
        per_render.as_secs_f64() * 1e3,
        bytes / 1024
    );
    Ok(())
}
