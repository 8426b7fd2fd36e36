"""Goal: long operations (`sluice produce --file BIG`, `sluice apply -f DIR` with many objects,
`sluice transform reset --wait` replaying history) show a progress line when stderr is a terminal
and print nothing to stderr when it is piped. Method: the real binary against a real broker, once
with stderr on a pseudo-terminal (python `pty`), once with stderr piped; the effects are checked
with confluent-kafka so a silent failure cannot pass."""

import os
import pty
import subprocess
import threading

from conftest import broker_env, sluice_binary
from helpers import create_topic, produce_all, producer, watermarks
from test_manifests import built_plugins
from transforms import deploy_ok, describe, wait_caught_up


def run(broker, args, terminal):
    """Runs `sluice ARGS`; stderr on a pty when `terminal`, else piped. Returns (exit, stdout,
    stderr text)."""
    env = broker_env({"SLUICE_ADMIN": f"http://{broker.admin}", "SLUICE_BOOTSTRAP_SERVER": broker.bootstrap})
    cmd = [str(sluice_binary()), *map(str, args)]
    if not terminal:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        return r.returncode, r.stdout, r.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out = p.communicate(timeout=300)[0].decode()
    reader.join(timeout=30)
    os.close(master)
    return p.returncode, out, b"".join(chunks).decode(errors="replace")


def test_produce_big_file_shows_progress_only_on_a_terminal(broker, tmp_path):
    create_topic(broker.bootstrap, "prog", partitions=2)
    big = tmp_path / "big.txt"
    big.write_text("".join(f"record {i} " + "x" * 100 + "\n" for i in range(60_000)))
    code, out, err = run(broker, ["produce", "prog", "--file", big], terminal=True)
    assert code == 0, err
    assert "\r" in err and "records sent to prog" in err, repr(err[:500])
    assert "60000 records sent to prog in " in err, repr(err[-300:])
    code, out, err = run(broker, ["produce", "prog", "--file", big], terminal=False)
    assert (code, err) == (0, ""), err
    assert sum(watermarks(broker.bootstrap, "prog", p)[1] for p in range(2)) == 120_000


def many_topics(path, n):
    path.write_text("---\n".join(f"apiVersion: sluice/v1\nkind: Topic\nmetadata:\n  name: many-{i}\nspec:\n  partitions: 1\n" for i in range(n)))


def test_apply_many_objects_shows_progress_only_on_a_terminal(broker, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    many_topics(d / "a.yaml", 8)
    code, out, err = run(broker, ["apply", "-f", d], terminal=True)
    assert code == 0, err
    assert out.splitlines() == [f"topic/many-{i} created" for i in range(8)]
    for i in range(8):
        assert f"[{i + 1}/8] topic/many-{i}" in err, repr(err)
    many_topics(d / "a.yaml", 12)
    code, out, err = run(broker, ["apply", "-f", d], terminal=False)
    assert (code, err) == (0, ""), err
    assert out.splitlines()[-1] == "topic/many-11 created"


def test_reset_replaying_history_shows_progress_only_on_a_terminal(broker):
    create_topic(broker.bootstrap, "hist-in", partitions=1)
    create_topic(broker.bootstrap, "hist-out", partitions=1)
    built_plugins()
    produce_all(producer(broker.bootstrap), "hist-in", [(None, b"r%d" % i) for i in range(30_000)])
    deploy_ok(broker, {"name": "hist", "input": "hist-in", "output": "hist-out"}, (built_plugins() / "uppercase.wasm").read_bytes())
    wait_caught_up(broker, "hist", 30_000, timeout=300)
    code, out, err = run(broker, ["transform", "reset", "hist", "--to-earliest", "--wait"], terminal=True)
    assert code == 0, err
    assert "replaying: " in err and "records left" in err, repr(err)
    assert "replay caught up (lag 0)" in err, repr(err)
    assert describe(broker, "hist")["lag"] == 0
    code, out, err = run(broker, ["transform", "reset", "hist", "--to-earliest", "--wait"], terminal=False)
    assert (code, err) == (0, ""), err
