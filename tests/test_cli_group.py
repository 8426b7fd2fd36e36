"""Goal: `sluice consume --group G` is a real consumer-group member: two CLI consumers in one
group split a 4-partition topic and together print every record exactly once, commit what they
printed (on Ctrl-C too), and a confluent-kafka member of the same group shares the partitions with
a CLI member. Method: the real binary against a real broker; assignments read from the admin
API's group description, commits from confluent-kafka."""

import signal
import subprocess
import threading
import time

from confluent_kafka import TopicPartition

from conftest import broker_env, sluice_binary
from helpers import close_consumers, consumer, create_topic, produce_all, producer, wait_until
from transforms import request


class CliMember:
    """A background `sluice consume TOPIC --group G`, its stdout lines collected."""

    def __init__(self, broker, topic, group, *extra):
        env = broker_env({"SLUICE_BOOTSTRAP_SERVER": broker.bootstrap})
        self.proc = subprocess.Popen([str(sluice_binary()), "consume", topic, "--group", group, "--from-beginning", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def interrupt(self):
        """Ctrl-C; returns (exit code, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return code, self.proc.stderr.read()


def assignments(broker, group):
    """{member client id + id: sorted partitions} of the group, once it is Stable."""
    status, body = request(broker, "GET", f"/v1/groups/{group}")
    if status != 200 or body["state"] != "Stable":
        return None
    return {m["member_id"]: sorted(p for a in m["assignment"] for p in a["partitions"]) for m in body["members"]}


def wait_split(broker, group, members):
    """Waits until the Stable group has `members` members whose assignments split 0..3."""
    def split():
        got = assignments(broker, group)
        if got is None or len(got) != members:
            return None
        parts = sorted(p for ps in got.values() for p in ps)
        return got if parts == [0, 1, 2, 3] and all(got.values()) else None
    return wait_until(split, 90, interval=0.3, message=f"{members} members splitting 4 partitions")


def test_two_cli_consumers_split_partitions_and_read_every_record_once(broker):
    create_topic(broker.bootstrap, "grp", partitions=4)
    a = CliMember(broker, "grp", "g2")
    b = CliMember(broker, "grp", "g2")
    split = wait_split(broker, "g2", 2)
    assert sorted(split.values()) == [[0, 1], [2, 3]], split
    produce_all(producer(broker.bootstrap), "grp", [(b"k%d" % i, b"v%d" % i) for i in range(400)])
    wait_until(lambda: len(a.lines) + len(b.lines) >= 400, 90, message="400 records printed")
    time.sleep(1)
    for m in (a, b):
        code, err = m.interrupt()
        assert code == 0 and "panicked" not in err, err
    assert a.lines and b.lines, "both members read"
    assert sorted(a.lines + b.lines) == sorted("v%d" % i for i in range(400)), "every record once"
    # What they printed is committed: a group reader sees every partition at its end.
    c = consumer(broker.bootstrap, group="g2")
    try:
        committed = c.committed([TopicPartition("grp", p) for p in range(4)], timeout=30)
        ends = [c.get_watermark_offsets(TopicPartition("grp", p), timeout=30)[1] for p in range(4)]
    finally:
        c.close()
    assert [tp.offset for tp in committed] == ends
    # Both left: the group is empty, and a new member resumes at the commits (prints nothing).
    wait_until(lambda: request(broker, "GET", "/v1/groups/g2")[1]["members"] == [], 30, message="members left")
    r = subprocess.run([str(sluice_binary()), "consume", "grp", "--group", "g2", "--exit-at-end"], capture_output=True, text=True,
                       timeout=120, env=broker_env({"SLUICE_BOOTSTRAP_SERVER": broker.bootstrap}))
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def test_cli_member_shares_partitions_with_a_confluent_kafka_member(broker):
    create_topic(broker.bootstrap, "mixed", partitions=4)
    produce_all(producer(broker.bootstrap), "mixed", [(None, b"m%d" % i) for i in range(200)])
    cli = CliMember(broker, "mixed", "gm")
    wait_until(lambda: len(cli.lines) == 200, 60, message="the lone CLI member reads all 4 partitions")
    other = consumer(broker.bootstrap, group="gm", **{"partition.assignment.strategy": "range"})
    other.subscribe(["mixed"])
    got = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            m = other.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        split = wait_split(broker, "gm", 2)
        assert sorted(split.values()) == [[0, 1], [2, 3]], split
        # New records go to both members, each record to exactly one.
        produce_all(producer(broker.bootstrap), "mixed", [(None, b"n%d" % i) for i in range(200)])
        wait_until(lambda: len(got) + len(cli.lines) >= 400, 90, message="new records read")
        time.sleep(1)
        new_cli = [line for line in cli.lines if line.startswith("n")]
        assert new_cli and got, (len(new_cli), len(got))
        assert sorted(new_cli + [v.decode() for v in got]) == sorted("n%d" % i for i in range(200))
    finally:
        stop.set()
        poller.join(timeout=10)
        code, err = cli.interrupt()
        close_consumers([other])
    assert code == 0, err
