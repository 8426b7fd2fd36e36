//! `sluice transform logs|pause|resume|reset`: operating deployed transforms. (The development
//! loop, `transform init|build|test`, lives in `transform_dev`; both are flattened into one
//! `sluice transform` command.)
//!
//! `logs` reads the `_sluice_transform_logs` topic over the Kafka protocol: the runners write
//! each guest log line there as a record keyed by the transform name, with `level`,
//! `transform_version`, `input_partition` and `input_offset` headers.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Subcommand};

use super::args::{out, run, AdminArgs, KafkaArgs};
use super::consume::{read, StopAt};
use super::get::state_name;
use super::kafka_data::{Consumed, EARLIEST, LATEST};
use super::progress::Progress;
use crate::transform::{ResetTo, TransformStatus, TRANSFORM_LOGS_TOPIC};

/// How often `reset --wait` polls the transform's lag.
pub const RESET_POLL_MS: u64 = 250;

/// Every subcommand of `sluice transform`: writing and trying a transform (init, build, test; no
/// broker needed) and operating deployed ones (logs, pause, resume, reset), in one list.
#[derive(Debug, Subcommand)]
pub enum TransformCommand {
    /// init, build, test.
    #[command(flatten)]
    Dev(super::transform_dev::DevCommand),
    /// logs, pause, resume, reset.
    #[command(flatten)]
    Ops(TransformOps),
}

/// Runs one subcommand of `sluice transform`.
pub fn main(command: TransformCommand) -> ExitCode {
    match command {
        TransformCommand::Dev(command) => super::transform_dev::run(command),
        TransformCommand::Ops(command) => run("transform", transform(command)),
    }
}

/// The operating subcommands of `sluice transform` (flattened next to `transform_dev`'s
/// `init|build|test`). Each carries its own connection flags so the two enums merge as they are.
#[derive(Debug, Subcommand)]
pub enum TransformOps {
    /// Print a transform's log lines (from the `_sluice_transform_logs` topic).
    #[command(after_help = "Examples:\n  sluice transform logs uppercase\n  sluice transform logs uppercase -f --new-only")]
    Logs {
        /// Transform name.
        name: String,
        /// Keep waiting for new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only lines written from now on (default: every line still retained).
        #[arg(long)]
        new_only: bool,
        /// How to reach the Kafka listener.
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Where the admin API is.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Stop processing; the position is kept.
    #[command(after_help = "Examples:\n  sluice transform pause uppercase")]
    Pause {
        /// Transform name.
        name: String,
        /// Where the admin API is.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Continue from the kept position (also restarts a failed transform).
    #[command(after_help = "Examples:\n  sluice transform resume uppercase")]
    Resume {
        /// Transform name.
        name: String,
        /// Where the admin API is.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Move every input partition's position, then continue from there.
    #[command(group(ArgGroup::new("to").required(true).args(["to_offset", "to_timestamp", "to_earliest", "to_latest"])))]
    #[command(
        after_help = "Examples:\n  sluice transform reset uppercase --to-earliest --wait\n  sluice transform reset uppercase --to-offset 1000\n  sluice transform reset uppercase --to-timestamp 1764633600000"
    )]
    Reset {
        /// Transform name.
        name: String,
        /// This input offset (clamped to each partition's log).
        #[arg(long, value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// The first record at or after this time (ms since the Unix epoch).
        #[arg(long, value_name = "MS")]
        to_timestamp: Option<i64>,
        /// The log start (replays everything retained).
        #[arg(long)]
        to_earliest: bool,
        /// The end (skips everything not yet processed).
        #[arg(long)]
        to_latest: bool,
        /// Wait until the replay has caught up (lag 0), showing progress on a terminal.
        #[arg(long)]
        wait: bool,
        /// Where the admin API is.
        #[command(flatten)]
        admin: AdminArgs,
    },
}

async fn transform(command: TransformOps) -> anyhow::Result<()> {
    match command {
        TransformOps::Logs { name, follow, new_only, kafka, admin } => logs(&admin, &name, follow, new_only, &kafka).await,
        TransformOps::Pause { name, admin } => {
            let status = admin.client()?.pause(&name).await?;
            out(&summary(&status))
        }
        TransformOps::Resume { name, admin } => {
            let status = admin.client()?.resume(&name).await?;
            out(&summary(&status))
        }
        TransformOps::Reset { name, to_offset, to_timestamp, to_earliest, to_latest, wait, admin } => {
            // clap's `to` group lets exactly one through.
            let to = match (to_offset, to_timestamp, to_earliest, to_latest) {
                (Some(o), None, false, false) => ResetTo::Offset(o),
                (None, Some(t), false, false) => ResetTo::Timestamp(t),
                (None, None, true, false) => ResetTo::Earliest,
                (None, None, false, true) => ResetTo::Latest,
                _ => anyhow::bail!("give exactly one of --to-offset, --to-timestamp, --to-earliest, --to-latest"),
            };
            let client = admin.client()?;
            let mut status = client.reset(&name, to).await?;
            out(&summary(&status))?;
            if wait {
                let mut progress = Progress::new(std::io::stderr().is_terminal(), Duration::from_millis(RESET_POLL_MS));
                let total = status.lag.max(1);
                while status.lag > 0 {
                    if status.reason.is_some() {
                        anyhow::bail!("transform {name} stopped while replaying: {}", status.reason.as_deref().unwrap_or_default());
                    }
                    let done_pct = (total - status.lag).max(0) * 100 / total;
                    progress.update(|| format!("replaying: {} records left ({done_pct}%)", status.lag));
                    tokio::time::sleep(Duration::from_millis(RESET_POLL_MS)).await;
                    status = client.transform(&name).await?;
                }
                progress.finish("replay caught up (lag 0)");
            }
            Ok(())
        }
    }
}

/// `transform/NAME STATE (lag N)` and the failure reason, if any.
fn summary(s: &TransformStatus) -> String {
    let mut line = format!("transform/{} {} (lag {})\n", s.name, state_name(&s.state), s.lag);
    if let Some(reason) = &s.reason {
        line.push_str(&format!("  last error: {reason}\n"));
    }
    line
}

async fn logs(admin: &AdminArgs, name: &str, follow: bool, new_only: bool, kafka: &KafkaArgs) -> anyhow::Result<()> {
    // An unknown name is a clear error rather than an empty, silent stream.
    admin.client()?.transform(name).await?;
    let mut client = kafka.connect().await?;
    let partitions = match client.partitions(TRANSFORM_LOGS_TOPIC, false).await {
        Ok(p) => p,
        // The broker creates the topic at the first deploy; without it there are no lines yet.
        Err(e) if e.to_string().starts_with("unknown topic") && !follow => return Ok(()),
        Err(e) => return Err(e),
    };
    let positions = client.list_offsets(TRANSFORM_LOGS_TOPIC, &partitions, if new_only { LATEST } else { EARLIEST }).await?;
    let stop = StopAt { records: None, at_end: !follow };
    read(&mut client, TRANSFORM_LOGS_TOPIC, positions, stop, None, |r| {
        if r.key.as_deref() != Some(name.as_bytes()) {
            return Ok(false);
        }
        out(&log_line(r))?;
        Ok(true)
    })
    .await?;
    Ok(())
}

/// `2026-12-02T01:02:03.456Z LEVEL [p3@42] message`.
pub fn log_line(r: &Consumed) -> String {
    let header = |k: &str| {
        r.headers.iter().find(|(name, _)| name == k).and_then(|(_, v)| v.as_ref()).map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let level = header("level").unwrap_or_else(|| "info".into()).to_uppercase();
    let at = match (header("input_partition"), header("input_offset")) {
        (Some(p), Some(o)) => format!(" [p{p}@{o}]"),
        _ => String::new(),
    };
    let message = r.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    format!("{} {level:<5}{at} {message}\n", iso8601_ms(r.timestamp))
}

/// UTC time of `ms` since the Unix epoch (proleptic Gregorian; days-to-civil after H. Hinnant).
pub fn iso8601_ms(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn timestamps_print_as_utc() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_764_637_323_456), "2025-12-02T01:02:03.456Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn log_lines_show_level_position_and_message() {
        let h = |k: &str, v: &str| (k.to_string(), Some(Bytes::from(v.to_string())));
        let r = Consumed {
            partition: 0,
            offset: 3,
            timestamp: 0,
            key: Some(Bytes::from("upper")),
            value: Some(Bytes::from("bad record")),
            headers: vec![h("transform", "upper"), h("level", "warn"), h("input_partition", "2"), h("input_offset", "41")],
        };
        assert_eq!(log_line(&r), "1970-01-01T00:00:00.000Z WARN  [p2@41] bad record\n");
    }
}
