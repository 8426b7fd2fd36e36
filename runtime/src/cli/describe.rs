//! `sluice describe topic|transform|group NAME`: one object in detail (partitions and offsets;
//! transform state, last error and lag; group members, assignment and lag).

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::args::{out, run, AdminArgs};
use super::get::state_name;
use super::output::{structured, Format, Table};
use crate::admin_api::{ConfigSource, GroupDetail, TopicDetail};
use crate::transform::TransformStatus;

/// Show one topic, transform or consumer group in detail.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  sluice describe topic orders
  sluice describe transform uppercase
  sluice describe group billing -o yaml")]
pub struct DescribeArgs {
    /// What to describe.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Its name (group id for groups).
    pub name: String,
    /// Output format (`table` is the human-readable report).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub format: Format,
    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The kinds `describe` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A topic: partitions, offsets, sizes, configs.
    Topic,
    /// A transform: state, last error, per-partition lag, counters.
    Transform,
    /// A consumer group: members, assignments, committed offsets and lag.
    Group,
}

/// Runs `sluice describe`.
pub fn main(args: DescribeArgs) -> ExitCode {
    run("describe", describe(args))
}

async fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let client = args.admin.client()?;
    let text = match args.kind {
        Kind::Topic => {
            let topic = client.topic(&args.name).await?;
            if args.format == Format::Table {
                topic_report(&topic)
            } else {
                structured(&topic, args.format)?
            }
        }
        Kind::Transform => {
            let transform = client.transform(&args.name).await?;
            if args.format == Format::Table {
                transform_report(&transform)
            } else {
                structured(&transform, args.format)?
            }
        }
        Kind::Group => {
            let group = client.group(&args.name).await?;
            if args.format == Format::Table {
                group_report(&group)
            } else {
                structured(&group, args.format)?
            }
        }
    };
    out(&text)
}

/// The human-readable report of a topic.
pub fn topic_report(t: &TopicDetail) -> String {
    let mut text = format!("Name:        {}\nTopic id:    {}\nPartitions:  {}\n", t.name, t.topic_id, t.partitions.len());
    if t.internal {
        text.push_str("Internal:    yes (written by the broker)\n");
    }
    let mut partitions = Table::new(&["PARTITION", "LOG START", "HIGH WATERMARK", "RECORDS", "SIZE BYTES", "SEGMENTS"]);
    for p in &t.partitions {
        partitions.row(vec![
            p.partition.to_string(),
            p.log_start_offset.to_string(),
            p.high_watermark.to_string(),
            (p.high_watermark - p.log_start_offset).max(0).to_string(),
            p.size_bytes.to_string(),
            p.segments.to_string(),
        ]);
    }
    text.push('\n');
    text.push_str(&partitions.render("no partitions"));
    let mut overrides = Table::new(&["CONFIG", "VALUE"]);
    for (name, c) in t.configs.iter().filter(|(_, c)| c.source == ConfigSource::Topic) {
        overrides.row(vec![name.clone(), c.value.clone()]);
    }
    text.push('\n');
    text.push_str(&overrides.render("Configs: all defaults (-o yaml shows every effective value)"));
    text
}

/// The human-readable report of a transform.
pub fn transform_report(t: &TransformStatus) -> String {
    let mut text = format!(
        "Name:        {}\nState:       {}\nVersion:     {} (module sha256 {})\nInput:       {}\nOutput:      {}\nLag:         {}\n",
        t.name,
        state_name(&t.state),
        t.version,
        t.module_sha256.get(..12).unwrap_or(&t.module_sha256),
        t.spec.input,
        t.spec.output,
        t.lag
    );
    if let Some(reason) = &t.reason {
        text.push_str(&format!("Last error:  {reason}\n"));
    }
    let parallelism = t.spec.parallelism.map_or("unbounded (one runner per partition)".to_string(), |n| n.to_string());
    text.push_str(&format!("Parallelism: {parallelism} (peak {} batches at once)\n", t.batches_concurrent_peak));
    let s = &t.stats;
    text.push_str(&format!(
        "Records:     {} in, {} out, {} dead-lettered, {} skipped ({} batches, {} restarts, {} retries)\n",
        s.records_in, s.records_out, s.dead_lettered, s.skipped, s.batches, s.restarts, s.batch_retries
    ));
    let mut partitions = Table::new(&["PARTITION", "NEXT OFFSET", "HIGH WATERMARK", "LAG"]);
    for p in &t.partitions {
        partitions.row(vec![p.partition.to_string(), p.next_offset.to_string(), p.high_watermark.to_string(), p.lag.to_string()]);
    }
    text.push('\n');
    text.push_str(&partitions.render("no input partitions yet"));
    for p in t.partitions.iter().filter(|p| p.retrying.is_some()) {
        text.push_str(&format!("Partition {} waits to retry its batch: {}\n", p.partition, p.retrying.as_deref().unwrap_or_default()));
    }
    text
}

/// The human-readable report of a consumer group.
pub fn group_report(g: &GroupDetail) -> String {
    let protocol = match (g.protocol_type.as_str(), g.protocol.as_str()) {
        ("", _) => "-".to_string(),
        (t, "") => t.to_string(),
        (t, p) => format!("{t} ({p})"),
    };
    let mut text = format!(
        "Group:       {}\nState:       {}\nProtocol:    {}\nMembers:     {}\nTotal lag:   {}\n",
        g.group_id,
        g.state,
        protocol,
        g.members.len(),
        g.total_lag
    );
    let mut members = Table::new(&["MEMBER", "CLIENT ID", "HOST", "ASSIGNMENT"]);
    for m in &g.members {
        let assignment: Vec<String> = m.assignment.iter().map(|a| format!("{}:{}", a.topic, join(&a.partitions))).collect();
        let assignment = if assignment.is_empty() { "-".to_string() } else { assignment.join(" ") };
        members.row(vec![m.member_id.clone(), m.client_id.clone(), m.host.clone(), assignment]);
    }
    text.push('\n');
    text.push_str(&members.render("no active members"));
    let mut offsets = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG"]);
    for o in &g.offsets {
        let unknown = |n: i64| if n < 0 { "-".to_string() } else { n.to_string() };
        offsets.row(vec![
            o.topic.clone(),
            o.partition.to_string(),
            o.committed_offset.to_string(),
            unknown(o.high_watermark),
            unknown(o.lag),
        ]);
    }
    text.push('\n');
    text.push_str(&offsets.render("no committed offsets"));
    text
}

fn join(partitions: &[i32]) -> String {
    partitions.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::admin_api::{GroupOffset, MemberInfo, TopicPartitions};

    #[test]
    fn group_report_shows_members_assignment_and_lag() {
        let g = GroupDetail {
            group_id: "billing".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![MemberInfo {
                member_id: "m-1".into(),
                client_id: "app".into(),
                host: "/127.0.0.1".into(),
                assignment: vec![TopicPartitions { topic: "orders".into(), partitions: vec![0, 1] }],
            }],
            offsets: vec![
                GroupOffset { topic: "orders".into(), partition: 0, committed_offset: 7, high_watermark: 10, lag: 3 },
                GroupOffset { topic: "gone".into(), partition: 0, committed_offset: 5, high_watermark: -1, lag: -1 },
            ],
            total_lag: 3,
        };
        let text = group_report(&g);
        assert!(text.contains("Protocol:    consumer (range)\n"), "{text}");
        assert!(text.contains("Total lag:   3\n"), "{text}");
        assert!(text.contains("m-1     app        /127.0.0.1  orders:0,1\n"), "{text}");
        assert!(text.contains("orders  0          7          10              3\n"), "{text}");
        assert!(text.contains("gone    0          5          -               -\n"), "{text}");
    }
}
