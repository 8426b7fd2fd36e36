"""Goal: every `sluice` client command (get, describe, topic, produce, consume, transform
logs|pause|resume|reset) works against a real broker and agrees with real Kafka clients; errors
are one clear line and a non-zero exit. Method: run the release binary as a subprocess with
SLUICE_ADMIN / SLUICE_BOOTSTRAP_SERVER pointing at a test broker, and check each effect (or
produce each input) with confluent-kafka."""

import json
import socket
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource

from conftest import broker_env, sluice_binary
from helpers import (run_sluice, sluice_env, admin, close_consumers, consumer, create_topic, produce_all, producer, read_all,
                     unique, wait_for_partitions, wait_until)
from test_security import ADMIN_PASSWORD, ADMIN_USER, certs, secure_broker  # noqa: F401 (certs is a fixture)
from transforms import deploy_ok, describe, key_partition, plugin


def sluice(broker, *args, input=None, timeout=120, env=None):
    """Runs `sluice ARGS` against `broker`; returns the CompletedProcess (text)."""
    return run_sluice(*args, input=input, timeout=timeout, env={**(sluice_env(broker) if broker else {}), **(env or {})})


def ok(broker, *args, **kw):
    r = sluice(broker, *args, **kw)
    assert r.returncode == 0, f"sluice {' '.join(args)} exited {r.returncode}: {r.stderr}"
    return r.stdout


def fails(broker, *args, **kw):
    """Runs a command that must fail: returns its single stderr line."""
    r = sluice(broker, *args, **kw)
    assert r.returncode != 0, f"sluice {' '.join(args)} succeeded: {r.stdout}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got: {r.stderr!r}"
    assert "panicked" not in r.stderr
    return lines[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["get"], ["describe"], ["topic"], ["produce"], ["consume"], ["transform"]])
def test_every_command_has_help_with_examples(command):
    r = subprocess.run([str(sluice_binary()), *command, "--help"], capture_output=True, text=True, timeout=30, env=broker_env())
    assert r.returncode == 0, r.stderr
    assert "Examples:" in r.stdout and f"sluice {command[0]}" in r.stdout.split("Examples:")[1], r.stdout


def test_topic_create_get_describe_alter_delete(broker):
    name = unique("cli")
    out = ok(broker, "topic", "create", name, "--partitions", "3", "--config", "retention.ms=3600000")
    assert out == f"topic/{name} created with 3 partitions\n"
    wait_for_partitions(broker.bootstrap, name, 3)
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    a = admin(broker.bootstrap)  # keep the handle alive until the futures resolve
    assert a.describe_configs([res])[res].result(timeout=30)["retention.ms"].value == "3600000"

    table = ok(broker, "get", "topics")
    assert table.splitlines()[0].split() == ["NAME", "PARTITIONS", "CONFIGS"]
    assert [name, "3", "retention.ms=3600000"] in [line.split() for line in table.splitlines()]
    listed = json.loads(ok(broker, "get", "topics", "-o", "json"))
    assert {"name": name, "partitions": 3, "configs": {"retention.ms": "3600000"}, "internal": False} in listed
    assert f"- name: {name}\n" in ok(broker, "get", "topics", "-o", "yaml")

    produce_all(producer(broker.bootstrap), name, [(None, b"x")] * 4, partition=2)
    report = ok(broker, "describe", "topic", name)
    assert f"Name:        {name}\n" in report and "Partitions:  3\n" in report, report
    rows = {line.split()[0]: line.split() for line in report.splitlines() if line[:1].isdigit()}
    assert rows["2"][:4] == ["2", "0", "4", "4"] and rows["0"][:4] == ["0", "0", "0", "0"], report
    assert "retention.ms  3600000" in report, report
    detail = json.loads(ok(broker, "describe", "topic", name, "-o", "json"))
    assert detail["partitions"][2]["high_watermark"] == 4

    out = ok(broker, "topic", "alter", name, "--partitions", "5", "--config", "cleanup.policy=compact", "--reset", "retention.ms")
    assert out == f"topic/{name} altered: 5 partitions\n"
    wait_for_partitions(broker.bootstrap, name, 5)
    configs = a.describe_configs([res])[res].result(timeout=30)
    assert configs["cleanup.policy"].value == "compact" and configs["retention.ms"].is_default

    assert ok(broker, "topic", "delete", name) == f"topic/{name} deleted\n"
    assert name not in admin(broker.bootstrap).list_topics(timeout=10).topics


def test_produce_with_the_cli_consume_with_confluent(broker):
    topic = create_topic(broker.bootstrap, unique("cli-in"), partitions=4)
    lines = [f"key-{i % 37}:value {i}" for i in range(20_000)]
    r = sluice(broker, "produce", topic, "--key-sep", ":", input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "progress must stay quiet when stderr is not a terminal"
    got = read_all(broker.bootstrap, topic)
    assert len(got) == 20_000
    # Per partition the order is the input order, and every key sits where Kafka's default
    # partitioner (murmur2) puts it.
    for m in got:
        assert m.partition() == key_partition(m.key(), 4), (m.key(), m.partition())
    by_key = {}
    for m in got:
        by_key.setdefault(m.key(), []).append(m.value())
    for k, values in by_key.items():
        assert values == [f"value {i}".encode() for i in range(20_000) if f"key-{i % 37}".encode() == k]

    # Unkeyed lines from a file, all to one partition; empty lines are skipped.
    path = broker.data_dir.parent / "lines.txt"
    path.write_text("a\n\nb\nc\n")
    assert ok(broker, "produce", topic, "--file", str(path), "--partition", "3") == ""
    tail = read_all(broker.bootstrap, topic, partitions=[3])[-3:]
    assert [m.value() for m in tail] == [b"a", b"b", b"c"] and all(m.key() is None for m in tail)


def test_produce_with_confluent_consume_with_the_cli(broker):
    topic = create_topic(broker.bootstrap, unique("cli-out"), partitions=3)
    items = [(b"k%d" % i, b"v%d" % i) for i in range(3000)]
    d = produce_all(producer(broker.bootstrap), topic, items)
    expected = {(p, o): (k, v) for p, o, k, v in d.ok}

    out = ok(broker, "consume", topic, "--from-beginning", "--exit-at-end", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3000
    assert {(r["partition"], r["offset"]): (r["key"].encode(), r["value"].encode()) for r in rows} == expected
    assert all(r["timestamp"] > 0 and r["headers"] == {} for r in rows)

    # -n stops after exactly N records; text format prints values (and keys with --key-sep).
    out = ok(broker, "consume", topic, "--from-beginning", "-n", "7", "--key-sep", "=")
    assert len(out.splitlines()) == 7 and all(line.split("=")[1] == "v" + line.split("=")[0][1:] for line in out.splitlines())

    # One partition from an offset.
    rows = [json.loads(line) for line in ok(broker, "consume", topic, "--partition", "1", "--offset", "2", "-n", "3", "--format", "json").splitlines()]
    assert [(r["partition"], r["offset"]) for r in rows] == [(1, 2), (1, 3), (1, 4)]
    assert [(r["key"].encode(), r["value"].encode()) for r in rows] == [expected[(1, o)] for o in (2, 3, 4)]
    line = fails(broker, "consume", topic, "--partition", "1", "--offset", "999999", "-e")
    assert line.startswith(f"sluice consume: fetch from {topic}-1: "), line

    # Without --from-beginning only new records show: nothing new, so -e ends empty.
    assert ok(broker, "consume", topic, "--exit-at-end") == ""

    # A running consumer sees records produced after it started.
    proc = subprocess.Popen([str(sluice_binary()), "consume", topic, "-n", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=broker_env({"SLUICE_BOOTSTRAP_SERVER": broker.bootstrap}))
    time.sleep(1.5)
    produce_all(producer(broker.bootstrap), topic, [(b"late", b"new-1"), (b"late", b"new-2")])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "new-1\nnew-2\n"


def test_consume_group_commits_and_resumes(broker):
    topic = create_topic(broker.bootstrap, unique("cli-g"), partitions=2)
    produce_all(producer(broker.bootstrap), topic, [(None, b"a%d" % i) for i in range(10)], partition=0)
    produce_all(producer(broker.bootstrap), topic, [(None, b"b%d" % i) for i in range(10)], partition=1)
    group = unique("cli-group")
    first = ok(broker, "consume", topic, "--group", group, "--from-beginning", "-n", "12").splitlines()
    assert len(first) == 12
    rest = ok(broker, "consume", topic, "--group", group, "--exit-at-end").splitlines()
    assert sorted(first + rest) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    # The commits are real Kafka commits: a confluent consumer of the group sees them.
    c = consumer(broker.bootstrap, group=group)
    try:
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
        assert [tp.offset for tp in committed] == [10, 10]
    finally:
        c.close()
    assert ok(broker, "consume", topic, "--group", group, "--exit-at-end") == ""


def test_describe_group_shows_members_and_lag_of_a_confluent_consumer(broker):
    topic = create_topic(broker.bootstrap, unique("lag"), partitions=2)
    produce_all(producer(broker.bootstrap), topic, [(None, b"x")] * 10, partition=0)
    produce_all(producer(broker.bootstrap), topic, [(None, b"y")] * 6, partition=1)
    group = unique("g")
    c = consumer(broker.bootstrap, group=group, **{"client.id": "lag-app"})
    try:
        c.subscribe([topic])
        wait_until(lambda: c.poll(0.2) is None and c.assignment(), 30, message="assignment")
        c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 6)], asynchronous=False)

        def stable():
            d = json.loads(ok(broker, "describe", "group", group, "-o", "json"))
            return d if d["state"] == "Stable" and d["members"] else None
        d = wait_until(stable, 30, message="stable group")
        assert d["total_lag"] == 6
        report = ok(broker, "describe", "group", group)
        assert "State:       Stable\n" in report and "Total lag:   6\n" in report, report
        assert "lag-app" in report and f"{topic}:0,1" in report, report
        lag_rows = [line.split() for line in report.splitlines() if line.startswith(topic)]
        assert lag_rows == [[topic, "0", "4", "10", "6"], [topic, "1", "6", "6", "0"]], report
        assert [group, "Stable", "consumer", "1"] in [line.split() for line in ok(broker, "get", "groups").splitlines()]
    finally:
        close_consumers([c])


def test_errors_are_one_line_and_exit_non_zero(broker, tmp_path):
    existing = create_topic(broker.bootstrap, unique("e"), partitions=2)
    assert fails(broker, "consume", "no-such-topic", "-e") == "sluice consume: unknown topic no-such-topic"
    assert fails(broker, "describe", "topic", "no-such-topic") == "sluice describe: unknown topic no-such-topic"
    assert fails(broker, "describe", "group", "nobody") == "sluice describe: unknown consumer group nobody"
    assert fails(broker, "describe", "transform", "nothing").startswith("sluice describe: ")
    assert fails(broker, "topic", "create", existing) == f"sluice topic: topic {existing} already exists"
    line = fails(broker, "topic", "create", unique("c"), "--config", "retention.ms=soon")
    assert "retention.ms" in line and "not an integer" in line, line
    line = fails(broker, "topic", "alter", existing, "--partitions", "1")
    assert "must be larger" in line, line
    line = fails(broker, "produce", existing, "--key-sep", ":", input="k:v\nno separator here\n")
    assert line == "sluice produce: stdin: line 2 has no key separator \":\"", line
    assert fails(broker, "produce", existing, "--partition", "9", input="x\n") == f"sluice produce: topic {existing} has no partition 9 (it has 2)"

    # Broker down: nothing listens on these ports.
    down = {"SLUICE_ADMIN": f"http://127.0.0.1:{free_port()}", "SLUICE_BOOTSTRAP_SERVER": f"127.0.0.1:{free_port()}"}
    line = fails(None, "get", "topics", env=down)
    assert line.startswith("sluice get: cannot reach the admin API at http://127.0.0.1:"), line
    line = fails(None, "consume", "t", env=down)
    assert line.startswith("sluice consume: cannot connect to 127.0.0.1:"), line
    assert fails(None, "get", "topics", env={"SLUICE_ADMIN": "not a url"}).startswith("sluice get: invalid admin URL")


def test_transform_pause_resume_reset_and_logs(broker):
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("ops")
    deploy_ok(broker, {"name": name, "input": inp, "output": out, "config": {"log_on": "note"}}, plugin("fail-on"))
    produce_all(producer(b), inp, [(None, b"one"), (None, b"note this"), (None, b"three")])
    wait_until(lambda: describe(broker, name)["lag"] == 0 and describe(broker, name)["partitions"][0]["next_offset"] == 3, 60)

    # The broker's own log topic is listed only with --all.
    assert "_sluice_transform_logs" not in ok(broker, "get", "topics")
    assert "_sluice_transform_logs" in ok(broker, "get", "topics", "--all")
    listed = ok(broker, "get", "transforms")
    assert [name, "running", inp, out, "0", "1"] in [line.split() for line in listed.splitlines()], listed
    report = ok(broker, "describe", "transform", name)
    # 4 out: three outputs and the guest's log line.
    assert "State:       running\n" in report and "Records:     3 in, 4 out" in report, report

    assert ok(broker, "transform", "pause", name) == f"transform/{name} paused (lag 0)\n"
    produce_all(producer(b), inp, [(None, b"four")])
    wait_until(lambda: describe(broker, name)["lag"] == 1, 30, message="lag while paused")
    assert ok(broker, "transform", "resume", name).startswith(f"transform/{name} running")
    wait_until(lambda: len(read_all(b, out)) == 4, 60, message="after resume")

    # Reset to the start and wait: everything is processed again.
    r = sluice(broker, "transform", "reset", name, "--to-earliest", "--wait")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith(f"transform/{name} running")
    assert describe(broker, name)["lag"] == 0
    wait_until(lambda: len(read_all(b, out)) == 8, 60, message="after reset")
    assert [m.value() for m in read_all(b, out)] == [b"one", b"note this", b"three", b"four"] * 2
    # A reset needs a target (a clap usage error: several lines, exit 2).
    r = sluice(broker, "transform", "reset", name)
    assert r.returncode == 2 and "--to-offset" in r.stderr, r.stderr

    # Logs: the guest's line, once per processing of offset 1, with level and position.
    logs = wait_until(lambda: (lambda t: t if len(t.splitlines()) == 2 else None)(ok(broker, "transform", "logs", name)), 60, message="log lines")
    for line in logs.splitlines():
        assert line.endswith(" INFO  [p0@1] log requested by offset 1"), line
    assert fails(broker, "transform", "logs", "no-such-transform").startswith("sluice transform: ")
    # -f keeps following until stopped.
    proc = subprocess.Popen([str(sluice_binary()), "transform", "logs", name, "-f", "--new-only"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=broker_env({"SLUICE_ADMIN": f"http://{broker.admin}", "SLUICE_BOOTSTRAP_SERVER": b}))
    try:
        time.sleep(1.5)
        produce_all(producer(b), inp, [(None, b"note again")])
        line = proc.stdout.readline()
        assert line.rstrip().endswith("[p0@4] log requested by offset 4"), line
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_produce_shows_progress_only_on_a_terminal(broker):
    """stderr on a pseudo-terminal gets the progress line; piped stderr stays empty (checked in
    test_produce_with_the_cli_consume_with_confluent)."""
    import os
    import pty
    topic = create_topic(broker.bootstrap, unique("tty"))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(sluice_binary()), "produce", topic], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave,
                                env=broker_env({"SLUICE_BOOTSTRAP_SERVER": broker.bootstrap}))
        os.close(slave)
        slave = None
        out, _ = proc.communicate("".join(f"{i}\n" for i in range(12_000)).encode(), timeout=120)
        assert proc.returncode == 0 and out == b""
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the child's side is closed and drained
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    text = err.decode()
    assert "\r5000 records sent to" in text, text
    assert f"12000 records sent to {topic} in " in text, text
    assert len(read_all(broker.bootstrap, topic)) == 12_000


def test_describe_transform_shows_the_last_error_of_a_halted_transform(broker):
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("halt")
    deploy_ok(broker, {"name": name, "input": inp, "output": out, "config": {"error_on": "bad"},
                       "error_policy": {"action": "halt", "retries": 0}}, plugin("fail-on"))
    produce_all(producer(b), inp, [(None, b"one"), (None, b"bad"), (None, b"three")])
    wait_until(lambda: describe(broker, name)["state"] == "failed", 60, message="halted")
    report = ok(broker, "describe", "transform", name)
    assert "State:       failed\n" in report, report
    [last_error] = [line for line in report.splitlines() if line.startswith("Last error:")]
    assert "error requested by offset 1" in last_error, report
    assert [name, "failed"] == ok(broker, "get", "transforms").splitlines()[1].split()[:2]
    # resume prints the state it answered with; the same record fails again, so it halts again.
    assert ok(broker, "transform", "resume", name).startswith(f"transform/{name} running")
    wait_until(lambda: describe(broker, name)["state"] == "failed", 60, message="halted again")


def test_produce_and_consume_over_sasl_ssl(broker_factory, certs):
    """The Kafka-protocol commands authenticate (SASL/PLAIN inside TLS) with the same flags as
    `sluice user`; a wrong password is one clear line."""
    b = secure_broker(broker_factory, certs, protocol="SASL_SSL")
    topic = create_topic(b.bootstrap, unique("sec"))
    flags = ["--bootstrap-server", b.listeners["SECURE"], "--security-protocol", "SASL_SSL",
             "--ca-file", str(certs / "ca.crt"), "--user", ADMIN_USER]
    env = {"SLUICE_PASSWORD": ADMIN_PASSWORD}
    ok(b, "produce", topic, *flags, input="k1:one\nk2:two\n", env=env)
    assert [(m.key(), m.value()) for m in read_all(b.bootstrap, topic)] == [(None, b"k1:one"), (None, b"k2:two")]
    assert ok(b, "consume", topic, *flags, "--from-beginning", "-e", env=env) == "k1:one\nk2:two\n"
    line = fails(b, "consume", topic, *flags, "-e", env={"SLUICE_PASSWORD": "wrong"})
    assert line.startswith("sluice consume: SASL authentication as admin failed"), line
