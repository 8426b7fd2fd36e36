"""Goal: every compression codec round-trips keys, values, headers and CreateTime timestamps byte for byte, in order per partition; method: 100k records per codec through confluent-kafka, then an exhaustive read and a look at the stored batches."""

import random

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

from helpers import Delivered, create_topic, producer, read_all, segment_files, unique
from kafka_wire import batch_attributes, iter_batches

RECORDS = 100_000
PARTITIONS = 2
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def make_records(seed):
    """(partition, key, value, headers, timestamp) with nulls, empties, binary and repeats."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(1, 12)) for _ in range(64)]
    base_ts = 1_600_000_000_000 + seed
    out = []
    for i in range(RECORDS):
        key = None if i % 97 == 0 else b"k%d" % (i % 5000)
        if i % 101 == 0:
            value = None
        elif i % 103 == 0:
            value = b""
        else:
            value = b"|".join(rng.choice(words) for _ in range(rng.randint(1, 12))) + i.to_bytes(4, "big")
        headers = [("seq", str(i).encode()), ("bin", bytes([i % 256, 0, 255]))]
        if i % 7 == 0:
            headers.append(("seq", b"dup-name"))
        if i % 11 == 0:
            headers.append(("null", None))
        # Timestamps go backwards now and then: CreateTime is the producer's, not monotonic.
        ts = base_ts + i - (1000 if i % 13 == 0 else 0)
        out.append((i % PARTITIONS, key, value, headers, ts))
    return out


def stored_codecs(broker, topic):
    """The compression codec ids of every batch in the topic's segment files."""
    seen = set()
    for part in range(PARTITIONS):
        for seg in segment_files(broker.partition_dir(topic, part)):
            data = seg.read_bytes()
            for pos, _base, _len, _count in iter_batches(data):
                seen.add(batch_attributes(data, pos) & 0x7)
    return seen


@pytest.mark.parametrize("codec", list(CODEC_IDS))
def test_codec_round_trip(broker, codec):
    topic = create_topic(broker.bootstrap, unique(f"codec-{codec}"), partitions=PARTITIONS)
    records = make_records(seed=CODEC_IDS[codec])

    p = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 20,
                                      "batch.size": 512 * 1024, "queue.buffering.max.messages": 200_000})
    d = Delivered()
    for part, key, value, headers, ts in records:
        while True:
            try:
                p.produce(topic, key=key, value=value, headers=headers, timestamp=ts, partition=part, on_delivery=d)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0
    assert not d.errors, d.errors[:3]
    assert len(d.ok) == RECORDS

    got = read_all(broker.bootstrap, topic)
    assert len(got) == RECORDS, f"read {len(got)} records, produced {RECORDS}"
    by_partition = {p: [] for p in range(PARTITIONS)}
    for m in got:
        by_partition[m.partition()].append(m)
    for part in range(PARTITIONS):
        sent = [r for r in records if r[0] == part]
        recv = by_partition[part]
        assert len(recv) == len(sent), f"partition {part}: {len(recv)} read, {len(sent)} sent"
        for n, ((_, key, value, headers, ts), m) in enumerate(zip(sent, recv)):
            assert m.offset() == n, f"partition {part}: record {n} has offset {m.offset()}"
            got_headers = [(k, v) for k, v in (m.headers() or [])]
            assert (m.key(), m.value(), got_headers, m.timestamp()) == (key, value, headers, (TIMESTAMP_CREATE_TIME, ts)), \
                f"partition {part} offset {n} differs"

    # Batches are stored as received: compressed batches stay compressed with the producer's codec.
    seen = stored_codecs(broker, topic)
    want = CODEC_IDS[codec]
    assert want in seen, f"no stored batch uses codec {codec} (id {want}); saw {seen}"
    assert seen <= {0, want}, f"stored batches use codecs {seen}, producer used only {codec}"


@pytest.mark.parametrize("sent,stored", [("none", "zstd"), ("gzip", "lz4"), ("zstd", "uncompressed"), ("snappy", "gzip")])
def test_topic_compression_type_recompresses_on_produce(broker, sent, stored):
    """compression.type on the topic wins over the producer's codec (Kafka's rule); records,
    headers, timestamps and offsets come back unchanged, and an idempotent producer's retries
    still de-duplicate (sequences are kept)."""
    topic = create_topic(broker.bootstrap, unique(f"recompress-{sent}-{stored}"), partitions=PARTITIONS,
                         config={"compression.type": stored})
    records = make_records(seed=7)[:5000]
    p = producer(broker.bootstrap, **{"compression.type": sent, "linger.ms": 20, "enable.idempotence": True})
    d = Delivered()
    for part, key, value, headers, ts in records:
        p.produce(topic, key=key, value=value, headers=headers, timestamp=ts, partition=part, on_delivery=d)
    assert p.flush(120) == 0
    assert not d.errors, d.errors[:3]

    got = read_all(broker.bootstrap, topic)
    for part in range(PARTITIONS):
        sent_records = [(k, v, h, ts) for q, k, v, h, ts in records if q == part]
        recv = [(m.key(), m.value(), list(m.headers() or []), m.timestamp()[1]) for m in got if m.partition() == part]
        assert recv == sent_records, f"partition {part} differs after recompression"
    seen = stored_codecs(broker, topic)
    want = 0 if stored == "uncompressed" else CODEC_IDS[stored]
    assert seen == {want}, f"stored batches use codecs {seen}, topic says {stored}"
