"""Goal: aiokafka (an asyncio client with its own protocol code, neither librdkafka nor
kafka-python) works unmodified: topic admin, idempotent produce in every codec with keys, headers
and timestamps byte-identical when read back by another client, a two-member consumer group that
reads every record once, and committed offsets that a later member resumes from.
Method: aiokafka against a real broker; confluent-kafka reads back what aiokafka wrote."""

import asyncio

import pytest

from helpers import read_all, unique

aiokafka = pytest.importorskip("aiokafka", reason="aiokafka is installed by tests/run")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def create_topic(bootstrap, name, partitions):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        described = await admin.describe_topics([name])
        assert len(described[0]["partitions"]) == partitions, described
    finally:
        await admin.close()


@pytest.mark.parametrize("codec", CODECS)
def test_idempotent_produce_every_codec_reads_back_identical(broker, codec):
    topic, count = unique(f"aio-{codec}"), 2000
    sent = [(f"key-{i}".encode(), f"value-{i}-".encode() * (1 + i % 7),
             [("seq", str(i).encode()), ("codec", codec.encode())], 1_700_000_000_000 + i)
            for i in range(count)]

    async def produce():
        await create_topic(broker.bootstrap, topic, 3)
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                             compression_type=None if codec == "none" else codec, linger_ms=5)
        await p.start()
        try:
            futures = [await p.send(topic, value=v, key=k, headers=h, timestamp_ms=ts) for k, v, h, ts in sent]
            return [await f for f in futures]
        finally:
            await p.stop()

    metas = run(produce())
    assert len(metas) == count
    got = read_all(broker.bootstrap, topic)
    assert len(got) == count, f"{len(got)} records read back, {count} acknowledged"
    by_seq = {int(dict(m.headers())["seq"]): m for m in got}
    assert sorted(by_seq) == list(range(count)), "records lost or duplicated"
    for i, (k, v, h, ts) in enumerate(sent):
        m = by_seq[i]
        assert (m.key(), m.value(), m.headers(), m.timestamp()[1]) == (k, v, h, ts)
        assert (m.partition(), m.offset()) == (metas[i].partition, metas[i].offset)


def test_group_of_two_reads_every_record_once_and_a_new_member_resumes(broker):
    topic, group, count = unique("aio-group"), unique("aio-group"), 1200

    async def produce(first, n):
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await p.start()
        try:
            for i in range(first, first + n):
                await p.send(topic, key=f"k{i % 31}".encode(), value=str(i).encode())
            await p.flush()
        finally:
            await p.stop()

    async def member():
        return AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=10_000, heartbeat_interval_ms=500)

    async def consume_until(members, want):
        seen = []
        while len(seen) < want:
            for c in members:
                batches = await c.getmany(timeout_ms=200)
                for records in batches.values():
                    seen.extend(int(r.value) for r in records)
                if batches:
                    await c.commit()
        return seen

    async def scenario():
        await create_topic(broker.bootstrap, topic, 4)
        await produce(0, count)
        a, b = await member(), await member()
        await asyncio.gather(a.start(), b.start())
        try:
            seen = await consume_until([a, b], count)
            assignments = [a.assignment(), b.assignment()]
        finally:
            await asyncio.gather(a.stop(), b.stop())
        await produce(count, 100)
        c = await member()
        await c.start()
        try:
            resumed = await consume_until([c], 100)
            committed = {p: await c.committed(TopicPartition(topic, p)) for p in range(4)}
        finally:
            await c.stop()
        return seen, assignments, resumed, committed

    seen, assignments, resumed, committed = run(scenario())
    assert sorted(seen) == list(range(count)), "the group lost or duplicated records"
    assert all(assignments), f"both members should own partitions: {assignments}"
    assert not assignments[0] & assignments[1], f"a partition was assigned twice: {assignments}"
    assert sorted(resumed) == list(range(count, count + 100)), "the new member did not resume at the commits"
    assert sum(committed.values()) == count + 100, committed
