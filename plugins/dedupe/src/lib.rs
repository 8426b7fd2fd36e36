//! `dedupe`: passes a record through unless a record with the same key was passed within the
//! last `window_ms` of event time (10 minutes by default). The first record of a key opens its
//! window; duplicates inside it are dropped and do not extend it. A timer at the window's end
//! forgets the key, so state holds only keys seen recently. Null-keyed records pass untouched.
//!
//! Config (optional): `{"window_ms": 600000, "allowed_lateness_ms": 0}`.

use serde::Deserialize;
use sluice_sdk::{stateful_transform, Context, Record, Result, StatefulTransform, Timer};

/// How long a key is remembered.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Event-time milliseconds during which a key's repeats are dropped.
    pub window_ms: i64,
    /// Watermark lag; the window ends by event time either way.
    pub allowed_lateness_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config { window_ms: 600_000, allowed_lateness_ms: 0 }
    }
}

/// The transform.
pub struct Dedupe;

impl StatefulTransform for Dedupe {
    type Config = Config;

    fn process(record: &Record<'_>, ctx: &mut Context<'_>, config: &Config) -> Result {
        if record.key.is_none() {
            ctx.output().emit(record.value());
            return Ok(());
        }
        // Compare times explicitly: the expiry timer may not have fired yet (it follows the
        // watermark, not this record's timestamp).
        if let Some(seen) = ctx.get::<i64>()? {
            if record.timestamp >= seen && record.timestamp - seen < config.window_ms {
                return Ok(());
            }
            ctx.cancel_timer(seen.saturating_add(config.window_ms));
        }
        ctx.put(&record.timestamp)?;
        ctx.set_timer(record.timestamp.saturating_add(config.window_ms));
        ctx.output().emit(record.value());
        Ok(())
    }

    fn on_timer(timer: &Timer<'_>, ctx: &mut Context<'_>, config: &Config) -> Result {
        if ctx.get::<i64>()? == Some(timer.at - config.window_ms) {
            ctx.delete();
        }
        Ok(())
    }

    fn allowed_lateness_ms(config: &Config) -> i64 {
        config.allowed_lateness_ms
    }
}

stateful_transform!(Dedupe);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Harness;

    fn rec(key: &'static [u8], value: &'static [u8], ts: i64) -> Record<'static> {
        let mut r = Record::new(value).with_key(key);
        r.timestamp = ts;
        r
    }

    /// Repeats inside the window are dropped, a repeat after it passes, and expired keys leave
    /// no state behind.
    #[test]
    fn drops_repeats_within_the_window() {
        let mut h = Harness::<Dedupe>::new(Config { window_ms: 1000, allowed_lateness_ms: 0 });
        let fed = h.feed(&[rec(b"a", b"a1", 0), rec(b"b", b"b1", 10), rec(b"a", b"a2", 500), rec(b"a", b"a3", 999)]);
        assert_eq!(fed.values(), ["a1", "b1"]);
        let fed = h.feed(&[rec(b"a", b"a4", 1000), rec(b"b", b"b2", 1005)]);
        assert_eq!(fed.values(), ["a4"], "a's window ended at 1000; b's runs to 1010");
        assert_eq!(h.get::<i64>(Some(b"a")), Some(1000));
        h.advance_to(5000);
        assert_eq!(h.get::<i64>(Some(b"a")), None);
        assert_eq!(h.state_entries(), 1, "only the watermark bookkeeping is left");
    }

    /// After a restore from the changelog the same repeats are dropped.
    #[test]
    fn restored_instance_remembers_keys() {
        let mut a = Harness::<Dedupe>::new(Config::default());
        a.feed(&[rec(b"k", b"1", 0)]);
        let mut b = Harness::<Dedupe>::restored(Config::default(), a.changelog());
        assert!(b.feed(&[rec(b"k", b"2", 10)]).values().is_empty());
    }
}
