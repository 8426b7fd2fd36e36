"""Goal: idempotent producers never create duplicates, including when a batch is replayed (also after a restart); method: confluent-kafka with enable.idempotence, then hand-built Produce frames replaying one producer id/epoch/sequence."""

import pytest

from helpers import create_topic, produce_all, producer, read_all, unique, watermarks
from kafka_wire import (DUPLICATE_SEQUENCE_NUMBER, NONE, OUT_OF_ORDER_SEQUENCE_NUMBER, RawConn,
                        record_batch)

N = 20_000


def test_confluent_idempotent_producer_no_duplicates(broker):
    topic = create_topic(broker.bootstrap, unique("idem"), partitions=3)
    # linger.ms=0 and a small batch size keep many requests in flight per partition.
    p = producer(broker.bootstrap, **{"enable.idempotence": True, "acks": "all", "linger.ms": 0,
                                      "batch.size": 16384, "max.in.flight.requests.per.connection": 5})
    d = produce_all(p, topic, [(b"k%d" % i, b"value-%d" % i) for i in range(N)])
    assert len(d.ok) == N
    got = read_all(broker.bootstrap, topic)
    values = [m.value() for m in got]
    assert len(values) == N, f"read {len(values)}, produced {N}"
    assert len(set(values)) == N, f"{N - len(set(values))} duplicates"
    # Acknowledged offsets are where the records are.
    at = {(m.partition(), m.offset()): m.value() for m in got}
    assert all(at[(part, off)] == value for part, off, _k, value in d.ok)


def _replay_setup(broker):
    topic = create_topic(broker.bootstrap, unique("replay"), partitions=1)
    conn = RawConn(broker.bootstrap)
    pid, epoch = conn.init_producer_id()
    assert pid >= 0 and epoch >= 0, (pid, epoch)
    batch = record_batch([(b"k%d" % i, b"v%d" % i, []) for i in range(5)],
                         producer_id=pid, producer_epoch=epoch, base_sequence=0)
    error, base = conn.produce(topic, 0, batch)
    assert (error, base) == (NONE, 0)
    assert watermarks(broker.bootstrap, topic)[1] == 5
    return topic, conn, pid, epoch, batch


def _assert_replay_is_absorbed(broker, conn, topic, batch):
    error, base = conn.produce(topic, 0, batch)
    # Kafka answers a duplicate of one of the last five batches with NONE and the original offset;
    # older brokers said DUPLICATE_SEQUENCE_NUMBER. Either way nothing may be appended.
    assert error in (NONE, DUPLICATE_SEQUENCE_NUMBER), f"replay answered with error {error}"
    if error == NONE:
        assert base == 0, f"replayed batch reported base offset {base}, original was 0"
    assert watermarks(broker.bootstrap, topic)[1] == 5, "the replayed batch was appended again"
    assert [m.value() for m in read_all(broker.bootstrap, topic)] == [b"v%d" % i for i in range(5)]


def test_raw_replay_of_same_sequence_is_not_appended(broker):
    topic, conn, _pid, _epoch, batch = _replay_setup(broker)
    _assert_replay_is_absorbed(broker, conn, topic, batch)
    conn.close()


def test_raw_sequence_gap_is_rejected(broker):
    topic, conn, pid, epoch, _batch = _replay_setup(broker)
    gap = record_batch([(b"g", b"gap", [])], producer_id=pid, producer_epoch=epoch, base_sequence=10)
    error, _base = conn.produce(topic, 0, gap)
    assert error == OUT_OF_ORDER_SEQUENCE_NUMBER, f"sequence 10 after 0..4 answered with {error}"
    assert watermarks(broker.bootstrap, topic)[1] == 5
    # The next expected sequence still works.
    nxt = record_batch([(b"n", b"next", [])], producer_id=pid, producer_epoch=epoch, base_sequence=5)
    assert conn.produce(topic, 0, nxt) == (NONE, 5)
    conn.close()


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_raw_replay_after_restart_is_not_appended(broker, how):
    topic, conn, _pid, _epoch, batch = _replay_setup(broker)
    conn.close()
    if how == "kill9":
        broker.kill9()
    broker.restart()
    with RawConn(broker.bootstrap) as conn2:
        _assert_replay_is_absorbed(broker, conn2, topic, batch)
