//! The in-memory model of one classic consumer group: its state, members and generation, plus the
//! pure rules (protocol selection, member validation) that need no I/O and no timers.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The classic group states, as Kafka names them (DescribeGroups/ListGroups report these strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may still have committed offsets.
    Empty,
    /// Waiting for members to (re)join; JoinGroup responses are parked.
    PreparingRebalance,
    /// Joined; waiting for the leader's SyncGroup with the assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted; a handler holding the old group object sees this and asks the client to retry.
    Dead,
}

impl GroupState {
    /// The name Kafka uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a parked (or immediate) JoinGroup gets back.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOutcome {
    /// `None` on success.
    pub error: Option<ResponseError>,
    /// The member id the client must use from now on (also set with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// The new generation, or -1 on error.
    pub generation_id: i32,
    /// The group's protocol type (`consumer`).
    pub protocol_type: Option<String>,
    /// The selected protocol (assignor name).
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// For the leader only: every member with its metadata for the selected protocol.
    pub members: Vec<JoinedMember>,
}

impl JoinOutcome {
    /// An error answer that still tells the client which member id it has.
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        JoinOutcome {
            error: Some(error),
            member_id: member_id.to_owned(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            members: Vec::new(),
        }
    }
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static membership id, if any.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol (its subscription).
    pub metadata: Bytes,
}

/// What a parked (or immediate) SyncGroup gets back.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    /// `None` on success.
    pub error: Option<ResponseError>,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment, opaque to us.
    pub assignment: Bytes,
}

impl SyncOutcome {
    /// An error answer.
    pub fn error(error: ResponseError) -> Self {
        SyncOutcome { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// One member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Set by the leader's SyncGroup; empty until then.
    pub assignment: Bytes,
    /// A JoinGroup response waiting for the rebalance to complete.
    pub awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    /// A SyncGroup response waiting for the leader's assignment.
    pub awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    /// Refreshed by heartbeats, commits, joins and syncs; the session timer compares against it.
    pub last_heartbeat: Instant,
    /// Identifies this member's session timer task, so a stale task never removes a successor.
    pub timer_token: u64,
}

impl Member {
    /// Kafka keeps members with a parked JoinGroup/SyncGroup alive: they are waiting on us.
    pub fn session_deadline(&self, now: Instant) -> Instant {
        if self.awaiting_join.is_some() || self.awaiting_sync.is_some() {
            return now + self.session_timeout;
        }
        self.last_heartbeat + self.session_timeout
    }

    /// The metadata this member sent for `protocol`, or empty if it did not name it.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Same protocol names and metadata, in the same order: a rejoin that needs no rebalance.
    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// How the initial rebalance delay (group.initial.rebalance.delay.ms) is progressing: Kafka's
/// InitialDelayedJoin. The delay restarts while new members keep arriving, but never beyond the
/// rebalance timeout in total.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitialDelay {
    pub delay: Duration,
    /// Rebalance-timeout budget left for further extensions.
    pub remaining: Duration,
    /// A member joined since the delay last (re)started.
    pub new_member_joined: bool,
}

/// One consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: HashMap<String, Member>,
    /// group.instance.id → member id, for static members.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin by.
    pub pending_members: HashMap<String, Instant>,
    /// Bumped every time a rebalance starts; a rebalance timer only acts on its own epoch.
    pub rebalance_epoch: u64,
    /// When the current PreparingRebalance stops waiting for members.
    pub rebalance_deadline: Instant,
    pub initial_delay: Option<InitialDelay>,
}

impl Group {
    pub fn new(id: String, now: Instant) -> Self {
        Group {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_epoch: 0,
            rebalance_deadline: now,
            initial_delay: None,
        }
    }

    /// The longest rebalance timeout among members: how long a rebalance waits for rejoins.
    pub fn max_rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO)
    }

    /// Drops MEMBER_ID_REQUIRED ids whose holder never came back in time.
    pub fn expire_pending(&mut self, now: Instant) {
        self.pending_members.retain(|_, deadline| *deadline > now);
    }

    /// Every known member has a parked JoinGroup and no handed-out id is still outstanding.
    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Whether a new member with these protocols may join: same protocol type, and at least one
    /// protocol that every current member also supports. Any protocol will do for an empty group.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    /// Kafka's selectProtocol: among protocols every member supports, each member votes for the
    /// first one in its own preference order; most votes wins (ties: the name that sorts first,
    /// so the choice is deterministic).
    pub fn select_protocol(&self) -> Option<String> {
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            let choice = member
                .protocols
                .iter()
                .map(|(name, _)| name.as_str())
                .find(|name| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)));
            if let Some(name) = choice {
                *votes.entry(name).or_default() += 1;
            }
        }
        votes.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(name, _)| name.to_owned())
    }

    /// Kafka's validateCurrentMember: static fencing first, then membership, then generation.
    /// `generation` of `None` skips the generation check (JoinGroup).
    pub fn validate_member(&self, member_id: &str, instance_id: Option<&str>, generation: Option<i32>) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(owner) if owner != member_id => return Err(ResponseError::FencedInstanceId),
                Some(_) => {}
                None => return Err(ResponseError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        match generation {
            Some(g) if g != self.generation => Err(ResponseError::IllegalGeneration),
            _ => Ok(()),
        }
    }

    /// Refreshes a member's session (any valid request from it counts as a heartbeat).
    pub fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_heartbeat = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.to_owned(),
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocols: protocols.iter().map(|p| ((*p).to_owned(), Bytes::from_static(b"m"))).collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            last_heartbeat: Instant::now(),
            timer_token: 0,
        }
    }

    /// Selection honours votes among common protocols only, not the globally most popular name.
    #[test]
    fn protocol_selection_votes_among_common_protocols() {
        let mut group = Group::new("g".into(), Instant::now());
        group.protocol_type = Some("consumer".into());
        for (id, protos) in
            [("a", &["range", "roundrobin"][..]), ("b", &["sticky", "roundrobin", "range"][..]), ("c", &["roundrobin", "range"][..])]
        {
            group.members.insert(id.into(), member(id, protos));
        }
        // Common: range, roundrobin. Votes: a→range, b→roundrobin, c→roundrobin.
        assert_eq!(group.select_protocol().as_deref(), Some("roundrobin"));
        let ok: Vec<(String, Bytes)> = vec![("range".into(), Bytes::new())];
        assert!(group.supports_protocols("consumer", &ok));
        let bad: Vec<(String, Bytes)> = vec![("sticky".into(), Bytes::new())];
        assert!(!group.supports_protocols("consumer", &bad));
        assert!(!group.supports_protocols("connect", &ok));
    }
}
