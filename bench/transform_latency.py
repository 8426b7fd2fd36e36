#!/usr/bin/env python3
"""Transform hop latency: end-to-end p50/p99 of records produced to an input topic and consumed
from the output of a pass-through transform (the `fail-on` plugin with no config), beside the
same measurement on a plain topic with no transform, in the same run on the same broker.

Usage: plugins/build && cargo build --release -p sluice && python3 bench/transform_latency.py
Prints figures; asserts nothing. Reuses broker_bench.py's broker, pinning and latency consumer.
"""

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

import broker_bench as bb

REPO = Path(__file__).resolve().parent.parent


def deploy(admin, spec, wasm):
    boundary = uuid.uuid4().hex
    body = b""
    for name, content in (("spec", json.dumps(spec).encode()), ("wasm", wasm)):
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n").encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://{admin}/v1/transforms", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def hop_latency(bootstrap, produce_topic, consume_topic, rate, seconds):
    """Produces `rate` records/s to produce_topic (send time in the value), consumes
    consume_topic in another process; returns (p50 ms, p99 ms, records measured)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    starts = {0: probe.get_watermark_offsets(TopicPartition(consume_topic, 0), timeout=10)[1]}
    probe.close()
    total = int(rate * seconds)
    q, ready = mp.Queue(), mp.Event()
    proc = mp.Process(target=bb.latency_consumer, args=(bootstrap, consume_topic, 1, starts, total, q, ready))
    proc.start()
    ready.wait(30)
    time.sleep(1)
    p = Producer(bb.producer_conf(bootstrap, "all", "none", **{"linger.ms": 0}))
    filler = bb.payload(0)[8:]
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            p.produce(produce_topic, time.monotonic_ns().to_bytes(8, "big") + filler, partition=0)
            sent += 1
        p.poll(0)
        time.sleep(0.0005)
    p.flush(60)
    lat = q.get(timeout=120)
    proc.join(30)
    if not lat:
        return float("nan"), float("nan"), 0
    lat.sort()
    return statistics.median(lat), lat[max(0, int(len(lat) * 0.99) - 1)], len(lat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--wasm", default=str(REPO / "plugins" / "target" / "wasm32-wasip1" / "release" / "fail_on.wasm"))
    ap.add_argument("--rate", type=int, default=2000, help="records/s (1 KiB each)")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = bb.Broker(args.binary, Path(tmp) / "data", Path(tmp) / "broker.log")
        try:
            for t in ("plain", "in", "out"):
                bb.create_topic(broker.bootstrap, t, 1)
            deploy(broker.admin, {"name": "hop", "input": "in", "output": "out"}, Path(args.wasm).read_bytes())
            ref = hop_latency(broker.bootstrap, "plain", "plain", args.rate, args.seconds)
            hop = hop_latency(broker.bootstrap, "in", "out", args.rate, args.seconds)
        finally:
            broker.stop()
    print(f"transform hop latency, {args.rate} records/s of 1 KiB for {args.seconds} s, acks=all, linger.ms=0")
    print(f"  produce -> consume, no transform:        p50 {ref[0]:7.2f} ms  p99 {ref[1]:7.2f} ms  ({ref[2]} records)   <- reference")
    print(f"  produce -> transform -> consume output:  p50 {hop[0]:7.2f} ms  p99 {hop[1]:7.2f} ms  ({hop[2]} records)")
    print(f"  added by the hop:                        p50 {hop[0] - ref[0]:7.2f} ms  p99 {hop[1] - ref[1]:7.2f} ms")


if __name__ == "__main__":
    main()
