"""Goal: the README's run command (`scripts/demo`) starts a broker with the quickstart pipeline
that works as the README says; method: run the script as a user would (on free ports, in a temp
data dir), produce with confluent-kafka, read the upper-cased output, then Ctrl-C (SIGINT)."""

import os
import re
import select
import signal
import socket
import subprocess
import time

from conftest import REPO, broker_env
from helpers import producer, read_all, wait_until

DEMO_READY_TIMEOUT_S = 600  # the script runs cargo and plugins/build first (no-ops once built)


def test_demo_script_serves_the_quickstart_pipeline(tmp_path):
    proc = subprocess.Popen([str(REPO / "scripts" / "demo"), "--kafka-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
                             "--data-dir", str(tmp_path / "data")],
                            cwd=REPO, env=broker_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    kafka = None
    try:
        out = b""
        deadline = time.monotonic() + DEMO_READY_TIMEOUT_S
        while b"Ctrl-C stops the broker." not in out:
            assert proc.poll() is None, out.decode()
            assert time.monotonic() < deadline, out.decode()
            if select.select([proc.stdout], [], [], 1)[0]:
                out += os.read(proc.stdout.fileno(), 65536)
        text = out.decode()
        for kind, name in [("topic", "quickstart-in"), ("topic", "quickstart-out"), ("transform", "uppercase"), ("pipeline", "quickstart")]:
            assert f"{kind}/{name} created" in text, text
        kafka = re.search(r"Sluice is running \(Kafka (\S+),", text).group(1)
        p = producer(kafka)
        for word in (b"hello", b"sluice"):
            p.produce("quickstart-in", word)
        assert p.flush(30) == 0
        got = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(read_all(kafka, "quickstart-out")), 120,
                         message="upper-cased output")
        assert [m.value() for m in got] == [b"HELLO", b"SLUICE"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Ctrl-C stops the script and its broker with it: nothing listens on the Kafka port any more.
    host, port = kafka.rsplit(":", 1)
    with socket.socket() as s:
        assert s.connect_ex((host, int(port))) != 0, "the broker outlived scripts/demo"
