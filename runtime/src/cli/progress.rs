//! Progress for long operations: one line on stderr rewritten in place (`\r`) when stderr is a
//! terminal, at most every `interval`; nothing at all when it is piped, so scripts and logs stay
//! clean. No progress-bar crate: a counter line is all a CLI producer needs.

use std::io::Write;
use std::time::{Duration, Instant};

/// A progress line.
pub struct Progress {
    enabled: bool,
    interval: Duration,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    /// `enabled` is normally `std::io::stderr().is_terminal()`.
    pub fn new(enabled: bool, interval: Duration) -> Self {
        Progress { enabled, interval, last: None, shown: false }
    }

    /// Shows `message()` if enabled and `interval` has passed since the last update.
    pub fn update(&mut self, message: impl FnOnce() -> String) {
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < self.interval) {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let mut stderr = std::io::stderr().lock();
        // \x1b[K clears what a longer previous line left behind.
        let _ = write!(stderr, "\r{}\x1b[K", message());
        let _ = stderr.flush();
    }

    /// Erases the line, if one was drawn, so the next stdout line starts clean.
    pub fn clear(&mut self) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.shown = false;
        }
    }

    /// Replaces the line with a final message (only on a terminal).
    pub fn finish(&mut self, message: &str) {
        if !self.enabled {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = if self.shown { writeln!(stderr, "\r{message}\x1b[K") } else { writeln!(stderr, "{message}") };
    }
}
