"""Goal: closed segments move to the object store and come back byte-identical, through store
outages, damaged objects and a restore onto an empty disk. Method: a real broker with small
segments and tight local retention, real clients (confluent-kafka), a real S3 API (moto server)
and the default file:// store, observed through the admin API's /v1/tier counters, the segment
files on disk and the objects in the store."""

import time
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from helpers import consumer, create_topic, produce_all, producer, read_all, unique, wait_until, watermarks
from prom_text import scrape
from tiered import (BUCKET, CORRUPT_MESSAGE, KAFKA_STORAGE_ERROR, NONE, Moto, Proxy, fetch_v4, local_bases,
                    s3_env, tier_stats)

MAINTENANCE = ["--log-maintenance-interval-ms", "200"]
SEGMENT_BYTES = 64 * 1024
LOCAL_RETENTION_BYTES = 2 * SEGMENT_BYTES
RECORD = 1000
TIERED = {"segment.bytes": str(SEGMENT_BYTES), "local.retention.bytes": str(LOCAL_RETENTION_BYTES)}


def payload(i):
    # Distinct, checkable bytes per record (offset-derived, with a non-repeating tail).
    head = i.to_bytes(4, "big")
    return head + bytes((i * 7 + j) % 251 for j in range(RECORD - 4))


def produce_range(bootstrap, topic, start, end):
    produce_all(producer(bootstrap, **{"linger.ms": 5, "batch.size": 16384}), topic,
                [(b"k%d" % i, payload(i)) for i in range(start, end)], partition=0)


def assert_reads_everything(bootstrap, topic, n):
    msgs = read_all(bootstrap, topic, timeout=180)
    assert [m.offset() for m in msgs] == list(range(n)), "every offset from 0, once, in order"
    for m in msgs:
        i = m.offset()
        assert m.key() == b"k%d" % i and m.value() == payload(i), f"record {i} differs"


def offloaded(broker, topic, min_segments):
    """Waits until at least `min_segments` were uploaded and local retention removed offset 0."""
    wait_until(lambda: tier_stats(broker)["segments_uploaded"] >= min_segments, 90, message="segments uploaded")
    wait_until(lambda: local_bases(broker.partition_dir(topic))[0] > 0, 90, message="local log start past 0")


@pytest.fixture
def moto(tmp_path):
    m = Moto(tmp_path / "moto.log")
    yield m
    m.stop()


def test_file_store_offloads_and_reads_back_identical(broker_factory):
    b = broker_factory(MAINTENANCE)
    topic = create_topic(b.bootstrap, unique("tier-file"), config=TIERED)
    n = 3000  # ~3 MB: about 45 segments of 64 KiB
    produce_range(b.bootstrap, topic, 0, n)
    offloaded(b, topic, 20)
    # local.retention.bytes (128 KiB) leaves only the last few segments of ~3 MB on local disk.
    wait_until(lambda: local_bases(b.partition_dir(topic))[0] >= 2000, 90, message="local retention to catch up")
    remote_logs = list((b.data_dir / "tier").rglob("*.log"))
    assert len(remote_logs) >= 20, "segments are objects under <data-dir>/tier by default"
    assert watermarks(b.bootstrap, topic) == (0, n), "the log start offset counts remote records"
    assert_reads_everything(b.bootstrap, topic, n)
    # ListOffsets by timestamp reaches remote history too.
    c = consumer(b.bootstrap)
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, 0)], timeout=10)
    c.close()
    assert tp.offset == 0
    s = tier_stats(b)
    assert s["remote_read_errors"] == 0 and s["cache_misses"] > 0 and s["remote_reads"] > 0


def test_s3_offloads_and_reads_back_identical(broker_factory, moto):
    b = broker_factory(MAINTENANCE + ["--object-store", f"s3://{BUCKET}/cluster-a"], env=s3_env(moto.endpoint))
    topic = create_topic(b.bootstrap, unique("tier-s3"), config=TIERED)
    n = 3000
    produce_range(b.bootstrap, topic, 0, n)
    offloaded(b, topic, 20)
    manifests = [k for k in moto.keys("cluster-a/node-0/topics/") if k.endswith("/0/manifest.json")]
    assert len(manifests) == 1, manifests
    manifest = moto.get_json(manifests[0])
    keys = moto.keys("cluster-a/node-0/topics/")  # after the manifest: it names only uploaded objects
    assert manifest["version"] == 1 and manifest["segments"][0]["base_offset"] == 0
    assert all(s["log_key"] in keys and s["index_key"] in keys for s in manifest["segments"])
    assert_reads_everything(b.bootstrap, topic, n)


def test_store_outage_keeps_local_data_until_uploaded(broker_factory, moto):
    proxy = Proxy(moto.port)
    b = broker_factory(MAINTENANCE + ["--object-store", f"s3://{BUCKET}/outage"], env=s3_env(proxy.endpoint))
    topic = create_topic(b.bootstrap, unique("tier-outage"), config=TIERED)
    produce_range(b.bootstrap, topic, 0, 1000)
    offloaded(b, topic, 5)
    [manifest_key] = [k for k in moto.keys("outage/") if k.endswith("/0/manifest.json")]

    def remote_end():
        segs = moto.get_json(manifest_key)["segments"]
        return segs[-1]["next_offset"] if segs else 0

    def check_nothing_lost_locally():
        # Every offset not yet in a published manifest is still on local disk.
        assert local_bases(b.partition_dir(topic))[0] <= remote_end()

    proxy.down()
    failures = tier_stats(b)["upload_failures"]
    end_before = remote_end()
    produce_range(b.bootstrap, topic, 1000, 3000)  # the broker keeps taking writes
    wait_until(lambda: tier_stats(b)["upload_failures"] > failures, 60, message="uploads fail while the store is down")
    wait_until(lambda: tier_stats(b)["upload_backlog_segments"] >= 10, 60, message="a backlog builds up")
    for _ in range(10):
        check_nothing_lost_locally()
        time.sleep(0.3)
    assert remote_end() == end_before, "nothing was published while the store was down"
    assert len(local_bases(b.partition_dir(topic))) >= 10, "local segments stay while they cannot be uploaded"

    proxy.up()
    wait_until(lambda: tier_stats(b)["upload_backlog_segments"] == 0, 120, message="the backlog drains")
    wait_until(lambda: local_bases(b.partition_dir(topic))[0] > 2000, 90, message="uploaded segments leave the local disk")
    check_nothing_lost_locally()
    assert_reads_everything(b.bootstrap, topic, 3000)
    proxy.down()


def test_corrupt_or_missing_remote_object_fails_that_fetch_only(broker_factory):
    b = broker_factory(MAINTENANCE)
    topic = create_topic(b.bootstrap, unique("tier-bad"), config=TIERED)
    n = 2000
    produce_range(b.bootstrap, topic, 0, n)
    offloaded(b, topic, 10)
    wait_until(lambda: local_bases(b.partition_dir(topic))[0] > 600, 90, message="several segments only remote")
    objects = sorted((b.data_dir / "tier").rglob("*.log"))
    # Damage a payload byte in the middle of the first segment: the batch CRC no longer matches.
    first = objects[0]
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    error, _, records = fetch_v4(b.bootstrap, topic, 0, 0)
    if error == NONE:
        # The damaged byte may sit in a later batch than the first read returns: read on.
        error = first_error_reading(b.bootstrap, topic, 0, 400)
    assert error == CORRUPT_MESSAGE, f"corrupt remote segment: error {error}"
    # Remove the second segment's object: that fetch fails with a storage error.
    second = objects[1]
    second_base = int(second.name.split("-")[0])
    second.unlink()
    error, _, _ = fetch_v4(b.bootstrap, topic, 0, second_base)
    assert error == KAFKA_STORAGE_ERROR, f"missing remote object: error {error}"
    assert tier_stats(b)["remote_read_errors"] >= 2
    # The same counters on /metrics, for Prometheus.
    m = scrape(b)
    assert m.value("sluice_tier_remote_read_errors_total") == tier_stats(b)["remote_read_errors"]
    assert m.value("sluice_tier_uploaded_segments_total") >= len(objects)
    # The broker keeps serving: later remote segments, local data, new writes.
    third_base = int(objects[2].name.split("-")[0])
    error, _, records = fetch_v4(b.bootstrap, topic, 0, third_base)
    assert error == NONE and len(records) > 0
    produce_range(b.bootstrap, topic, n, n + 10)
    error, hwm, records = fetch_v4(b.bootstrap, topic, 0, n)
    assert error == NONE and hwm == n + 10 and len(records) > 0


def first_error_reading(bootstrap, topic, offset, until):
    """Fetches forward from `offset` until an error or `until`; returns the error code."""
    import struct
    from kafka_wire import iter_batches
    while offset < until:
        error, _, records = fetch_v4(bootstrap, topic, 0, offset, max_bytes=8192)
        if error != NONE:
            return error
        last = None
        for pos, base, _size, _count in iter_batches(records):
            last = base + struct.unpack_from(">i", records, pos + 23)[0]
        assert last is not None, f"empty fetch at {offset}"
        offset = last + 1
    return NONE


def test_restore_into_an_empty_data_dir(broker_factory, tmp_path):
    store = tmp_path / "shared-store"
    args = MAINTENANCE + ["--object-store", f"file://{store}"]
    old = broker_factory(args)
    # segment.ms rolls the last segment too, so every record reaches the store.
    topic = create_topic(old.bootstrap, unique("tier-restore"), config={**TIERED, "segment.ms": "1000"})
    n = 2000
    produce_range(old.bootstrap, topic, 0, n)
    wait_until(lambda: tier_stats(old)["upload_backlog_segments"] == 0 and
               local_bases(old.partition_dir(topic))[-1] == n, 90, message="the last segment rolled")
    wait_until(lambda: tier_stats(old)["upload_backlog_segments"] == 0 and tier_stats(old)["segments_uploaded"] >= 20
               and remote_manifest_end(store, topic) == n, 90, message="every record uploaded")
    old.stop()

    new = broker_factory(args, data_dir=tmp_path / "empty-data-dir")
    assert watermarks(new.bootstrap, topic) == (0, n)
    assert_reads_everything(new.bootstrap, topic, n)
    produce_range(new.bootstrap, topic, n, n + 100)  # new records continue the offsets
    assert watermarks(new.bootstrap, topic) == (0, n + 100)
    assert_reads_everything(new.bootstrap, topic, n + 100)


def remote_manifest_end(store: Path, topic):
    import json
    found = [p for p in store.rglob("manifest.json") if f"/{topic}-" in str(p)]
    if not found:
        return None
    segs = json.loads(found[0].read_text())["segments"]
    return segs[-1]["next_offset"] if segs else None


def test_remote_retention_and_topic_deletion_clean_the_store(broker_factory):
    b = broker_factory(MAINTENANCE)
    retention = 8 * SEGMENT_BYTES
    topic = create_topic(b.bootstrap, unique("tier-ret"), config={**TIERED, "retention.bytes": str(retention)})
    n = 3000
    produce_range(b.bootstrap, topic, 0, n)
    wait_until(lambda: tier_stats(b)["remote_segments_deleted"] >= 20, 90, message="remote segments expire")
    low, high = wait_until(lambda: (lambda w: w if w[0] > 1000 else None)(watermarks(b.bootstrap, topic)), 60,
                           message="the log start offset advances")
    assert high == n
    topic_objects = lambda: [p for p in (b.data_dir / "tier").rglob("*.log") if f"/{topic}-" in str(p)]
    wait_until(lambda: len(topic_objects()) <= retention // SEGMENT_BYTES + 2, 60, message="expired objects deleted")
    msgs = read_all(b.bootstrap, topic)
    assert msgs[0].offset() == low and [m.offset() for m in msgs] == list(range(low, n))
    assert all(m.value() == payload(m.offset()) for m in msgs)

    admin_client = __import__("helpers").admin(b.bootstrap)
    admin_client.delete_topics([topic])[topic].result(30)
    wait_until(lambda: not [p for p in (b.data_dir / "tier").rglob("*") if f"/{topic}-" in str(p) and p.is_file()],
               60, message="a deleted topic's objects are removed")


def test_tier_configs_are_described_validated_and_turn_tiering_off(broker_factory):
    from confluent_kafka.admin import NewTopic
    from test_topic_configs import describe
    from helpers import admin
    b = broker_factory(MAINTENANCE)
    configs = describe(b.bootstrap, create_topic(b.bootstrap, unique("tier-cfg")))
    assert (configs["remote.storage.enable"], configs["local.retention.ms"], configs["local.retention.bytes"]) == ("true", "-2", "-2")
    a = admin(b.bootstrap)  # alive until the futures resolve
    for bad in ({"remote.storage.enable": "maybe"}, {"local.retention.bytes": "-3"}, {"local.retention.ms": "soon"}):
        name = unique("tier-bad-cfg")
        with pytest.raises(Exception, match="INVALID_CONFIG"):
            a.create_topics([NewTopic(name, 1, 1, config=bad)])[name].result(30)
    # remote.storage.enable=false: nothing is uploaded, local segments stay.
    off = create_topic(b.bootstrap, unique("tier-off"), config={**TIERED, "remote.storage.enable": "false"})
    produce_range(b.bootstrap, off, 0, 500)
    time.sleep(1.5)  # several tier passes
    assert tier_stats(b)["segments_uploaded"] == 0
    assert local_bases(b.partition_dir(off))[0] == 0
    # Turning it on uploads the history; turning it off again is refused (remote and local
    # history would drift apart).
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    def set_tiering(value):
        res = ConfigResource("topic", off, incremental_configs=[
            ConfigEntry("remote.storage.enable", value, incremental_operation=AlterConfigOpType.SET)])
        return a.incremental_alter_configs([res])[res].result(30)
    set_tiering("true")
    wait_until(lambda: tier_stats(b)["segments_uploaded"] > 0, 60, message="uploads after enabling")
    with pytest.raises(Exception, match="INVALID_CONFIG"):
        set_tiering("false")
