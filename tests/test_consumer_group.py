"""Goal: a 3-member consumer group on 6 partitions processes every record exactly once while a member leaves, and a restarted member resumes at the committed offset; method: confluent-kafka consumers in threads committing synchronously."""

import threading
import time

from confluent_kafka import TopicPartition

from helpers import consumer, create_topic, produce_all, producer, revoke_all, unique

PARTITIONS = 6
FIRST_HALF = 1500
SECOND_HALF = 1500
CLOSE_AFTER = 500  # the leaving member stops once the group has processed this many


class Member(threading.Thread):
    """One group member. A record counts as processed only once its offset commit succeeded
    (synchronous commit of offset+1 right after poll). That makes "exactly once" an exact
    assertion: a commit that fails (e.g. REBALANCE_IN_PROGRESS) leaves the record uncounted and
    it is redelivered, to this member or to whichever member the partition moves to, from the
    committed offset. A commit the broker accepted with the member's current generation can only
    be overtaken by a later generation that starts from it, so a counted record is never counted
    again unless the broker hands out a partition from a stale offset."""

    def __init__(self, name, bootstrap, group, topic, processed, lock):
        super().__init__(name=name, daemon=True)
        self.consumer = consumer(bootstrap, group=group, **{
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 60000})
        self.topic = topic
        self.processed = processed
        self.lock = lock
        self.stop = threading.Event()
        self.assignment = []
        self.failed_commits = 0
        self.error = None

    def run(self):
        try:
            self.consumer.subscribe([self.topic])
            while not self.stop.is_set():
                msg = self.consumer.poll(0.2)
                self.assignment = sorted(tp.partition for tp in self.consumer.assignment())
                if msg is None:
                    continue
                if msg.error():
                    raise RuntimeError(msg.error())
                try:
                    self.consumer.commit(message=msg, asynchronous=False)
                except Exception:  # the commit did not happen: make the record come back
                    self.failed_commits += 1
                    try:
                        self.consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                    except Exception:
                        pass  # revoked meanwhile: the next owner starts from the committed offset
                    continue
                with self.lock:
                    self.processed.append((msg.partition(), msg.offset(), msg.key(), self.name))
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            # Revoke through poll() before close: a close that revokes during a rebalance once
            # blocked forever in confluent-kafka holding the GIL (helpers.close_consumers).
            try:
                revoke_all([self.consumer], time.monotonic() + 30)
            finally:
                self.consumer.close()


def wait(cond, timeout, what, members=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            assert m.error is None, f"{m.name} failed: {m.error!r}"
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_group_processes_each_record_once_across_a_member_leaving_and_resumes(broker):
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique("group"), partitions=PARTITIONS)
    group = unique("g")
    processed, lock = [], threading.Lock()
    members = [Member(f"m{i}", bootstrap, group, topic, processed, lock) for i in range(3)]
    for m in members:
        m.start()

    # All three members must hold partitions before data arrives, or this is not a group test.
    def balanced():
        parts = [set(m.assignment) for m in members]
        return all(parts) and sorted(sum(map(list, parts), [])) == list(range(PARTITIONS))
    wait(balanced, 60, "the 6 partitions to be spread over all 3 members", members)

    p = producer(bootstrap, **{"linger.ms": 5})
    acked = produce_all(p, topic, [(b"k%d" % i, b"v%d" % i) for i in range(FIRST_HALF)]).ok

    leaving = members[0]
    wait(lambda: len(processed) >= CLOSE_AFTER, 120, f"{CLOSE_AFTER} records processed", members)
    leaving.stop.set()
    leaving.join(60)
    assert not leaving.is_alive(), "the leaving member did not close"
    assert leaving.error is None, leaving.error

    acked += produce_all(p, topic, [(b"k%d" % i, b"v%d" % i) for i in range(FIRST_HALF, FIRST_HALF + SECOND_HALF)]).ok
    total = FIRST_HALF + SECOND_HALF
    assert len(acked) == total
    wait(lambda: len(processed) >= total, 180, f"{total} records processed", members[1:])
    time.sleep(2)  # any duplicate delivered late would land now
    for m in members[1:]:
        m.stop.set()
    for m in members[1:]:
        m.join(60)
        assert m.error is None, f"{m.name}: {m.error!r}"

    with lock:
        seen = [(part, off) for part, off, _key, _who in processed]
    expected = sorted((part, off) for part, off, _k, _v in acked)
    duplicates = len(seen) - len(set(seen))
    assert duplicates == 0, f"{duplicates} records processed twice"
    assert sorted(seen) == expected, f"processed {len(seen)} distinct records, acked {len(expected)}"
    by_member = {m.name: sum(1 for r in processed if r[3] == m.name) for m in members}
    assert by_member["m0"] > 0, f"the leaving member processed nothing: {by_member}"
    assert by_member["m1"] + by_member["m2"] > 0

    # A new member of the same group resumes at the committed offsets: it sees only new records.
    fresh = [(b"new%d" % i, b"n%d" % i) for i in range(300)]
    new_acked = produce_all(p, topic, fresh).ok
    c = consumer(bootstrap, group=group)
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    quiet_until = None
    while time.monotonic() < deadline:
        for msg in c.consume(num_messages=500, timeout=0.5):
            assert not msg.error(), msg.error()
            got.append((msg.partition(), msg.offset(), msg.key()))
        if len(got) >= len(fresh):
            quiet_until = quiet_until or time.monotonic() + 2  # then make sure nothing more comes
            if time.monotonic() > quiet_until:
                break
    c.close()
    assert sorted(got) == sorted((part, off, key) for part, off, key, _v in new_acked), \
        f"resumed consumer read {len(got)} records; {sum(1 for g in got if not g[2].startswith(b'new'))} were old"
