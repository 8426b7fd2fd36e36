"""Long-poll Fetch wake-up: a Fetch parked on max_wait_ms must be answered when data arrives, not
when its wait runs out.

Method: a confluent-kafka consumer with fetch.wait.max.ms=30000 is parked on the end of the topic
(a few empty polls: its fetch is now waiting in the broker); then one record is produced and the
time from its acknowledgement to the consumer receiving it is measured. Without a wake-up the
consumer would see it only when the 30 s wait ends. The 5 s bound is a correctness check far above
the expected milliseconds, not a performance figure.
"""

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from helpers import create_topic, producer, unique

PARKED_WAIT_MS = 30_000
WAKE_BOUND_S = 5.0


def parked_consumer(bootstrap, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "enable.auto.commit": False,
                  "fetch.wait.max.ms": PARKED_WAIT_MS})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    for _ in range(4):  # empty polls: the consumer's fetch is now parked in the broker
        assert c.poll(0.5) is None
    return c


@pytest.mark.parametrize("config,acks,partitions,target", [
    ({}, "1", 1, 0),                          # flush.policy=batch: HWM moves after the background fsync
    ({}, "all", 1, 0),                        # ... and after the acknowledged fsync
    ({"flush.policy": "os"}, "1", 1, 0),      # HWM moves in the append itself
    ({}, "1", 8, 7),                          # one fetch over 8 partitions, data only in the last
], ids=["batch-acks1", "batch-acksall", "os-acks1", "8-partitions"])
def test_parked_fetch_wakes_on_append(broker, config, acks, partitions, target):
    topic = create_topic(broker.bootstrap, unique("wake"), partitions=partitions, config=config)
    c = parked_consumer(broker.bootstrap, topic, partitions)
    try:
        p = producer(broker.bootstrap, acks=acks, **{"linger.ms": 0})
        p.produce(topic, b"wake up", partition=target)
        assert p.flush(10) == 0
        acked = time.monotonic()
        msg = None
        while msg is None and time.monotonic() - acked < WAKE_BOUND_S:
            msg = c.poll(0.1)
        waited = time.monotonic() - acked
        assert msg is not None, f"record not delivered within {WAKE_BOUND_S}s: the parked fetch was not woken"
        assert msg.error() is None, msg.error()
        assert (msg.partition(), msg.value()) == (target, b"wake up")
        assert waited < WAKE_BOUND_S
    finally:
        c.close()
