"""`sluice transform init|build|test`: the loop of writing a transform, from an empty directory to
a module running in a real broker. The scaffolded crate really compiles (natively for its unit
tests, and for wasm32-wasip1), and `transform test` really runs the module with the broker's host.

Scaffolded crates share one cargo target directory (target/scaffold-tests) so the SDK and its
dependencies compile once per run, not once per test."""

import json
import os
import stat
import subprocess
import uuid

import pytest

from conftest import REPO, sluice_binary
from helpers import producer, read_all, unique
from transforms import plugin, wait_caught_up

SCAFFOLD_TARGET = REPO / "target" / "scaffold-tests"


def sluice(*args, cwd=None, stdin=None, env=None, timeout=900):
    full_env = {**os.environ, "CARGO_TARGET_DIR": str(SCAFFOLD_TARGET), **(env or {})}
    return subprocess.run([str(sluice_binary()), *args], cwd=cwd, input=stdin, env=full_env,
                          capture_output=True, timeout=timeout)


def text(result):
    return result.stdout.decode(), result.stderr.decode()


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """A crate made by `transform init` in an empty directory, unit-tested and built."""
    parent = tmp_path_factory.mktemp("scaffold")
    init = sluice("transform", "init", "alerts", cwd=parent)
    assert init.returncode == 0, text(init)
    assert text(init)[0].splitlines()[0] == "created alerts"
    crate = parent / "alerts"
    tests = subprocess.run(["cargo", "test", "--release", "--quiet"], cwd=crate, capture_output=True,
                           env={**os.environ, "CARGO_TARGET_DIR": str(SCAFFOLD_TARGET)}, timeout=900)
    assert tests.returncode == 0, tests.stderr.decode()[-3000:]
    assert "2 passed" in tests.stdout.decode()
    build = sluice("transform", "build", cwd=crate)
    assert build.returncode == 0, text(build)
    module = build.stdout.decode().strip().splitlines()[-1]
    assert module == str(SCAFFOLD_TARGET / "wasm32-wasip1" / "release" / "alerts.wasm")
    assert open(module, "rb").read(4) == b"\0asm"
    return crate


def test_scaffold_builds_and_runs_on_its_sample_input(scaffolded):
    # The scaffold's own sample: every line upper-cased, the ERROR line also copied to `alerts`
    # with its original value, and an info log tagged with that record's offset.
    result = sluice("transform", "test", "--input", "sample-input.txt", cwd=scaffolded)
    out, err = text(result)
    assert result.returncode == 0, err
    assert out.splitlines() == [
        "0 (default output) key=(null) SERVICE STARTED",
        "1 (default output) key=(null) DISK ERROR: 98% FULL",
        "1 alerts key=(null) disk ERROR: 98% full",
        "2 (default output) key=(null) REQUEST SERVED IN 12 MS",
    ]
    assert "log info offset 1: alert: disk ERROR: 98% full" in err


def test_config_keys_and_json_output(scaffolded):
    # --config reaches the guest's typed config; --key-sep splits keys; stdin input; JSON output
    # resolves inherited keys and timestamps against the input record.
    config = json.dumps({"alert_word": "WARN", "alerts_topic": "warnings"})
    result = sluice("transform", "test", "--input", "-", "--key-sep", ":", "--config", config,
                    "--output", "json", cwd=scaffolded, stdin=b"svc-a:WARN low disk\nsvc-b:fine\n")
    out, err = text(result)
    assert result.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["input_offset"], r["topic"], r["key"], r["value"]) for r in lines] == [
        (0, None, "svc-a", "WARN LOW DISK"),
        (0, "warnings", "svc-a", "WARN low disk"),
        (1, None, "svc-b", "FINE"),
    ]
    assert [r["timestamp"] for r in lines] == [0, 0, 1]


def test_bad_config_is_reported_as_a_deploy_error(scaffolded):
    # The scaffold's Config denies unknown fields: init fails, as a deploy would.
    result = sluice("transform", "test", "--input", "sample-input.txt", "--config", '{"alert_wrd": "x"}', cwd=scaffolded)
    assert result.returncode == 1
    assert "alert_wrd" in text(result)[1]


def test_trap_loop_and_error_are_isolated_to_their_records(tmp_path):
    # fail-on: a panic (trap), an infinite loop (time limit) and a returned error each fail only
    # their own record; the others still produce output and the exit status is 1.
    module = tmp_path / "fail_on.wasm"
    module.write_bytes(plugin("fail-on"))
    sample = tmp_path / "in.jsonl"
    sample.write_text("\n".join(json.dumps({"value": v, "key": f"k{i}", "headers": {"h": "1"}, "timestamp": 1000 + i})
                                for i, v in enumerate(["ok-1", "boom", "spin", "bad", "ok-2"])) + "\n")
    config = json.dumps({"panic_on": "boom", "loop_on": "spin", "error_on": "bad"})
    result = sluice("transform", "test", "--wasm", str(module), "--input", str(sample), "--format", "jsonl",
                    "--config", config, "--batch-time-ms", "200", "--output", "json")
    out, err = text(result)
    assert result.returncode == 1, err
    outputs = [json.loads(line) for line in out.splitlines()]
    assert [(r["input_offset"], r["value"], r["key"], r["timestamp"], r["headers"]) for r in outputs] == [
        (0, "ok-1", "k0", 1000, [["h", "1"]]),
        (4, "ok-2", "k4", 1004, [["h", "1"]]),
    ]
    assert "error at offset 1: trapped" in err
    assert "error at offset 2: killed: ran longer than the 200 ms time limit" in err
    assert "error at offset 3:" in err
    assert "3 record(s) failed" in err


def test_clear_errors(tmp_path):
    # Each mistake is one line on stderr naming the problem, with exit status 1.
    bad_name = sluice("transform", "init", "2bad", cwd=tmp_path)
    assert bad_name.returncode == 1 and "not a valid transform name" in text(bad_name)[1]

    (tmp_path / "taken").mkdir()
    taken = sluice("transform", "init", "taken", cwd=tmp_path)
    assert taken.returncode == 1 and "already exists" in text(taken)[1]

    no_crate = sluice("transform", "build", "--path", str(tmp_path))
    assert no_crate.returncode == 1 and "Cargo.toml not found" in text(no_crate)[1]

    not_wasm = tmp_path / "x.wasm"
    not_wasm.write_bytes(b"not a module")
    (tmp_path / "in.txt").write_text("a\n")
    bad_module = sluice("transform", "test", "--wasm", str(not_wasm), "--input", str(tmp_path / "in.txt"))
    assert bad_module.returncode == 1 and "\\0asm" in text(bad_module)[1]

    bad_jsonl = sluice("transform", "test", "--wasm", str(not_wasm), "--input", "-", "--format", "jsonl", stdin=b'{"valu": 1}\n')
    assert bad_jsonl.returncode == 1 and "input line 1" in text(bad_jsonl)[1]


def test_build_names_the_missing_wasm_target(tmp_path):
    # A rustup that lists no wasm target (a stub first on PATH) makes `build` print the command
    # that fixes it instead of cargo's page about a missing `core`.
    init = sluice("transform", "init", "nowasm", cwd=tmp_path)
    assert init.returncode == 0, text(init)
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    stub = stub_dir / "rustup"
    stub.write_text("#!/bin/sh\necho x86_64-unknown-linux-gnu\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    result = sluice("transform", "build", cwd=tmp_path / "nowasm", env={"PATH": f"{stub_dir}:{os.environ['PATH']}"})
    assert result.returncode == 1
    assert text(result)[1].strip() == "sluice transform: the wasm32-wasip1 target is not installed; run: rustup target add wasm32-wasip1"


def test_scaffolded_module_runs_in_the_broker(scaffolded, broker, tmp_path):
    # The last step of the loop: the module built from the scaffold, declared in a manifest next
    # to its topics and deployed with `sluice apply`, transforms records produced by a real Kafka
    # client: upper-cased values in the output topic, alerts copied to the alerts topic.
    source, sink, alerts = unique("in"), unique("out"), unique("alerts")
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    module = SCAFFOLD_TARGET / "wasm32-wasip1" / "release" / "alerts.wasm"
    topics = "".join(f"apiVersion: sluice/v1\nkind: Topic\nmetadata:\n  name: {t}\nspec:\n  partitions: 1\n---\n"
                     for t in (source, sink, alerts))
    manifest = tmp_path / "pipeline.yaml"
    manifest.write_text(topics + f"""apiVersion: sluice/v1
kind: Transform
metadata:
  name: {name}
spec:
  wasm: {module}
  input: {source}
  outputs: [{sink}, {alerts}]
  config:
    alerts_topic: {alerts}
""")
    applied = sluice("apply", "-f", str(manifest), "--admin", f"http://{broker.admin}")
    out, err = text(applied)
    assert applied.returncode == 0, err
    assert f"transform/{name} created" in out, out
    p = producer(broker.bootstrap)
    for line in ["service started", "disk ERROR: 98% full", "done"]:
        p.produce(source, line.encode())
    assert p.flush(30) == 0
    wait_caught_up(broker, name, 3)
    assert [m.value() for m in read_all(broker.bootstrap, sink)] == [b"SERVICE STARTED", b"DISK ERROR: 98% FULL", b"DONE"]
    assert [m.value() for m in read_all(broker.bootstrap, alerts)] == [b"disk ERROR: 98% full"]
