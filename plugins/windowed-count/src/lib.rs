//! `windowed-count`: counts records per key per event-time window (tumbling, or hopping with
//! `advance_ms`) and emits one record
//! per (key, window) when the window closes, i.e. when the watermark (largest timestamp seen
//! minus the allowed lateness) reaches the window's end. A record whose window has already
//! closed is late: dropped, or copied to `late_topic`. With hopping windows a record counts in
//! every window that holds it and still open; it is late (copied once) only if it counted in
//! none of them, as Flink's late side output does.
//!
//! Config (all optional): `{"window_ms": 60000, "advance_ms": null, "allowed_lateness_ms": 0,
//! "late_topic": null, "key_field": null, "error_on": null}`. `advance_ms`: hopping windows of
//! `window_ms` starting every `advance_ms` (null: tumbling). `key_field`: count per this top-level
//! field of a JSON value (a string, or a number as written) instead of per record key — e.g.
//! errors per `service`; a value that is not a JSON object with that field counts under the
//! record key. `error_on`: a record whose value contains it fails (for error-policy tests; its
//! count is taken back).
//!
//! Output: key = the input key, timestamp = the window's last millisecond, value =
//! `{"key":"…","window_start":…,"window_end":…,"count":…}` (the key as UTF-8, lossy).

use serde::Deserialize;
use sluice_sdk::{stateful_transform, ClosedWindow, Context, Hopping, OutRecord, Record, Result, StatefulTransform, WindowAdd};

/// Window size, lateness and where late records go.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Window size in milliseconds.
    pub window_ms: i64,
    /// Hopping windows start every this many milliseconds; `None`: tumbling (= `window_ms`).
    pub advance_ms: Option<i64>,
    /// How far out of order a record may arrive and still count.
    pub allowed_lateness_ms: i64,
    /// Late records are copied here; `None`: dropped.
    pub late_topic: Option<String>,
    /// Count per this JSON field of the value instead of per record key.
    pub key_field: Option<String>,
    /// A record whose value contains this fails.
    pub error_on: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config { window_ms: 60_000, advance_ms: None, allowed_lateness_ms: 0, late_topic: None, key_field: None, error_on: None }
    }
}

/// The transform.
pub struct WindowedCount;

impl StatefulTransform for WindowedCount {
    type Config = Config;

    fn process(record: &Record<'_>, ctx: &mut Context<'_>, config: &Config) -> Result {
        if let Some(key) = config.key_field.as_deref().and_then(|field| field_of(record.value(), field)) {
            ctx.set_key(Some(key.as_bytes()));
        }
        let windows = Hopping::new(config.window_ms, config.advance_ms.unwrap_or(config.window_ms));
        let mut counted = false;
        for window in windows.windows_of(record.timestamp) {
            counted |= ctx.window_add(window, |count: &mut u64| *count += 1)? == WindowAdd::Added;
        }
        if !counted {
            if let Some(topic) = &config.late_topic {
                ctx.output().emit_to(topic, record.value());
            }
        }
        // After the update, so a failing record proves its count is taken back.
        if let Some(needle) = &config.error_on {
            if record.value_str().contains(needle.as_str()) {
                return Err(format!("value contains {needle:?}").into());
            }
        }
        Ok(())
    }

    fn on_window_close(closed: &ClosedWindow<'_>, ctx: &mut Context<'_>, _config: &Config) -> Result {
        let count: u64 = closed.value()?;
        let key = closed.key.map(|k| String::from_utf8_lossy(k).into_owned());
        let value = serde_json::json!({"key": key, "window_start": closed.window.start, "window_end": closed.window.end, "count": count});
        let out = OutRecord::new(value.to_string()).timestamp(closed.window.end - 1);
        ctx.send(match closed.key {
            Some(k) => out.key(k),
            None => out.null_key(),
        });
        Ok(())
    }

    fn allowed_lateness_ms(config: &Config) -> i64 {
        config.allowed_lateness_ms
    }
}

/// `field` of a JSON object value, as text; `None` if the value is not such an object.
fn field_of(value: &[u8], field: &str) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(value).ok()?;
    match object.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

stateful_transform!(WindowedCount);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sluice_sdk::{Harness, Inherit};

    fn rec(key: &'static [u8], ts: i64) -> Record<'static> {
        let mut r = Record::new(b"v").with_key(key);
        r.timestamp = ts;
        r
    }

    fn counts(values: Vec<String>) -> Vec<(String, i64, u64)> {
        let mut v: Vec<_> = values
            .iter()
            .map(|s| {
                let j: serde_json::Value = serde_json::from_str(s).unwrap();
                (j["key"].as_str().unwrap().to_string(), j["window_start"].as_i64().unwrap(), j["count"].as_u64().unwrap())
            })
            .collect();
        v.sort();
        v
    }

    /// Windows close when the watermark passes their end, with out-of-order records inside the
    /// lateness counted and later ones routed to the late topic.
    #[test]
    fn counts_per_key_per_window_with_lateness() {
        let config = Config { allowed_lateness_ms: 10_000, late_topic: Some("late".into()), ..Config::default() };
        let mut h = Harness::<WindowedCount>::new(config);
        let fed = h.feed(&[rec(b"a", 1_000), rec(b"b", 2_000), rec(b"a", 59_000), rec(b"a", 65_000)]);
        assert!(fed.records.is_empty(), "watermark 55 s: nothing closed yet");
        // 8 s out of order, within the 10 s lateness: still counts in window 0.
        assert!(h.feed(&[rec(b"b", 57_000)]).records.is_empty());
        // Watermark reaches 60 s: window 0 closes for both keys, in key order.
        let fed = h.feed(&[rec(b"c", 70_000)]);
        assert_eq!(counts(fed.values()), vec![("a".into(), 0, 2), ("b".into(), 0, 2)]);
        assert_eq!(fed.records[0].key, Inherit::Set(Some(b"a".to_vec())));
        assert_eq!(fed.records[0].timestamp, Inherit::Set(59_999));
        // Window 0 is closed: a record for it is late and copied to the late topic.
        let fed = h.feed(&[rec(b"a", 30_000)]);
        assert_eq!(fed.records.len(), 1);
        assert_eq!(fed.records[0].topic.as_deref(), Some("late"));
        let fed = h.advance_to(200_000);
        assert_eq!(counts(fed.values()), vec![("a".into(), 60_000, 1), ("c".into(), 60_000, 1)]);
        assert_eq!(h.state_entries(), 1, "only the watermark bookkeeping is left");
    }

    /// An instance restored from the changelog continues exactly as the original.
    #[test]
    fn restored_instance_continues_identically() {
        let mut a = Harness::<WindowedCount>::new(Config::default());
        a.feed(&[rec(b"x", 1), rec(b"y", 2), rec(b"x", 60_500)]);
        let mut b = Harness::<WindowedCount>::restored(Config::default(), a.changelog());
        assert_eq!(b.watermark(), a.watermark());
        let next = [rec(b"x", 61_000), rec(b"y", 130_000)];
        assert_eq!(a.feed(&next), b.feed(&next));
        assert_eq!(counts(a.advance_to(500_000).values()), counts(b.advance_to(500_000).values()));
    }

    /// With `key_field`, records count per that field of the value whatever their key; a value
    /// without it counts under the record key.
    #[test]
    fn counts_per_json_field() {
        let mut h = Harness::<WindowedCount>::new(Config { key_field: Some("service".into()), ..Config::default() });
        let json = |key: &'static [u8], v: &'static [u8], ts| {
            let mut r = Record::new(v).with_key(key);
            r.timestamp = ts;
            r
        };
        let first = h.feed(&[
            json(b"host-1", br#"{"service":"web","level":"error"}"#, 1_000),
            json(b"host-2", br#"{"service":"web"}"#, 2_000),
            json(b"host-1", br#"{"service":"payments"}"#, 3_000),
            json(b"host-9", b"not json", 4_000),
            json(b"host-1", br#"{"service":"web"}"#, 61_000),
        ]);
        // The 61 s record closed the first minute; the rest closes here.
        assert_eq!(counts(first.values()), vec![("host-9".into(), 0, 1), ("payments".into(), 0, 1), ("web".into(), 0, 2)]);
        assert_eq!(first.records.iter().filter(|r| r.key == Inherit::Set(Some(b"web".to_vec()))).count(), 1);
        assert_eq!(counts(h.advance_to(200_000).values()), vec![("web".into(), 60_000, 1)]);
    }

    /// Hopping windows (size 60 s, advance 20 s): a record counts in the three windows holding
    /// it, each window closes on its own, and a record too late for all of its windows goes to
    /// the late topic while one still open for a later window counts there only.
    #[test]
    fn hopping_windows_count_each_record_in_every_window() {
        let config = Config { advance_ms: Some(20_000), late_topic: Some("late".into()), ..Config::default() };
        let mut h = Harness::<WindowedCount>::new(config);
        assert!(h.feed(&[rec(b"a", 5_000), rec(b"a", 15_000)]).records.is_empty());
        // Watermark 45 s: the windows ending at 20 and 40 s close.
        let fed = h.feed(&[rec(b"b", 45_000)]);
        assert_eq!(counts(fed.values()), vec![("a".into(), -40_000, 2), ("a".into(), -20_000, 2)]);
        // Watermark 61 s: [0, 60) closes.
        let fed = h.feed(&[rec(b"c", 61_000)]);
        assert_eq!(counts(fed.values()), vec![("a".into(), 0, 2), ("b".into(), 0, 1)]);
        // 30 s is late for [-20, 40) and [0, 60) but counts in [20, 80).
        let fed = h.feed(&[rec(b"a", 30_000)]);
        assert!(fed.records.is_empty(), "counted in an open window: not late");
        // 10 s: all of its windows ([-40, 20), [-20, 40), [0, 60)) have closed.
        let fed = h.feed(&[rec(b"a", 10_000)]);
        assert_eq!(fed.records.len(), 1);
        assert_eq!(fed.records[0].topic.as_deref(), Some("late"));
        let fed = h.advance_to(1_000_000);
        assert_eq!(
            counts(fed.values()),
            vec![
                ("a".into(), 20_000, 1),
                ("b".into(), 20_000, 1),
                ("b".into(), 40_000, 1),
                ("c".into(), 20_000, 1),
                ("c".into(), 40_000, 1),
                ("c".into(), 60_000, 1)
            ]
        );
    }

    /// A failing record leaves no count behind.
    #[test]
    fn failed_record_is_taken_back() {
        let mut h = Harness::<WindowedCount>::new(Config { error_on: Some("bad".into()), ..Config::default() });
        let mut bad = Record::new(b"bad").with_key(b"k");
        bad.timestamp = 10;
        let fed = h.feed(&[rec(b"k", 5), bad]);
        assert_eq!(fed.errors.len(), 1);
        let fed = h.advance_to(60_000);
        assert_eq!(counts(fed.values()), vec![("k".into(), 0, 1)]);
    }
}
