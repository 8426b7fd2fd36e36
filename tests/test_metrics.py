"""Goal: /metrics is valid Prometheus text, its counts are exact, label churn leaks no series, and
/readyz reflects readiness; method: a real broker driven by confluent-kafka, kcat and hand-built
wire requests (exact request counts), checked with promtool and by reading the samples back."""

import shutil
import subprocess

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions)

from helpers import admin, close_consumers, consumer, create_topic, produce_all, producer, read_all, unique, wait_until
from kafka_wire import (API_PRODUCE, CORRUPT_MESSAGE, NONE, UNKNOWN_TOPIC_OR_PARTITION, BATCH_CRC_OFFSET,
                        RawConn, record_batch)
from prom_text import scrape

PROMTOOL = shutil.which("promtool")


def run_workload(broker):
    """Touches every subsystem: topics (create, grow, alter, describe, delete), produce (librdkafka
    and kcat), fetch, a consumer group with commits, group admin, DeleteRecords, ListOffsets, and an
    error response. Returns (topic, group) that stay alive afterwards."""
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique("work"), partitions=2)
    doomed = create_topic(bootstrap, unique("doomed"))
    a = admin(bootstrap)
    a.create_partitions([NewPartitions(topic, 3)])[topic].result(timeout=30)
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(timeout=30)
    a.describe_configs([ConfigResource("topic", topic)])[ConfigResource("topic", topic)].result(timeout=30)
    produce_all(producer(bootstrap), topic, [(b"k%d" % i, b"v%d" % i) for i in range(300)])
    produce_all(producer(bootstrap), doomed, [(b"k", b"v")])
    if shutil.which("kcat"):
        subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", "0"], input=b"from-kcat\n",
                       check=True, timeout=60, capture_output=True)
    group = unique("g")
    c = consumer(bootstrap, group=group)
    c.subscribe([topic])
    got = 0
    deadline_polls = 600
    while got < 300 and deadline_polls:
        deadline_polls -= 1
        for m in c.consume(num_messages=500, timeout=0.5):
            if not m.error():
                got += 1
    c.commit(asynchronous=False)
    c.close()
    a.list_consumer_groups().result(timeout=30)
    a.describe_consumer_groups([group])[group].result(timeout=30)
    # A group with only a commit, then deleted.
    other = unique("gone")
    oc = consumer(bootstrap, group=other)
    oc.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    oc.close()
    a.delete_consumer_groups([other])[other].result(timeout=30)
    for f in a.delete_records([TopicPartition(topic, 1, 1)]).values():
        f.result(timeout=30)
    c2 = consumer(bootstrap)
    c2.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c2.close()
    with RawConn(bootstrap) as raw:
        assert raw.produce(topic, 99, record_batch([(b"k", b"v", [])]))[0] == UNKNOWN_TOPIC_OR_PARTITION
    a.delete_topics([doomed])[doomed].result(timeout=30)
    return topic, group


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")
def test_promtool_accepts_metrics_after_a_workload_touching_every_subsystem(broker):
    topic, group = run_workload(broker)
    m = scrape(broker)
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=m.text.encode(), capture_output=True, timeout=60)
    assert check.returncode == 0, f"promtool: {check.stdout.decode()}{check.stderr.decode()}"
    # Every subsystem shows up, with the labels its data implies.
    for api in ("Produce", "Fetch", "Metadata", "CreateTopics", "DeleteTopics", "CreatePartitions",
                "IncrementalAlterConfigs", "DescribeConfigs", "JoinGroup", "SyncGroup", "OffsetCommit",
                "OffsetFetch", "ListGroups", "DescribeGroups", "DeleteGroups", "DeleteRecords", "ListOffsets"):
        assert m.total("sluice_requests_total", api=api) >= 1, api
        assert m.value("sluice_request_duration_seconds_count", api=api) >= 1, api
    assert m.value("sluice_request_errors_total", api="Produce", error="UNKNOWN_TOPIC_OR_PARTITION") >= 1
    assert {l["partition"] for l, _ in m.series("sluice_log_end_offset", topic=topic)} == {"0", "1", "2"}
    assert m.value("sluice_log_start_offset", topic=topic, partition=1) == 1  # DeleteRecords
    assert m.value("sluice_group_committed_offset", group=group, topic=topic, partition=0) >= 1
    assert m.value("sluice_group_lag", group=group, topic=topic, partition=0) >= 0
    assert m.value("sluice_group_generation", group=group) >= 1
    assert m.types["sluice_request_duration_seconds"] == "histogram"
    assert m.types["sluice_topic_bytes_in_total"] == "counter"
    # The crate's process collector counts CPU in whole seconds: present, possibly still 0.
    assert m.value("process_cpu_seconds_total") >= 0
    for name in ("process_resident_memory_bytes", "process_open_fds"):
        assert m.value(name) > 0, name


def test_exact_counts_for_a_known_workload(broker):
    """N produce requests of k records each, two refused requests, one full read and a group
    commit: every counter moves by exactly what was sent."""
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique("exact"))
    n, k = 7, 5
    batches = [record_batch([(b"key-%d-%d" % (i, j), b"value-%d-%d" % (i, j) * (i + 1), []) for j in range(k)])
               for i in range(n)]
    before = scrape(broker)
    with RawConn(bootstrap) as raw:
        version = raw.pick_version(API_PRODUCE, [7, 8, 6, 5, 4, 3, 9, 10, 11, 12])
        during = scrape(broker)
        for b in batches:
            assert raw.produce(topic, 0, b)[0] == NONE
        assert raw.produce(topic, 3, batches[0])[0] == UNKNOWN_TOPIC_OR_PARTITION
        corrupt = bytearray(batches[0])
        corrupt[BATCH_CRC_OFFSET] ^= 0xFF
        assert raw.produce(topic, 0, bytes(corrupt))[0] == CORRUPT_MESSAGE
    after = scrape(broker)

    def delta(name, **labels):
        return after.value(name, default=0.0, **labels) - before.value(name, default=0.0, **labels)

    # One connection opened by RawConn (nothing else connects in between), and closed again.
    assert during.value("sluice_connections_total") - before.value("sluice_connections_total") == 1
    wait_until(lambda: scrape(broker).value("sluice_connections_open") == during.value("sluice_connections_open") - 1,
               30, message="the closed connection is no longer open")
    assert delta("sluice_requests_total", api="Produce", version=version) == n + 2
    assert delta("sluice_request_duration_seconds_count", api="Produce") == n + 2
    assert delta("sluice_request_errors_total", api="Produce", error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    assert delta("sluice_request_errors_total", api="Produce", error="CORRUPT_MESSAGE") == 1
    assert after.value("sluice_topic_records_in_total", topic=topic) == n * k
    assert after.value("sluice_topic_bytes_in_total", topic=topic) == sum(len(b) for b in batches)
    assert after.value("sluice_log_end_offset", topic=topic, partition=0) == n * k
    assert after.value("sluice_log_high_watermark", topic=topic, partition=0) == n * k
    assert after.value("sluice_log_size_bytes", topic=topic, partition=0) == sum(len(b) for b in batches)

    # Reading everything once sends exactly the stored batches.
    assert len(read_all(bootstrap, topic)) == n * k
    assert scrape(broker).value("sluice_topic_bytes_out_total", topic=topic) == sum(len(b) for b in batches)

    # A group that committed offset 30 is 5 records behind; more records raise the lag exactly.
    group = unique("g")
    c = consumer(bootstrap, group=group)
    c.commit(offsets=[TopicPartition(topic, 0, 30)], asynchronous=False)
    c.close()
    m = scrape(broker)
    assert m.value("sluice_group_committed_offset", group=group, topic=topic, partition=0) == 30
    assert m.value("sluice_group_lag", group=group, topic=topic, partition=0) == n * k - 30
    with RawConn(bootstrap) as raw:
        assert raw.produce(topic, 0, record_batch([(None, b"x", [])] * 3))[0] == NONE
    assert scrape(broker).value("sluice_group_lag", group=group, topic=topic, partition=0) == n * k - 30 + 3


def test_a_live_group_reports_members_generation_and_rebalances(broker):
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique("members"), partitions=2)
    group = unique("g")
    consumers = [consumer(bootstrap, group=group) for _ in range(2)]
    for c in consumers:
        c.subscribe([topic])

    def joined():
        for c in consumers:
            c.poll(0.2)
        m = scrape(broker)
        return m.value("sluice_group_members", default=-1.0, group=group) == 2 and \
            m.value("sluice_groups", state="Stable") >= 1 and m
    m = wait_until(joined, 60, message="two stable members")
    generation = m.value("sluice_group_generation", group=group)
    assert generation >= 1
    assert m.value("sluice_group_rebalances_total", group=group) == generation
    close_consumers(consumers)


def test_label_churn_leaks_no_series(broker):
    """Topics created and deleted over and over: their series vanish, and the number of series
    after the churn is what it was before."""
    bootstrap = broker.bootstrap
    keep = create_topic(bootstrap, unique("keep"))
    produce_all(producer(bootstrap), keep, [(b"k", b"v")])
    baseline = scrape(broker)
    a = admin(bootstrap)
    seen = set()
    for round_ in range(4):
        names = [create_topic(bootstrap, unique(f"churn{round_}"), partitions=2) for _ in range(3)]
        seen.update(names)
        p = producer(bootstrap)
        for t in names:
            produce_all(p, t, [(b"k", b"v")])
        g = unique("cg")
        c = consumer(bootstrap, group=g)
        c.commit(offsets=[TopicPartition(t, 0, 1) for t in names], asynchronous=False)
        c.close()
        m = scrape(broker)
        assert set(names) <= m.label_values("topic")
        assert m.value("sluice_group_lag", group=g, topic=names[0], partition=0) == 0
        a.delete_consumer_groups([g])[g].result(timeout=30)
        for t in names:
            a.delete_topics([t])[t].result(timeout=30)
    after = scrape(broker)
    leaked = seen & after.label_values("topic")
    assert not leaked, f"series of deleted topics remain: {sorted(leaked)}"
    assert after.label_values("topic") == {keep}
    topical = lambda m: sorted((n, tuple(sorted(l.items()))) for n, l, _ in m.samples if "topic" in l or "group" in l)
    assert topical(after) == topical(baseline)


def test_series_per_family_are_capped_and_the_rest_counted(broker_factory):
    b = broker_factory(args=["--metrics-series-per-family-max", "2"])
    for _ in range(3):
        create_topic(b.bootstrap, unique("cap"))
    m = scrape(b)
    assert len(m.series("sluice_log_end_offset")) == 2
    assert len(m.series("sluice_topic_bytes_in_total")) == 2
    # Each capped per-topic and per-partition family left one label set out.
    assert m.value("sluice_metrics_series_omitted") >= 9


def test_recovery_metrics_after_kill9(broker):
    topic = create_topic(broker.bootstrap, unique("recover"))
    produce_all(producer(broker.bootstrap), topic, [(b"k%d" % i, b"x" * 100) for i in range(500)])
    size = scrape(broker).value("sluice_log_size_bytes", topic=topic, partition=0)
    broker.kill9()
    broker.start()
    m = scrape(broker)
    # The unclean active segment is read whole; nothing was torn, so nothing is cut.
    assert m.value("sluice_log_recovery_scanned_bytes") == size
    assert m.value("sluice_log_recovery_truncated_bytes") == 0
    assert m.value("sluice_log_recovery_seconds") > 0


def test_readyz_and_healthz(broker):
    assert broker.http_get("/healthz") == (200, b"ok\n")
    assert broker.http_get("/readyz") == (200, b"ready\n")


def test_metrics_can_be_turned_off(broker_factory):
    b = broker_factory(args=["--metrics=false"])
    create_topic(b.bootstrap, unique("off"))
    status, body = b.http_get("/metrics")
    assert status == 404 and b"disabled" in body
    assert b.http_get("/readyz")[0] == 200
