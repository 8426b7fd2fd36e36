#!/usr/bin/env python3
"""Tiered storage benchmark: catch-up reads from the object store beside local reads, in one run.

For each store (the default file:// store, and S3 served by a moto server on loopback) it
  1. produces --mb of 16 KiB records into one partition with tiering off (remote.storage.enable=false),
  2. turns tiering on and times the upload of the closed segments (upload MB/s: bytes uploaded
     divided by the time until the backlog is empty),
  3. waits for local retention to drop the uploaded segments below local.retention.bytes,
  4. reads [0, local log start) — served from the store — and [local log start, end) — served
     from local disk — with one consumer each, starting the clock at assign (so the first remote
     GET is counted), and reports MB/s for both plus the read cache hit ratio of the remote read.

The remote/local ratio is the figure to watch (target: file:// catch-up >= 50% of local).
Broker on one core, clients on the other. Figures, not assertions.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_bench import Broker, free_port, pinned  # noqa: E402

# Large records so the Python client is not what limits the read rate (at 1 KiB it tops out near
# 50-90k messages/s, below what the broker serves from either tier).
RECORD_BYTES = 16 * 1024
SEGMENT_BYTES = 16 * 1024 * 1024


def payload(i):
    body = (b'{"seq":%d,"user":"u%05d","event":"click","path":"/items/%d"}' % (i, i % 10000, i % 977)) * 300
    return body[:RECORD_BYTES]


def stats(broker):
    with urllib.request.urlopen(f"http://{broker.admin}/v1/tier", timeout=10) as r:
        return json.loads(r.read())


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def produce(bootstrap, topic, records):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5, "batch.size": 1_000_000, "log_level": 0,
                  "queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 1_048_576})
    for i in range(records):
        while True:
            try:
                p.produce(topic, key=b"%d" % i, value=payload(i), partition=0)
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120):
        raise RuntimeError("produce did not finish")


def low_watermarks(bootstrap, topic):
    """(log start, local log start) via ListOffsets -2 and the first local segment."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "x"})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    return low, high


def read_range(bootstrap, topic, start, end):
    """Reads offsets [start, end): MB/s of record values, clock from assign to the last record."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                  "max.partition.fetch.bytes": 10_485_760})
    began = time.perf_counter()
    c.assign([TopicPartition(topic, 0, start)])
    nbytes, next_offset = 0, start
    deadline = time.monotonic() + 600
    while next_offset < end and time.monotonic() < deadline:
        # A short timeout: consume() waits for all num_messages or the timeout, and the last
        # call would otherwise add up to its whole timeout to the measured time.
        for m in c.consume(num_messages=1000, timeout=0.05):
            if m.error():
                raise RuntimeError(str(m.error()))
            if m.offset() < end:
                nbytes += len(m.value())
            next_offset = m.offset() + 1
    elapsed = time.perf_counter() - began
    c.close()
    if next_offset < end:
        raise RuntimeError(f"read stopped at {next_offset} of {end}")
    return nbytes / elapsed / 1e6


def run_store(binary, name, store_url, env, records, local_bytes):
    work = Path(tempfile.mkdtemp(prefix=f"tier-bench-{name}-"))
    os.environ.update(env)
    try:
        store = ["--object-store", store_url] if store_url else []
        broker = Broker(binary, work / "data", work / "broker.log", extra_args=store + ["--log-maintenance-interval-ms", "100"])
    finally:
        for k in env:
            os.environ.pop(k, None)
    try:
        topic = "tier-bench"
        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        a.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": str(SEGMENT_BYTES), "remote.storage.enable": "false",
                                                       "local.retention.bytes": str(local_bytes)})])[topic].result(30)
        time.sleep(0.5)
        produce(broker.bootstrap, topic, records)
        before = stats(broker)
        began = time.perf_counter()
        res = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("remote.storage.enable", "true", incremental_operation=AlterConfigOpType.SET)])
        a.incremental_alter_configs([res])[res].result(30)
        wait_until(lambda: stats(broker)["segments_uploaded"] > before["segments_uploaded"] and
                   stats(broker)["upload_backlog_segments"] == 0, 600, "uploads")
        upload_s = time.perf_counter() - began
        uploaded = stats(broker)["bytes_uploaded"] - before["bytes_uploaded"]
        pdir = work / "data" / f"{topic}-0"
        wait_until(lambda: sum(f.stat().st_size for f in pdir.glob("*.log")) <= local_bytes + 2 * SEGMENT_BYTES, 300,
                   "local retention")
        local_start = first_local_base(pdir)
        low, high = low_watermarks(broker.bootstrap, topic)
        # Local before and after the remote read, so neither tier gets a warmer machine.
        local_before = read_range(broker.bootstrap, topic, local_start, high)
        s0 = stats(broker)
        remote_mb_s = read_range(broker.bootstrap, topic, 0, local_start)
        s1 = stats(broker)
        local_mb_s = (local_before + read_range(broker.bootstrap, topic, local_start, high)) / 2
        hits = s1["cache_hits"] - s0["cache_hits"]
        misses = s1["cache_misses"] - s0["cache_misses"]
        return {
            "store": name, "records": records, "log_start": low, "local_start": local_start, "end": high,
            "upload_mb_s": uploaded / upload_s / 1e6, "remote_read_mb_s": remote_mb_s, "local_read_mb_s": local_mb_s,
            "cache_hit_ratio": hits / (hits + misses) if hits + misses else float("nan"),
            "remote_gets": s1["remote_reads"] - s0["remote_reads"],
        }
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def first_local_base(partition_dir):
    bases = sorted(int(p.name.split(".")[0]) for p in partition_dir.glob("*.log"))
    return bases[0] if bases and bases[0] > 0 else 0


def start_moto():
    port = free_port()
    proc = subprocess.Popen(pinned(0) + [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT")
    urllib.request.urlopen(req, timeout=10).read()
    return proc, port


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--mb", type=int, default=256, help="MB produced for the file:// run (default 256)")
    ap.add_argument("--s3-mb", type=int, default=64, help="MB produced for the moto S3 run (default 64)")
    ap.add_argument("--no-s3", action="store_true")
    args = ap.parse_args()
    rows = [run_store(args.binary, "file", None, {}, args.mb * 1_000_000 // RECORD_BYTES, 64 * 1024 * 1024)]
    if not args.no_s3:
        proc, port = start_moto()
        try:
            env = {"AWS_ENDPOINT": f"http://127.0.0.1:{port}", "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "bench",
                   "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
            rows.append(run_store(args.binary, "moto-s3", "s3://bench/tier", env, args.s3_mb * 1_000_000 // RECORD_BYTES, 16 * 1024 * 1024))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"{'store':<8} {'records':>8} {'upload MB/s':>12} {'remote read MB/s':>17} {'local read MB/s':>16} "
          f"{'remote/local':>13} {'cache hit':>10} {'GETs':>6}")
    for r in rows:
        print(f"{r['store']:<8} {r['records']:>8} {r['upload_mb_s']:>12.1f} {r['remote_read_mb_s']:>17.1f} "
              f"{r['local_read_mb_s']:>16.1f} {r['remote_read_mb_s'] / r['local_read_mb_s']:>12.0%} "
              f"{r['cache_hit_ratio']:>10.1%} {r['remote_gets']:>6}")
        print(f"         offsets: remote [{r['log_start']}, {r['local_start']}), local [{r['local_start']}, {r['end']})")


if __name__ == "__main__":
    main()
