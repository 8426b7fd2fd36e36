"""Goal: KafkaJS 2.x (a client with its own protocol implementation, not librdkafka) works unmodified: admin create, idempotent produce (plain and gzip), a consumer group reading everything, committed offsets; method: tests/js/roundtrip.js run with node against a real broker."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import unique

JS = Path(__file__).resolve().parent / "js"
COUNT = 500


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_kafkajs_produce_consume_commit(broker):
    if not (JS / "node_modules" / "kafkajs").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `npm ci --prefix tests/js` (tests/run does)")
    topic, group = unique("kafkajs"), unique("kafkajs-group")
    out = subprocess.run(["node", str(JS / "roundtrip.js"), broker.bootstrap, topic, group, str(COUNT)],
                         capture_output=True, timeout=180, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    seen = result["seen"]
    assert sorted(int(r["seq"]) for r in seen) == list(range(COUNT)), "records lost or duplicated"
    for r in seen:
        i = int(r["seq"])
        assert (r["key"], r["value"]) == (f"k{i % 17}", f"value-{i}")
    # Per partition, offsets are dense from 0 and the committed offset is the next to read.
    ends = {}
    for r in seen:
        ends.setdefault(r["partition"], []).append(int(r["offset"]))
    committed = {int(p["partition"]): int(p["offset"]) for t in result["committed"] for p in t["partitions"]}
    for partition, offsets in ends.items():
        assert sorted(offsets) == list(range(len(offsets))), f"partition {partition} offsets {offsets[:5]}..."
        assert committed.get(partition) == len(offsets), f"partition {partition} committed {committed.get(partition)}"
