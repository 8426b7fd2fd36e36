//! Consumer groups: membership, generations, rebalances, and durable committed offsets.
//!
//! This is Kafka's classic group coordinator for a single node: this broker coordinates every
//! group. The protocol handlers (`protocol/apis/{join_group,...}.rs`) decode requests into the
//! plain types here and encode the outcomes; nothing in this module knows wire versions.
//!
//! # Layout
//! - `state`: [`GroupState`], members, and pure rules (protocol selection, member validation).
//! - `membership`: JoinGroup/SyncGroup, rebalance start/completion, the rebalance timer.
//! - `liveness`: heartbeats, LeaveGroup, session timers.
//! - `offsets`: committed offsets in memory in front of the compacted `__consumer_offsets-0` log.
//! - `offset_delete`: OffsetDelete's rules (which partitions of a group may lose their offsets).
//! - `format`: the record layout of that log (Kafka's schemas) and a small batch writer.
//! - `error`: [`GroupError`] (storage failures; protocol outcomes are `ResponseError`s).
//! - `stats`: [`GroupsSnapshot`], a plain copy of membership and committed offsets for metrics.
//!
//! # Concurrency
//! A map of groups behind a short-held lock; each group behind its own `parking_lot::Mutex`, never
//! held across an await. Parked JoinGroup/SyncGroup requests wait on oneshot channels that the
//! group's state transitions complete. Timers are tokio tasks holding a `Weak` group reference.
//!
//! API CONTRACT (shared with the broker layer): [`GroupCoordinator::open`] is blocking (it replays
//! the offsets log; call it from `spawn_blocking` or before serving), [`GroupCoordinator::shutdown`]
//! is async, [`GroupCoordinator::maintain`] is blocking and belongs in the periodic maintenance
//! loop (it compacts the offsets log).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::BrokerConfig;

mod error;
mod format;
mod liveness;
mod membership;
mod offset_delete;
mod offsets;
mod state;
mod stats;
#[cfg(test)]
mod tests;

pub use error::GroupError;
pub use liveness::LeavingMember;
pub use membership::{JoinRequest, SyncRequest};
pub use offsets::{CommitEntry, CommittedOffset, OFFSETS_LOG_DIR};
pub use state::{GroupState, JoinOutcome, JoinedMember, SyncOutcome};
pub use stats::{CommittedStats, GroupStats, GroupsSnapshot};

use membership::Reply;
use offsets::OffsetStore;
use state::Group;

/// Kafka's `offset.metadata.max.bytes`: longer commit metadata is OFFSET_METADATA_TOO_LARGE.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// Group ids are i16-length strings in the offsets log's keys (Kafka's schema); a longer id
/// (possible with flexible-version compact strings) is INVALID_GROUP_ID.
pub const GROUP_ID_MAX_BYTES: usize = i16::MAX as usize;
/// Kafka's `group.min.session.timeout.ms` is 6 s; we allow 1 s so tests can exercise expiry
/// quickly. Clients' defaults (10–45 s) are well inside the range.
pub const SESSION_TIMEOUT_MS_MIN: i32 = 1_000;
/// Kafka's `group.max.session.timeout.ms`.
pub const SESSION_TIMEOUT_MS_MAX: i32 = 1_800_000;
/// Kafka's `group.max.size` (unbounded there); members plus ids handed out awaiting rejoin.
pub const GROUP_MEMBERS_MAX: usize = 1_000;
/// Groups with membership state kept in memory; new groups beyond this are refused with
/// COORDINATOR_NOT_AVAILABLE. Empty groups are dropped by `maintain`, so only live ones count.
pub const GROUPS_MAX: usize = 100_000;

pub(crate) type GroupCell = Arc<Mutex<Group>>;

/// Coordinator settings every timer task gets a copy of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// group.initial.rebalance.delay.ms.
    pub initial_rebalance_delay: Duration,
    pub group_max_size: usize,
}

/// Why an offset commit or a group deletion did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupOpError {
    /// A protocol outcome for every partition/group named (e.g. ILLEGAL_GENERATION).
    #[error("rejected: {0}")]
    Rejected(ResponseError),
    /// The offsets log failed; nothing was acknowledged.
    #[error(transparent)]
    Storage(#[from] GroupError),
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// `consumer`, or empty for a group with only committed offsets.
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: GroupState,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    /// Kafka's state name; `Dead` for an unknown group (as Kafka answers).
    pub state: GroupState,
    /// `consumer`, or empty.
    pub protocol_type: String,
    /// The selected protocol, only while Stable (as Kafka).
    pub protocol: String,
    /// Members; metadata and assignment only while Stable.
    pub members: Vec<MemberDescription>,
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the DescribeGroups fields of the same names
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// Who is committing: `generation_id` -1 with an empty member id is a "simple" commit from a
/// consumer that manages its own partitions (allowed while the group has no members).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Committer {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// Coordinates every consumer group on this broker.
pub struct GroupCoordinator {
    /// Groups with membership state. A group with only committed offsets has no entry here.
    groups: Mutex<HashMap<String, GroupCell>>,
    /// Shared with the blocking close at shutdown.
    offsets: Arc<OffsetStore>,
    settings: Settings,
}

impl GroupCoordinator {
    /// Opens (or creates) `<data_dir>/__consumer_offsets-0` and replays it, restoring every
    /// committed offset. Blocking: file I/O.
    pub fn open(data_dir: &Path, config: &BrokerConfig) -> Result<Self, GroupError> {
        let offsets = OffsetStore::open(data_dir, now_ms())?;
        let settings = Settings {
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            group_max_size: GROUP_MEMBERS_MAX,
        };
        tracing::info!(groups = offsets.group_ids().len(), "group coordinator loaded committed offsets");
        Ok(Self { groups: Mutex::new(HashMap::new()), offsets: Arc::new(offsets), settings })
    }

    /// Answers every parked JoinGroup/SyncGroup with NOT_COORDINATOR (clients look for the
    /// coordinator again and rejoin once we are back), then closes the offsets log cleanly.
    pub async fn shutdown(&self) -> Result<(), GroupError> {
        let cells: Vec<GroupCell> = self.groups.lock().drain().map(|(_, c)| c).collect();
        for cell in cells {
            let mut g = cell.lock();
            g.state = GroupState::Dead;
            for m in g.members.values_mut() {
                if let Some(tx) = m.awaiting_join.take() {
                    let _ = tx.send(JoinOutcome::error(ResponseError::NotCoordinator, &m.id));
                }
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncOutcome::error(ResponseError::NotCoordinator));
                }
            }
            // Members are dropped with the group; their session timers see no member and exit.
            g.members.clear();
        }
        let offsets = Arc::clone(&self.offsets);
        match tokio::task::spawn_blocking(move || offsets.close()).await {
            Ok(result) => result,
            Err(e) => Err(GroupError::Task { group: "(shutdown)".into(), reason: e.to_string() }),
        }
    }

    /// Compacts the offsets log and forgets empty groups (their offsets stay). Blocking.
    pub fn maintain(&self, now_ms: i64) -> Result<(), GroupError> {
        self.groups.lock().retain(|_, cell| {
            let mut g = cell.lock();
            let idle = g.state == GroupState::Empty && g.members.is_empty() && g.pending_members.is_empty();
            if idle {
                // A handler that already holds this cell sees Dead and asks its client to retry.
                g.state = GroupState::Dead;
            }
            !idle
        });
        self.offsets.maintain(now_ms)
    }

    fn group(&self, group_id: &str) -> Option<GroupCell> {
        self.groups.lock().get(group_id).cloned()
    }

    /// The group's cell, created Empty if missing (at most [`GROUPS_MAX`]).
    fn group_or_create(&self, group_id: &str) -> Result<GroupCell, ResponseError> {
        let mut groups = self.groups.lock();
        if let Some(cell) = groups.get(group_id) {
            return Ok(Arc::clone(cell));
        }
        if groups.len() >= GROUPS_MAX {
            tracing::warn!(limit = GROUPS_MAX, "too many consumer groups; refusing a new one");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let cell = Arc::new(Mutex::new(Group::new(group_id.to_owned(), Instant::now())));
        groups.insert(group_id.to_owned(), Arc::clone(&cell));
        Ok(cell)
    }

    /// JoinGroup. Waits (parked) until the rebalance completes, the rebalance timeout passes, or
    /// the member is removed.
    pub async fn join_group(&self, req: JoinRequest) -> JoinOutcome {
        let member_id = req.member_id.clone();
        let reply = match self.join_locked(req) {
            Ok(reply) => reply,
            Err(e) => return JoinOutcome::error(e, &member_id),
        };
        match reply {
            Reply::Now(outcome) => outcome,
            // The sender was dropped (replaced by a retried join, or shutdown).
            Reply::Parked(rx) => rx.await.unwrap_or_else(|_| JoinOutcome::error(ResponseError::CoordinatorNotAvailable, &member_id)),
        }
    }

    fn join_locked(&self, req: JoinRequest) -> Result<Reply<JoinOutcome>, ResponseError> {
        if req.group_id.is_empty() || req.group_id.len() > GROUP_ID_MAX_BYTES {
            return Err(ResponseError::InvalidGroupId);
        }
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&req.session_timeout_ms) {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        let cell = if req.member_id.is_empty() {
            self.group_or_create(&req.group_id)?
        } else {
            self.group(&req.group_id).ok_or(ResponseError::UnknownMemberId)?
        };
        let mut g = cell.lock();
        Ok(membership::join(&cell, &mut g, req, &self.settings))
    }

    /// SyncGroup. Followers wait (parked) for the leader's assignment.
    pub async fn sync_group(&self, req: SyncRequest) -> SyncOutcome {
        let Some(cell) = self.group(&req.group_id) else {
            return SyncOutcome::error(ResponseError::UnknownMemberId);
        };
        let reply = membership::sync(&mut cell.lock(), req);
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Parked(rx) => rx.await.unwrap_or_else(|_| SyncOutcome::error(ResponseError::RebalanceInProgress)),
        }
    }

    /// Heartbeat: `Ok` keeps the session alive; REBALANCE_IN_PROGRESS asks the member to rejoin.
    pub fn heartbeat(&self, group_id: &str, member_id: &str, instance_id: Option<&str>, generation_id: i32) -> Result<(), ResponseError> {
        let cell = self.group(group_id).ok_or(ResponseError::UnknownMemberId)?;
        let mut g = cell.lock();
        liveness::heartbeat(&mut g, member_id, instance_id, generation_id)
    }

    /// LeaveGroup: one result per member; `Err` for a group-level failure.
    pub fn leave_group(&self, group_id: &str, members: &[LeavingMember]) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let Some(cell) = self.group(group_id) else {
            return Ok(members.iter().map(|_| Err(ResponseError::UnknownMemberId)).collect());
        };
        let mut g = cell.lock();
        if g.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        Ok(liveness::leave(&cell, &mut g, members, &self.settings))
    }

    /// Kafka's commit validation: a member of the current generation (not while the assignment
    /// is being distributed), or a simple commit while the group has no members.
    fn validate_commit(&self, who: &Committer) -> Result<(), ResponseError> {
        let Some(cell) = self.group(&who.group_id) else {
            return if who.generation_id < 0 { Ok(()) } else { Err(ResponseError::IllegalGeneration) };
        };
        let mut g = cell.lock();
        if g.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if who.generation_id >= 0 || !who.member_id.is_empty() || who.group_instance_id.is_some() {
            g.validate_member(&who.member_id, who.group_instance_id.as_deref(), Some(who.generation_id))?;
            if g.state == GroupState::CompletingRebalance {
                return Err(ResponseError::RebalanceInProgress);
            }
            g.touch(&who.member_id, Instant::now());
            return Ok(());
        }
        if g.state != GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// OffsetCommit: validates the committer, then appends and fsyncs before returning. The
    /// result has one entry per `entries` item (`Some` for OFFSET_METADATA_TOO_LARGE).
    pub async fn commit_offsets(&self, who: &Committer, entries: Vec<CommitEntry>) -> Result<Vec<Option<ResponseError>>, GroupOpError> {
        if who.group_id.is_empty() || who.group_id.len() > GROUP_ID_MAX_BYTES {
            return Err(GroupOpError::Rejected(ResponseError::InvalidGroupId));
        }
        self.validate_commit(who).map_err(GroupOpError::Rejected)?;
        let mut results = Vec::with_capacity(entries.len());
        let mut accepted = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.metadata.len() > OFFSET_METADATA_MAX_BYTES {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
            } else {
                results.push(None);
                accepted.push(entry);
            }
        }
        self.offsets.commit(&who.group_id, &accepted, now_ms()).await?;
        Ok(results)
    }

    /// Deletes every group's committed offsets for `topic` (tombstones, fsynced). The broker
    /// calls this when a topic is deleted, as Kafka does.
    pub async fn delete_topic_offsets(&self, topic: &str) -> Result<usize, GroupError> {
        self.offsets.delete_topic(topic, now_ms()).await
    }

    /// The committed offset of one partition, if any.
    pub fn committed_offset(&self, group_id: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.offsets.get(group_id, topic, partition)
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn committed_offsets(&self, group_id: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.offsets.all(group_id)
    }

    /// ListGroups: groups with members and groups with only committed offsets (as Empty);
    /// `states` filters by Kafka state name (case-insensitive) when non-empty.
    pub fn list_groups(&self, states: &[String]) -> Vec<GroupListing> {
        let mut listings: HashMap<String, GroupListing> = HashMap::new();
        for id in self.offsets.group_ids() {
            let listing = GroupListing { group_id: id.clone(), protocol_type: String::new(), state: GroupState::Empty };
            listings.insert(id, listing);
        }
        let cells: Vec<GroupCell> = self.groups.lock().values().cloned().collect();
        for cell in cells {
            let g = cell.lock();
            if g.state == GroupState::Dead {
                continue;
            }
            let protocol_type = g.protocol_type.clone().unwrap_or_default();
            listings.insert(g.id.clone(), GroupListing { group_id: g.id.clone(), protocol_type, state: g.state });
        }
        let mut out: Vec<GroupListing> = listings
            .into_values()
            .filter(|l| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(l.state.as_str())))
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups for one group.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let Some(cell) = self.group(group_id) else {
            let state = if self.offsets.has_group(group_id) { GroupState::Empty } else { GroupState::Dead };
            return GroupDescription { state, protocol_type: String::new(), protocol: String::new(), members: Vec::new() };
        };
        let g = cell.lock();
        let stable = g.state == GroupState::Stable;
        let protocol = if stable { g.protocol_name.clone().unwrap_or_default() } else { String::new() };
        let mut members: Vec<MemberDescription> = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata_for(&protocol) } else { Bytes::new() },
                assignment: if stable { m.assignment.clone() } else { Bytes::new() },
            })
            .collect();
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        GroupDescription { state: g.state, protocol_type: g.protocol_type.clone().unwrap_or_default(), protocol, members }
    }

    /// DeleteGroups for one group: only without members (NON_EMPTY_GROUP otherwise); writes
    /// tombstones for its committed offsets.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), GroupOpError> {
        let cell = self.group(group_id);
        if cell.is_none() && !self.offsets.has_group(group_id) {
            return Err(GroupOpError::Rejected(ResponseError::GroupIdNotFound));
        }
        if let Some(cell) = cell {
            let mut g = cell.lock();
            match g.state {
                GroupState::Empty => g.state = GroupState::Dead,
                GroupState::Dead => return Err(GroupOpError::Rejected(ResponseError::GroupIdNotFound)),
                _ => return Err(GroupOpError::Rejected(ResponseError::NonEmptyGroup)),
            }
            drop(g);
            let mut groups = self.groups.lock();
            if groups.get(group_id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                groups.remove(group_id);
            }
        }
        let deleted = self.offsets.delete_group(group_id, now_ms()).await?;
        tracing::info!(group = %group_id, offsets = deleted, "group deleted");
        Ok(())
    }
}

/// Wall-clock milliseconds for commit timestamps and the log's record timestamps.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
