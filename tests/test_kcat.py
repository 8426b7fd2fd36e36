"""Goal: Debian's kcat (librdkafka 2.0.2, an older client) lists, produces and consumes; method: run the kcat binary as a subprocess against the broker."""

import re
import subprocess

from helpers import create_topic, unique

TIMEOUT_S = 60


def kcat(*args, stdin=None):
    r = subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, f"kcat {' '.join(args)} exited {r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"
    return r.stdout.decode()


def test_kcat_lists_topic_and_partitions(broker):
    topic = create_topic(broker.bootstrap, unique("kcat-meta"), partitions=3)
    out = kcat("-b", broker.bootstrap, "-L")
    assert re.search(rf'topic "{re.escape(topic)}" with 3 partitions:', out), out
    for p in range(3):
        assert re.search(rf"partition {p}, leader 0,", out), out
    assert "1 brokers:" in out and f"broker 0 at {broker.advertised}" in out, out


def test_kcat_produce_keys_then_consume_from_beginning(broker):
    topic = create_topic(broker.bootstrap, unique("kcat-pc"), partitions=1)
    lines = [f"key{i}:value {i} {'x' * (i % 7)}" for i in range(50)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K:", stdin=("\n".join(lines) + "\n").encode())
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%k:%s\\n")
    assert out.splitlines() == lines
    # Offsets are dense from 0 and reported per record.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%o\\n")
    assert out.splitlines() == [str(i) for i in range(50)]
