//! Tests of the coordinator driven directly, without the network: tokio's paused clock drives the
//! session, rebalance and initial-delay timers deterministically.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn coordinator(dir: &Path, initial_delay_ms: u64) -> Arc<GroupCoordinator> {
    let mut config = BrokerConfig::for_tests(dir);
    config.group_initial_rebalance_delay_ms = initial_delay_ms;
    Arc::new(GroupCoordinator::open(dir, &config).expect("open coordinator"))
}

fn join_request(group: &str, member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| ((*p).to_owned(), Bytes::from(format!("meta-{p}")))).collect(),
        require_known_member_id: true,
    }
}

fn spawn_join(c: &Arc<GroupCoordinator>, req: JoinRequest) -> JoinHandle<JoinOutcome> {
    let c = Arc::clone(c);
    tokio::spawn(async move { c.join_group(req).await })
}

fn spawn_sync(
    c: &Arc<GroupCoordinator>,
    group: &str,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> JoinHandle<SyncOutcome> {
    let c = Arc::clone(c);
    let req = SyncRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments,
    };
    tokio::spawn(async move { c.sync_group(req).await })
}

/// The v4+ first-join dance: MEMBER_ID_REQUIRED with a generated id, then a parked rejoin.
async fn join_new(c: &Arc<GroupCoordinator>, group: &str) -> (String, JoinHandle<JoinOutcome>) {
    let first = c.join_group(join_request(group, "", &["range"])).await;
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    assert!(first.member_id.starts_with("client-"), "{}", first.member_id);
    let handle = spawn_join(c, join_request(group, &first.member_id, &["range"]));
    (first.member_id.clone(), handle)
}

async fn outcome<T>(handle: JoinHandle<T>) -> T {
    handle.await.expect("task")
}

/// Brings a single member to Stable; returns (member id, generation).
async fn stable_single(c: &Arc<GroupCoordinator>, group: &str) -> (String, i32) {
    let (id, handle) = join_new(c, group).await;
    let joined = outcome(handle).await;
    assert_eq!(joined.error, None);
    let sync = outcome(spawn_sync(c, group, &id, joined.generation_id, vec![(id.clone(), Bytes::from_static(b"a"))])).await;
    assert_eq!(sync.error, None);
    (id, joined.generation_id)
}

/// One member: MEMBER_ID_REQUIRED, join completes after the initial delay, leader gets itself,
/// SyncGroup returns its assignment, heartbeats succeed.
#[tokio::test(start_paused = true)]
async fn single_member_reaches_stable_after_initial_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 3_000);
    let start = Instant::now();
    let (id, handle) = join_new(&c, "g").await;
    let joined = outcome(handle).await;
    assert!(start.elapsed() >= Duration::from_millis(3_000), "waited the initial delay");
    assert_eq!((joined.error, joined.generation_id, joined.leader.as_str()), (None, 1, id.as_str()));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, Bytes::from_static(b"meta-range"));
    let sync = outcome(spawn_sync(&c, "g", &id, 1, vec![(id.clone(), Bytes::from_static(b"assign"))])).await;
    assert_eq!((sync.error, sync.assignment), (None, Bytes::from_static(b"assign")));
    assert_eq!(c.heartbeat("g", &id, None, 1), Ok(()));
    assert_eq!(c.describe_group("g").state, GroupState::Stable);
}

/// The initial delay restarts while members keep arriving: A at 0 s, B at 2 s; the 3 s delay is
/// extended once (to 6 s) and both land in generation 1 together.
#[tokio::test(start_paused = true)]
async fn initial_delay_extends_while_members_join() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 3_000);
    let start = Instant::now();
    let (_a, ha) = join_new(&c, "g").await;
    sleep(Duration::from_millis(2_000)).await;
    let (_b, hb) = join_new(&c, "g").await;
    let (ja, jb) = (outcome(ha).await, outcome(hb).await);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(6_000) && elapsed < Duration::from_millis(6_100), "{elapsed:?}");
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
    assert_eq!(ja.leader, jb.leader);
    let leader_view = if ja.members.is_empty() { &jb } else { &ja };
    assert_eq!(leader_view.members.len(), 2);
}

/// A second member triggers a rebalance: the first learns it from its heartbeat, rejoins, both
/// get generation 2; the follower's SyncGroup waits for the leader's assignment.
#[tokio::test(start_paused = true)]
async fn new_member_triggers_rebalance_and_sync_distributes_assignments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (a, gen1) = stable_single(&c, "g").await;
    let (b, hb) = join_new(&c, "g").await;
    sleep(Duration::from_millis(10)).await;
    assert_eq!(c.heartbeat("g", &a, None, gen1), Err(ResponseError::RebalanceInProgress));
    let ja = outcome(spawn_join(&c, join_request("g", &a, &["range"]))).await;
    let jb = outcome(hb).await;
    assert_eq!((ja.generation_id, jb.generation_id), (gen1 + 1, gen1 + 1));
    assert_eq!(ja.leader, a, "the old leader keeps leading");
    assert_eq!((ja.members.len(), jb.members.len()), (2, 0));
    // Follower syncs first and waits; the leader's sync releases it.
    let sb = spawn_sync(&c, "g", &b, 2, vec![]);
    sleep(Duration::from_millis(10)).await;
    assert!(!sb.is_finished(), "follower must wait for the leader");
    let assignments = vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))];
    let sa = outcome(spawn_sync(&c, "g", &a, 2, assignments)).await;
    assert_eq!(sa.assignment, Bytes::from_static(b"A"));
    assert_eq!(outcome(sb).await.assignment, Bytes::from_static(b"B"));
    assert_eq!(c.heartbeat("g", &b, None, 1), Err(ResponseError::IllegalGeneration));
    assert_eq!(c.heartbeat("g", "nobody", None, 2), Err(ResponseError::UnknownMemberId));
}

/// A member that stops heartbeating is removed after its session timeout; the survivor is told to
/// rejoin and the next generation has only it.
#[tokio::test(start_paused = true)]
async fn session_expiry_removes_member_and_rebalances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (a, _) = stable_single(&c, "g").await;
    let (b, hb) = join_new(&c, "g").await;
    sleep(Duration::from_millis(10)).await;
    let ja = outcome(spawn_join(&c, join_request("g", &a, &["range"]))).await;
    outcome(hb).await;
    let assignments = vec![(a.clone(), Bytes::new()), (b.clone(), Bytes::new())];
    let sb = spawn_sync(&c, "g", &b, ja.generation_id, vec![]);
    outcome(spawn_sync(&c, "g", &a, ja.generation_id, assignments)).await;
    outcome(sb).await;
    // A heartbeats every 3 s; B never does.
    let mut saw_rebalance = false;
    for _ in 0..5 {
        sleep(Duration::from_millis(3_000)).await;
        if c.heartbeat("g", &a, None, ja.generation_id) == Err(ResponseError::RebalanceInProgress) {
            saw_rebalance = true;
            break;
        }
    }
    assert!(saw_rebalance, "B's expiry must trigger a rebalance");
    let again = outcome(spawn_join(&c, join_request("g", &a, &["range"]))).await;
    assert_eq!(again.generation_id, ja.generation_id + 1);
    assert_eq!(again.members.len(), 1);
    assert_eq!(c.heartbeat("g", &b, None, again.generation_id), Err(ResponseError::UnknownMemberId));
}

/// A rebalance waits at most the rebalance timeout: a member that never rejoins is dropped.
#[tokio::test(start_paused = true)]
async fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (a, _) = stable_single(&c, "g").await;
    let (b, hb) = join_new(&c, "g").await;
    sleep(Duration::from_millis(10)).await;
    let ja = outcome(spawn_join(&c, join_request("g", &a, &["range"]))).await;
    outcome(hb).await;
    let sb = spawn_sync(&c, "g", &b, ja.generation_id, vec![]);
    outcome(spawn_sync(&c, "g", &a, ja.generation_id, vec![])).await;
    assert_eq!(outcome(sb).await.error, None);
    // B heartbeats (so its session never expires) but A, the leader, rejoins; B does not.
    let start = Instant::now();
    let ha = spawn_join(&c, join_request("g", &a, &["range"]));
    while !ha.is_finished() {
        sleep(Duration::from_millis(2_000)).await;
        let _ = c.heartbeat("g", &b, None, ja.generation_id);
    }
    let j = outcome(ha).await;
    assert!(start.elapsed() >= Duration::from_millis(REBALANCE_MS as u64), "{:?}", start.elapsed());
    assert_eq!((j.generation_id, j.members.len()), (ja.generation_id + 1, 1));
}

/// LeaveGroup (v3 batch) removes members and rebalances; unknown members get UNKNOWN_MEMBER_ID.
#[tokio::test(start_paused = true)]
async fn leave_group_rebalances_and_reports_per_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (a, generation) = stable_single(&c, "g").await;
    let leaving = [
        LeavingMember { member_id: a.clone(), group_instance_id: None },
        LeavingMember { member_id: "ghost".into(), group_instance_id: None },
    ];
    let results = c.leave_group("g", &leaving).expect("group-level ok");
    assert_eq!(results, vec![Ok(()), Err(ResponseError::UnknownMemberId)]);
    // The last member left: the rebalance completes at once with nobody, so the group is Empty.
    sleep(Duration::from_millis(10)).await;
    let description = c.describe_group("g");
    assert_eq!((description.state, description.members.len()), (GroupState::Empty, 0));
    assert_eq!(c.heartbeat("g", &a, None, generation), Err(ResponseError::UnknownMemberId));
}

/// Members must share a protocol type and at least one protocol; the choice is by votes.
#[tokio::test(start_paused = true)]
async fn inconsistent_protocols_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (_a, _) = stable_single(&c, "g").await;
    let bad = c.join_group(join_request("g", "", &["sticky"])).await;
    assert_eq!(bad.error, Some(ResponseError::InconsistentGroupProtocol));
    let mut other_type = join_request("g", "", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(c.join_group(other_type).await.error, Some(ResponseError::InconsistentGroupProtocol));
    let mut bad_timeout = join_request("g2", "", &["range"]);
    bad_timeout.session_timeout_ms = 10;
    assert_eq!(c.join_group(bad_timeout).await.error, Some(ResponseError::InvalidSessionTimeout));
}

/// Static membership: a restarted instance takes over without a rebalance; the old id is fenced.
#[tokio::test(start_paused = true)]
async fn static_member_rejoin_fences_old_id_without_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (leader, _) = stable_single(&c, "g").await;
    let mut req = join_request("g", "", &["range"]);
    req.group_instance_id = Some("instance-1".into());
    let hs = spawn_join(&c, req.clone());
    sleep(Duration::from_millis(10)).await;
    let jl = outcome(spawn_join(&c, join_request("g", &leader, &["range"]))).await;
    let js = outcome(hs).await;
    let generation = jl.generation_id;
    let ss = spawn_sync(&c, "g", &js.member_id, generation, vec![]);
    let assignments = vec![(leader.clone(), Bytes::new()), (js.member_id.clone(), Bytes::from_static(b"S"))];
    outcome(spawn_sync(&c, "g", &leader, generation, assignments)).await;
    outcome(ss).await;
    // The instance restarts and joins with no member id: same generation, new id, no rebalance.
    let rejoined = c.join_group(req).await;
    assert_eq!((rejoined.error, rejoined.generation_id), (None, generation));
    assert_ne!(rejoined.member_id, js.member_id);
    assert_eq!(c.describe_group("g").state, GroupState::Stable);
    assert_eq!(c.heartbeat("g", &js.member_id, Some("instance-1"), generation), Err(ResponseError::FencedInstanceId));
    assert_eq!(c.heartbeat("g", &rejoined.member_id, Some("instance-1"), generation), Ok(()));
}

fn entry(topic: &str, partition: i32, offset: i64) -> CommitEntry {
    CommitEntry { topic: topic.into(), partition, offset, leader_epoch: -1, metadata: format!("m{offset}") }
}

fn simple(group: &str) -> Committer {
    Committer { group_id: group.into(), generation_id: -1, member_id: String::new(), group_instance_id: None }
}

/// Commits follow Kafka's rules: simple commits only while the group has no members; members
/// must be in the current generation; oversized metadata is refused per partition.
#[tokio::test(start_paused = true)]
async fn offset_commit_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let results = c.commit_offsets(&simple("solo"), vec![entry("t", 0, 5)]).await.expect("simple commit");
    assert_eq!(results, vec![None]);
    assert_eq!(c.committed_offset("solo", "t", 0).map(|o| o.offset), Some(5));

    let (a, generation) = stable_single(&c, "g").await;
    let rejected = c.commit_offsets(&simple("g"), vec![entry("t", 0, 1)]).await;
    assert!(matches!(rejected, Err(GroupOpError::Rejected(ResponseError::UnknownMemberId))), "{rejected:?}");
    let stale = Committer { group_id: "g".into(), generation_id: generation + 7, member_id: a.clone(), group_instance_id: None };
    let rejected = c.commit_offsets(&stale, vec![entry("t", 0, 1)]).await;
    assert!(matches!(rejected, Err(GroupOpError::Rejected(ResponseError::IllegalGeneration))), "{rejected:?}");
    let member = Committer { generation_id: generation, ..stale };
    let mut big = entry("t", 1, 9);
    big.metadata = "x".repeat(OFFSET_METADATA_MAX_BYTES + 1);
    let results = c.commit_offsets(&member, vec![entry("t", 0, 42), big]).await.expect("member commit");
    assert_eq!(results, vec![None, Some(ResponseError::OffsetMetadataTooLarge)]);
    assert_eq!(c.committed_offset("g", "t", 0).map(|o| (o.offset, o.metadata)), Some((42, "m42".into())));
    assert_eq!(c.committed_offset("g", "t", 1), None);
    let unknown_group = Committer { group_id: "nope".into(), generation_id: 3, member_id: "m".into(), group_instance_id: None };
    let rejected = c.commit_offsets(&unknown_group, vec![entry("t", 0, 1)]).await;
    assert!(matches!(rejected, Err(GroupOpError::Rejected(ResponseError::IllegalGeneration))), "{rejected:?}");
}

/// Committed offsets survive a reopen (replayed from the offsets log, latest value wins), and
/// deleting a group writes tombstones that also survive a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_survive_reopen_and_tombstones_delete_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let c = coordinator(dir.path(), 0);
        for offset in [10, 20, 30] {
            c.commit_offsets(&simple("keep"), vec![entry("t", 0, offset), entry("t", 1, offset + 1)]).await.expect("commit");
        }
        c.commit_offsets(&simple("drop"), vec![entry("u", 0, 7)]).await.expect("commit");
        // No shutdown: committed offsets must already be durable (as after kill -9).
    }
    let c = coordinator(dir.path(), 0);
    let keep: Vec<(String, i32, i64)> = c.committed_offsets("keep").into_iter().map(|(t, p, o)| (t, p, o.offset)).collect();
    assert_eq!(keep, vec![("t".into(), 0, 30), ("t".into(), 1, 31)]);
    assert_eq!(c.committed_offset("drop", "u", 0).map(|o| o.metadata), Some("m7".into()));
    let listed: Vec<String> = c.list_groups(&[]).into_iter().map(|l| l.group_id).collect();
    assert_eq!(listed, vec!["drop".to_owned(), "keep".to_owned()]);

    c.commit_offsets(&simple("keep"), vec![entry("gone", 0, 3)]).await.expect("commit");
    assert_eq!(c.delete_topic_offsets("gone").await.expect("delete topic offsets"), 1);
    c.delete_group("drop").await.expect("delete");
    assert!(matches!(c.delete_group("drop").await, Err(GroupOpError::Rejected(ResponseError::GroupIdNotFound))));
    c.shutdown().await.expect("shutdown");
    drop(c);
    let c = coordinator(dir.path(), 0);
    assert_eq!(c.committed_offset("drop", "u", 0), None);
    assert_eq!(c.committed_offsets("keep").len(), 2, "the deleted topic's offset stays deleted");
    assert_eq!(c.describe_group("drop").state, GroupState::Dead);
}

/// DeleteGroups refuses a group with members; ListGroups filters by state.
#[tokio::test(start_paused = true)]
async fn delete_non_empty_group_and_list_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = coordinator(dir.path(), 0);
    let (a, generation) = stable_single(&c, "busy").await;
    let member = Committer { group_id: "busy".into(), generation_id: generation, member_id: a, group_instance_id: None };
    c.commit_offsets(&member, vec![entry("t", 0, 1)]).await.expect("commit");
    c.commit_offsets(&simple("idle"), vec![entry("t", 0, 1)]).await.expect("commit");
    assert!(matches!(c.delete_group("busy").await, Err(GroupOpError::Rejected(ResponseError::NonEmptyGroup))));
    let stable: Vec<String> = c.list_groups(&["stable".into()]).into_iter().map(|l| l.group_id).collect();
    assert_eq!(stable, vec!["busy".to_owned()]);
    let empty: Vec<String> = c.list_groups(&["Empty".into()]).into_iter().map(|l| l.group_id).collect();
    assert_eq!(empty, vec!["idle".to_owned()]);
    let d = c.describe_group("busy");
    assert_eq!((d.protocol.as_str(), d.members.len()), ("range", 1));
    assert_eq!(d.members[0].assignment, Bytes::from_static(b"a"));
}

/// Old clients (JoinGroup v0–3) join without the MEMBER_ID_REQUIRED round trip; a full group
/// refuses newcomers with GROUP_MAX_SIZE_REACHED.
#[tokio::test(start_paused = true)]
async fn old_clients_join_directly_and_group_size_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.group_initial_rebalance_delay_ms = 0;
    let mut c = GroupCoordinator::open(dir.path(), &config).expect("open");
    c.settings.group_max_size = 1;
    let c = Arc::new(c);
    let mut old = join_request("g", "", &["range"]);
    old.require_known_member_id = false;
    let joined = outcome(spawn_join(&c, old.clone())).await;
    assert_eq!((joined.error, joined.generation_id), (None, 1));
    assert!(!joined.member_id.is_empty());
    let refused = c.join_group(old).await;
    assert_eq!(refused.error, Some(ResponseError::GroupMaxSizeReached));
}
