"""Goal: the topic configs the README lists are accepted, validated, reported and changeable; method: AdminClient CreateTopics, DescribeConfigs and IncrementalAlterConfigs against the broker, then data through each flush policy across a kill -9."""

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from helpers import admin, create_topic, produce_all, producer, read_all, unique


def describe(bootstrap, topic):
    a = admin(bootstrap)
    res = ConfigResource("topic", topic)
    return {name: entry.value for name, entry in a.describe_configs([res])[res].result(timeout=30).items()}


@pytest.mark.parametrize("policy", [{"flush.policy": "batch"}, {"flush.policy": "interval", "flush.ms": "50"},
                                    {"flush.policy": "os"}])
def test_flush_policies_accepted_and_data_survives_kill9(broker, policy):
    topic = create_topic(broker.bootstrap, unique("flush"), config=policy)
    configs = describe(broker.bootstrap, topic)
    for name, value in policy.items():
        assert configs[name] == value, f"{name}: described as {configs.get(name)!r}"
    produce_all(producer(broker.bootstrap), topic, [(b"k%d" % i, b"v%d" % i) for i in range(200)])
    # kill -9 keeps the page cache, so every policy keeps acknowledged data here; power loss is
    # what tells them apart, and that is not tested on a shared machine.
    broker.kill9()
    bootstrap = broker.start()
    assert [m.value() for m in read_all(bootstrap, topic)] == [b"v%d" % i for i in range(200)]


def test_defaults_are_described(broker):
    topic = create_topic(broker.bootstrap, unique("defaults"))
    configs = describe(broker.bootstrap, topic)
    assert configs["cleanup.policy"] == "delete"
    assert configs["flush.policy"] == "batch"
    assert configs["retention.ms"] == "604800000"
    assert configs["segment.bytes"] == "1073741824"


@pytest.mark.parametrize("bad", [{"flush.policy": "sometimes"}, {"cleanup.policy": "shred"},
                                 {"retention.ms": "soon"}, {"no.such.config": "1"}])
def test_invalid_topic_config_is_rejected(broker, bad):
    name = unique("bad")
    a = admin(broker.bootstrap)
    fut = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=bad)])[name]
    with pytest.raises(KafkaException) as e:
        fut.result(timeout=30)
    assert e.value.args[0].name() in ("INVALID_CONFIG", "POLICY_VIOLATION"), e.value
    md = a.list_topics(timeout=10)
    assert name not in md.topics, "a topic with an invalid config was created anyway"


def test_incremental_alter_configs_changes_a_topic(broker):
    topic = create_topic(broker.bootstrap, unique("alter"), config={"retention.ms": "3600000"})
    a = admin(broker.bootstrap)
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(timeout=30)
    configs = describe(broker.bootstrap, topic)
    assert configs["retention.ms"] == "7200000"
    assert configs["cleanup.policy"] == "compact"
    # The change is durable.
    broker.stop()
    bootstrap = broker.start()
    assert describe(bootstrap, topic)["retention.ms"] == "7200000"
