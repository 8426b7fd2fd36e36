//! Scrape-time metrics: [`MetricsSource`]s read current state into a [`Scrape`] on every
//! `/metrics` request, and [`SourcesCollector`] hands the result to the registry.
//!
//! Nothing is kept between scrapes, so a series exists exactly as long as the thing it describes
//! (a topic, a partition, a group, a transform): label churn cannot leak series. Each labelled
//! family shows at most `per_family_max` label sets; the rest are counted in
//! `sluice_metrics_series_omitted` so truncation is visible.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

/// Something that reports metrics read from its current state at scrape time.
///
/// Implement it over a stats snapshot (`fn stats(&self) -> …Stats`) and pass it to
/// `Metrics::add_source`; see the module docs of `metrics` for the reserved names.
pub trait MetricsSource: Send + Sync {
    /// Adds this source's series to `scrape`. Called on the admin server's blocking pool; keep
    /// it to reading counters and short-held locks (no I/O).
    fn collect(&self, scrape: &mut Scrape);
}

/// A cumulative histogram as a snapshot: what a source reports for `_seconds` distributions
/// without holding a prometheus handle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound, cumulative count of observations ≤ bound), ascending; `+Inf` is implied by
    /// `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Number of observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
}

/// One family being built.
struct Family {
    help: String,
    kind: MetricType,
    metrics: Vec<proto::Metric>,
}

/// The families of one scrape.
pub struct Scrape {
    families: BTreeMap<String, Family>,
    per_family_max: usize,
    omitted: u64,
}

impl Scrape {
    /// An empty scrape in which each labelled family keeps at most `per_family_max` series.
    pub fn new(per_family_max: usize) -> Self {
        Scrape { families: BTreeMap::new(), per_family_max, omitted: 0 }
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(metric) = self.slot(name, help, MetricType::GAUGE, labels) {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            metric.set_gauge(g);
        }
    }

    /// A counter sample (a cumulative count; `name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(metric) = self.slot(name, help, MetricType::COUNTER, labels) {
            let mut c = proto::Counter::default();
            c.set_value(value);
            metric.set_counter(c);
        }
    }

    /// A histogram sample (`name` ends in the unit, e.g. `_seconds`).
    pub fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], snapshot: &HistogramSnapshot) {
        if let Some(metric) = self.slot(name, help, MetricType::HISTOGRAM, labels) {
            let mut h = proto::Histogram::default();
            h.set_sample_count(snapshot.count);
            h.set_sample_sum(snapshot.sum);
            let buckets = snapshot
                .buckets
                .iter()
                .map(|&(bound, count)| {
                    let mut b = proto::Bucket::default();
                    b.set_upper_bound(bound);
                    b.set_cumulative_count(count);
                    b
                })
                .collect();
            h.set_bucket(buckets);
            metric.set_histogram(h);
        }
    }

    /// Label sets left out of this scrape by the per-family bound.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    /// A new metric in family `name`, or `None` when the family is full (counted as omitted) or
    /// `name` was already used with another type (a programmer error; the sample is dropped).
    fn slot(&mut self, name: &str, help: &str, kind: MetricType, labels: &[(&str, &str)]) -> Option<&mut proto::Metric> {
        let family = self.families.entry(name.to_owned()).or_insert_with(|| Family { help: help.to_owned(), kind, metrics: Vec::new() });
        if family.kind != kind {
            tracing::debug!(metric = name, "metric reported with two types; sample dropped");
            return None;
        }
        if !labels.is_empty() && family.metrics.len() >= self.per_family_max {
            self.omitted += 1;
            return None;
        }
        let pairs = labels
            .iter()
            .map(|&(n, v)| {
                let mut pair = LabelPair::default();
                pair.set_name(n.to_owned());
                pair.set_value(v.to_owned());
                pair
            })
            .collect();
        family.metrics.push(proto::Metric::from_label(pairs));
        family.metrics.last_mut()
    }

    /// The finished families.
    pub fn into_families(self) -> Vec<MetricFamily> {
        let omitted = self.omitted;
        let mut out: Vec<MetricFamily> = self
            .families
            .into_iter()
            .map(|(name, f)| {
                let mut family = MetricFamily::default();
                family.set_name(name);
                family.set_help(f.help);
                family.set_field_type(f.kind);
                family.set_metric(f.metrics);
                family
            })
            .collect();
        let mut gauge = proto::Gauge::default();
        gauge.set_value(omitted as f64);
        let mut family = MetricFamily::default();
        family.set_name(OMITTED.into());
        family.set_help(OMITTED_HELP.into());
        family.set_field_type(MetricType::GAUGE);
        family.set_metric(vec![proto::Metric::from_gauge(gauge)]);
        out.push(family);
        out
    }
}

const OMITTED: &str = "sluice_metrics_series_omitted";
const OMITTED_HELP: &str = "Label sets left out of this scrape by metrics_series_per_family_max.";

/// The registered sources.
pub struct Sources {
    sources: RwLock<Vec<Box<dyn MetricsSource>>>,
    per_family_max: usize,
}

impl Sources {
    /// No sources yet.
    pub fn new(per_family_max: usize) -> Self {
        Sources { sources: RwLock::new(Vec::new()), per_family_max: per_family_max.max(1) }
    }

    /// Adds a source; it is read on every later scrape.
    pub fn add(&self, source: Box<dyn MetricsSource>) {
        self.sources.write().push(source);
    }

    /// Runs every source into one scrape.
    pub fn scrape(&self) -> Scrape {
        let mut scrape = Scrape::new(self.per_family_max);
        for source in self.sources.read().iter() {
            source.collect(&mut scrape);
        }
        scrape
    }
}

/// The registry's view of the sources.
pub struct SourcesCollector {
    sources: Arc<Sources>,
    desc: Vec<Desc>,
}

impl SourcesCollector {
    /// Wraps `sources` for `Registry::register`.
    pub fn new(sources: Arc<Sources>) -> Self {
        // The families vary with the sources; the registry only needs a unique descriptor.
        let desc = Desc::new(OMITTED.into(), OMITTED_HELP.into(), Vec::new(), Default::default()).into_iter().collect();
        SourcesCollector { sources, desc }
    }
}

impl Collector for SourcesCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.sources.scrape().into_families()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_capped_and_the_rest_counted() {
        let mut s = Scrape::new(2);
        for p in ["0", "1", "2", "3"] {
            s.gauge("sluice_x", "x", &[("partition", p)], 1.0);
        }
        s.counter("sluice_y_total", "y", &[], 5.0);
        s.counter("sluice_x", "x as another type", &[("partition", "9")], 1.0);
        assert_eq!(s.omitted(), 2);
        let families = s.into_families();
        let x = families.iter().find(|f| f.name() == "sluice_x").expect("x");
        assert_eq!(x.get_metric().len(), 2);
        let omitted = families.iter().find(|f| f.name() == OMITTED).expect("omitted");
        assert_eq!(omitted.get_metric()[0].get_gauge().get_value(), 2.0);
    }
}
