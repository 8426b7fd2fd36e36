//! Test-only failpoints, compiled into release builds and off unless the environment variable
//! [`ENV`] names them when the broker starts. They let an end-to-end test put a crash, or a time
//! limit, exactly where a timing-based test could only hope to land:
//!
//! - `abort-after-decision`: abort the process right after a batch's error-policy decision is
//!   stored (fsync), before any of its outputs is written.
//! - `abort-after-outputs`: abort right after all of a batch's outputs are durable (acked),
//!   before the checkpoint that moves past the batch is stored.
//! - `abort-after-ahead-decision`: abort right after a checkpoint that moves past a batch and
//!   holds the decision of the next one, which ran on the guest while the first was written
//!   (the runner's pipelining), before anything of that next batch is written.
//! - `time-limit-at=<offset>`: every guest call whose batch holds input offset `<offset>` is
//!   interrupted at once by the epoch deadline, as if the machine were too slow that time.
//!
//! Several are separated by commas. An abort is `std::process::abort`: no destructor, no flush,
//! like `kill -9`. A value that does not parse is logged and ignored (the broker must not fail to
//! start over a test knob).

use std::sync::OnceLock;

/// The environment variable holding the failpoints.
pub const ENV: &str = "SLUICE_TRANSFORM_FAILPOINT";

/// The failpoints set for this process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Failpoints {
    /// Abort after a batch's decision is stored, before its outputs.
    pub abort_after_decision: bool,
    /// Abort after a batch's outputs are durable, before its checkpoint.
    pub abort_after_outputs: bool,
    /// Abort after a checkpoint that ends a batch and stores the next (run-ahead) batch's
    /// decision.
    pub abort_after_ahead_decision: bool,
    /// Interrupt every guest call over a batch holding this input offset.
    pub time_limit_at: Option<i64>,
}

impl Failpoints {
    /// Parses `abort-after-outputs,time-limit-at=7`; unknown or malformed items are returned as
    /// the second element.
    pub fn parse(text: &str) -> (Failpoints, Vec<String>) {
        let mut f = Failpoints::default();
        let mut bad = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                None if item == "abort-after-decision" => f.abort_after_decision = true,
                None if item == "abort-after-outputs" => f.abort_after_outputs = true,
                None if item == "abort-after-ahead-decision" => f.abort_after_ahead_decision = true,
                Some(("time-limit-at", offset)) => match offset.parse() {
                    Ok(o) => f.time_limit_at = Some(o),
                    Err(_) => bad.push(item.to_string()),
                },
                _ => bad.push(item.to_string()),
            }
        }
        (f, bad)
    }
}

/// The process's failpoints, read from [`ENV`] once.
pub fn get() -> &'static Failpoints {
    static FAILPOINTS: OnceLock<Failpoints> = OnceLock::new();
    FAILPOINTS.get_or_init(|| {
        let Ok(text) = std::env::var(ENV) else { return Failpoints::default() };
        let (f, bad) = Failpoints::parse(&text);
        if !bad.is_empty() {
            tracing::warn!("{ENV}: ignoring unknown failpoints {bad:?}");
        }
        tracing::warn!("{ENV}: test failpoints are set: {f:?}");
        f
    })
}

/// Aborts the process if `on` (a failpoint's flag) is set, naming where.
pub fn abort_if(on: bool, at: &str) {
    if on {
        tracing::error!("{ENV}: aborting the process {at}");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item parses; a bad one is reported, not fatal.
    #[test]
    fn parses_items_and_reports_bad_ones() {
        let (f, bad) = Failpoints::parse("abort-after-outputs, time-limit-at=7,bogus,time-limit-at=x");
        assert_eq!(
            f,
            Failpoints {
                abort_after_decision: false,
                abort_after_outputs: true,
                abort_after_ahead_decision: false,
                time_limit_at: Some(7)
            }
        );
        assert!(Failpoints::parse("abort-after-ahead-decision").0.abort_after_ahead_decision);
        assert_eq!(bad, ["bogus", "time-limit-at=x"]);
        assert_eq!(Failpoints::parse("").0, Failpoints::default());
    }
}
