#!/usr/bin/env python3
"""Stateful transform throughput and restore through a real broker: the `windowed-count` plugin
counting a backlog of records over 10k or 1M distinct keys (one open window per key, so state
holds one entry per key), changelog and checkpoint writes included; then a restart and the time
the runner took to restore that state from its changelog (the broker's own "state restored"
log line, which also counts the records read).

Usage: plugins/build && cargo build --release -p sluice && python3 bench/state_e2e.py [--keys N]
Prints figures (wall clock, and the broker's CPU seconds, which other load on a shared machine
does not inflate); asserts nothing. Reuses broker_bench.py's broker and pinning.
"""

import argparse
import json
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer

import broker_bench as bb
from transform_latency import deploy

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_040_000


def produce(bootstrap, topic, records, keys):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 1000000})
    for n in range(records):
        key = b"user-%07d" % ((n * 7919) % keys)
        while True:
            try:
                p.produce(topic, b"click", key, partition=0, timestamp=T0 + n % 50_000)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0


def describe(admin, name):
    with urllib.request.urlopen(f"http://{admin}/v1/transforms/{name}", timeout=30) as r:
        return json.loads(r.read())


def wait_caught_up(admin, name, records, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = describe(admin, name)
        if st["partitions"] and st["partitions"][0]["next_offset"] >= records:
            return st
        if st["state"] == "failed":
            raise SystemExit(f"transform failed: {st['reason']}")
        time.sleep(0.05)
    raise SystemExit("not caught up in time")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--wasm", default=str(REPO / "plugins" / "target" / "wasm32-wasip1" / "release" / "windowed_count.wasm"))
    ap.add_argument("--keys", type=int, nargs="+", default=[10_000, 1_000_000])
    args = ap.parse_args()
    wasm = Path(args.wasm).read_bytes()
    for keys in args.keys:
        records = max(keys, 1_000_000)
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "broker.log"
            rust_log = "warn,sluice::transform=info"
            broker = bb.Broker(args.binary, Path(tmp) / "data", log, rust_log=rust_log)
            try:
                bb.create_topic(broker.bootstrap, "in", 1)
                produce(broker.bootstrap, "in", records, keys)
                spec = {"name": "wc", "input": "in", "output": "out", "batch_records_max": 10000,
                        "limits": {"memory_bytes": 1 << 30, "batch_time_ms": 60000}, "state": {"bytes_max": 512 << 20}}
                deploy(broker.admin, spec, wasm)
                started, cpu0 = time.perf_counter(), broker.cpu_seconds()
                st = wait_caught_up(broker.admin, "wc", records)
                secs, cpu = time.perf_counter() - started, broker.cpu_seconds() - cpu0
                print(f"windowed-count  keys={keys:>9}  records={records:>9}  {records / secs:>10.0f} records/s  "
                      f"({records / cpu:.0f} per broker CPU second, all threads)  "
                      f"(backlog, changelog included; {st['stats']['batches']} batches; state "
                      f"{describe(broker.admin, 'wc')['stats']['state_bytes'] / 1e6:.1f} MB)")
            finally:
                broker.stop()
            # Restart on the same data: the runner restores when its next batch arrives. Only
            # log lines after this point count.
            seen = log.stat().st_size
            broker = bb.Broker(args.binary, Path(tmp) / "data", log, rust_log=rust_log)
            try:
                cpu0 = broker.cpu_seconds()
                produce(broker.bootstrap, "in", 1, keys)
                deadline = time.monotonic() + 600
                found = None
                while time.monotonic() < deadline and not found:
                    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_bytes()[seen:].decode(errors="replace"))
                    found = re.findall(r"state restored.*?records=(\d+).*?millis=(\d+)", text)
                    time.sleep(0.2)
                if found:
                    n, ms = found[-1]
                    print(f"restore         keys={keys:>9}  {int(n):>9} changelog records in {int(ms) / 1000:.2f} s "
                          f"(broker CPU from the restart's ready line to the restored line: {broker.cpu_seconds() - cpu0:.2f} s)")
                else:
                    print("restore: no 'state restored' line within 600 s")
            finally:
                broker.stop()


if __name__ == "__main__":
    main()
