//! Prometheus metrics: one [`prometheus::Registry`] per broker, rendered on the admin port's
//! `/metrics` in the text exposition format.
//!
//! # Two kinds of metric
//! - **Counted on the hot path** (registered prometheus handles): requests, request latency,
//!   error responses, connections, log flush latency. Label handles are resolved once
//!   ([`requests::RequestMetrics`] pre-builds one counter per supported API version and one
//!   histogram per API), so a request costs a few atomic adds and no label hashing.
//! - **Read at scrape time** (a [`scrape::Scrape`] filled by [`MetricsSource`]s): everything
//!   labelled by topic, partition or group — per-topic traffic, log offsets and sizes, group
//!   members and lag. Nothing is stored per label in the registry, so a deleted topic or a
//!   forgotten group simply stops appearing: label churn cannot leak series. Per-partition
//!   traffic is counted in [`traffic::PartitionTraffic`] atomics owned by the partition itself.
//!
//! # Names (Prometheus conventions: `sluice_` prefix, base units, `_total` counters)
//! Broker: `sluice_connections_open`, `sluice_connections_total`,
//! `sluice_requests_total{api,version}`, `sluice_request_duration_seconds{api}` (histogram),
//! `sluice_request_errors_total{api,error}` (one per non-zero error code in a response, at any
//! level: request, topic, partition, group), `sluice_topic_bytes_in_total{topic}`,
//! `sluice_topic_records_in_total{topic}`, `sluice_topic_bytes_out_total{topic}`,
//! `sluice_topics`, `sluice_partitions`.
//!
//! Log: `sluice_log_start_offset`, `sluice_log_end_offset`, `sluice_log_high_watermark`,
//! `sluice_log_size_bytes`, `sluice_log_segments`, `sluice_log_flushes_total` (all
//! `{topic,partition}`), `sluice_log_flush_duration_seconds` (histogram),
//! `sluice_log_recovery_seconds`, `sluice_log_recovery_scanned_bytes`,
//! `sluice_log_recovery_truncated_bytes`.
//!
//! Groups: `sluice_groups{state}`, `sluice_group_members{group}`, `sluice_group_generation{group}`,
//! `sluice_group_rebalances_total{group}`, `sluice_group_committed_offset{group,topic,partition}`,
//! `sluice_group_lag{group,topic,partition}` (records between the committed offset and the high
//! watermark).
//!
//! Process: the standard `process_*` collector (CPU seconds, resident memory, open and maximum
//! file descriptors, start time). Meta: `sluice_build_info{version}`,
//! `sluice_metrics_series_omitted`.
//!
//! # Bounded labels
//! `api`, `version` and `error` are bounded by the protocol (the supported-API table and Kafka's
//! error codes). `topic`, `partition` and `group` labels come only from scrape-time sources, and
//! each family shows at most `metrics_series_per_family_max` label sets per scrape (config,
//! default 10,000; `--metrics-series-per-family-max`). What is left out is counted in
//! `sluice_metrics_series_omitted`, so a truncated scrape is visible rather than silent.
//!
//! # Extension points (tiered storage, transforms)
//! A subsystem exposes a plain stats snapshot and plugs in with [`Metrics::add_source`]: a
//! [`MetricsSource`] turns the snapshot into [`scrape::Scrape`] calls. Sources so far:
//! - transforms: `sluice_transform_*{transform}`, implemented in `transform_source`.
//! - tiered storage: `sluice_tier_*`, implemented in `tier_source`.
//!
//! A snapshot holds cumulative counts; a histogram is a cumulative bucket array
//! ([`scrape::HistogramSnapshot`]), so sources never need a prometheus handle of their own.
//!
//! # Layout
//! - `requests`: per-API request counters, latency histograms, error counters.
//! - `response_errors`: the error codes inside each API's response.
//! - `traffic`: per-partition byte/record counters and the log flush histogram.
//! - `scrape`: [`MetricsSource`], the [`scrape::Scrape`] builder and the registry collector.
//! - `broker_state`: the source for topics, partitions, logs and groups.
//! - `tier_source`: the source for tiered storage (`sluice_tier_*`).
//! - `transform_source`: the source for transforms (`sluice_transform_*`).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use prometheus::{Encoder, Gauge, IntCounter, IntGauge, Registry, TextEncoder};

use crate::config::BrokerConfig;

pub mod broker_state;
pub mod requests;
pub mod response_errors;
pub mod scrape;
pub mod tier_source;
pub mod traffic;
pub mod transform_source;

pub use scrape::{HistogramSnapshot, MetricsSource, Scrape};
pub use traffic::PartitionTraffic;

/// Why a metric could not be registered (a programmer error: names are fixed at build time).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The prometheus crate refused a metric definition.
    #[error("metric {name}: {source}")]
    Register {
        /// The metric's name.
        name: String,
        /// The crate's reason.
        source: prometheus::Error,
    },
}

/// The broker's metrics: the registry and the handles the hot path uses.
pub struct Metrics {
    /// false: `--metrics=false`; handlers skip all bookkeeping and `/metrics` answers 404.
    enabled: bool,
    registry: Registry,
    requests: requests::RequestMetrics,
    connections_open: IntGauge,
    connections_total: IntCounter,
    recovery_seconds: Gauge,
    recovery_scanned_bytes: IntGauge,
    recovery_truncated_bytes: IntGauge,
    sources: Arc<scrape::Sources>,
}

impl Metrics {
    /// Builds the registry with every broker-wide metric and the process collector.
    pub fn new(config: &BrokerConfig) -> Result<Arc<Metrics>, MetricsError> {
        let registry = Registry::new();
        let requests = requests::RequestMetrics::new(&registry)?;
        let connections_open = register(&registry, IntGauge::new("sluice_connections_open", "Kafka client connections open now."))?;
        let connections_total =
            register(&registry, IntCounter::new("sluice_connections_total", "Kafka client connections accepted since start."))?;
        let recovery_seconds = register(
            &registry,
            Gauge::new("sluice_log_recovery_seconds", "Seconds the broker spent opening (recovering) its logs and metadata at start."),
        )?;
        let recovery_scanned_bytes = register(
            &registry,
            IntGauge::new("sluice_log_recovery_scanned_bytes", "Bytes of segment files read and checked while recovering at start."),
        )?;
        let recovery_truncated_bytes = register(
            &registry,
            IntGauge::new("sluice_log_recovery_truncated_bytes", "Bytes cut off torn or corrupt log tails while recovering at start."),
        )?;
        let build = register(
            &registry,
            prometheus::IntGaugeVec::new(
                prometheus::Opts::new("sluice_build_info", "Always 1; the version label says which build runs."),
                &["version"],
            ),
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        register(&registry, Ok(traffic::flush_duration().clone()))?;
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .map_err(|source| MetricsError::Register { name: "process_*".into(), source })?;
        let sources = Arc::new(scrape::Sources::new(config.metrics_series_per_family_max));
        registry
            .register(Box::new(scrape::SourcesCollector::new(Arc::clone(&sources))))
            .map_err(|source| MetricsError::Register { name: "scrape-time sources".into(), source })?;
        Ok(Arc::new(Metrics {
            enabled: config.metrics,
            registry,
            requests,
            connections_open,
            connections_total,
            recovery_seconds,
            recovery_scanned_bytes,
            recovery_truncated_bytes,
            sources,
        }))
    }

    /// Whether metrics are on (`--metrics`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Adds a scrape-time source (tier, transforms, the broker's own state).
    pub fn add_source(&self, source: Box<dyn MetricsSource>) {
        self.sources.add(source);
    }

    /// Counts one answered request: its API and version, its latency, and every error code in
    /// the response.
    pub fn observe_request(&self, api: ApiKey, version: i16, elapsed: Duration, response: &ResponseKind) {
        if self.enabled {
            self.requests.observe(api, version, elapsed, response);
        }
    }

    /// Counts an accepted connection; the returned guard counts it closed when dropped.
    pub fn connection_opened(self: &Arc<Self>) -> Option<ConnectionGuard> {
        if !self.enabled {
            return None;
        }
        self.connections_total.inc();
        self.connections_open.inc();
        Some(ConnectionGuard(Arc::clone(self)))
    }

    /// Records how long opening the broker took and how much recovery read and cut off.
    pub fn set_recovery(&self, elapsed: Duration, scanned_bytes: u64, truncated_bytes: u64) {
        self.recovery_seconds.set(elapsed.as_secs_f64());
        self.recovery_scanned_bytes.set(i64::try_from(scanned_bytes).unwrap_or(i64::MAX));
        self.recovery_truncated_bytes.set(i64::try_from(truncated_bytes).unwrap_or(i64::MAX));
    }

    /// Everything in the text exposition format (`/metrics`).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut out = Vec::with_capacity(64 * 1024);
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!("cannot encode metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Decrements `sluice_connections_open` when the connection ends.
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// Registers a freshly built metric (constructors fail only on invalid names: a programmer
/// error, reported at start rather than panicking) and returns it.
pub(crate) fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> Result<M, MetricsError> {
    let metric = metric.map_err(|source| MetricsError::Register { name: "(definition)".into(), source })?;
    let name = metric.desc().first().map_or_else(String::new, |d| d.fq_name.clone());
    registry.register(Box::new(metric.clone())).map_err(|source| MetricsError::Register { name, source })?;
    Ok(metric)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a later subsystem plugs in: a source over its own stats snapshot, counters and a
    /// histogram included, rendered beside the broker's metrics.
    struct TransformStats;

    impl MetricsSource for TransformStats {
        fn collect(&self, scrape: &mut Scrape) {
            let labels = [("transform", "uppercase")];
            scrape.counter("sluice_transform_records_in_total", "Records read by the transform.", &labels, 42.0);
            let batch = HistogramSnapshot { buckets: vec![(0.001, 3), (0.01, 5)], count: 6, sum: 0.05 };
            scrape.histogram("sluice_transform_batch_duration_seconds", "Time per batch.", &labels, &batch);
        }
    }

    #[test]
    fn a_snapshot_source_renders_beside_the_broker_metrics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics = Metrics::new(&BrokerConfig::for_tests(dir.path())).expect("metrics");
        metrics.add_source(Box::new(TransformStats));
        let text = metrics.render();
        for line in [
            "# TYPE sluice_transform_records_in_total counter",
            "sluice_transform_records_in_total{transform=\"uppercase\"} 42",
            "# TYPE sluice_transform_batch_duration_seconds histogram",
            "sluice_transform_batch_duration_seconds_bucket{transform=\"uppercase\",le=\"0.01\"} 5",
            "sluice_transform_batch_duration_seconds_bucket{transform=\"uppercase\",le=\"+Inf\"} 6",
            "sluice_transform_batch_duration_seconds_count{transform=\"uppercase\"} 6",
            "sluice_requests_total{api=\"Produce\",version=\"9\"} 0",
            "sluice_metrics_series_omitted 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
