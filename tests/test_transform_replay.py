"""Goal: a transform's outputs are exactly once even when the broker dies inside the two windows
of a batch (decision stored / outputs durable, checkpoint not yet), and a time-limit decision is
the same on the replay as on the first run; method: the broker's test failpoints
(SLUICE_TRANSFORM_FAILPOINT) abort a real broker process at exactly those points, or force the
time limit on one record, and a restart without them replays the batch; real plugins compiled
from plugins/, real Kafka clients."""

import signal

from helpers import create_topic, produce_all, producer, read_all, unique
from transforms import deploy_ok, describe, plugin, request, wait_caught_up

FAILPOINT = "SLUICE_TRANSFORM_FAILPOINT"


def headers(msg):
    return {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}


def resume_until_abort(broker, name):
    """Resumes the paused transform and waits for the failpoint's abort (SIGABRT). The abort may
    beat the admin API's answer, so a lost answer is expected; the exit code is the proof."""
    try:
        request(broker, "POST", f"/v1/transforms/{name}/resume", timeout=10)
    except OSError:
        pass
    code = broker.proc.wait(timeout=120)
    assert code == -signal.SIGABRT, f"exit code {code}, expected the failpoint's abort\n{broker.stderr_tail()}"


def test_a_time_limit_decision_is_the_same_on_the_replay(broker_factory):
    """Record 2 is killed by the time limit on the first run (forced by the failpoint, as on an
    overloaded machine) and the broker dies with the outputs durable but the checkpoint not
    stored. On the replay record 2 would run in time: it must still be dead-lettered, not emitted,
    and the outputs after it must keep flowing exactly once."""
    broker = broker_factory(start=False)
    b = broker.start(env={FAILPOINT: "time-limit-at=2,abort-after-outputs"})
    inp, out, name = create_topic(b, unique("in")), unique("out"), unique("replay")
    deploy_ok(broker, {"name": name, "input": inp, "output": out, "error_policy": {"action": "dead_letter", "retries": 0}}, plugin("fail-on"))
    request(broker, "POST", f"/v1/transforms/{name}/pause")
    produce_all(producer(b), inp, [(None, v) for v in (b"a", b"b", b"c", b"d", b"e")])
    resume_until_abort(broker, name)

    b = broker.start()  # no failpoint: record 2 now finishes well inside the limit
    wait_caught_up(broker, name, 5)
    produce_all(producer(b), inp, [(None, b"f"), (None, b"g")])
    wait_caught_up(broker, name, 7)
    assert [m.value() for m in read_all(b, out)] == [b"a", b"b", b"d", b"e", b"f", b"g"]
    dlq = read_all(b, f"{name}.dlq")
    assert [m.value() for m in dlq] == [b"c"]
    h = headers(dlq[0])
    assert h["input_offset"] == "2" and "time limit" in h["error"], h
    log = broker.log_path.read_text(errors="replace")
    assert "replaying an interrupted batch" in log


def test_a_crash_in_either_window_of_a_batch_is_exactly_once(broker_factory):
    """Three rounds: queue a backlog on 2 partitions while paused, resume under a failpoint that
    aborts the broker after a batch's decision is stored (before its outputs) or after its
    outputs are durable (before its checkpoint), restart without it. Every input record's two
    outputs appear exactly once."""
    broker = broker_factory()
    b = broker.bootstrap
    inp, out, name = create_topic(b, unique("in"), partitions=2), unique("out"), unique("window")
    deploy_ok(broker, {"name": name, "input": inp, "output": out, "batch_records_max": 50}, plugin("split-lines"))
    total = 0
    for point in ("abort-after-outputs", "abort-after-decision", "abort-after-outputs"):
        broker.stop()
        broker.start(env={FAILPOINT: point})
        request(broker, "POST", f"/v1/transforms/{name}/pause")
        items = [(b"k%d" % (total + i), b"r%06d-a\nr%06d-b" % (total + i, total + i)) for i in range(1000)]
        produce_all(producer(broker.bootstrap), inp, items)
        total += len(items)
        resume_until_abort(broker, name)
        broker.start()
        wait_caught_up(broker, name, total, timeout=180)
    got = sorted(m.value() for m in read_all(broker.bootstrap, out))
    expected = sorted(b"r%06d-%s" % (i, s) for i in range(total) for s in (b"a", b"b"))
    assert len(got) == len(expected), f"{len(got)} outputs for {len(expected)} expected (duplicates or loss)"
    assert got == expected
    assert describe(broker, name)["state"] == "running"
    # Count broker runs, not lines: both partitions' runners can reach the failpoint in the same
    # instant and each logs it before the process is gone.
    runs = broker.log_path.read_text(errors="replace").split("===== start #")
    log = "".join(runs)
    assert sum("aborting the process after a batch's outputs are durable" in r for r in runs) == 2
    assert sum("aborting the process after storing a batch's decision" in r for r in runs) == 1
    assert log.count("replaying an interrupted batch") >= 3
