//! Per-request metrics: `sluice_requests_total{api,version}`,
//! `sluice_request_duration_seconds{api}` and `sluice_request_errors_total{api,error}`.
//!
//! The counter and histogram for every supported (API, version) are resolved once at start into
//! a table indexed by API key, so counting a request is two atomic adds plus a histogram observe,
//! with no label hashing. Error counters are looked up by label only when a response carries a
//! non-zero code (rare on the hot path).

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::ResponseError;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use super::{register, response_errors, MetricsError};
use crate::protocol::apis::SUPPORTED_APIS;

/// Request latency buckets, seconds: 100 µs (a cached Metadata answer) to 30 s (the longest
/// long-poll Fetch we honour, `FETCH_WAIT_MS_MAX`).
const LATENCY_BUCKETS_SECONDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Handles for one API.
struct ApiHandles {
    /// `versions[v - min_version]`.
    min_version: i16,
    versions: Vec<IntCounter>,
    latency: Histogram,
}

/// The request-path metrics.
pub struct RequestMetrics {
    /// Indexed by API key; `None` for APIs we do not serve.
    by_key: Vec<Option<ApiHandles>>,
    errors: IntCounterVec,
}

impl RequestMetrics {
    /// Registers the families and pre-resolves every supported (API, version).
    pub fn new(registry: &Registry) -> Result<Self, MetricsError> {
        let requests = register(
            registry,
            IntCounterVec::new(Opts::new("sluice_requests_total", "Kafka requests answered, by API and version."), &["api", "version"]),
        )?;
        let latency = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "sluice_request_duration_seconds",
                    "Time from a request's arrival to its encoded response, by API (long-poll fetches include their wait).",
                )
                .buckets(LATENCY_BUCKETS_SECONDS.to_vec()),
                &["api"],
            ),
        )?;
        let errors = register(
            registry,
            IntCounterVec::new(
                Opts::new("sluice_request_errors_total", "Error codes in responses, by API and Kafka error name; one per non-zero code at any level (request, topic, partition, group)."),
                &["api", "error"],
            ),
        )?;
        let max_key = SUPPORTED_APIS.iter().map(|&(key, _, _)| key as i16).max().unwrap_or(0);
        let mut by_key: Vec<Option<ApiHandles>> = (0..=max_key).map(|_| None).collect();
        for &(key, min, max) in SUPPORTED_APIS {
            let name = api_name(key);
            let versions = (min..=max).map(|v| requests.with_label_values(&[name.as_str(), &v.to_string()])).collect();
            let handles = ApiHandles { min_version: min, versions, latency: latency.with_label_values(&[name.as_str()]) };
            if let Some(slot) = usize::try_from(key as i16).ok().and_then(|i| by_key.get_mut(i)) {
                *slot = Some(handles);
            }
        }
        Ok(RequestMetrics { by_key, errors })
    }

    /// Counts one answered request.
    pub fn observe(&self, api: ApiKey, version: i16, elapsed: Duration, response: &ResponseKind) {
        let Some(handles) = usize::try_from(api as i16).ok().and_then(|i| self.by_key.get(i)).and_then(Option::as_ref) else {
            return;
        };
        if let Some(counter) = usize::try_from(version - handles.min_version).ok().and_then(|i| handles.versions.get(i)) {
            counter.inc();
        }
        handles.latency.observe(elapsed.as_secs_f64());
        response_errors::for_each_error(response, |code| {
            self.errors.with_label_values(&[api_name(api).as_str(), &error_name(code)]).inc();
        });
    }
}

/// The API's name as Kafka spells it (`Produce`, `ListOffsets`): the `api` label.
pub fn api_name(api: ApiKey) -> String {
    format!("{api:?}")
}

/// Kafka's name for an error code (`UNKNOWN_TOPIC_OR_PARTITION`): the `error` label. Codes the
/// codec does not know become `UNKNOWN_CODE_<n>`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_CODE_{code}"),
        Some(e) => screaming_snake(&e.to_string()),
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_protocol::messages::ProduceResponse;

    #[test]
    fn error_names_follow_kafka() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(10), "MESSAGE_TOO_LARGE");
        assert_eq!(error_name(30_000), "UNKNOWN_CODE_30000");
    }

    /// Counting goes to the (API, version) series and every partition error is counted once.
    #[test]
    fn observe_counts_versions_latency_and_each_partition_error() {
        let registry = Registry::new();
        let metrics = RequestMetrics::new(&registry).expect("register");
        let partition = |code: i16| PartitionProduceResponse::default().with_error_code(code);
        let response = ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(vec![partition(0), partition(3), partition(3)]),
        ]));
        metrics.observe(ApiKey::Produce, 9, Duration::from_millis(2), &response);
        metrics.observe(ApiKey::Produce, 9, Duration::from_millis(2), &response);
        metrics.observe(ApiKey::Produce, 99, Duration::from_millis(2), &response); // unknown version: latency and errors only
        let families = registry.gather();
        let find = |name: &str| families.iter().find(|f| f.name() == name).expect(name);
        let requests = find("sluice_requests_total");
        let v9 = requests
            .get_metric()
            .iter()
            .find(|m| {
                m.get_label().iter().any(|l| l.value() == "Produce")
                    && m.get_label().iter().any(|l| l.name() == "version" && l.value() == "9")
            })
            .expect("Produce v9");
        assert_eq!(v9.get_counter().get_value(), 2.0);
        let errors = find("sluice_request_errors_total");
        assert_eq!(errors.get_metric().len(), 1);
        assert_eq!(errors.get_metric()[0].get_counter().get_value(), 6.0);
        let latency = find("sluice_request_duration_seconds");
        let produce = latency.get_metric().iter().find(|m| m.get_label()[0].value() == "Produce").expect("Produce latency");
        assert_eq!(produce.get_histogram().get_sample_count(), 3);
    }
}
