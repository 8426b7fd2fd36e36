"""Goal: WebAssembly transforms run inside the broker from input to output topics, exactly once,
under their error policy and resource limits; method: real plugins compiled from plugins/ for
wasm32-wasip1, deployed through the admin API of a real broker, fed and read with
confluent-kafka."""

import json
import random
import time

from helpers import create_topic, produce_all, producer, read_all, unique, wait_until
from prom_text import scrape
from transforms import deploy, deploy_ok, describe, key_partition, plugin, request, wait_caught_up


def spec(name, inp, out, **extra):
    s = {"name": name, "input": inp, "output": out}
    s.update(extra)
    return s


def read(bootstrap, topic):
    """Every record of `topic`; none while it does not exist yet (named outputs are created on
    first use)."""
    try:
        return read_all(bootstrap, topic)
    except AssertionError as e:
        if "UNKNOWN_TOPIC" in str(e):
            return []
        raise


def values(msgs):
    return [m.value() for m in msgs]


def headers(msg):
    return {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}


def test_uppercase_maps_every_record_and_partitions_by_key_like_kafka(broker):
    inp = create_topic(broker.bootstrap, unique("in"), partitions=3)
    out = create_topic(broker.bootstrap, unique("out"), partitions=4)
    name = unique("up")
    status = deploy_ok(broker, spec(name, inp, out), plugin("uppercase"))
    assert status["state"] == "running" and status["version"] == 1
    items = [(b"key-%d" % i, b"value %d abc" % i) for i in range(300)]
    produce_all(producer(broker.bootstrap), inp, items)
    wait_caught_up(broker, name, 300)
    got = read(broker.bootstrap, out)
    assert sorted(values(got)) == sorted(v.upper() for _, v in items)
    for m in got:
        assert m.partition() == key_partition(m.key(), 4), "key-hash partitioning must match Kafka's murmur2"
        assert m.value() == m.key().replace(b"key-", b"VALUE ") + b" ABC"
    st = describe(broker, name)
    assert st["stats"]["records_in"] == 300 and st["stats"]["records_out"] == 300
    # The same figures on /metrics, exactly.
    m = scrape(broker)
    assert m.value("sluice_transform_records_in_total", transform=name) == 300
    assert m.value("sluice_transform_records_out_total", transform=name) == 300
    assert m.value("sluice_transform_lag_records", transform=name) == 0
    assert m.value("sluice_transform_state", transform=name, state="running") == 1
    assert m.value("sluice_transform_batch_duration_seconds_count", transform=name) == st["stats"]["batches"]


def test_filter_split_router_and_redact(broker):
    b = broker.bootstrap
    inp = create_topic(b, unique("in"))
    p = producer(b)
    # filter-json: keep level == "error".
    f_out = unique("filtered")
    deploy_ok(broker, spec(unique("filter"), inp, f_out, config={"field": "e.level", "equals": "error"}), plugin("filter-json"))
    # split-lines: one record per line.
    s_out = unique("lines")
    deploy_ok(broker, spec(unique("split"), inp, s_out), plugin("split-lines"))
    # router: by substring and by JSON field to two topics, the rest to the default output.
    errors, clicks, rest = unique("errors"), unique("clicks"), unique("rest")
    router = {"routes": [{"contains": "ERROR", "topic": errors}, {"field": "kind", "equals": "click", "topic": clicks}]}
    deploy_ok(broker, spec(unique("router"), inp, rest, config=router), plugin("router"))
    # redact: mask two fields; non-JSON input is dead-lettered.
    r_out, r_name = unique("redacted"), unique("redact")
    deploy_ok(broker, spec(r_name, inp, r_out, config={"fields": ["email", "user.ssn"]}), plugin("redact"))

    records = [
        json.dumps({"e": {"level": "error"}, "email": "a@b", "user": {"ssn": "123", "name": "ann"}, "kind": "click"}).encode(),
        json.dumps({"e": {"level": "info"}, "msg": "ERROR in text"}).encode(),
        b"line one\nline two\r\n\nline three",
    ]
    produce_all(p, inp, [(None, r) for r in records])

    assert wait_until(lambda: len(read(b, f_out)) == 1, 60, message="filter output")
    assert values(read(b, f_out)) == [records[0]]
    assert wait_until(lambda: len(read(b, s_out)) == 5, 60, message="split output")
    assert values(read(b, s_out)) == [records[0], records[1], b"line one", b"line two", b"line three"]
    assert wait_until(lambda: len(read(b, rest)) == 1, 60, message="router default output")
    assert values(read(b, clicks)) == [records[0]]
    assert values(read(b, errors)) == [records[1]]
    assert values(read(b, rest)) == [records[2]]
    assert wait_until(lambda: len(read(b, r_out)) == 2, 60, message="redact output")
    first = json.loads(read(b, r_out)[0].value())
    assert first["email"] == "***" and first["user"] == {"ssn": "***", "name": "ann"}
    dlq = wait_until(lambda: read(b, f"{r_name}.dlq"), 60, message="redact dead letter")
    assert values(dlq) == [records[2]]
    assert "expected value at line 1" in headers(dlq[0])["error"], headers(dlq[0])


def test_trap_and_error_go_to_the_dead_letter_topic_with_headers(broker):
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("fail")
    config = {"panic_on": "boom", "error_on": "bad", "log_on": "also"}
    deploy_ok(broker, spec(name, inp, out, config=config, error_policy={"action": "dead_letter", "retries": 1, "backoff_ms": 10}), plugin("fail-on"))
    produce_all(producer(b), inp, [(b"k0", b"fine"), (b"k1", b"boom!"), (b"k2", b"also fine"), (b"k3", b"bad"), (b"k4", b"last")],)
    got = wait_until(lambda: (lambda r: r if len(r) == 3 else None)(read(b, out)), 60, message="outputs")
    assert values(got) == [b"fine", b"also fine", b"last"]
    dlq = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(read(b, f"{name}.dlq")), 60, message="dead letters")
    trap, err = dlq
    assert trap.key() == b"k1" and trap.value() == b"boom!"
    h = headers(trap)
    assert (h["transform"], h["transform_version"], h["input_topic"], h["input_partition"], h["input_offset"]) == (name, "1", inp, "0", "1")
    assert "panic requested by offset 1" in h["error"], h
    assert headers(err)["input_offset"] == "3" and "error requested by offset 3" in headers(err)["error"]
    st = describe(broker, name)
    assert st["state"] == "running" and st["stats"]["dead_lettered"] == 2 and st["stats"]["traps"] >= 2
    # The guest's log line reached the logs topic, tagged with the transform and input offset.
    logs = wait_until(lambda: [m for m in read(b, "_sluice_transform_logs") if m.key() == name.encode()], 60, message="log line")
    assert [m.value() for m in logs] == [b"log requested by offset 2"]
    assert headers(logs[0])["input_offset"] == "2" and headers(logs[0])["level"] == "info"


def test_infinite_loop_and_memory_bomb_are_killed_and_others_keep_serving(broker):
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("hostile")
    limits = {"memory_bytes": 16 << 20, "batch_time_ms": 300}
    deploy_ok(broker, spec(name, inp, out, config={"loop_on": "spin", "memory_on": "bomb"}, limits=limits,
                           error_policy={"action": "dead_letter", "retries": 0}), plugin("fail-on"))
    other_in, other_out, other = create_topic(b, unique("in")), unique("out"), unique("up")
    deploy_ok(broker, spec(other, other_in, other_out), plugin("uppercase"))

    produce_all(producer(b), inp, [(None, b"a"), (None, b"spin"), (None, b"bomb"), (None, b"z")])
    produce_all(producer(b), other_in, [(None, b"x%d" % i) for i in range(100)])
    assert len(wait_until(lambda: (lambda r: r if len(r) == 100 else None)(read(b, other_out)), 60, message="other transform")) == 100
    dlq = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(read(b, f"{name}.dlq")), 120, message="dead letters")
    errors = {m.value(): headers(m)["error"] for m in dlq}
    assert "300 ms time limit" in errors[b"spin"], errors
    assert "memory limit" in errors[b"bomb"], errors
    assert values(read(b, out)) == [b"a", b"z"]
    st = describe(broker, name)["stats"]
    assert st["time_limit_hits"] >= 1 and st["memory_limit_hits"] >= 1
    # The broker still serves produce and fetch.
    produce_all(producer(b), other_in, [(None, b"after")])
    assert wait_until(lambda: b"AFTER" in values(read(b, other_out)), 60, message="after")


def test_invalid_modules_and_specs_get_clear_deploy_errors(broker):
    inp = create_topic(broker.bootstrap, unique("in"))
    s = spec(unique("bad"), inp, unique("out"))
    cases = [
        (b"definitely not wasm", "not_wasm", "\\0asm"),
        (b"\0asm\x01\0\0\0", "missing_export", "memory"),
        (b"\0asm\x0d\0\x01\0", "not_wasm", "component"),
        (b"\0asm\x01\0\0\0\xff\xff", "compile", "compilation failed"),
    ]
    for wasm, kind, text in cases:
        status, body = deploy(broker, s, wasm)
        assert status == 400 and body["error"] == kind and text in body["message"], (wasm, status, body)
    status, body = deploy(broker, spec(unique("bad"), inp, unique("out"), config={"nope": 1}), plugin("filter-json"))
    assert status == 400 and body["error"] == "config" and "unknown field `nope`" in body["message"], body
    status, body = deploy(broker, spec(unique("bad"), inp, inp), plugin("uppercase"))
    assert status == 400 and body["error"] == "invalid_spec" and "output" in body["message"], body
    status, body = deploy(broker, {"name": "x"}, plugin("uppercase"))
    assert status == 400 and body["error"] == "invalid_spec", body
    status, _ = request(broker, "GET", "/v1/transforms/nope")
    assert status == 404
    status, listed = request(broker, "GET", "/v1/transforms")
    assert status == 200 and listed == [], "nothing was deployed by failed attempts"


def test_halt_pause_resume_reset_redeploy_and_delete(broker):
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("life")
    s = spec(name, inp, out, config={"error_on": "bad"}, error_policy={"action": "halt", "retries": 0})
    deploy_ok(broker, s, plugin("fail-on"))
    produce_all(producer(b), inp, [(None, b"one"), (None, b"bad"), (None, b"three")])
    st = wait_until(lambda: (lambda d: d if d["state"] == "failed" else None)(describe(broker, name)), 60, message="halted")
    assert "offset 1" in st["reason"] and "error requested" in st["reason"], st
    # Redeploy a fixed version (uppercase): resumes at the committed position, which is still the
    # start of the batch that halted; it stays halted until resumed.
    deploy_ok(broker, {**s, "config": {}}, plugin("uppercase"))
    assert describe(broker, name)["state"] == "failed"
    status, st = request(broker, "POST", f"/v1/transforms/{name}/resume")
    assert status == 200 and st["state"] == "running" and st["version"] == 2
    got = wait_until(lambda: (lambda r: r if len(r) == 3 else None)(read(b, out)), 60, message="after resume")
    assert values(got) == [b"ONE", b"BAD", b"THREE"]
    # Pause: nothing moves; resume: it catches up.
    status, st = request(broker, "POST", f"/v1/transforms/{name}/pause")
    assert status == 200 and st["state"] == "paused"
    produce_all(producer(b), inp, [(None, b"four")])
    time.sleep(1)
    assert len(read(b, out)) == 3 and describe(broker, name)["lag"] == 1
    request(broker, "POST", f"/v1/transforms/{name}/resume")
    wait_until(lambda: len(read(b, out)) == 4, 60, message="after second resume")
    # Reset to offset 2: records 2 and 3 are processed again.
    status, st = request(broker, "POST", f"/v1/transforms/{name}/reset", {"offset": 2})
    assert status == 200, st
    wait_until(lambda: len(read(b, out)) == 6, 60, message="after reset")
    assert values(read(b, out))[4:] == [b"THREE", b"FOUR"]
    # Delete.
    status, _ = request(broker, "DELETE", f"/v1/transforms/{name}")
    assert status == 204
    assert request(broker, "GET", f"/v1/transforms/{name}")[0] == 404


def test_lag_in_seconds_reads_the_oldest_unprocessed_record(broker):
    # A paused transform with a backlog whose records carry a timestamp an hour old reports that
    # age as its lag (describe and /metrics); once it has caught up the lag is 0. The age comes
    # from record timestamps, so the bounds below are about data, not about speed.
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("lagsec")
    deploy_ok(broker, spec(name, inp, out), plugin("uppercase"))
    request(broker, "POST", f"/v1/transforms/{name}/pause")
    hour_ago_ms = int(time.time() * 1000) - 3_600_000
    p = producer(b)
    p.produce(inp, b"old", timestamp=hour_ago_ms)
    p.produce(inp, b"new")
    assert p.flush(30) == 0
    st = describe(broker, name)
    assert st["lag"] == 2 and 3600 <= st["lag_seconds"] < 3600 + 600, st
    assert 3600 <= st["partitions"][0]["lag_seconds"] < 3600 + 600, st
    lag = scrape(broker).value("sluice_transform_lag_seconds", transform=name)
    assert 3600 <= lag < 3600 + 600
    request(broker, "POST", f"/v1/transforms/{name}/resume")
    wait_caught_up(broker, name, 2)
    assert describe(broker, name)["lag_seconds"] == 0
    assert scrape(broker).value("sluice_transform_lag_seconds", transform=name) == 0


def test_kill9_during_a_transform_load_is_exactly_once(broker):
    """Every input record's outputs appear exactly once after repeated kill -9 while the
    transform is catching up, and restarts."""
    b = broker.bootstrap
    inp = create_topic(b, unique("in"), partitions=2)
    out, name = unique("out"), unique("eo")
    deploy_ok(broker, spec(name, inp, out, batch_records_max=50), plugin("split-lines"))
    rng = random.Random(5)
    total = 0
    lags = []
    for rnd in range(4):
        # Queue a backlog while paused, resume, and kill -9 shortly after: mid catch-up.
        request(broker, "POST", f"/v1/transforms/{name}/pause")
        items = [(b"k%d" % (total + i), b"r%06d-a\nr%06d-b" % (total + i, total + i)) for i in range(8000)]
        produce_all(producer(broker.bootstrap), inp, items)
        total += len(items)
        request(broker, "POST", f"/v1/transforms/{name}/resume")
        time.sleep(rng.uniform(0.01, 0.06))
        lags.append(describe(broker, name)["lag"])
        broker.kill9()
        broker.start()
    st = wait_caught_up(broker, name, total, timeout=180)
    assert st["state"] == "running" and st["version"] == 1
    got = values(read(broker.bootstrap, out))
    expected = sorted(b"r%06d-%s" % (i, s) for i in range(total) for s in (b"a", b"b"))
    assert len(got) == len(expected), f"{len(got)} outputs for {len(expected)} expected (duplicates or loss)"
    assert sorted(got) == expected
    # A kill that lands while the transform has work lands inside a batch: the restart replays
    # it (the case that needs the pending-end checkpoint and the producer-id dedup).
    if any(lag > 0 for lag in lags):
        assert "replaying an interrupted batch" in broker.log_path.read_text(errors="replace"), lags
