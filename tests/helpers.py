"""Client-side helpers shared by the tests: topic creation, exhaustive reads, segment files."""

import subprocess
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import broker_env, sluice_binary


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, name, partitions=1, config=None, timeout=30):
    """Creates a topic with AdminClient and waits until its metadata shows every partition."""
    a = admin(bootstrap)  # keep the handle alive until the future resolves
    futures = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=timeout)
    futures[name].result(timeout=timeout)
    wait_for_partitions(bootstrap, name, partitions, timeout)
    return name


def wait_for_partitions(bootstrap, topic, partitions, timeout=30):
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        md = a.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None:
            seen = len(t.partitions)
            if seen == partitions:
                return md
        time.sleep(0.1)
    raise AssertionError(f"topic {topic}: {seen} partitions in metadata after {timeout}s, want {partitions}")


def producer(bootstrap, **conf):
    base = {"bootstrap.servers": bootstrap, "acks": "all"}
    base.update(conf)
    return Producer(base)


class Delivered:
    """A delivery callback that records (partition, offset) per message, and errors separately."""

    def __init__(self):
        self.ok = []
        self.errors = []

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append((err, msg.key()))
        else:
            self.ok.append((msg.partition(), msg.offset(), msg.key(), msg.value()))


def produce_all(p, topic, items, partition=None, delivered=None):
    """Produces (key, value) pairs, waiting for room when the local queue is full, then flushes.
    Returns the Delivered record; asserts that every message was acknowledged."""
    d = delivered or Delivered()
    for key, value in items:
        kwargs = {"key": key, "value": value, "on_delivery": d}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(60)
    assert remaining == 0, f"{remaining} messages still unacknowledged after 60s"
    assert not d.errors, f"{len(d.errors)} delivery errors, first: {d.errors[:3]}"
    return d


def consumer(bootstrap, group=None, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group or unique("reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    base.update(conf)
    return Consumer(base)


def close_consumers(consumers, timeout=60):
    """Closes the members of one group. First each unsubscribes, and they are polled until every
    assignment is revoked; only then are they closed, at the same time.

    Why: closed while assigned, a member revokes inside `close()`, and confluent-kafka's rebalance
    handler calls `rd_kafka_assign` there holding the GIL. Caught in a rebalance another member's
    leave started, that call once never returned (gdb of a hung CI run: Consumer_close →
    rd_kafka_consumer_close → Consumer_rebalance_cb → rd_kafka_assign → rd_kafka_op_req, waiting
    with no limit), which stopped every Python thread, pytest-timeout's too. Revoked by `poll()`,
    the same callback runs the way every rebalance in the suite does. Closed one by one instead,
    each leave starts a rebalance the members not yet closed (and no longer polled) must take part
    in. Closing is clean-up here, so a close still running after `timeout` is left."""
    deadline = time.monotonic() + timeout
    revoke_all(consumers, deadline)
    threads = [threading.Thread(target=c.close, daemon=True) for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


def revoke_all(consumers, deadline):
    """Unsubscribes group members and polls them until none has an assignment (or `deadline`), so
    a `close()` after it has nothing to revoke (see close_consumers). Records polled meanwhile
    are dropped: they were neither processed nor committed."""
    for c in consumers:
        c.unsubscribe()
    while time.monotonic() < deadline and any(c.assignment() for c in consumers):
        for c in consumers:
            c.poll(0.1)


def watermarks(bootstrap, topic, partition=0, timeout=10):
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout, cached=False)
    finally:
        c.close()


def read_all(bootstrap, topic, timeout=120, partitions=None):
    """Every record now in `topic`, read from the log start to the high watermark of each
    partition (taken at the start), by partition assignment (no group). Returns a list of
    confluent Message objects in consumption order."""
    c = consumer(bootstrap)
    try:
        md = c.list_topics(topic, timeout=10)
        t = md.topics[topic]
        assert t.error is None, t.error
        parts = sorted(t.partitions) if partitions is None else list(partitions)
        ends = {}
        for p in parts:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            if high > low:
                ends[p] = high
        if not ends:
            return []
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        out = []
        next_offset = {p: -1 for p in ends}
        deadline = time.monotonic() + timeout
        while any(next_offset[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"read_all({topic}): after {timeout}s at {next_offset}, high watermarks {ends}, "
                    f"{len(out)} records")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                out.append(m)
                next_offset[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def segment_files(partition_dir: Path):
    return sorted(Path(partition_dir).glob("*.log"))


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    """Polls `predicate` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message}: not reached within {timeout}s (last: {last!r})")


# ---------------------------------------------------------------- the `sluice` CLI

def sluice_env(broker, **extra):
    """SLUICE_ADMIN and SLUICE_BOOTSTRAP_SERVER pointing at `broker`, plus `extra` variables."""
    return {"SLUICE_ADMIN": f"http://{broker.admin}", "SLUICE_BOOTSTRAP_SERVER": broker.bootstrap, **extra}


def run_sluice(*args, env=None, input=None, cwd=None, timeout=300, text=True):
    """`sluice ARGS` as a user runs it (no stray SLUICE_* of ours, `env` added); the CompletedProcess."""
    return subprocess.run([str(sluice_binary()), *map(str, args)], input=input, cwd=cwd, capture_output=True,
                          text=text, timeout=timeout, env=broker_env(env))


def sluice_expect(env, *args, expect=0):
    """`sluice ARGS` that must exit `expect` and never panic; (stdout lines, stderr)."""
    r = run_sluice(*args, env=env)
    assert r.returncode == expect, f"exit {r.returncode}, want {expect}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "panicked" not in r.stderr, r.stderr
    return r.stdout.splitlines(), r.stderr
