"""Goal: a transform partition whose batch cannot run now (no wasm instance free: the pool set by
`--transform-instances-max` is full) is shown as waiting to retry in the admin status, in
`sluice describe` and in the metrics, and loses nothing: once instances are free it processes
every record. Method: a real broker with a one-instance pool, the `uppercase` plugin built from
plugins/, records produced and read with confluent-kafka."""

import time

from helpers import create_topic, produce_all, producer, read_all, unique
from prom_text import scrape
from test_manifests import sluice
from transforms import deploy_ok, describe, plugin, wait_caught_up


def test_a_partition_without_an_instance_shows_as_retrying_and_catches_up_later(broker_factory):
    b = broker_factory(start=False)
    b.start(env={"SLUICE_TRANSFORM_INSTANCES_MAX": "1"})
    inp, out, name = unique("retry-in"), unique("retry-out"), unique("retry")
    create_topic(b.bootstrap, inp, partitions=2)
    create_topic(b.bootstrap, out, partitions=1)
    deploy_ok(b, {"name": name, "input": inp, "output": out}, plugin("uppercase"))
    produce_all(producer(b.bootstrap), inp, [(None, b"p0-a")], partition=0)
    produce_all(producer(b.bootstrap), inp, [(None, b"p1-a")], partition=1)

    # One partition's runner holds the pool's only instance; the other keeps retrying.
    deadline = time.monotonic() + 60
    status = describe(b, name)
    while time.monotonic() < deadline:
        status = describe(b, name)
        waiting = [p for p in status["partitions"] if p.get("retrying")]
        if len(waiting) == 1 and status["stats"]["batch_retries"] >= 2:
            break
        time.sleep(0.2)
    waiting = [p for p in status["partitions"] if p.get("retrying")]
    assert len(waiting) == 1 and status["stats"]["batch_retries"] >= 2, status
    assert status["state"] == "running", status
    assert waiting[0]["lag"] == 1, status
    reason = waiting[0]["retrying"]
    assert "instance" in reason.lower(), reason

    lines, _ = sluice(b, "describe", "transform", name)
    assert f"Partition {waiting[0]['partition']} waits to retry its batch: {reason}" in lines, lines
    metrics = scrape(b)
    assert metrics.total("sluice_transform_partitions_retrying", transform=name) == 1
    assert metrics.total("sluice_transform_batch_retries_total", transform=name) >= 2

    # With room for both runners, nothing is waiting and every record came through once.
    b.stop()
    b.start(env={"SLUICE_TRANSFORM_INSTANCES_MAX": "4"})
    status = wait_caught_up(b, name, 2)
    assert not [p for p in status["partitions"] if p.get("retrying")], status
    assert sorted(m.value() for m in read_all(b.bootstrap, out)) == [b"P0-A", b"P1-A"]
    assert scrape(b).total("sluice_transform_partitions_retrying", transform=name) == 0
