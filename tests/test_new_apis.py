"""APIs current clients and tools negotiate: AlterConfigs (the non-incremental one),
OffsetForLeaderEpoch, OffsetDelete, DescribeLogDirs, DescribeProducers and
DescribeTopicPartitions, driven by the clients that have the calls (confluent-kafka's AdminClient
and consumer, kafka-python's KafkaAdminClient) and by raw frames (tests/kafka_wire.py) where no
client sends what a case needs.
"""

import time
import warnings
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

import kafka.errors
from kafka import TopicPartition as KTopicPartition
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

import kafka_wire as wire
from helpers import admin, close_consumers, consumer, create_topic, produce_all, producer, unique, wait_until


def kadmin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)


def topic_configs(bootstrap, topic):
    """{name: (value, is_default)} of a topic as DescribeConfigs reports it."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    a = admin(bootstrap)  # keep the handle alive until the future resolves
    entries = a.describe_configs([resource])[resource].result(timeout=30)
    return {name: (e.value, e.is_default) for name, e in entries.items()}


def legacy_alter(bootstrap, resource, validate_only=False):
    """confluent-kafka's (non-incremental, deprecated there) alter_configs for one resource;
    raises on error."""
    a = admin(bootstrap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        futures = a.alter_configs([resource], validate_only=validate_only, request_timeout=30)
    return futures[resource].result(timeout=30)


def kafka_error_code(excinfo):
    """The Kafka error code of a confluent-kafka KafkaException (librdkafka uses Kafka's codes)."""
    return excinfo.value.args[0].code()


# ---------------------------------------------------------------- AlterConfigs

def test_alter_configs_replaces_the_whole_set_of_topic_configs(broker):
    """AlterConfigs sets exactly the configs it names: overrides it leaves out go back to their
    defaults (unlike IncrementalAlterConfigs), validate_only changes nothing, and bad values,
    unknown keys, unknown topics and broker configs get Kafka's errors."""
    topic = create_topic(broker.bootstrap, unique("legacy"), config={"retention.ms": "3600000", "cleanup.policy": "compact"})
    legacy_alter(broker.bootstrap, ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.bytes": "1048576"}),
                 validate_only=True)
    assert topic_configs(broker.bootstrap, topic)["retention.ms"] == ("3600000", False), "validate_only changed the topic"

    legacy_alter(broker.bootstrap, ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.bytes": "1048576"}))
    configs = topic_configs(broker.bootstrap, topic)
    assert configs["segment.bytes"] == ("1048576", False)
    assert configs["retention.ms"][1] and configs["cleanup.policy"] == ("delete", True), configs

    with pytest.raises(KafkaException) as bad:
        legacy_alter(broker.bootstrap, ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "soon"}))
    assert kafka_error_code(bad) == wire.INVALID_CONFIG
    with pytest.raises(KafkaException) as unknown_key:
        legacy_alter(broker.bootstrap, ConfigResource(ResourceType.TOPIC, topic, set_config={"no.such.config": "1"}))
    assert kafka_error_code(unknown_key) == wire.INVALID_CONFIG
    assert topic_configs(broker.bootstrap, topic)["segment.bytes"] == ("1048576", False), "a refused request changed the topic"
    with pytest.raises(KafkaException) as unknown_topic:
        legacy_alter(broker.bootstrap, ConfigResource(ResourceType.TOPIC, unique("missing"), set_config={"retention.ms": "1"}))
    assert kafka_error_code(unknown_topic) == wire.UNKNOWN_TOPIC_OR_PARTITION
    with pytest.raises(KafkaException) as broker_config:
        legacy_alter(broker.bootstrap, ConfigResource(ResourceType.BROKER, "0", set_config={"num.partitions": "3"}))
    assert kafka_error_code(broker_config) == wire.INVALID_CONFIG
    legacy_alter(broker.bootstrap, ConfigResource(ResourceType.BROKER, "0"))  # no dynamic configs: nothing to replace


def test_kafka_python_legacy_alter_configs_survives_a_restart(broker):
    """kafka-python's alter_configs without IncrementalAlterConfigs (older brokers' path) is
    answered, and the change is durable."""
    topic = create_topic(broker.bootstrap, unique("kp-legacy"))
    client = kadmin(broker.bootstrap)
    result = client.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7200000"})],
                                  incremental=False)
    client.close()
    assert result == {"topic": {topic: "OK"}}
    broker.restart()
    assert topic_configs(broker.bootstrap, topic)["retention.ms"] == ("7200000", False)


# ---------------------------------------------------------------- OffsetForLeaderEpoch

def epoch_answers(bootstrap, topic, partitions):
    with wire.RawConn(bootstrap) as conn:
        return conn.offset_for_leader_epoch(topic, partitions)


def test_offset_for_leader_epoch_answers_kafkas_way_and_after_restarts(broker):
    """Raw frames: epoch 0 (this node's) ends at the log end offset; the current-leader-epoch
    check fences older epochs and refuses newer ones; an epoch newer than any, or -1, is
    undefined; unknown partitions are UNKNOWN_TOPIC_OR_PARTITION. The answers survive a restart
    and a restart that lost the leader-epoch checkpoint (rebuilt from the batch headers)."""
    topic = create_topic(broker.bootstrap, unique("epochs"), partitions=2)
    produce_all(producer(broker.bootstrap), topic, [(None, b"v%d" % i) for i in range(7)], partition=0)

    def check():
        answers = epoch_answers(broker.bootstrap, topic, [(0, -1, 0), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, -2, 0),
                                                          (0, -1, 3), (0, -1, -1), (9, -1, 0)])
        assert answers == [
            (wire.NONE, 0, 0, 7),
            (wire.NONE, 0, 0, 7),
            (wire.NONE, 1, 0, 0),  # an empty partition: epoch 0 began at offset 0
            (wire.UNKNOWN_LEADER_EPOCH, 0, -1, -1),
            (wire.FENCED_LEADER_EPOCH, 0, -1, -1),
            (wire.NONE, 0, -1, -1),
            (wire.NONE, 0, -1, -1),
            (wire.UNKNOWN_TOPIC_OR_PARTITION, 9, -1, -1),
        ], answers
        assert epoch_answers(broker.bootstrap, unique("missing"), [(0, -1, 0)]) == [(wire.UNKNOWN_TOPIC_OR_PARTITION, 0, -1, -1)]

    check()
    checkpoint = broker.partition_dir(topic, 0) / "leader-epoch-checkpoint"
    assert checkpoint.read_text() == "0\n1\n0 0\n", "Kafka's checkpoint format"
    broker.restart()
    check()
    broker.stop()
    checkpoint.unlink()
    broker.start()
    check()
    assert checkpoint.read_text() == "0\n1\n0 0\n", "rebuilt and written again"


def test_librdkafka_validates_a_seek_with_a_leader_epoch(broker):
    """A consumer assigned an offset with a leader epoch asks OffsetForLeaderEpoch before
    fetching (KIP-320) and, told epoch 0 ends at the log end, continues from there: the next
    record it gets is the next one produced. Without the API it would fetch offset 100, get
    OFFSET_OUT_OF_RANGE and reset to the earliest offset (auto.offset.reset), reading offset 0."""
    topic = create_topic(broker.bootstrap, unique("seek-epoch"))
    p = producer(broker.bootstrap)
    produce_all(p, topic, [(None, b"old-%d" % i) for i in range(5)])
    c = consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 100, leader_epoch=0)])
        wait_until(lambda: c.poll(0.2) is None and requests_of(broker, "OffsetForLeaderEpoch") > 0, 30,
                   message="the consumer validated its position")
        produce_all(p, topic, [(None, b"new")])
        msg = wait_until(lambda: c.poll(0.5), 30, message="a record")
        assert msg.error() is None, msg.error()
        assert (msg.offset(), msg.value()) == (5, b"new")
    finally:
        c.close()


def requests_of(b, api):
    status, body = b.http_get("/metrics")
    assert status == 200
    total = 0
    for line in body.decode().splitlines():
        if line.startswith(f'sluice_requests_total{{api="{api}"'):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


# ---------------------------------------------------------------- OffsetDelete

def commit(bootstrap, group, offsets):
    """Commits {(topic, partition): offset} for `group` with AdminClient."""
    tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
    a = admin(bootstrap)
    futures = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])
    futures[group].result(timeout=30)


def committed(bootstrap, group):
    client = kadmin(bootstrap)
    try:
        offsets = client.list_group_offsets(group).get(group, {})
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    finally:
        client.close()


def test_offset_delete_removes_offsets_durably(broker):
    """kafka-python's delete_group_offsets: the named partitions lose their committed offsets,
    the rest keep theirs, and the deletion (a tombstone in __consumer_offsets) survives a restart.
    Unknown groups are GROUP_ID_NOT_FOUND, unknown partitions UNKNOWN_TOPIC_OR_PARTITION."""
    a, b = create_topic(broker.bootstrap, unique("od-a"), partitions=2), create_topic(broker.bootstrap, unique("od-b"))
    group = unique("od-group")
    commit(broker.bootstrap, group, {(a, 0): 3, (a, 1): 4, (b, 0): 5})
    client = kadmin(broker.bootstrap)
    result = client.delete_group_offsets(group, [KTopicPartition(a, 0), KTopicPartition(b, 0), KTopicPartition(b, 7)])
    assert result == {
        KTopicPartition(a, 0): kafka.errors.NoError,
        KTopicPartition(b, 0): kafka.errors.NoError,
        KTopicPartition(b, 7): kafka.errors.UnknownTopicOrPartitionError,
    }, result
    with pytest.raises(kafka.errors.GroupIdNotFoundError):
        client.delete_group_offsets(unique("no-group"), [KTopicPartition(a, 0)], group_coordinator_id=0)
    client.close()
    assert committed(broker.bootstrap, group) == {(a, 1): 4}
    broker.kill9()
    broker.start()
    assert committed(broker.bootstrap, group) == {(a, 1): 4}, "the deletion did not survive a crash"
    broker.restart()
    assert committed(broker.bootstrap, group) == {(a, 1): 4}


def test_offset_delete_keeps_offsets_of_subscribed_topics(broker):
    """While a member subscribes to topic A, A's offsets are GROUP_SUBSCRIBED_TO_TOPIC and stay;
    topic B, which no member subscribes to, loses its offsets."""
    a, b = create_topic(broker.bootstrap, unique("sub-a")), create_topic(broker.bootstrap, unique("sub-b"))
    group = unique("sub-group")
    commit(broker.bootstrap, group, {(a, 0): 0, (b, 0): 2})
    member = consumer(broker.bootstrap, group)
    member.subscribe([a])
    try:
        wait_until(lambda: member.poll(0.2) is None and member.assignment(), 60, message="the member's assignment")
        client = kadmin(broker.bootstrap)
        result = client.delete_group_offsets(group, [KTopicPartition(a, 0), KTopicPartition(b, 0)])
        client.close()
        assert result == {
            KTopicPartition(a, 0): kafka.errors.GroupSubscribedToTopicError,
            KTopicPartition(b, 0): kafka.errors.NoError,
        }, result
        assert committed(broker.bootstrap, group) == {(a, 0): 0}
    finally:
        close_consumers([member])


# ---------------------------------------------------------------- DescribeLogDirs

def test_describe_log_dirs_reports_the_data_dir_and_partition_sizes(broker):
    """kafka-python's describe_log_dirs: one log dir, the data directory as an absolute path,
    each partition's size as its segment files hold it, offset lag 0, and the volume's sizes;
    asking for one partition returns just that one."""
    topic = create_topic(broker.bootstrap, unique("dirs"), partitions=2)
    produce_all(producer(broker.bootstrap), topic, [(None, b"x" * 100) for _ in range(20)], partition=1)
    client = kadmin(broker.bootstrap)
    (only,) = client.describe_log_dirs()
    (log_dir,) = only["log_dirs"]
    assert log_dir["error_code"] == 0
    assert Path(log_dir["log_dir"]).is_absolute() and Path(log_dir["log_dir"]).samefile(broker.data_dir)
    assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
    (ours,) = [t for t in log_dir["topics"] if t["name"] == topic]
    sizes = {p["partition_index"]: p["partition_size"] for p in ours["partitions"]}
    on_disk = sum(f.stat().st_size for f in broker.partition_dir(topic, 1).glob("*.log"))
    assert sizes == {0: 0, 1: on_disk} and on_disk > 2000, (sizes, on_disk)
    assert all(p["offset_lag"] == 0 and not p["is_future_key"] for p in ours["partitions"])

    (filtered,) = client.describe_log_dirs({topic: [1]})
    client.close()
    topics = filtered["log_dirs"][0]["topics"]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in topics] == [(topic, [1])]


# ---------------------------------------------------------------- DescribeProducers

def test_describe_producers_shows_idempotent_producers(broker):
    """kafka-python's describe_producers: an idempotent producer's id, epoch, last sequence and
    the timestamp of its last batch; no transaction (-1, -1); the same after a restart (rebuilt
    from the producer snapshot). A non-idempotent producer is not listed; an unknown partition is
    UNKNOWN_TOPIC_OR_PARTITION."""
    topic = create_topic(broker.bootstrap, unique("producers"), partitions=2)
    p = producer(broker.bootstrap, **{"enable.idempotence": True})
    last_ts = int(time.time() * 1000) - 5000
    for i in range(6):
        p.produce(topic, b"v%d" % i, partition=0, timestamp=last_ts - 10 + i)
        p.flush(30)  # one batch per record: the last batch's timestamp is the last record's
    produce_all(producer(broker.bootstrap, **{"enable.idempotence": False}), topic, [(None, b"plain")], partition=1)

    def describe():
        client = kadmin(broker.bootstrap)
        try:
            return client.describe_producers([KTopicPartition(topic, 0), KTopicPartition(topic, 1)])
        finally:
            client.close()

    def check(result):
        (state,) = result[KTopicPartition(topic, 0)].active_producers
        assert state.producer_id >= 0 and state.producer_epoch == 0
        assert (state.last_sequence, state.last_timestamp) == (5, last_ts - 10 + 5), state
        assert (state.coordinator_epoch, state.current_transaction_start_offset) == (-1, -1)
        assert result[KTopicPartition(topic, 1)].active_producers == []
        return state.producer_id

    pid = check(describe())
    broker.restart()
    assert check(describe()) == pid
    client = kadmin(broker.bootstrap)
    with pytest.raises(kafka.errors.UnknownTopicOrPartitionError):
        client.describe_producers([KTopicPartition(topic, 5)], broker_id=0)
    client.close()


# ---------------------------------------------------------------- DescribeTopicPartitions

def test_describe_topic_partitions_paginates_by_cursor(broker):
    """kafka-python's describe_topic_partitions: topics in name order, at most
    response_partition_limit partitions per response, a next_cursor to continue from, every
    partition exactly once over the pages; unknown topics are UNKNOWN_TOPIC_OR_PARTITION and a
    cursor outside the named topics is INVALID_REQUEST."""
    prefix = unique("dtp")
    names = {f"{prefix}-a": 3, f"{prefix}-b": 1, f"{prefix}-c": 4}
    for name, partitions in names.items():
        create_topic(broker.bootstrap, name, partitions=partitions)
    client = kadmin(broker.bootstrap)
    seen, cursor, pages = [], None, 0
    while True:
        page = client.describe_topic_partitions(sorted(names), response_partition_limit=3, cursor=cursor)
        pages += 1
        assert sum(len(t["partitions"]) for t in page["topics"]) <= 3
        for t in page["topics"]:
            assert t["error_code"] == 0 and t["topic_authorized_operations"] > 0 and not t["is_internal"]
            for p in t["partitions"]:
                assert (p["leader_id"], p["leader_epoch"], p["replica_nodes"], p["isr_nodes"]) == (0, 0, [0], [0])
                seen.append((t["name"], p["partition_index"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [(n, i) for n in sorted(names) for i in range(names[n])]
    assert seen == expected and pages == 3, (seen, pages)

    every = client.describe_topic_partitions([], response_partition_limit=2000)
    assert [(t["name"], len(t["partitions"])) for t in every["topics"] if t["name"].startswith(prefix)] == sorted(names.items())
    missing = unique("dtp-missing")
    answer = client.describe_topic_partitions([f"{prefix}-a", missing])
    assert {t["name"]: t["error_code"] for t in answer["topics"]} == {f"{prefix}-a": 0, missing: wire.UNKNOWN_TOPIC_OR_PARTITION}
    refused = client.describe_topic_partitions([f"{prefix}-a"], cursor={"topic_name": f"{prefix}-b", "partition_index": 0})
    client.close()
    assert [(t["name"], t["error_code"]) for t in refused["topics"]] == [(f"{prefix}-a", wire.INVALID_REQUEST)]


# ---------------------------------------------------------------- ACLs

def test_new_apis_check_acls(broker_factory):
    """With the authorizer on and no ACLs, the PLAINTEXT principal is refused by every new API
    with the error Kafka gives: TOPIC_AUTHORIZATION_FAILED (AlterConfigs, OffsetForLeaderEpoch,
    DescribeProducers, DescribeTopicPartitions for a named topic), CLUSTER_AUTHORIZATION_FAILED
    (DescribeLogDirs: no log dirs), GROUP_AUTHORIZATION_FAILED (OffsetDelete)."""
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("acl"))
    produce_all(producer(b.bootstrap), topic, [(None, b"v")])
    group = unique("acl-group")
    commit(b.bootstrap, group, {(topic, 0): 1})
    b.restart(["--authorizer"])

    with pytest.raises(KafkaException) as alter:
        legacy_alter(b.bootstrap, ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "1000"}))
    assert kafka_error_code(alter) == wire.TOPIC_AUTHORIZATION_FAILED
    assert epoch_answers(b.bootstrap, topic, [(0, -1, 0)]) == [(wire.TOPIC_AUTHORIZATION_FAILED, 0, -1, -1)]
    client = kadmin(b.bootstrap)
    try:
        (dirs,) = client.describe_log_dirs(brokers=[0])
        assert dirs["log_dirs"] == [], "DescribeLogDirs without DESCRIBE on the cluster"
        with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
            client.describe_producers([KTopicPartition(topic, 0)], broker_id=0)
        answer = client.describe_topic_partitions([topic])
        assert [(t["name"], t["error_code"], t["partitions"]) for t in answer["topics"]] == [
            (topic, wire.TOPIC_AUTHORIZATION_FAILED, [])]
        assert client.describe_topic_partitions([])["topics"] == [], "undescribable topics are left out"
        with pytest.raises(kafka.errors.GroupAuthorizationFailedError):
            client.delete_group_offsets(group, [KTopicPartition(topic, 0)], group_coordinator_id=0)
    finally:
        client.close()
