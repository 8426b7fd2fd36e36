"""Goal: Produce and Metadata create unknown topics when auto.create.topics.enable is on (Kafka's default) and refuse them when it is off; method: raw Produce frames with no Metadata request first, then a real client reads back."""

from helpers import read_all, unique
from kafka_wire import NONE, UNKNOWN_TOPIC_OR_PARTITION, RawConn, record_batch


def test_produce_creates_an_unknown_topic_with_the_default_partition_count(broker_factory):
    b = broker_factory(["--num-partitions", "3"])
    topic = unique("auto")
    with RawConn(b.bootstrap) as c:
        assert c.produce(topic, 2, record_batch([(b"k", b"first", [])])) == (NONE, 0)
        # The default partition count bounds the partitions a produce may address.
        error, _ = c.produce(topic, 3, record_batch([(b"k", b"v", [])]))
        assert error == UNKNOWN_TOPIC_OR_PARTITION
    assert [m.value() for m in read_all(b.bootstrap, topic, partitions=[2])] == [b"first"]


def test_produce_to_an_unknown_topic_is_refused_when_auto_create_is_off(broker_factory):
    b = broker_factory(["--auto-create-topics", "false"])
    topic = unique("noauto")
    with RawConn(b.bootstrap) as c:
        error, _ = c.produce(topic, 0, record_batch([(b"k", b"v", [])]))
        assert error == UNKNOWN_TOPIC_OR_PARTITION
    with RawConn(b.bootstrap) as c:
        # Still refused on a second try: the first attempt created nothing.
        error, _ = c.produce(topic, 0, record_batch([(b"k", b"v", [])]))
        assert error == UNKNOWN_TOPIC_OR_PARTITION
