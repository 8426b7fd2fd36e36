//! `sluice consume TOPIC --group G`: the read loop of a group member ([`Member`]). It reads only
//! the partitions the group assigns it, starting at the group's commits, commits after every
//! fetch that moved its position, commits and rejoins when the group rebalances, and commits and
//! leaves on exit (`-n`, `--exit-at-end`, or Ctrl-C).

use std::collections::BTreeMap;

use super::args::out;
use super::consume::{render, start_positions, walk, ConsumeArgs, Walked, FETCH_WAIT_MS};
use super::group_member::Member;
use super::kafka_client::KafkaClient;

/// Positions to start from for the member's current assignment.
async fn starts(client: &mut KafkaClient, args: &ConsumeArgs, group: &str, member: &Member) -> anyhow::Result<BTreeMap<i32, i64>> {
    if member.assigned.is_empty() {
        return Ok(BTreeMap::new());
    }
    start_positions(client, &args.topic, &member.assigned, Some(group), args.from_beginning).await
}

/// Runs the member until `-n` records, the end (`--exit-at-end`) or Ctrl-C.
pub async fn consume_in_group(mut client: KafkaClient, args: &ConsumeArgs, group: &str) -> anyhow::Result<()> {
    if args.partition.is_some() {
        anyhow::bail!("--partition reads one partition outside any group; use it without --group");
    }
    client.find_coordinator(group).await?;
    let mut member = Member::join(&mut client, group, &args.topic).await?;
    let mut positions = starts(&mut client, args, group, &member).await?;
    let mut committed = positions.clone();
    let mut accepted = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let fetched = if positions.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(FETCH_WAIT_MS.unsigned_abs().into())) => Vec::new(),
                _ = &mut ctrl_c => return finish_interrupted(args, group, &member, &positions).await,
            }
        } else {
            tokio::select! {
                fetched = client.fetch(&args.topic, &positions, FETCH_WAIT_MS) => fetched?,
                // The fetch was cut off mid-exchange: its connection is unusable, so the last
                // commit and the leave go over a new one.
                _ = &mut ctrl_c => return finish_interrupted(args, group, &member, &positions).await,
            }
        };
        let mut print = |record: &_| out(&render(record, args.format, args.key_sep.as_deref())).map(|()| true);
        let Walked { done, at_end } = walk(&fetched, &mut positions, &mut accepted, args.max_records, &mut print)?;
        if positions != committed {
            client.commit_as(group, &args.topic, &positions, member.identity()).await?;
            committed = positions.clone();
        }
        if done || (args.exit_at_end && at_end) {
            return member.leave(&mut client).await;
        }
        if member.heartbeat_if_due(&mut client).await? {
            // Everything printed is committed already; the new assignment starts at the commits.
            member.rejoin(&mut client).await?;
            positions = starts(&mut client, args, group, &member).await?;
            committed = positions.clone();
        }
    }
}

/// Ctrl-C: commit what was printed and leave, on a fresh connection.
async fn finish_interrupted(args: &ConsumeArgs, group: &str, member: &Member, positions: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
    let mut client = args.kafka.connect().await?;
    if !positions.is_empty() {
        client.commit_as(group, &args.topic, positions, member.identity()).await?;
    }
    member.leave(&mut client).await
}
