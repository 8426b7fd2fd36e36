//! JoinGroup and SyncGroup: the rebalance protocol (Kafka's classic GroupCoordinator).
//!
//! A rebalance moves a group PreparingRebalance → CompletingRebalance → Stable. JoinGroup
//! responses are parked (a oneshot per member) until every known member has rejoined or the
//! rebalance timer fires; SyncGroup responses are parked until the leader sends the assignment.
//! Everything here runs under the group's lock and never awaits while holding it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::liveness::{remove_member, spawn_session_timer};
use super::state::{Group, GroupState, InitialDelay, JoinOutcome, JoinedMember, Member, SyncOutcome};
use super::{GroupCell, Settings};

/// Unique ids for session timers (see `Member::timer_token`).
static NEXT_TIMER_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A JoinGroup request, decoded from any version.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Empty on a first join.
    pub member_id: String,
    /// group.instance.id (static membership), v5+.
    pub group_instance_id: Option<String>,
    /// The client's id, prefix of the generated member id.
    pub client_id: String,
    /// The client's address, reported by DescribeGroups.
    pub client_host: String,
    /// How long without a heartbeat before the member is removed.
    pub session_timeout_ms: i32,
    /// How long a rebalance waits for this member to rejoin (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// `consumer` for consumers.
    pub protocol_type: String,
    /// (assignor name, subscription metadata) in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a first join gets MEMBER_ID_REQUIRED with an id and must rejoin with it (KIP-394).
    pub require_known_member_id: bool,
}

/// A SyncGroup request, decoded from any version.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Group id.
    pub group_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// group.instance.id, v3+.
    pub group_instance_id: Option<String>,
    /// v5+: must match the group's.
    pub protocol_type: Option<String>,
    /// v5+: must match the group's.
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, opaque assignment). Ignored from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// Either an answer now, or a receiver that gets it when the rebalance progresses.
pub(crate) enum Reply<T> {
    Now(T),
    Parked(oneshot::Receiver<T>),
}

/// Handles a JoinGroup under the group lock. `member_id` of the request is already validated as
/// either empty or belonging to this group's members/pending members.
pub(crate) fn join(cell: &GroupCell, g: &mut Group, req: JoinRequest, settings: &Settings) -> Reply<JoinOutcome> {
    let now = Instant::now();
    g.expire_pending(now);
    if g.state == GroupState::Dead {
        return Reply::Now(JoinOutcome::error(ResponseError::CoordinatorNotAvailable, &req.member_id));
    }
    if !g.supports_protocols(&req.protocol_type, &req.protocols) {
        return Reply::Now(JoinOutcome::error(ResponseError::InconsistentGroupProtocol, &req.member_id));
    }
    if req.member_id.is_empty() {
        return join_unknown_member(cell, g, req, settings, now);
    }
    if g.pending_members.remove(&req.member_id).is_some() {
        if g.members.contains_key(&req.member_id) {
            // Cannot happen (pending ids are fresh), but never create a second member with one id.
            return Reply::Now(JoinOutcome::error(ResponseError::UnknownMemberId, &req.member_id));
        }
        let id = req.member_id.clone();
        return add_member_and_rebalance(cell, g, id, req, settings, now);
    }
    if let Err(e) = g.validate_member(&req.member_id, req.group_instance_id.as_deref(), None) {
        return Reply::Now(JoinOutcome::error(e, &req.member_id));
    }
    join_current_member(cell, g, req, settings, now)
}

fn join_unknown_member(cell: &GroupCell, g: &mut Group, req: JoinRequest, settings: &Settings, now: Instant) -> Reply<JoinOutcome> {
    let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
    let known_static = req.group_instance_id.as_ref().and_then(|i| g.static_members.get(i)).is_some();
    // A returning static member takes an existing seat; everyone else needs a free one.
    if !known_static && g.members.len() + g.pending_members.len() >= settings.group_max_size {
        return Reply::Now(JoinOutcome::error(ResponseError::GroupMaxSizeReached, ""));
    }
    if let Some(instance) = req.group_instance_id.clone() {
        if let Some(old_id) = g.static_members.get(&instance).cloned() {
            // A static member restarted: it takes over its old identity (and assignment) under
            // a new member id; the old id is fenced.
            replace_static_member(g, &old_id, &new_id, now);
            spawn_session_timer(cell, g, &new_id, settings);
            let req = JoinRequest { member_id: new_id, ..req };
            return join_current_member(cell, g, req, settings, now);
        }
        return add_member_and_rebalance(cell, g, new_id, req, settings, now);
    }
    if req.require_known_member_id {
        let deadline = now + timeout(req.session_timeout_ms);
        g.pending_members.insert(new_id.clone(), deadline);
        return Reply::Now(JoinOutcome::error(ResponseError::MemberIdRequired, &new_id));
    }
    add_member_and_rebalance(cell, g, new_id, req, settings, now)
}

/// Moves a static member's state from `old_id` to `new_id`, failing the old id's parked requests.
fn replace_static_member(g: &mut Group, old_id: &str, new_id: &str, now: Instant) {
    let Some(mut member) = g.members.remove(old_id) else { return };
    if let Some(tx) = member.awaiting_join.take() {
        let _ = tx.send(JoinOutcome::error(ResponseError::FencedInstanceId, old_id));
    }
    if let Some(tx) = member.awaiting_sync.take() {
        let _ = tx.send(SyncOutcome::error(ResponseError::FencedInstanceId));
    }
    member.id = new_id.to_owned();
    member.last_heartbeat = now;
    member.timer_token = next_timer_token();
    if let Some(instance) = &member.instance_id {
        g.static_members.insert(instance.clone(), new_id.to_owned());
    }
    if g.leader.as_deref() == Some(old_id) {
        g.leader = Some(new_id.to_owned());
    }
    g.members.insert(new_id.to_owned(), member);
}

/// A rejoin by a member the group already has.
fn join_current_member(cell: &GroupCell, g: &mut Group, req: JoinRequest, settings: &Settings, now: Instant) -> Reply<JoinOutcome> {
    let id = req.member_id.clone();
    let (same, is_leader) = match g.members.get(&id) {
        Some(m) => (m.same_protocols(&req.protocols), g.leader.as_deref() == Some(id.as_str())),
        None => return Reply::Now(JoinOutcome::error(ResponseError::UnknownMemberId, &id)),
    };
    match g.state {
        GroupState::PreparingRebalance => {
            let rx = update_member_and_park(g, &req, now);
            try_complete_join(g, now);
            Reply::Parked(rx)
        }
        // Nothing changed: the member lost our JoinGroup response; give it the same again.
        GroupState::CompletingRebalance if same => Reply::Now(current_join_outcome(g, &id)),
        GroupState::Stable if same && !is_leader => Reply::Now(current_join_outcome(g, &id)),
        GroupState::CompletingRebalance | GroupState::Stable => {
            let rx = update_member_and_park(g, &req, now);
            prepare_rebalance(cell, g, settings);
            Reply::Parked(rx)
        }
        GroupState::Empty | GroupState::Dead => Reply::Now(JoinOutcome::error(ResponseError::UnknownMemberId, &id)),
    }
}

fn update_member_and_park(g: &mut Group, req: &JoinRequest, now: Instant) -> oneshot::Receiver<JoinOutcome> {
    let (tx, rx) = oneshot::channel();
    if let Some(m) = g.members.get_mut(&req.member_id) {
        m.protocols = req.protocols.clone();
        m.session_timeout = timeout(req.session_timeout_ms);
        m.rebalance_timeout = timeout(req.rebalance_timeout_ms);
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.last_heartbeat = now;
        // A replaced sender drops: its (stale, retried) request gets COORDINATOR_NOT_AVAILABLE.
        m.awaiting_join = Some(tx);
    }
    rx
}

fn add_member_and_rebalance(
    cell: &GroupCell,
    g: &mut Group,
    id: String,
    req: JoinRequest,
    settings: &Settings,
    now: Instant,
) -> Reply<JoinOutcome> {
    let (tx, rx) = oneshot::channel();
    if g.members.is_empty() {
        g.protocol_type = Some(req.protocol_type.clone());
    }
    if g.leader.is_none() {
        g.leader = Some(id.clone());
    }
    if let Some(instance) = &req.group_instance_id {
        g.static_members.insert(instance.clone(), id.clone());
    }
    let member = Member {
        id: id.clone(),
        instance_id: req.group_instance_id,
        client_id: req.client_id,
        client_host: req.client_host,
        session_timeout: timeout(req.session_timeout_ms),
        rebalance_timeout: timeout(req.rebalance_timeout_ms),
        protocols: req.protocols,
        assignment: Bytes::new(),
        awaiting_join: Some(tx),
        awaiting_sync: None,
        last_heartbeat: now,
        timer_token: next_timer_token(),
    };
    g.members.insert(id.clone(), member);
    spawn_session_timer(cell, g, &id, settings);
    if let Some(delay) = g.initial_delay.as_mut() {
        delay.new_member_joined = true;
    }
    match g.state {
        GroupState::PreparingRebalance => try_complete_join(g, now),
        _ => prepare_rebalance(cell, g, settings),
    }
    Reply::Parked(rx)
}

/// A fresh timer token for a member whose session timer is (re)started.
pub(crate) fn next_timer_token() -> u64 {
    NEXT_TIMER_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// Starts a rebalance: followers waiting for an assignment are told to rejoin, and a timer bounds
/// how long we wait for members. A group coming from Empty waits the initial rebalance delay
/// first, so consumers starting together land in one generation instead of several.
pub(crate) fn prepare_rebalance(cell: &GroupCell, g: &mut Group, settings: &Settings) {
    if g.state == GroupState::CompletingRebalance {
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
            }
        }
    }
    let now = Instant::now();
    let rebalance_timeout = g.max_rebalance_timeout();
    if g.state == GroupState::Empty {
        let delay = settings.initial_rebalance_delay.min(rebalance_timeout);
        g.initial_delay = Some(InitialDelay { delay, remaining: rebalance_timeout.saturating_sub(delay), new_member_joined: false });
        g.rebalance_deadline = now + delay;
    } else {
        g.initial_delay = None;
        g.rebalance_deadline = now + rebalance_timeout;
    }
    g.state = GroupState::PreparingRebalance;
    g.rebalance_epoch += 1;
    tracing::debug!(group = %g.id, generation = g.generation, members = g.members.len(), "preparing rebalance");
    spawn_rebalance_timer(std::sync::Arc::downgrade(cell), g.rebalance_epoch);
    try_complete_join(g, now);
}

/// Completes the join phase early when nobody else is expected (never during the initial delay,
/// whose point is to wait for members we do not know yet).
pub(crate) fn try_complete_join(g: &mut Group, now: Instant) {
    g.expire_pending(now);
    if g.state == GroupState::PreparingRebalance && g.initial_delay.is_none() && g.all_members_joined() {
        complete_join(g, now);
    }
}

fn spawn_rebalance_timer(cell: Weak<parking_lot::Mutex<Group>>, epoch: u64) {
    tokio::spawn(async move {
        loop {
            let deadline = {
                let Some(cell) = cell.upgrade() else { return };
                let g = cell.lock();
                if g.rebalance_epoch != epoch || g.state != GroupState::PreparingRebalance {
                    return;
                }
                g.rebalance_deadline
            };
            tokio::time::sleep_until(deadline).await;
            let Some(cell) = cell.upgrade() else { return };
            let mut g = cell.lock();
            let now = Instant::now();
            if g.rebalance_epoch != epoch || g.state != GroupState::PreparingRebalance || now < g.rebalance_deadline {
                continue;
            }
            if let Some(delay) = g.initial_delay {
                if delay.new_member_joined && !delay.remaining.is_zero() {
                    // Kafka's InitialDelayedJoin: someone joined during the delay, so wait
                    // again, within what is left of the rebalance timeout.
                    let step = delay.delay.min(delay.remaining);
                    g.initial_delay = Some(InitialDelay {
                        delay: delay.delay,
                        remaining: delay.remaining.saturating_sub(step),
                        new_member_joined: false,
                    });
                    g.rebalance_deadline = now + step;
                    continue;
                }
            }
            complete_join(&mut g, now);
            return;
        }
    });
}

/// Ends the join phase: members that did not rejoin are removed, a new generation starts, the
/// protocol is chosen and every parked JoinGroup is answered (the leader gets the member list).
pub(crate) fn complete_join(g: &mut Group, now: Instant) {
    let absent: Vec<String> = g.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.id.clone()).collect();
    for id in absent {
        tracing::info!(group = %g.id, member = %id, "member did not rejoin in time; removing it");
        remove_member(g, &id, ResponseError::UnknownMemberId);
    }
    g.initial_delay = None;
    g.generation = g.generation.saturating_add(1);
    let protocol = g.select_protocol();
    if g.members.is_empty() || protocol.is_none() {
        fail_all_joins(g, ResponseError::InconsistentGroupProtocol);
        // Kafka keeps the protocol type of an emptied group (ListGroups shows it as `consumer`).
        g.state = GroupState::Empty;
        g.protocol_name = None;
        g.leader = None;
        return;
    }
    g.protocol_name = protocol;
    let leader_joined = g.leader.as_ref().is_some_and(|l| g.members.contains_key(l));
    if !leader_joined {
        g.leader = g.members.keys().min().cloned();
    }
    g.state = GroupState::CompletingRebalance;
    tracing::info!(group = %g.id, generation = g.generation, members = g.members.len(), protocol = ?g.protocol_name, "rebalance: join complete");
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in ids {
        let outcome = current_join_outcome(g, &id);
        if let Some(m) = g.members.get_mut(&id) {
            m.last_heartbeat = now;
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// Removes every member, answering their parked JoinGroup with `error`.
fn fail_all_joins(g: &mut Group, error: ResponseError) {
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in ids {
        remove_member(g, &id, error);
    }
}

/// The JoinGroup answer for `member_id` in the current generation.
fn current_join_outcome(g: &Group, member_id: &str) -> JoinOutcome {
    let leader = g.leader.clone().unwrap_or_default();
    let protocol = g.protocol_name.clone().unwrap_or_default();
    let members = if leader == member_id {
        let mut members: Vec<JoinedMember> = g
            .members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect();
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        members
    } else {
        Vec::new()
    };
    JoinOutcome {
        error: None,
        member_id: member_id.to_owned(),
        generation_id: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader,
        members,
    }
}

/// Handles a SyncGroup under the group lock.
pub(crate) fn sync(g: &mut Group, req: SyncRequest) -> Reply<SyncOutcome> {
    if g.state == GroupState::Dead {
        return Reply::Now(SyncOutcome::error(ResponseError::CoordinatorNotAvailable));
    }
    if let Err(e) = g.validate_member(&req.member_id, req.group_instance_id.as_deref(), Some(req.generation_id)) {
        return Reply::Now(SyncOutcome::error(e));
    }
    let type_differs = req.protocol_type.as_ref().is_some_and(|t| g.protocol_type.as_ref() != Some(t));
    let name_differs = req.protocol_name.as_ref().is_some_and(|n| g.protocol_name.as_ref() != Some(n));
    if type_differs || name_differs {
        return Reply::Now(SyncOutcome::error(ResponseError::InconsistentGroupProtocol));
    }
    let now = Instant::now();
    g.touch(&req.member_id, now);
    match g.state {
        GroupState::Empty | GroupState::Dead => Reply::Now(SyncOutcome::error(ResponseError::UnknownMemberId)),
        GroupState::PreparingRebalance => Reply::Now(SyncOutcome::error(ResponseError::RebalanceInProgress)),
        GroupState::Stable => Reply::Now(sync_outcome(g, &req.member_id)),
        GroupState::CompletingRebalance => {
            let (tx, rx) = oneshot::channel();
            if let Some(m) = g.members.get_mut(&req.member_id) {
                m.awaiting_sync = Some(tx);
            }
            if g.leader.as_deref() == Some(req.member_id.as_str()) {
                complete_sync(g, req.assignments);
            }
            Reply::Parked(rx)
        }
    }
}

/// The leader's assignment arrived: store it, go Stable, answer every parked SyncGroup.
fn complete_sync(g: &mut Group, assignments: Vec<(String, Bytes)>) {
    for (member_id, assignment) in assignments {
        if let Some(m) = g.members.get_mut(&member_id) {
            m.assignment = assignment;
        }
    }
    g.state = GroupState::Stable;
    tracing::info!(group = %g.id, generation = g.generation, "rebalance: group stable");
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in ids {
        let outcome = sync_outcome(g, &id);
        if let Some(tx) = g.members.get_mut(&id).and_then(|m| m.awaiting_sync.take()) {
            let _ = tx.send(outcome);
        }
    }
}

fn sync_outcome(g: &Group, member_id: &str) -> SyncOutcome {
    SyncOutcome {
        error: None,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        assignment: g.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default(),
    }
}

/// Client-supplied milliseconds as a duration (negative: zero).
pub(crate) fn timeout(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
