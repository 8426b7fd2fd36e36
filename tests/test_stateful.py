"""Goal: stateful transforms (ABI v2) count exactly: known input with out-of-order and late
records gives exactly the expected windows; kill -9 mid-stream with a large backlog, restart, and
the final counts are exactly right; a redeploy keeps state, a delete removes it; the state size
cap halts with a clear reason and a metric. Method: the windowed-count plugin compiled from
plugins/ for wasm32-wasip1, deployed to a real broker, fed with explicit timestamps and
partitions by confluent-kafka, its output read back with a Kafka consumer."""

import collections
import json
import random
import re
import signal
import time

from confluent_kafka.admin import NewPartitions
from helpers import admin, create_topic, producer, read_all, unique, wait_until
from prom_text import scrape
from transforms import deploy_ok, describe, plugin, request, wait_caught_up

# An epoch-aligned minute, so window starts are T0 + k * window.
T0 = 1_700_000_040_000
assert T0 % 60_000 == 0


def produce_timed(bootstrap, topic, events):
    """Produces (partition, key, ts_ms, value) in order (one producer, idempotent: per-partition
    order is kept) and waits for every acknowledgement."""
    p = producer(bootstrap, **{"enable.idempotence": True})
    errors = []
    for part, key, ts, value in events:
        while True:
            try:
                p.produce(topic, value=value, key=key, partition=part, timestamp=ts,
                          on_delivery=lambda err, msg: errors.append(err) if err else None)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors[:3]


def window_counts(msgs):
    """[(key, window_start - T0, count)] from windowed-count outputs, sorted; duplicates kept."""
    out = []
    for m in msgs:
        v = json.loads(m.value())
        assert m.key().decode() == v["key"]
        assert m.timestamp()[1] == v["window_end"] - 1
        out.append((v["key"], v["window_start"] - T0, v["count"]))
    return sorted(out)


def spec(name, inp, out, **config):
    return {"name": name, "input": inp, "output": out, "config": config}


def topics(bootstrap):
    return set(admin(bootstrap).list_topics(timeout=10).topics)


def test_windowed_count_exact_windows_with_out_of_order_and_late_records(broker):
    b = broker.bootstrap
    inp = create_topic(b, unique("clicks"), partitions=2)
    out, late, name = unique("counts"), unique("late"), unique("wc")
    deploy_ok(broker, spec(name, inp, out, allowed_lateness_ms=5000, late_topic=late), plugin("windowed-count"))
    s = 1000
    events = [
        # Partition 0. Watermark = max timestamp - 5 s.
        (0, b"a", T0 + 1 * s, b"a1"),
        (0, b"b", T0 + 30 * s, b"b1"),
        (0, b"a", T0 + 59 * s, b"a2"),
        (0, b"a", T0 + 62 * s, b"a3"),    # watermark 57 s: window 0 still open
        (0, b"b", T0 + 58 * s, b"b2"),    # 4 s out of order, within the lateness: counts
        (0, b"a", T0 + 66 * s, b"a4"),    # watermark 61 s: window 0 closes (a 2, b 2)
        (0, b"b", T0 + 20 * s, b"b-late"),  # window 0 is closed: late
        (0, b"c", T0 + 125 * s, b"c1"),   # watermark 120 s: window 1 closes (a 2)
        (0, b"z", T0 + 600 * s, b"end"),  # closes window 2 (c 1); z's own window stays open
        # Partition 1: its own watermark.
        (1, b"d", T0 + 10 * s, b"d1"),
        (1, b"d", T0 + 11 * s, b"d2"),
        (1, b"e", T0 + 70 * s, b"e1"),    # watermark 65 s: window 0 closes (d 2)
        (1, b"d", T0 + 65 * s, b"d3"),    # window 1 is open: counts
        (1, b"z", T0 + 600 * s, b"end"),  # closes window 1 (e 1, d 1)
    ]
    produce_timed(b, inp, events)
    wait_caught_up(broker, name, len(events))
    got = window_counts(read_all(b, out))
    minute = 60 * s
    assert got == sorted([
        ("a", 0, 2), ("b", 0, 2), ("a", minute, 2), ("c", 2 * minute, 1),
        ("d", 0, 2), ("e", minute, 1), ("d", minute, 1),
    ])
    assert [m.value() for m in read_all(b, late)] == [b"b-late"]
    # State is written to the compacted changelog, one partition per input partition.
    changelog = f"_sluice_state.{name}"
    md = admin(b).list_topics(changelog, timeout=10).topics[changelog]
    assert len(md.partitions) == 2
    m = scrape(broker)
    assert m.value("sluice_transform_changelog_records_total", transform=name) > 0
    # Left: z's open window and the watermark bookkeeping, per partition.
    assert m.value("sluice_transform_state_bytes", transform=name) > 0
    st = describe(broker, name)
    assert st["state"] == "running" and st["stats"]["records_in"] == len(events)


def test_windowed_count_hopping_windows_exact(broker):
    """Hopping windows (60 s every 20 s) through a real broker: each record counts in the three
    windows holding it; out-of-order records within the lateness count, and a record too late
    for all of its windows goes to the late topic. Expected counts come from a brute-force
    simulation of the watermark in this test."""
    b = broker.bootstrap
    inp = create_topic(b, unique("clicks"))
    out, late, name = unique("hop"), unique("late"), unique("wc")
    size, advance, lateness = 60_000, 20_000, 10_000
    deploy_ok(broker, spec(name, inp, out, window_ms=size, advance_ms=advance, allowed_lateness_ms=lateness, late_topic=late),
              plugin("windowed-count"))
    rng = random.Random(11)
    clock, events = T0, []
    for i in range(300):
        clock += rng.randrange(1000, 7000)
        # Every 10th record up to 8 s out of order (inside the lateness), plus a few far-late ones.
        ts = clock - rng.randrange(8000) if i % 10 == 0 else clock
        events.append((0, rng.choice([b"a", b"b", b"c"]), ts, b"v%d" % i))
    events.insert(150, (0, b"a", events[149][2] - 200_000, b"far-late"))
    events.append((0, b"z", clock + 10 * size, b"end"))
    produce_timed(b, inp, events)
    wait_caught_up(broker, name, len(events))
    # The simulation: watermark = max ts - lateness before each record; a window counts the
    # record if its end is past the watermark; windows whose end the final watermark reached
    # were emitted.
    counts, late_values, max_ts = collections.Counter(), [], None
    for _, key, ts, value in events:
        watermark = None if max_ts is None else max_ts - lateness
        starts = [st for st in range(ts - ts % advance - size, ts + 1, advance) if st <= ts < st + size]
        counted = [st for st in starts if watermark is None or st + size > watermark]
        for st in counted:
            counts[(key.decode(), st - T0)] += 1
        if not counted:
            late_values.append(value)
        max_ts = ts if max_ts is None else max(max_ts, ts)
    final = max_ts - lateness
    expected = sorted((k, w, n) for (k, w), n in counts.items() if w + T0 + size <= final)
    assert len(expected) > 30 and all(k in ("a", "b", "c") for k, _, _ in expected)
    assert window_counts(read_all(b, out)) == expected
    assert [m.value() for m in read_all(b, late)] == late_values == [b"far-late"]


def test_input_partitions_added_after_deploy_get_runner_and_changelog(broker):
    """CreatePartitions on a running stateful transform's input: the new partition gets a
    runner (from its first offset, so records produced right away count) and its own changelog
    partition; after kill -9 and a restart its state is restored and every window is exact."""
    b = broker.bootstrap
    inp = create_topic(b, unique("clicks"))
    out, name = unique("counts"), unique("wc")
    deploy_ok(broker, spec(name, inp, out, window_ms=10_000), plugin("windowed-count"))
    produce_timed(b, inp, [(0, b"a", T0 + 1000, b"1")])
    a = admin(b)  # kept alive until the future resolves
    for f in a.create_partitions([NewPartitions(inp, 2)]).values():
        f.result(30)
    produce_timed(b, inp, [(1, b"p", T0 + 1000, b"1"), (1, b"p", T0 + 2000, b"2"), (1, b"q", T0 + 3000, b"3")])
    wait_caught_up(broker, name, 4, timeout=60)
    changelog = f"_sluice_state.{name}"
    wait_until(lambda: len(admin(b).list_topics(changelog, timeout=10).topics[changelog].partitions) == 2, 30,
               message="the changelog grew to 2 partitions")
    broker.kill9()
    broker.start()
    b = broker.bootstrap  # a restart may listen on a new port
    produce_timed(b, inp, [(1, b"p", T0 + 4000, b"4"), (0, b"z", T0 + 50_000, b"end"), (1, b"z", T0 + 50_000, b"end")])
    st = wait_caught_up(broker, name, 7, timeout=60)
    assert st["state"] == "running" and [p["partition"] for p in st["partitions"]] == [0, 1], st
    assert window_counts(read_all(b, out)) == sorted([("a", 0, 1), ("p", 0, 3), ("q", 0, 1)])
    log = re.sub(r"\x1b\[[0-9;]*m", "", broker.log_path.read_text(errors="replace"))
    assert "input partition added: starting its runner" in log


def expected_counts(events, window_ms):
    """Counts per (key, window) of every window closed by its partition's final watermark, for
    input whose out-of-order records stay within the allowed lateness (so none is late)."""
    counts = collections.Counter()
    last = {}
    for part, key, ts, _ in events:
        start = (ts // window_ms) * window_ms
        counts[(part, key.decode(), start - T0)] += 1
        last[part] = max(last.get(part, ts), ts)
    return counts, last


def close_windows_and_check_counts(broker, name, inp, out, events, window_ms, partitions, timeout):
    """Closes every window that holds data (one record per partition far in the future), waits
    until the transform has read everything, and checks every window's count is exactly right
    and emitted exactly once. Returns the transform's status."""
    counts, last = expected_counts(events, window_ms)
    closing = [(p, b"zz-end", last[p] + 10 * window_ms, b"end") for p in partitions]
    produce_timed(broker.bootstrap, inp, closing)
    st = wait_caught_up(broker, name, len(events) + len(closing), timeout=timeout)
    assert st["state"] == "running", st
    got = window_counts(read_all(broker.bootstrap, out))
    expected = sorted((k, w, n) for (_, k, w), n in counts.items())
    assert len(got) == len(expected), f"{len(got)} windows emitted, {len(expected)} expected (duplicates or loss)"
    assert got == expected
    return st


def test_crash_after_a_run_ahead_batch_is_decided_keeps_counts_exact(broker_factory):
    """The runner runs batch N+1 on the guest while N is written, then stores N's end and N+1's
    decision in one checkpoint. A failpoint aborts the broker right after that write (N+1
    decided; none of its state changes or outputs written, but the guest had applied them);
    after the restart N+1 is replayed on the state as of N, and every window is exact and
    emitted once."""
    broker = broker_factory()
    inp = create_topic(broker.bootstrap, unique("clicks"), partitions=1)
    out, name = unique("counts"), unique("wc")
    window = 5000
    s = spec(name, inp, out, window_ms=window)
    s["batch_records_max"] = 50
    deploy_ok(broker, s, plugin("windowed-count"))
    broker.stop()
    broker.start(env={"SLUICE_TRANSFORM_FAILPOINT": "abort-after-ahead-decision"})
    request(broker, "POST", f"/v1/transforms/{name}/pause")
    # 40 batches of 50: windows close inside the backlog, so outputs are written too.
    events = [(0, b"user-%02d" % (i % 30), T0 + i * 7, b"x") for i in range(2000)]
    produce_timed(broker.bootstrap, inp, events)
    try:
        request(broker, "POST", f"/v1/transforms/{name}/resume", timeout=10)
    except OSError:
        pass  # the abort may beat the answer; the exit code is the proof
    code = broker.proc.wait(timeout=120)
    assert code == -signal.SIGABRT, f"exit code {code}, expected the failpoint's abort\n{broker.stderr_tail()}"
    broker.start()
    close_windows_and_check_counts(broker, name, inp, out, events, window, (0,), timeout=120)
    log = re.sub(r"\x1b\[[0-9;]*m", "", broker.log_path.read_text(errors="replace"))
    assert "aborting the process after storing a checkpoint that ends a batch and holds the next batch's decision" in log
    assert "replaying an interrupted batch" in log


def test_kill9_mid_stream_keeps_window_counts_exact(broker):
    """Repeated kill -9 while a large backlog is being counted; after the restarts every
    window's count is exactly right and appears exactly once (no lost or double-applied
    state, no duplicate emission)."""
    inp = create_topic(broker.bootstrap, unique("clicks"), partitions=2)
    out, name = unique("counts"), unique("wc")
    window, lateness = 5000, 2000
    s = spec(name, inp, out, window_ms=window, allowed_lateness_ms=lateness)
    s["batch_records_max"] = 50
    deploy_ok(broker, s, plugin("windowed-count"))
    rng = random.Random(7)
    keys = [b"user-%03d" % i for i in range(200)]
    clock = {0: T0, 1: T0}
    events, lags = [], []
    for rnd in range(4):
        request(broker, "POST", f"/v1/transforms/{name}/pause")
        batch = []
        for _ in range(8000):
            key = rng.choice(keys)
            part = int(key[5:]) % 2
            clock[part] += 10
            # Up to 1.5 s out of order: inside the 2 s lateness, so nothing is late.
            batch.append((part, key, clock[part] - rng.randrange(1500), b"x"))
        produce_timed(broker.bootstrap, inp, batch)
        events += batch
        request(broker, "POST", f"/v1/transforms/{name}/resume")
        time.sleep(rng.uniform(0.05, 0.3))
        lags.append(describe(broker, name)["lag"])
        broker.kill9()
        broker.start()
    close_windows_and_check_counts(broker, name, inp, out, events, window, (0, 1), timeout=240)
    log = re.sub(r"\x1b\[[0-9;]*m", "", broker.log_path.read_text(errors="replace"))
    # Each resume and restart rebuilt the runners' state from the changelog, with data in it.
    restored = [int(n) for n in re.findall(r"state restored.*?records=(\d+)", log)]
    assert len(restored) >= 4 * 2 and max(restored) > 0, restored
    if any(lag > 0 for lag in lags):
        assert "replaying an interrupted batch" in log, lags
    m = scrape(broker)
    assert m.value("sluice_transform_state_restores_total", transform=name) >= 2


def test_redeploy_keeps_state_and_delete_removes_it(broker):
    b = broker.bootstrap
    inp = create_topic(b, unique("clicks"))
    out, name = unique("counts"), unique("wc")
    wasm = plugin("windowed-count")
    deploy_ok(broker, spec(name, inp, out), wasm)
    produce_timed(b, inp, [(0, b"k", T0 + 1000, b"1"), (0, b"k", T0 + 2000, b"2")])
    wait_caught_up(broker, name, 2)
    # A new version (another config) resumes with the open window's count.
    st = deploy_ok(broker, spec(name, inp, out, late_topic=unique("late")), wasm)
    assert st["version"] == 2
    produce_timed(b, inp, [(0, b"k", T0 + 3000, b"3"), (0, b"end", T0 + 120_000, b"end")])
    wait_caught_up(broker, name, 4)
    assert window_counts(read_all(b, out)) == [("k", 0, 3)]
    changelog = f"_sluice_state.{name}"
    assert changelog in topics(b)
    status, _ = request(broker, "DELETE", f"/v1/transforms/{name}")
    assert status == 204
    wait_until(lambda: changelog not in topics(b), timeout=30, message="changelog deleted")


def test_state_size_cap_halts_with_reason_and_metric(broker):
    b = broker.bootstrap
    inp = create_topic(b, unique("clicks"))
    out, name = unique("counts"), unique("wc")
    s = spec(name, inp, out)
    s["state"] = {"bytes_max": 2000}
    deploy_ok(broker, s, plugin("windowed-count"))
    produce_timed(b, inp, [(0, b"key-%04d" % i, T0 + i, b"x") for i in range(500)])
    st = wait_until(lambda: (lambda d: d if d["state"] == "failed" else None)(describe(broker, name)), timeout=60, message="halted at the cap")
    assert "state.bytes_max" in st["reason"] and "2000" in st["reason"], st["reason"]
    assert scrape(broker).value("sluice_transform_state_cap_hits_total", transform=name) == 1
    # Nothing past the cap was committed: the input position stopped before the end.
    assert st["partitions"][0]["next_offset"] < 500


def test_dedupe_and_sessionize_known_input(broker):
    b = broker.bootstrap
    inp = create_topic(b, unique("events"))
    dd_out, dd = unique("unique"), unique("dedupe")
    se_out, se = unique("sessions"), unique("sessionize")
    deploy_ok(broker, spec(dd, inp, dd_out, window_ms=10_000), plugin("dedupe"))
    deploy_ok(broker, spec(se, inp, se_out), plugin("sessionize"))
    s = 1000
    events = [
        (0, b"u1", T0, b"a"),
        (0, b"u1", T0 + 5 * s, b"b"),     # u1 seen 5 s ago: dropped by dedupe
        (0, b"u2", T0 + 6 * s, b"c"),
        (0, b"u1", T0 + 12 * s, b"d"),    # 12 s after u1's first: passes
        (0, b"u2", T0 + 15 * s, b"e"),    # 9 s after u2's first: dropped
        (0, b"u1", T0 + 20 * s, b"f"),    # 8 s after d: dropped
        (0, b"u1", T0 + 90 * s, b"g"),    # a new session for u1 (60 s quiet > 30 s gap)
        (0, b"zz", T0 + 400 * s, b"end"),  # closes every session above
    ]
    produce_timed(b, inp, events)
    wait_caught_up(broker, dd, len(events))
    wait_caught_up(broker, se, len(events))
    assert [m.value() for m in read_all(b, dd_out)] == [b"a", b"c", b"d", b"g", b"end"]
    got = sorted((json.loads(m.value())["user"], json.loads(m.value())["start"] - T0, json.loads(m.value())["end"] - T0,
                  json.loads(m.value())["clicks"]) for m in read_all(b, se_out))
    # u1: 0, 5, 12, 20 s -> [0, 50 s); u2: 6, 15 s -> [6, 45 s); u1 again: [90, 120 s).
    assert got == [("u1", 0, 50 * s, 4), ("u1", 90 * s, 120 * s, 1), ("u2", 6 * s, 45 * s, 2)]
