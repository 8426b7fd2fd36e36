//! `sessionize`: groups each user's (key's) click events into sessions: a session is a run of
//! events no more than `gap_ms` (30 s by default) apart in event time, and it closes once the
//! watermark passes its last event plus the gap. Emits one record per session when it closes:
//! key = the user, value = `{"user":"…","start":…,"end":…,"clicks":…}` (`start`: first event,
//! `end`: last event + gap, exclusive), timestamp = its last event. Out-of-order events merge
//! sessions they bridge. Late events (their session already closed) go to `late_topic`, or are
//! dropped.
//!
//! Config (optional): `{"gap_ms": 30000, "allowed_lateness_ms": 0, "late_topic": null}`.

use serde::Deserialize;
use sluice_sdk::{stateful_transform, ClosedWindow, Context, OutRecord, Record, Result, StatefulTransform, WindowAdd};

/// Gap, lateness, and where late events go.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Inactivity that ends a session (ms of event time).
    pub gap_ms: i64,
    /// How far out of order an event may arrive and still join its session.
    pub allowed_lateness_ms: i64,
    /// Late events are copied here; `None`: dropped.
    pub late_topic: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config { gap_ms: 30_000, allowed_lateness_ms: 0, late_topic: None }
    }
}

/// The transform.
pub struct Sessionize;

impl StatefulTransform for Sessionize {
    type Config = Config;

    fn process(record: &Record<'_>, ctx: &mut Context<'_>, config: &Config) -> Result {
        let added = ctx.session_add(record.timestamp, config.gap_ms, |clicks: &mut u64| *clicks += 1, |a, b| *a += b)?;
        if let (WindowAdd::Late, Some(topic)) = (added, &config.late_topic) {
            ctx.output().emit_to(topic, record.value());
        }
        Ok(())
    }

    fn on_window_close(closed: &ClosedWindow<'_>, ctx: &mut Context<'_>, config: &Config) -> Result {
        let clicks: u64 = closed.value()?;
        let user = closed.key.map(|k| String::from_utf8_lossy(k).into_owned());
        let value = serde_json::json!({"user": user, "start": closed.window.start, "end": closed.window.end, "clicks": clicks});
        let out = OutRecord::new(value.to_string()).timestamp(closed.window.end - config.gap_ms.max(1));
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

stateful_transform!(Sessionize);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sluice_sdk::Harness;

    fn click(user: &'static [u8], ts: i64) -> Record<'static> {
        let mut r = Record::new(b"click").with_key(user);
        r.timestamp = ts;
        r
    }

    fn sessions(values: Vec<String>) -> Vec<(String, i64, i64, u64)> {
        let mut v: Vec<_> = values
            .iter()
            .map(|s| {
                let j: serde_json::Value = serde_json::from_str(s).unwrap();
                (
                    j["user"].as_str().unwrap().to_string(),
                    j["start"].as_i64().unwrap(),
                    j["end"].as_i64().unwrap(),
                    j["clicks"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Events closer than the gap form one session; a longer pause starts a new one; sessions
    /// close when the watermark passes last event + gap.
    #[test]
    fn sessions_split_on_gaps() {
        let mut h = Harness::<Sessionize>::new(Config::default());
        // Watermark 35 s after the last event: v's session (1 s + 30 s gap) has ended.
        let fed = h.feed(&[click(b"v", 1_000), click(b"u", 0), click(b"u", 10_000), click(b"u", 35_000)]);
        assert_eq!(sessions(fed.values()), vec![("v".into(), 1_000, 31_000, 1)]);
        // 100 s: u's session ended at 65 s (last event 35 s + 30 s).
        let fed = h.feed(&[click(b"u", 100_000)]);
        assert_eq!(sessions(fed.values()), vec![("u".into(), 0, 65_000, 3)]);
        let fed = h.advance_to(130_000);
        assert_eq!(sessions(fed.values()), vec![("u".into(), 100_000, 130_000, 1)]);
        assert_eq!(h.state_entries(), 1, "only the watermark bookkeeping is left");
    }

    /// An out-of-order event that bridges two open sessions merges them.
    #[test]
    fn bridging_event_merges_sessions() {
        let mut h = Harness::<Sessionize>::new(Config { gap_ms: 10_000, allowed_lateness_ms: 60_000, late_topic: None });
        // Two sessions, [0, 10 s) and [15 s, 25 s); an event at 8 s reaches both.
        h.feed(&[click(b"u", 0), click(b"u", 15_000)]);
        h.feed(&[click(b"u", 8_000)]);
        let fed = h.advance_to(200_000);
        assert_eq!(sessions(fed.values()), vec![("u".into(), 0, 25_000, 3)]);
    }
}
