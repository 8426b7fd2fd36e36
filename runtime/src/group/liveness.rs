//! Heartbeats, session expiry and LeaveGroup: how members leave a group, willingly or not.
//!
//! Each member has one session timer task. It sleeps until the member's session deadline, wakes,
//! and re-reads the deadline under the group lock (heartbeats move it forward without waking the
//! task); only a deadline that really passed removes the member. No polling loop, one task per
//! member, and a task exits as soon as its member is gone.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::membership::{prepare_rebalance, try_complete_join};
use super::state::{Group, GroupState, JoinOutcome, SyncOutcome};
use super::{GroupCell, Settings};

/// One member named in a LeaveGroup (v3+ sends several).
#[derive(Debug, Clone)]
pub struct LeavingMember {
    /// Member id; may be empty for a static member identified by instance id.
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
}

/// Kafka's heartbeat rules: REBALANCE_IN_PROGRESS tells a valid member to rejoin.
pub(crate) fn heartbeat(g: &mut Group, member_id: &str, instance_id: Option<&str>, generation: i32) -> Result<(), ResponseError> {
    match g.state {
        GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
        GroupState::Empty => return Err(ResponseError::UnknownMemberId),
        _ => {}
    }
    g.validate_member(member_id, instance_id, Some(generation))?;
    g.touch(member_id, Instant::now());
    if g.state == GroupState::PreparingRebalance {
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}

/// Removes the named members (a rebalance follows); one result per member, in order.
pub(crate) fn leave(cell: &GroupCell, g: &mut Group, members: &[LeavingMember], settings: &Settings) -> Vec<Result<(), ResponseError>> {
    members.iter().map(|m| leave_one(cell, g, m, settings)).collect()
}

fn leave_one(cell: &GroupCell, g: &mut Group, m: &LeavingMember, settings: &Settings) -> Result<(), ResponseError> {
    if g.state == GroupState::Dead {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    let id = match (&m.group_instance_id, m.member_id.is_empty()) {
        // KIP-345: a static member may leave by instance id alone.
        (Some(instance), true) => g.static_members.get(instance).cloned().ok_or(ResponseError::UnknownMemberId)?,
        _ => m.member_id.clone(),
    };
    if g.pending_members.remove(&id).is_some() {
        try_complete_join(g, Instant::now());
        return Ok(());
    }
    g.validate_member(&id, m.group_instance_id.as_deref(), None)?;
    tracing::info!(group = %g.id, member = %id, "member left the group");
    remove_member_and_rebalance(cell, g, &id, settings);
    Ok(())
}

/// Removes a member and moves the group on: a stable group rebalances, a rebalancing one may now
/// have everyone it waits for.
pub(crate) fn remove_member_and_rebalance(cell: &GroupCell, g: &mut Group, member_id: &str, settings: &Settings) {
    remove_member(g, member_id, ResponseError::UnknownMemberId);
    match g.state {
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(cell, g, settings),
        GroupState::PreparingRebalance => try_complete_join(g, Instant::now()),
        GroupState::Empty | GroupState::Dead => {}
    }
}

/// Removes a member, answering its parked requests with `error`. No state transition.
pub(crate) fn remove_member(g: &mut Group, member_id: &str, error: ResponseError) {
    let Some(mut member) = g.members.remove(member_id) else { return };
    if let Some(instance) = &member.instance_id {
        if g.static_members.get(instance).is_some_and(|owner| owner == member_id) {
            g.static_members.remove(instance);
        }
    }
    if let Some(tx) = member.awaiting_join.take() {
        let _ = tx.send(JoinOutcome::error(error, member_id));
    }
    if let Some(tx) = member.awaiting_sync.take() {
        let _ = tx.send(SyncOutcome::error(error));
    }
    if g.leader.as_deref() == Some(member_id) {
        // Prefer a member already waiting in JoinGroup: it can lead the next generation.
        let waiting = g.members.values().filter(|m| m.awaiting_join.is_some()).map(|m| &m.id).min();
        g.leader = waiting.or_else(|| g.members.keys().min()).cloned();
    }
}

/// Starts the session timer of `member_id` (whose `timer_token` identifies this timer).
pub(crate) fn spawn_session_timer(cell: &GroupCell, g: &Group, member_id: &str, settings: &Settings) {
    let Some(token) = g.members.get(member_id).map(|m| m.timer_token) else { return };
    let weak = Arc::downgrade(cell);
    let member_id = member_id.to_owned();
    let settings = *settings;
    tokio::spawn(async move {
        loop {
            let deadline = {
                let Some(cell) = weak.upgrade() else { return };
                let g = cell.lock();
                match g.members.get(&member_id) {
                    Some(m) if m.timer_token == token => m.session_deadline(Instant::now()),
                    _ => return,
                }
            };
            tokio::time::sleep_until(deadline).await;
            let Some(cell) = weak.upgrade() else { return };
            let mut g = cell.lock();
            let now = Instant::now();
            let expired = match g.members.get(&member_id) {
                Some(m) if m.timer_token == token => m.session_deadline(now) <= now,
                _ => return,
            };
            if expired {
                tracing::info!(group = %g.id, member = %member_id, "session timeout expired; removing member");
                remove_member_and_rebalance(&cell, &mut g, &member_id, &settings);
                return;
            }
        }
    });
}
