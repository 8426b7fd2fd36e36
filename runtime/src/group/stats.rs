//! A plain snapshot of every group for metrics: membership per group and every committed offset.
//! Read-only; takes each lock briefly and copies what it needs.

use super::{GroupCoordinator, GroupState};

/// One group's membership at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name; offset-only groups are `Empty`.
    pub state: GroupState,
    /// Members now.
    pub members: usize,
    /// The generation: completed rebalances since the coordinator started tracking the group
    /// (an emptied group is forgotten by `maintain` and starts again at 0).
    pub generation: i32,
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct CommittedStats {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    /// The next offset the group will consume.
    pub offset: i64,
}

/// Every group and committed offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupsSnapshot {
    /// Sorted by group id.
    pub groups: Vec<GroupStats>,
    /// Sorted by group, topic, partition.
    pub committed: Vec<CommittedStats>,
}

impl GroupCoordinator {
    /// What metrics report about groups. Groups with only committed offsets appear as `Empty`
    /// with no members, as ListGroups shows them.
    pub fn stats(&self) -> GroupsSnapshot {
        let mut groups: Vec<GroupStats> = Vec::new();
        let cells: Vec<_> = self.groups.lock().values().cloned().collect();
        for cell in cells {
            let g = cell.lock();
            if g.state != GroupState::Dead {
                groups.push(GroupStats { group_id: g.id.clone(), state: g.state, members: g.members.len(), generation: g.generation });
            }
        }
        let mut committed = Vec::new();
        let mut ids = self.offsets.group_ids();
        ids.sort();
        for id in ids {
            if !groups.iter().any(|g| g.group_id == id) {
                groups.push(GroupStats { group_id: id.clone(), state: GroupState::Empty, members: 0, generation: 0 });
            }
            for (topic, partition, c) in self.offsets.all(&id) {
                committed.push(CommittedStats { group_id: id.clone(), topic, partition, offset: c.offset });
            }
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        GroupsSnapshot { groups, committed }
    }
}
