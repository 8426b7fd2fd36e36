"""Goal: what the broker acknowledged survives crashes; method: kill -9 the real process (once with topics, configs and group offsets, then 20+ times under acks=all load) and check every acknowledged record after restart."""

import random
import threading
import time

from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource

from helpers import Delivered, admin, consumer, create_topic, produce_all, producer, read_all, unique

CRASH_ROUNDS = 20


def test_topics_configs_and_committed_offsets_survive_kill9(broker):
    topic = create_topic(broker.bootstrap, unique("dur"), partitions=3, config={"retention.ms": "123456789"})
    group = unique("g")
    produce_all(producer(broker.bootstrap), topic, [(b"k%d" % i, b"v%d" % i) for i in range(300)])
    c = consumer(broker.bootstrap, group=group)
    c.commit(offsets=[TopicPartition(topic, 0, 42), TopicPartition(topic, 2, 7)], asynchronous=False)
    c.close()

    broker.kill9()
    bootstrap = broker.start()

    md = admin(bootstrap).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    res = ConfigResource("topic", topic)
    a = admin(bootstrap)
    configs = a.describe_configs([res])[res].result(timeout=30)
    assert configs["retention.ms"].value == "123456789"

    c = consumer(bootstrap, group=group)
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    assert [tp.offset for tp in committed] == [42, -1001, 7], "committed offsets after kill -9"
    c.close()
    got = read_all(bootstrap, topic)
    assert sorted(m.value() for m in got) == sorted(b"v%d" % i for i in range(300))


def test_crash_loop_keeps_every_acknowledged_record(broker_factory, tmp_path):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("crash"), partitions=2)
    rng = random.Random(7)
    acked = {}  # (partition, offset) -> (key, value)
    seq = 0
    for rnd in range(CRASH_ROUNDS):
        if rnd:
            b.start()
        d = Delivered()
        # log_level 2: the killed broker's "connection refused" errors are expected, not news.
        p = producer(b.bootstrap, **{"linger.ms": 2, "message.timeout.ms": 30000, "retries": 0, "log_level": 2})
        # The kill is armed once the first acknowledgement arrives (so a slow start on a loaded
        # machine cannot leave a round without load), and lands 0.3-1 s later, mid-load.
        kill_delay = rng.uniform(0.3, 1.0)
        killer, stop_at = None, None
        gave_up_at = time.monotonic() + 60
        while stop_at is None or time.monotonic() < stop_at:
            for _ in range(50):
                value = b"r%02d-%08d-" % (rnd, seq) + bytes([seq % 256]) * (seq % 200)
                try:
                    p.produce(topic, key=b"%d" % seq, value=value, partition=seq % 2, on_delivery=d)
                except BufferError:
                    break
                seq += 1
            p.poll(0.001)
            if killer is None and d.ok:
                killer = threading.Timer(kill_delay, b.proc.kill)
                killer.start()
                stop_at = time.monotonic() + kill_delay + 0.2
            assert killer is not None or time.monotonic() < gave_up_at, f"round {rnd}: no acknowledgement within 60 s"
        killer.join()
        b.kill9()  # reaps the process
        # Serve acknowledgements that arrived before the kill, then drop what never will.
        p.poll(0.5)
        p.purge()
        p.flush(10)
        del p
        assert d.ok, f"round {rnd}: nothing was acknowledged; the load did not run"
        for part, off, key, value in d.ok:
            assert (part, off) not in acked, f"round {rnd}: offset {off} of partition {part} acknowledged twice"
            acked[(part, off)] = (key, value)

    b.start()
    got = read_all(b.bootstrap, topic, timeout=300)
    print(f"crash loop: {len(acked)} records acknowledged over {CRASH_ROUNDS} kill -9 rounds, {len(got)} stored")
    stored = {(m.partition(), m.offset()): (m.key(), m.value()) for m in got}
    missing = [k for k in acked if k not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    wrong = [k for k in acked if stored[k] != acked[k]]
    assert not wrong, f"{len(wrong)} acknowledged records changed, e.g. {wrong[:3]}"
    # Every stored record is one we produced (no garbage from torn writes), and per partition the
    # acknowledged records appear in the order they were produced.
    for (part, off), (key, value) in stored.items():
        n = int(key)
        assert value.startswith(b"-%08d-" % n, 3) and value.endswith(bytes([n % 256]) * (n % 200)), (part, off)
        assert n % 2 == part
    for part in (0, 1):
        seqs = [int(acked[k][0]) for k in sorted(k for k in acked if k[0] == part)]
        assert seqs == sorted(seqs), f"partition {part}: acknowledged records out of order"
