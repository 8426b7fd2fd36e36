//! Logging from a transform: `sluice_sdk::info!("…")` and friends. Lines are collected per batch
//! and handed to the broker in the output buffer, tagged with the input record being processed;
//! the broker writes them to its `tracing` output. In native tests they collect in a thread-local
//! list that [`take_logs`] drains.

use std::cell::RefCell;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
    Trace = 4,
}

/// One collected log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Index in the batch of the record being processed when the line was written.
    pub input_index: u32,
    /// Severity.
    pub level: Level,
    /// The text.
    pub message: String,
}

/// Lines kept per batch before further lines are dropped (a log line per record in a hot loop
/// must not exhaust the guest's memory).
pub const LOG_LINES_PER_BATCH_MAX: usize = 1000;

thread_local! {
    static LOGS: RefCell<Vec<LogEntry>> = const { RefCell::new(Vec::new()) };
    static CURRENT: RefCell<u32> = const { RefCell::new(sluice_abi::NO_RECORD) };
}

pub(crate) fn set_current(index: u32) {
    CURRENT.with(|c| *c.borrow_mut() = index);
}

/// Records a log line (the macros call this).
#[doc(hidden)]
pub fn __log(level: Level, args: std::fmt::Arguments<'_>) {
    let input_index = CURRENT.with(|c| *c.borrow());
    LOGS.with(|logs| {
        let mut logs = logs.borrow_mut();
        if logs.len() < LOG_LINES_PER_BATCH_MAX {
            logs.push(LogEntry { input_index, level, message: args.to_string() });
        }
    });
}

/// Takes the collected log lines (the entry point calls this after each batch; tests call it to
/// check what a function logged).
pub fn take_logs() -> Vec<LogEntry> {
    LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Logs at the given level: `log!(Level::Info, "seen {}", n)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => { $crate::__log_impl($level, format_args!($($arg)+)) };
}
/// Logs at error level.
#[macro_export]
macro_rules! error { ($($arg:tt)+) => { $crate::log!($crate::Level::Error, $($arg)+) }; }
/// Logs at warn level.
#[macro_export]
macro_rules! warn { ($($arg:tt)+) => { $crate::log!($crate::Level::Warn, $($arg)+) }; }
/// Logs at info level.
#[macro_export]
macro_rules! info { ($($arg:tt)+) => { $crate::log!($crate::Level::Info, $($arg)+) }; }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($arg:tt)+) => { $crate::log!($crate::Level::Debug, $($arg)+) }; }

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines are collected with their level and drained once; a flood is capped.
    #[test]
    fn logs_are_collected_and_capped() {
        crate::info!("seen {}", 1);
        crate::warn!("careful");
        let logs = take_logs();
        assert_eq!(
            logs.iter().map(|l| (l.level, l.message.as_str())).collect::<Vec<_>>(),
            [(Level::Info, "seen 1"), (Level::Warn, "careful")]
        );
        assert!(take_logs().is_empty());
        for i in 0..LOG_LINES_PER_BATCH_MAX + 10 {
            crate::debug!("{i}");
        }
        assert_eq!(take_logs().len(), LOG_LINES_PER_BATCH_MAX);
    }
}
