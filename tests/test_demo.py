"""Goal: the README's run command (`scripts/demo`) works for a new user exactly as written: from a
fresh `git clone` in a fresh directory, with no flags and no SLUICE_* environment but the two ports
(so parallel tests do not collide on 9092/9644); method: clone the committed tree, run the script,
run the commands it prints (produce `hello`, consume `HELLO`), then Ctrl-C (SIGINT to its process
group, as a terminal sends it) and check the broker went with it.

The clone gets a copy of this checkout's `target/release` (a developer who built once has one), so
the test costs seconds rather than a full release build; `plugins/` is built from nothing, and the
data directory is the default `./sluice-data` of the clone: the relative path that once made the
transform engine refuse to start."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import REPO, broker_env, sluice_binary

DEMO_READY_TIMEOUT_S = 900  # plugins/build compiles the SDK and the plugins for wasm32-wasip1
COMMAND_TIMEOUT_S = 120


# Older than any build: the clone's sources get this mtime so that cargo, which compares source
# and artifact mtimes, takes the copied artifacts (copied with their own mtimes) as up to date.
SOURCES_MTIME = 946684800  # 2000-01-01


def fresh_clone(tmp_path: Path) -> Path:
    """A clone of the committed tree with this checkout's release build copied in."""
    clone = tmp_path / "sluice"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True, timeout=300)
    for path in clone.rglob("*"):
        if ".git" not in path.relative_to(clone).parts and not path.is_symlink():
            os.utime(path, (SOURCES_MTIME, SOURCES_MTIME))
    release = sluice_binary().parent
    shutil.copytree(release, clone / "target" / "release", symlinks=True,
                    ignore=shutil.ignore_patterns("incremental", "examples"))
    return clone


def demo_env():
    """The environment of a new user's shell: no SLUICE_* and no cargo target override; only the
    ports are ours to choose."""
    env = {k: v for k, v in broker_env().items() if k not in ("CARGO_TARGET_DIR", "RUST_LOG", "NO_COLOR")}
    env.update({"SLUICE_KAFKA_ADDR": "127.0.0.1:0", "SLUICE_ADMIN_ADDR": "127.0.0.1:0"})
    return env


def read_until(proc, marker: bytes, timeout: float) -> str:
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        assert proc.poll() is None, f"scripts/demo exited with {proc.returncode}:\n{out.decode(errors='replace')}"
        assert time.monotonic() < deadline, out.decode(errors="replace")
        if select.select([proc.stdout], [], [], 1)[0]:
            out += os.read(proc.stdout.fileno(), 65536)
    return out.decode()


def test_demo_runs_from_a_fresh_clone_with_no_flags(tmp_path):
    clone = fresh_clone(tmp_path)
    env = demo_env()
    proc = subprocess.Popen(["scripts/demo"], cwd=clone, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    kafka = None
    try:
        text = read_until(proc, b"Ctrl-C stops the broker.", DEMO_READY_TIMEOUT_S)
        for kind, name in [("topic", "quickstart-in"), ("topic", "quickstart-out"), ("transform", "uppercase"),
                           ("pipeline", "quickstart")]:
            assert f"{kind}/{name} created" in text, text
        kafka = re.search(r"Sluice is running \(Kafka (\S+),", text).group(1)
        assert (clone / "sluice-data" / "transforms").is_dir(), "the default data dir is ./sluice-data of the clone"
        # The commands the script prints, run as printed (in the clone, where they were printed for).
        produce = next(line.strip() for line in text.splitlines() if "| " in line and " produce quickstart-in" in line)
        consume = next(line.split("#")[0].strip() for line in text.splitlines() if " consume quickstart-out" in line)
        subprocess.run(["bash", "-c", produce], cwd=clone, env=env, check=True, timeout=COMMAND_TIMEOUT_S)
        out = subprocess.run(["bash", "-c", consume], cwd=clone, env=env, check=True, timeout=COMMAND_TIMEOUT_S,
                             capture_output=True, text=True)
        assert out.stdout.split() == ["HELLO"], (out.stdout, out.stderr)
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
