"""Goal: retention (bytes and time) advances the log start offset and compaction keeps the latest value per key at its original offset; method: topics with small segments on a broker running maintenance every 200 ms, observed through ListOffsets and full reads."""

import time

from confluent_kafka import TopicPartition

from helpers import (Delivered, consumer, create_topic, produce_all, producer, read_all, segment_files,
                     unique, wait_until, watermarks)

MAINTENANCE = ["--log-maintenance-interval-ms", "200"]
SEGMENT_BYTES = 1024 * 1024
RECORD = 1024


def test_retention_bytes_advances_log_start(broker_factory):
    b = broker_factory(MAINTENANCE)
    retention = 2 * SEGMENT_BYTES
    topic = create_topic(b.bootstrap, unique("ret-bytes"), config={
        "segment.bytes": str(SEGMENT_BYTES), "retention.bytes": str(retention)})
    n = 6000  # ~6 MiB: several segments beyond the cap
    produce_all(producer(b.bootstrap, **{"linger.ms": 5}), topic,
                [(b"k%d" % i, i.to_bytes(4, "big") + b"r" * (RECORD - 4)) for i in range(n)], partition=0)

    low, high = wait_until(lambda: (lambda w: w if w[0] > 0 else None)(watermarks(b.bootstrap, topic)),
                           60, message="log start offset to advance past 0")
    assert high == n
    # Kafka deletes whole closed segments while the rest is still over retention.bytes, so what is
    # left is at most retention.bytes plus the active segment (plus a batch of slack).
    def on_disk():
        return sum(f.stat().st_size for f in segment_files(b.partition_dir(topic)))
    wait_until(lambda: on_disk() <= retention + 2 * SEGMENT_BYTES, 60, message="segments to be deleted")
    assert (high - low) * RECORD >= retention - SEGMENT_BYTES, f"retention deleted too much: {high - low} records left"

    check_reads_start_at_log_start(b.bootstrap, topic, low)


def check_reads_start_at_log_start(bootstrap, topic, low):
    # ListOffsets for timestamp 0 answers the earliest offset still present.
    c = consumer(bootstrap)
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, 0)], timeout=10)
    assert tp.offset == low, f"offsets_for_times(0) = {tp.offset}, log start {low}"
    # A consumer group with no committed offset and auto.offset.reset=earliest starts there.
    c.subscribe([topic])
    first = None
    deadline = time.monotonic() + 60
    while first is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            first = m
    c.close()
    assert first is not None, "no record consumed from the beginning"
    assert first.offset() == low
    assert int.from_bytes(first.value()[:4], "big") == low


def test_retention_ms_deletes_only_expired_segments(broker_factory):
    b = broker_factory(MAINTENANCE)
    topic = create_topic(b.bootstrap, unique("ret-ms"), config={
        "segment.bytes": str(SEGMENT_BYTES), "retention.ms": "60000"})
    p = producer(b.bootstrap, **{"linger.ms": 5})
    old_ts = int(time.time() * 1000) - 3600 * 1000  # an hour ago: past retention.ms
    d = Delivered()
    n_old = 3000
    for i in range(n_old):
        p.produce(topic, key=b"old", value=i.to_bytes(4, "big") + b"o" * (RECORD - 4), partition=0,
                  timestamp=old_ts + i, on_delivery=d)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(60) == 0 and not d.errors
    n_new = 1500
    produce_all(p, topic, [(b"new", i.to_bytes(4, "big") + b"n" * (RECORD - 4)) for i in range(n_old, n_old + n_new)],
                partition=0)

    low, high = wait_until(lambda: (lambda w: w if w[0] > 0 else None)(watermarks(b.bootstrap, topic)),
                           60, message="log start offset to advance past 0")
    time.sleep(1)  # a few more maintenance passes: nothing else may go
    low, high = watermarks(b.bootstrap, topic)
    assert high == n_old + n_new
    assert 0 < low <= n_old, f"log start {low}: retention.ms deleted records that are not expired"
    assert low >= n_old - 2 * SEGMENT_BYTES // RECORD, f"log start {low}: expired segments were kept"
    check_reads_start_at_log_start(b.bootstrap, topic, low)


def test_compaction_keeps_latest_value_per_key_at_original_offset(broker_factory):
    b = broker_factory(MAINTENANCE)
    # segment.ms rolls segments so that compaction (which never touches the active segment) sees
    # the updates; a tiny delete.retention.ms lets tombstones go too.
    topic = create_topic(b.bootstrap, unique("compact"), config={
        "cleanup.policy": "compact", "segment.ms": "1000", "segment.bytes": str(SEGMENT_BYTES),
        "delete.retention.ms": "100"})
    p = producer(b.bootstrap, **{"linger.ms": 5})
    keys = [b"key-%03d" % k for k in range(50)]
    latest = {}
    for rnd in range(20):
        d = produce_all(p, topic, [(k, b"%s round %d " % (k, rnd) + b"v" * 200) for k in keys], partition=0)
        for _part, off, key, value in d.ok:
            latest[key] = (off, value)
    deleted = keys[:10]
    d = Delivered()
    for k in deleted:
        p.produce(topic, key=k, value=None, partition=0, on_delivery=d)
    assert p.flush(30) == 0 and not d.errors
    for k in deleted:
        del latest[k]
    # Roll the segment holding the tombstones: wait past segment.ms, then append one more record.
    time.sleep(1.5)
    d = produce_all(p, topic, [(b"roller", b"last")], partition=0)
    latest[b"roller"] = (d.ok[0][1], b"last")
    expected = sorted((off, key, value) for key, (off, value) in latest.items())
    high = watermarks(b.bootstrap, topic)[1]

    deadline = time.monotonic() + 90
    while True:
        got = sorted((m.offset(), m.key(), m.value()) for m in read_all(b.bootstrap, topic))
        if got == expected:
            break
        assert time.monotonic() < deadline, (
            f"not compacted after 90s: {len(got)} records ({sum(1 for g in got if g[2] is None)} tombstones), "
            f"want {len(expected)}; first difference: {next((g, e) for g, e in zip(got + [None] * len(expected), expected) if g != e)}")
        time.sleep(1)
    # Compaction never moves the end of the log.
    assert watermarks(b.bootstrap, topic)[1] == high
