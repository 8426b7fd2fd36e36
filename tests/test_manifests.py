"""Goal: `sluice apply | diff | delete -f` deploy manifests declaratively and idempotently, report
every validation problem at its exact file:line:column without touching the broker, and the
broker keeps what was applied across restarts; method: the real `sluice` binary against a real
broker, wasm compiled from plugins/, results checked with confluent-kafka (AdminClient, Consumer)
and the admin API."""

import json
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import ConfigResource

from conftest import broker_env, sluice_binary
from helpers import sluice_env, sluice_expect, admin, create_topic, produce_all, producer, read_all, wait_until
from transforms import REPO, describe, plugin, request, wait_caught_up

MANIFESTS = REPO / "manifests"


def sluice(broker, *args, expect=0):
    """Runs `sluice ARGS` against `broker`'s admin API; returns (stdout lines, stderr)."""
    return sluice_expect(sluice_env(broker), *args, expect=expect)


def built_plugins():
    """The directory of the wasm modules (builds them once per session)."""
    plugin("uppercase")
    return REPO / "plugins" / "target" / "wasm32-wasip1" / "release"


def topics(broker):
    return set(admin(broker.bootstrap).list_topics(timeout=10).topics)


def topic_config(broker, topic, name):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = admin(broker.bootstrap)  # kept alive until the future resolves
    configs = a.describe_configs([res])[res].result(timeout=30)
    return configs[name].value


def transforms(broker):
    status, body = request(broker, "GET", "/v1/transforms")
    assert status == 200, body
    return {t["name"]: t for t in body}


def manifests(broker, kind=None):
    status, body = request(broker, "GET", "/v1/manifests" + (f"?kind={kind}" if kind else ""))
    assert status == 200, body
    return {(m["kind"], m["name"]): m["document"] for m in body}


def wait_records(broker, topic, count, timeout=120):
    """All records of `topic` once it holds `count` (a transform chain may still be running)."""
    def ready():
        if topic not in topics(broker):
            return None
        got = read_all(broker.bootstrap, topic)
        return got if len(got) >= count else None
    got = wait_until(ready, timeout, interval=0.5, message=f"{count} records in {topic}")
    assert len(got) == count, [m.value() for m in got]
    return got


def test_quickstart_apply_reapply_and_the_store_survives_a_restart(broker):
    built_plugins()
    quickstart = MANIFESTS / "quickstart.yaml"
    out, err = sluice(broker, "apply", "-f", quickstart)
    assert err == "", "no progress output when stderr is not a terminal"
    assert out == ["topic/quickstart-in created", "topic/quickstart-out created",
                   "transform/uppercase created", "pipeline/quickstart created"]
    produce_all(producer(broker.bootstrap), "quickstart-in", [(b"k%d" % i, b"hello %d" % i) for i in range(20)])
    got = wait_records(broker, "quickstart-out", 20)
    assert sorted(m.value() for m in got) == sorted(b"HELLO %d" % i for i in range(20))
    # Re-applying changes nothing.
    out, _ = sluice(broker, "apply", "-f", quickstart)
    assert out == ["topic/quickstart-in unchanged", "topic/quickstart-out unchanged",
                   "transform/uppercase unchanged", "pipeline/quickstart unchanged"]
    assert describe(broker, "uppercase")["version"] == 1
    # What was applied is stored, and still there after a restart.
    stored = manifests(broker, "Pipeline")
    assert stored[("Pipeline", "quickstart")]["spec"]["transforms"] == ["uppercase"]
    broker.restart()
    after = manifests(broker)
    assert set(after) == {("Topic", "quickstart-in"), ("Topic", "quickstart-out"),
                          ("Transform", "uppercase"), ("Pipeline", "quickstart")}
    assert after[("Pipeline", "quickstart")] == stored[("Pipeline", "quickstart")]
    out, _ = sluice(broker, "apply", "-f", quickstart)
    assert all(line.endswith(" unchanged") for line in out), out
    # `sluice get pipelines` shows it, -o yaml as applied.
    out, _ = sluice(broker, "get", "pipelines", "-o", "json")
    assert json.loads("\n".join(out)) == [{"kind": "Pipeline", "name": "quickstart",
                                           "document": stored[("Pipeline", "quickstart")]}]
    out, _ = sluice(broker, "get", "pipelines", "-o", "yaml")
    assert out == ["---", "apiVersion: sluice/v1", "kind: Pipeline", "metadata:", "  name: quickstart", "spec:",
                   "  description: upper-cases every record", "  topics:", "  - quickstart-in", "  - quickstart-out",
                   "  transforms:", "  - uppercase"]
    out, _ = sluice(broker, "get", "pipelines")
    assert out[1].split() == ["quickstart", "quickstart-in,quickstart-out", "uppercase"], out


def write_pipeline(path: Path, wasm: Path, retention="3600000", up_config=None):
    docs = [
        {"apiVersion": "sluice/v1", "kind": "Topic", "metadata": {"name": "m-in"},
         "spec": {"partitions": 2, "configs": {"retention.ms": retention}}},
        {"apiVersion": "sluice/v1", "kind": "Topic", "metadata": {"name": "m-out"}, "spec": {"partitions": 1}},
        {"apiVersion": "sluice/v1", "kind": "Transform", "metadata": {"name": "m-route"},
         "spec": {"wasm": str(wasm), "input": "m-in", "outputs": ["m-out"],
                  "config": up_config or {"routes": [{"contains": "x", "topic": "m-out"}], "default": False}}},
    ]
    path.write_text("---\n".join(json.dumps(d, indent=2) + "\n" for d in docs))


def test_change_one_field_diff_then_apply_updates_exactly_one_object(broker, tmp_path):
    wasm = built_plugins() / "router.wasm"
    m = tmp_path / "p.yaml"
    write_pipeline(m, wasm)
    out, _ = sluice(broker, "apply", "-f", m)
    assert out == ["topic/m-in created", "topic/m-out created", "transform/m-route created"]
    assert topic_config(broker, "m-in", "retention.ms") == "3600000"

    # One topic config changes: diff says so and changes nothing; apply updates that topic only.
    write_pipeline(m, wasm, retention="7200000")
    out, _ = sluice(broker, "diff", "-f", m)
    assert out == ["topic/m-in would be updated (retention.ms 3600000 -> 7200000)",
                   "topic/m-out unchanged", "transform/m-route unchanged"]
    assert topic_config(broker, "m-in", "retention.ms") == "3600000"
    out, _ = sluice(broker, "apply", "-f", m)
    assert out == ["topic/m-in updated (retention.ms 3600000 -> 7200000)",
                   "topic/m-out unchanged", "transform/m-route unchanged"]
    assert topic_config(broker, "m-in", "retention.ms") == "7200000"

    # The transform's config changes: only it is redeployed (version 2), and it now routes "y".
    produce_all(producer(broker.bootstrap), "m-in", [(None, b"x1"), (None, b"y1")])
    wait_caught_up(broker, "m-route", 2)
    wait_records(broker, "m-out", 1)
    write_pipeline(m, wasm, retention="7200000", up_config={"routes": [{"contains": "y", "topic": "m-out"}], "default": False})
    out, _ = sluice(broker, "apply", "-f", m)
    assert out == ["topic/m-in unchanged", "topic/m-out unchanged", "transform/m-route updated (config changed)"]
    assert describe(broker, "m-route")["version"] == 2
    # It resumed at its committed position: old records are not reprocessed, new ones use the new config.
    produce_all(producer(broker.bootstrap), "m-in", [(None, b"x2"), (None, b"y2")])
    got = wait_records(broker, "m-out", 2)
    assert [m.value() for m in got] == [b"x1", b"y2"]

    # A different module is a redeploy too.
    up = built_plugins() / "uppercase.wasm"
    write_pipeline(m, up, retention="7200000", up_config={"routes": [{"contains": "y", "topic": "m-out"}], "default": False})
    out, _ = sluice(broker, "diff", "-f", m)
    assert out[2].startswith("transform/m-route would be updated (module "), out


def test_delete_keeps_topics_unless_asked(broker, tmp_path):
    wasm = built_plugins() / "router.wasm"
    m = tmp_path / "p.yaml"
    write_pipeline(m, wasm)
    sluice(broker, "apply", "-f", m)
    out, _ = sluice(broker, "delete", "-f", m)
    assert out == ["transform/m-route deleted",
                   "topic/m-in kept (pass --include-topics to delete topics and their data)",
                   "topic/m-out kept (pass --include-topics to delete topics and their data)"]
    assert "m-route" not in transforms(broker)
    assert {"m-in", "m-out"} <= topics(broker)
    assert set(manifests(broker)) == {("Topic", "m-in"), ("Topic", "m-out")}
    out, _ = sluice(broker, "delete", "-f", m, "--include-topics")
    assert out == ["transform/m-route absent", "topic/m-in deleted", "topic/m-out deleted"]
    wait_until(lambda: not ({"m-in", "m-out"} & topics(broker)), 30, message="topics deleted")
    assert manifests(broker) == {}


BAD = """\
apiVersion: sluice/v1
kind: Topic
metadata:
  name: orders
spec:
  partitions: three
  configs:
    cleanup.policy: sometimes
    retention.size: 5
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: orders
spec:
  partitons: 2
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: bad/name
spec: {}
---
apiVersion: sluice/v1
kind: Transform
metadata:
  name: enrich
spec:
  wasm: missing.wasm
  input: orders
  outputs: [orders-enriched]
---
apiVersion: sluice/v1
kind: Transform
metadata:
  name: a-to-b
spec:
  wasm: ok.wasm
  input: loop-a
  outputs: [loop-b]
---
apiVersion: sluice/v1
kind: Transform
metadata:
  name: b-to-a
spec:
  wasm: ok.wasm
  input: loop-b
  outputs: [loop-a]
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: loop-a
spec: {}
---
apiVersion: sluice/v1
kind: Topic
metadata:
  name: loop-b
spec: {}
---
apiVersion: sluice/v1
kind: Pipeline
metadata:
  name: loop
spec:
  transforms: [a-to-b, b-to-a]
---
apiVersion: sluice/v1
kind: Pipeline
metadata:
  name: empty
spec:
  topics: [orders]
"""


def test_every_validation_problem_at_its_exact_position_and_nothing_changes(broker, tmp_path):
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "ok.wasm").write_bytes((built_plugins() / "uppercase.wasm").read_bytes())
    (d / "x.yaml").write_text(BAD)
    (d / "broken.yaml").write_text("apiVersion: sluice/v1\nkind: Topic\nmetadata:\n  name: [unclosed\n")
    before = (topics(broker), transforms(broker), manifests(broker))
    x, broken = d / "x.yaml", d / "broken.yaml"
    out, err = sluice(broker, "apply", "-f", d, expect=1)
    assert out == []
    assert err.splitlines() == [
        f"{broken}:5:1: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 4 column 9",
        f"{x}:6:15: spec.partitions: expected an integer, found a string",
        f"{x}:8:21: spec.configs[\"cleanup.policy\"]: \"sometimes\": must be delete, compact, or delete,compact",
        f"{x}:9:5: spec.configs[\"retention.size\"]: \"5\": unknown topic config",
        f"{x}:14:9: metadata.name: duplicate Topic \"orders\" (first declared at {x}:4:9)",
        f"{x}:16:3: spec.partitons: unknown field `partitons`, expected one of: partitions, configs",
        f"{x}:21:9: metadata.name: invalid topic name \"bad/name\": only ASCII letters, digits, '.', '_' and '-' are allowed",
        f"{x}:29:9: spec.wasm: no such file: {d / 'missing.wasm'}",
        f"{x}:31:12: spec.outputs[0]: topic \"orders-enriched\" neither exists on the broker nor is declared (add a Topic document)",
        f"{x}:68:3: spec.transforms: pipeline \"loop\" has a cycle: loop-a -> [a-to-b] -> loop-b -> [b-to-a] -> loop-a",
        f"{x}:74:1: spec.transforms: missing field",
        "sluice apply: 11 problem(s); nothing was changed",
    ]
    # diff reports the same and also exits non-zero.
    _, diff_err = sluice(broker, "diff", "-f", d, expect=1)
    assert diff_err.splitlines()[:-1] == err.splitlines()[:-1]
    assert (topics(broker), transforms(broker), manifests(broker)) == before


def test_a_reference_to_an_existing_broker_topic_is_valid(broker, tmp_path):
    wasm = built_plugins() / "uppercase.wasm"
    m = tmp_path / "t.yaml"
    m.write_text(f"apiVersion: sluice/v1\nkind: Transform\nmetadata:\n  name: up\nspec:\n"
                 f"  wasm: {wasm}\n  input: existing\n  outputs: [existing-out]\n")
    _, err = sluice(broker, "apply", "-f", m, expect=1)
    assert f"{m}:7:10: spec.input: topic \"existing\" neither exists" in err, err
    for t in ("existing", "existing-out"):
        create_topic(broker.bootstrap, t)
    out, _ = sluice(broker, "apply", "-f", m)
    assert out == ["transform/up created"]


def test_log_aggregation_pipeline_end_to_end(broker):
    built_plugins()
    out, _ = sluice(broker, "apply", "-f", MANIFESTS / "log-aggregation.yaml")
    assert out == [
        "topic/logs-raw created", "topic/logs-lines created", "topic/logs-parsed created",
        "topic/logs-clean created", "topic/logs-alerts created", "topic/logs-error-counts created",
        "topic/logs-unparsed created", "transform/logs-split created", "transform/logs-parse created",
        "transform/logs-redact created", "transform/logs-route-errors created",
        "transform/logs-error-counts created", "pipeline/log-aggregation created",
    ]
    raw = [
        (b"web-1", b'level=info service=web msg="GET /" client_ip=10.0.0.1\n'
                   b'level=error service=web msg="upstream timeout" client_ip=10.0.0.2\n'),
        (b"pay-1", b'level=error service=payments msg="card declined" email=ann@example.com\r\n'
                   b"this line is not logfmt\n\n"
                   b"level=warn service=payments msg=slow latency_ms=950\n"),
    ]
    # Event times in the minute starting at T0 (see the clickstream test), so the counts are per
    # that minute.
    produce_timed(broker, "logs-raw", [(k, v, T0 + 5_000) for k, v in raw])
    clean = [json.loads(m.value()) for m in wait_records(broker, "logs-clean", 4)]
    want = [
        {"level": "info", "service": "web", "msg": "GET /", "client_ip": "<redacted>"},
        {"level": "error", "service": "web", "msg": "upstream timeout", "client_ip": "<redacted>"},
        {"level": "error", "service": "payments", "msg": "card declined", "email": "<redacted>"},
        {"level": "warn", "service": "payments", "msg": "slow", "latency_ms": "950"},
    ]
    key = lambda v: json.dumps(v, sort_keys=True)
    assert sorted(map(key, clean)) == sorted(map(key, want))
    alerts = [json.loads(m.value()) for m in wait_records(broker, "logs-alerts", 2)]
    assert sorted(map(key, alerts)) == sorted(map(key, [w for w in want if w["level"] == "error"]))
    dead = wait_records(broker, "logs-unparsed", 1)
    assert dead[0].value() == b"this line is not logfmt"
    # Keys follow each record through the chain.
    assert sorted(m.key() for m in read_all(broker.bootstrap, "logs-alerts")) == [b"pay-1", b"web-1"]
    time.sleep(1)
    assert len(read_all(broker.bootstrap, "logs-clean")) == 4, "nothing beyond the expected records"

    # Per-service error counts per minute: one more web error in the first minute and one in the
    # next, then an error two minutes on whose timestamp closes both minutes. Each waits until the
    # one before is in logs-alerts: logs-raw has 3 partitions, and a record that overtook an
    # earlier minute's would close that minute early.
    produce_timed(broker, "logs-raw", [(b"web-2", b"level=error service=web msg=again\n"
                                                  b"level=info service=web msg=fine\n", T0 + 30_000)])
    wait_records(broker, "logs-alerts", 3)
    produce_timed(broker, "logs-raw", [(b"web-3", b"level=error service=web msg=next\n", T0 + 61_000)])
    wait_records(broker, "logs-alerts", 4)
    produce_timed(broker, "logs-raw", [(b"pay-2", b"level=error service=payments msg=later\n", T0 + 125_000)])
    counts = wait_records(broker, "logs-error-counts", 3)
    got = sorted((m.key(), json.loads(m.value())["window_start"] - T0, json.loads(m.value())["count"]) for m in counts)
    assert got == [(b"payments", 0, 1), (b"web", 0, 2), (b"web", 60_000, 1)], got
    assert all(json.loads(m.value())["window_end"] - json.loads(m.value())["window_start"] == 60_000 for m in counts)
    time.sleep(1)
    assert len(read_all(broker.bootstrap, "logs-error-counts")) == 3, "the open minute is not emitted"


def produce_timed(broker, topic, items):
    """Produces (key, value, timestamp ms) in order and waits for every acknowledgement."""
    p = producer(broker.bootstrap)
    errors = []
    for key, value, ts in items:
        p.produce(topic, key=key, value=value, timestamp=ts, on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(60) == 0
    assert not errors, errors


# An epoch-aligned minute: the clickstream test's event times are T0 + seconds.
T0 = 1_700_000_040_000


def produce_clicks(broker, topic, clicks):
    """Produces (user, seconds after T0) in order to partition 0, the timestamp explicit (event
    time is what sessionize reads), and waits for every acknowledgement."""
    p = producer(broker.bootstrap, **{"enable.idempotence": True})
    errors = []
    for user, sec in clicks:
        p.produce(topic, key=user.encode(), value=json.dumps({"page": f"/p{sec}"}).encode(), partition=0,
                  timestamp=T0 + sec * 1000, on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(60) == 0
    assert not errors, errors[:3]


def sessions_of(msgs):
    """[(user, start s, end s, clicks)] of sessionize outputs, sorted; checks key and timestamp."""
    out = []
    for m in msgs:
        v = json.loads(m.value())
        assert m.key() == v["user"].encode(), (m.key(), v)
        assert m.timestamp()[1] == v["end"] - 30_000, "timestamp = the session's last click"
        out.append((v["user"], (v["start"] - T0) / 1000, (v["end"] - T0) / 1000, v["clicks"]))
    return sorted(out)


def test_clickstream_pipeline_sessionizes_per_user_and_keeps_state_across_a_redeploy(broker, tmp_path):
    built_plugins()
    clickstream = MANIFESTS / "clickstream.yaml"
    out, _ = sluice(broker, "apply", "-f", clickstream)
    assert out == ["topic/clicks created", "topic/sessions created", "transform/sessionize created",
                   "pipeline/clickstream created"]
    # The manifest's state cap reached the broker's spec (4 MiB, not the 8 MiB default).
    spec = describe(broker, "sessionize")["spec"]
    assert spec["state"] == {"bytes_max": 4 << 20}, spec
    assert spec["config"] == {"gap_ms": 30000, "allowed_lateness_ms": 0}
    assert manifests(broker)[("Transform", "sessionize")]["spec"]["state"] == {"bytesMax": 4194304}

    first = [
        ("u1", 0), ("u2", 3), ("u1", 10), ("u2", 20), ("u1", 25),
        # 45 s after u1's last click (> 30 s gap): a new session. The watermark is now 70 s,
        # past u1's [0, 55) and u2's [3, 50): both close.
        ("u1", 70),
    ]
    produce_clicks(broker, "clicks", first)
    wait_caught_up(broker, "sessionize", len(first))
    assert sessions_of(wait_records(broker, "sessions", 2)) == [("u1", 0, 55, 3), ("u2", 3, 50, 2)]

    # Raising the cap redeploys the transform; its open sessions (u1 since 70 s) are kept.
    copy = tmp_path / "clickstream.yaml"
    wasm = built_plugins() / "sessionize.wasm"
    copy.write_text(clickstream.read_text()
                    .replace("../plugins/target/wasm32-wasip1/release/sessionize.wasm", str(wasm))
                    .replace("bytesMax: 4194304", "bytesMax: 16777216"))
    out, _ = sluice(broker, "apply", "-f", copy)
    assert out == ["topic/clicks unchanged", "topic/sessions unchanged",
                   "transform/sessionize updated (state changed)", "pipeline/clickstream unchanged"]
    after = describe(broker, "sessionize")
    assert (after["version"], after["spec"]["state"]) == (2, {"bytes_max": 16 << 20})

    rest = [
        ("u3", 80),
        ("u1", 95),   # 25 s after 70 s: the same session as the click before the redeploy
        # Advances the watermark to 300 s: closes u1's [70, 125) and u3's [80, 110); zz's own
        # session stays open.
        ("zz", 300),
    ]
    produce_clicks(broker, "clicks", rest)
    wait_caught_up(broker, "sessionize", len(first) + len(rest))
    got = sessions_of(wait_records(broker, "sessions", 4))
    assert got == [("u1", 0, 55, 3), ("u1", 70, 125, 2), ("u2", 3, 50, 2), ("u3", 80, 110, 1)]
    time.sleep(1)
    assert len(read_all(broker.bootstrap, "sessions")) == 4, "zz's session is still open: nothing more"


def test_manifest_store_routes_refuse_bad_requests(broker):
    doc = {"apiVersion": "sluice/v1", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {"transforms": []}}
    status, body = request(broker, "PUT", "/v1/manifests/Pipeline/other", doc)
    assert (status, body["error"]) == (400, "invalid_manifest"), body
    status, body = request(broker, "PUT", "/v1/manifests/Gadget/p", doc)
    assert (status, body["error"]) == (400, "invalid_kind"), body
    status, body = request(broker, "PUT", "/v1/manifests/pipeline/p", b"{not json", "application/json")
    assert (status, body["error"]) == (400, "invalid_body"), body
    status, body = request(broker, "GET", "/v1/manifests/Pipeline/p")
    assert (status, body["error"]) == (404, "unknown_manifest"), body
    status, body = request(broker, "PUT", "/v1/manifests/pipeline/p", doc)
    assert status == 200 and body == {"kind": "Pipeline", "name": "p", "document": doc}, body
    assert manifests(broker, "Topic") == {} and manifests(broker, "Pipeline") == {("Pipeline", "p"): doc}
    status, _ = request(broker, "DELETE", "/v1/manifests/Pipeline/p")
    assert status == 204
    status, body = request(broker, "DELETE", "/v1/manifests/Pipeline/p")
    assert (status, body["error"]) == (404, "unknown_manifest"), body


def test_a_missing_file_is_one_clear_line_even_without_a_broker(tmp_path):
    env = broker_env({"SLUICE_ADMIN": "http://127.0.0.1:1"})
    r = subprocess.run([str(sluice_binary()), "apply", "-f", str(tmp_path / "nope.yaml")], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"sluice apply: cannot read {tmp_path / 'nope.yaml'}: No such file or directory (os error 2)\n"
