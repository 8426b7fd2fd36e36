"""Fixtures that run the real `sluice` binary on free loopback ports, one broker per test.

A `Broker` starts `sluice serve` with port 0 for both listeners and reads the single
`sluice ready kafka=… admin=… advertised=… listeners=…` stdout line to learn the bound addresses. Its stderr
goes to a file in the test's tmp dir; when a test fails, the tail of every broker's stderr is
attached to the report. Brokers still running at teardown are killed, and each broker asks the
kernel to SIGKILL it if the pytest process dies, so a hang or a crash never leaves one behind.
"""

import base64
import json
import os
import re
import select
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
READY_RE = re.compile(rb"^sluice ready kafka=(\S+) admin=(\S+) advertised=(\S+)(?: listeners=(\S+))?(?: data_dir=(.+?))?\s*$")
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


def sluice_binary() -> Path:
    path = Path(os.environ.get("SLUICE_BIN", REPO / "target" / "release" / "sluice"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo build --release -p sluice` (tests/run does)", pytrace=False)
    return path


# `setpriv --pdeathsig KILL` (util-linux) asks the kernel to SIGKILL the broker when the thread
# that started it dies, then execs it (same pid). Brokers are started from pytest's main thread,
# which lives as long as the run. Not a `preexec_fn`: Python code run between fork and exec can
# deadlock in a process with threads (librdkafka's, the stdout drainers), and such a child keeps
# every descriptor of pytest's open, CI's output among them.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"]


def broker_env(extra=None):
    """The inherited environment without any SLUICE_* setting (a stray one would change every
    broker the suite starts), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.setdefault("RUST_LOG", "info")
    env["NO_COLOR"] = "1"  # plain stderr logs in the files attached to failures
    env.update(extra or {})
    return env


class Broker:
    """One `sluice serve` process over a data directory that outlives restarts."""

    def __init__(self, data_dir: Path, log_path: Path, args=(), env=None, binary=None, cwd=None):
        self.binary = binary or sluice_binary()
        self.cwd = cwd
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.args = list(args)
        self.env = dict(env or {})
        self.proc = None
        self.kafka = self.admin = self.advertised = None
        self.starts = 0
        # (user, password) for the admin API, which needs them when a Kafka listener uses SASL.
        self.admin_credentials = None

    # ------------------------------------------------------------ lifecycle

    def command(self):
        return [str(self.binary), "serve",
                "--kafka-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
                "--data-dir", str(self.data_dir), *self.args]

    def start(self, extra_args=(), env=None):
        """Starts the broker and waits for its ready line; returns the bootstrap address."""
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            DIE_WITH_PARENT + self.command() + list(extra_args), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=log, env=broker_env({**self.env, **(env or {})}), cwd=self.cwd)
        log.close()
        line = self._read_ready_line()
        m = READY_RE.match(line)
        assert m, f"unexpected ready line {line!r}\n{self.stderr_tail()}"
        self.kafka, self.admin, self.advertised = (g.decode() for g in m.groups()[:3])
        self.data_dir_reported = m.group(5).decode() if m.group(5) else None
        # listeners=NAME://host:port,... (every Kafka listener; the first one is `kafka`).
        self.listeners = {}
        for item in (m.group(4) or b"").decode().split(","):
            if item:
                name, _, addr = item.partition("://")
                self.listeners[name] = addr
        # Keep draining stdout so a chatty broker can never block on a full pipe.
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        return self.kafka

    def _read_ready_line(self) -> bytes:
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill9()
                raise AssertionError(f"no ready line within {READY_TIMEOUT_S}s\n{self.stderr_tail()}")
            readable, _, _ = select.select([fd], [], [], min(left, 0.5))
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.proc.wait(timeout=10)
                    raise AssertionError(f"broker exited with {code} before its ready line\n{self.stderr_tail()}")
                buf += chunk
        line, _, rest = buf.partition(b"\n")
        assert not rest.strip(), f"unexpected stdout after the ready line: {rest!r}"
        return line

    @staticmethod
    def _drain(pipe):
        try:
            while pipe.read(4096):
                pass
        except (OSError, ValueError):
            pass

    @property
    def bootstrap(self):
        return self.kafka

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL, as a crash would."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self):
        """SIGTERM and wait: the broker must exit 0 (graceful shutdown)."""
        assert self.running(), "broker is not running"
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"no exit within {STOP_TIMEOUT_S}s of SIGTERM\n{self.stderr_tail()}")
        assert code == 0, f"exit code {code} after SIGTERM\n{self.stderr_tail()}"

    def restart(self, extra_args=(), env=None):
        """Stops (gracefully, if still running) and starts again on the same data directory.
        Ports change; returns the new bootstrap address."""
        if self.running():
            self.stop()
        return self.start(extra_args, env)

    # ------------------------------------------------------------ admin HTTP

    def http_get(self, path, timeout=10):
        """(status, body bytes) of GET http://admin{path}."""
        headers = {}
        if self.admin_credentials:
            token = base64.b64encode(":".join(self.admin_credentials).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(f"http://{self.admin}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def cluster_info(self):
        status, body = self.http_get("/v1/cluster")
        assert status == 200, (status, body)
        return json.loads(body)

    # ------------------------------------------------------------ diagnostics

    def stderr_tail(self, lines=80):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        tail = text.splitlines()[-lines:]
        return f"--- {self.log_path} (last {len(tail)} lines) ---\n" + "\n".join(tail)

    def partition_dir(self, topic, partition=0) -> Path:
        return self.data_dir / f"{topic}-{partition}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, b in enumerate(getattr(item, "_sluice_brokers", [])):
            report.sections.append((f"sluice broker {i} stderr", b.stderr_tail(200)))


@pytest.fixture
def broker_factory(request, tmp_path):
    """make(args=(), env=None, start=True) -> Broker with its own data dir under tmp_path."""
    brokers = []
    request.node._sluice_brokers = brokers

    def make(args=(), env=None, start=True, data_dir=None, default_args=True):
        n = len(brokers)
        base = ["--group-initial-rebalance-delay-ms", "100"] if default_args else []
        b = Broker(data_dir or tmp_path / f"data{n}", tmp_path / f"broker{n}.stderr.log",
                   args=base + list(args), env=env)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in brokers:
        if b.running():
            b.kill9()


@pytest.fixture
def broker(broker_factory):
    """A running broker with defaults suited to tests (short group rebalance delay)."""
    return broker_factory()
