#!/usr/bin/env python3
"""Broker benchmark: drives a real `sluice serve` with librdkafka and prints a table.

For 1 KiB records, 1 and 8 partitions, acks=1 and acks=all, uncompressed and lz4, it measures
  - produce MB/s and records/s (fixed record count, timed from first send to the last ack), and
    the broker's CPU time per MB produced (user + system from /proc/PID/stat, load-independent),
  - consume MB/s (the same records read back by partition assignment),
  - end-to-end latency p50/p99 at a fixed produce rate (send time in the record value, subtracted
    from the receive time on the same monotonic clock), and the producer's send-to-ack p50/p99,
and, in the same run, the loopback TCP ceiling (iperf3) and the broker's idle RSS.

The client is `sluice-bench-driver` (bench/driver: librdkafka through the `rdkafka` crate) by
default, or confluent-kafka in Python with `--client python` (the Python client costs about as much
CPU per record as the broker, so it caps the produce figure; its `consume(n, timeout)` also waits
to fill a batch, which inflates latency). The broker runs on one core and the client on the
other (taskset / sched_setaffinity), loopback only. Figures, not assertions: the machines are
shared and noisy, so compare runs, not numbers.
"""

import argparse
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
RECORD_BYTES = 1024
BROKER_CPU = 1
CLIENT_CPU = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu):
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() > 1 else []


# ---------------------------------------------------------------- the broker

class Broker:
    def __init__(self, binary, data_dir, log_path, extra_args=(), rust_log=None):
        self.log = open(log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.setdefault("RUST_LOG", "warn")
        if rust_log:
            env["RUST_LOG"] = rust_log
        self.proc = subprocess.Popen(
            pinned(BROKER_CPU) + [str(binary), "serve", "--kafka-addr", "127.0.0.1:0", "--admin-addr",
                                  "127.0.0.1:0", "--data-dir", str(data_dir), *extra_args],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"sluice ready kafka=(\S+) admin=(\S+)", line)
        if not m:
            self.proc.kill()
            sys.exit(f"broker did not start (stdout {line!r}); see {log_path}")
        self.bootstrap, self.admin = m.groups()

    def cpu_seconds(self):
        """User + system CPU time of the broker process so far (all threads, exited ones too)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        # With taskset in front, the broker is taskset's exec'd image: same pid.
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------- measurements

class PerfStat:
    """Counters of one process (all its threads) over one run: `perf stat -x, -e EVENTS -p PID`,
    started before the run and stopped with SIGINT after it.

    Instructions retired (`HARDWARE`) do not depend on what else the machine runs, so their paired
    differences resolve a few percent where wall-clock rates and CPU seconds on a shared machine
    swing 10-30%. A VM without a virtual PMU (this one: dmesg says "PMU not available due to
    virtualization") counts software events only: `hardware_available()` is then False and callers
    fall back to `task-clock` (CPU time) and say so. Tracepoints such as
    `syscalls:sys_enter_read` count on either."""

    HARDWARE = ("instructions", "cycles")

    def __init__(self, pid, events):
        self.events = tuple(events)
        self.proc = subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(self.events), "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        time.sleep(0.2)  # perf attaches asynchronously; without this the run's first moments are lost

    def stop(self):
        """{event: count}; None for an event perf could not count. task-clock is in ms."""
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return {e: None for e in self.events}
        return self.parse(err.decode(errors="replace"), self.events)

    @staticmethod
    def parse(text, events):
        counts = {e: None for e in events}
        for line in text.splitlines():
            fields = line.split(",")
            if len(fields) < 3:
                continue
            name = fields[2].split(":u")[0].split(":k")[0]
            if name in counts:
                try:
                    counts[name] = float(fields[0])
                except ValueError:
                    pass  # "<not supported>" / "<not counted>"
        return counts

    @staticmethod
    def available(events):
        """Whether perf exists and counts every one of `events` here."""
        if not shutil.which("perf"):
            return False
        r = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(events), "true"], capture_output=True)
        counts = PerfStat.parse(r.stderr.decode(errors="replace"), events)
        return r.returncode == 0 and all(v is not None for v in counts.values())

    @staticmethod
    def hardware_available():
        return PerfStat.available(PerfStat.HARDWARE)


def iperf3_ceiling(seconds):
    """Loopback TCP, one stream, server and client pinned like broker and clients (receiver on the
    broker's core, sender on the client's: the direction of produce). Returns (Gbit/s, sender CPU
    ms/MB, receiver CPU ms/MB), from iperf3's own per-process CPU accounting, so the ceiling can be
    compared with the clients' and the broker's CPU per MB: a producer that must also build,
    checksum and frame batches cannot reach the rate of a sender that only calls write()."""
    if not shutil.which("iperf3"):
        return None
    port = free_port()
    server = subprocess.Popen(pinned(BROKER_CPU) + ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # No readiness probe: a bare connection would count as the one-off server's one test.
        for _ in range(20):
            time.sleep(0.25)
            r = subprocess.run(pinned(CLIENT_CPU) + ["iperf3", "-c", "127.0.0.1", "-p", str(port),
                                                     "-t", str(seconds), "-J"],
                               capture_output=True, timeout=seconds + 30)
            if r.returncode == 0:
                break
        data = json.loads(r.stdout)
        bps = data["end"]["sum_received"]["bits_per_second"]
        cpu = data["end"]["cpu_utilization_percent"]
        mb_s = bps / 8 / 1e6
        # CPU percent of one process over the run: % * 10 / (MB/s) = ms of CPU per MB.
        return bps / 1e9, cpu["host_total"] * 10 / mb_s, cpu["remote_total"] * 10 / mb_s
    except (subprocess.TimeoutExpired, ValueError, KeyError, ZeroDivisionError):
        return None
    finally:
        server.kill()
        server.wait()


def create_topic(bootstrap, name, partitions, config=None):
    a = AdminClient({"bootstrap.servers": bootstrap})  # alive until the future resolves
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])[name].result(30)
    # Metadata must show the partitions before producing to them explicitly.
    for _ in range(100):
        t = a.list_topics(name, timeout=10).topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not ready")


def producer_conf(bootstrap, acks, codec, **extra):
    conf = {"bootstrap.servers": bootstrap, "acks": acks, "compression.type": codec, "linger.ms": 5,
            "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 1_048_576}
    conf.update(extra)
    return conf


def payload(i):
    # Compressible like real data (not zeros, not random): a repeating JSON-ish pattern.
    body = (b'{"seq":%d,"user":"u%05d","event":"click","path":"/items/%d"}' % (i, i % 10000, i % 977)) * 20
    return body[:RECORD_BYTES]


def produce_throughput(bootstrap, topic, partitions, acks, codec, records, record_bytes=RECORD_BYTES, **conf):
    p = Producer(producer_conf(bootstrap, acks, codec, **conf))
    values = [payload(i)[:record_bytes] for i in range(1000)]
    errors = []

    def on_error(err, _msg):
        if err is not None:
            errors.append(err)
    start = time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(topic, values[i % 1000], partition=i % partitions,
                          on_delivery=on_error if i % 1000 == 0 else None)
                break
            except BufferError:
                p.poll(0.005)
    left = p.flush(120)
    elapsed = time.perf_counter() - start
    if left or errors:
        raise RuntimeError(f"produce: {left} unacknowledged, errors {errors[:3]}")
    return records * record_bytes / elapsed / 1e6, records / elapsed


def consume_throughput(bootstrap, topic, partitions, records):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                  "max.partition.fetch.bytes": 10_485_760})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = 0
    nbytes = 0
    start = None
    deadline = time.monotonic() + 120
    while got < records and time.monotonic() < deadline:
        msgs = c.consume(num_messages=10_000, timeout=1)
        if start is None and msgs:
            start = time.perf_counter()
        for m in msgs:
            if not m.error():
                got += 1
                nbytes += len(m.value())
    elapsed = time.perf_counter() - (start or time.perf_counter())
    c.close()
    if got < records:
        raise RuntimeError(f"consume: {got} of {records} records")
    return nbytes / elapsed / 1e6 if elapsed > 0 else float("nan")


def latency_consumer(bootstrap, topic, partitions, starts, expected, out_q, ready):
    os.sched_setaffinity(0, {CLIENT_CPU})
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lat-" + uuid.uuid4().hex,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, starts[p]) for p in range(partitions)])
    ready.set()
    lat = []
    deadline = time.monotonic() + 60
    while len(lat) < expected and time.monotonic() < deadline:
        for m in c.consume(num_messages=1000, timeout=0.2):
            if not m.error():
                lat.append((time.monotonic_ns() - int.from_bytes(m.value()[:8], "big")) / 1e6)
    c.close()
    out_q.put(lat)


def e2e_latency(bootstrap, topic, partitions, acks, codec, rate_mb, seconds):
    """Produces at a fixed rate; returns (p50 ms, p99 ms, achieved MB/s)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    starts = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    probe.close()
    rate = rate_mb * 1e6 / RECORD_BYTES
    total = int(rate * seconds)
    q, ready = mp.Queue(), mp.Event()
    proc = mp.Process(target=latency_consumer, args=(bootstrap, topic, partitions, starts, total, q, ready))
    proc.start()
    ready.wait(30)
    time.sleep(1)  # let the consumer's first fetches reach the broker
    p = Producer(producer_conf(bootstrap, acks, codec))
    filler = payload(0)[8:]
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            try:
                p.produce(topic, time.monotonic_ns().to_bytes(8, "big") + filler, partition=sent % partitions)
                sent += 1
            except BufferError:
                p.poll(0.001)
        p.poll(0)
        time.sleep(0.0005)
    p.flush(60)
    achieved = sent * RECORD_BYTES / (time.perf_counter() - start) / 1e6
    lat = q.get(timeout=120)
    proc.join(30)
    if len(lat) < total * 0.99:
        return float("nan"), float("nan"), achieved
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1], achieved


# ---------------------------------------------------------------- the Rust (librdkafka) driver

# Latency runs: what a latency-sensitive application sets. linger.ms=1 lets librdkafka batch what
# arrives within a millisecond (at 50 MB/s that is ~50 records) instead of one request per record;
# fetch.wait.max.ms is librdkafka's default: with a broker that answers a parked fetch as soon as
# data arrives it bounds only idle fetches, so it does not enter the latency.
LATENCY_LINGER_MS = 1
LATENCY_FETCH_WAIT_MAX_MS = 500
THROUGHPUT_LINGER_MS = 5
# Throughput runs: what a throughput-minded user adds to linger.ms=5 and batch.size=1000000 (the
# largest batch the topic's default max.message.bytes=1048588 accepts). librdkafka sizes the
# buffer it builds a Produce request in from the queued bytes, capped at message.max.bytes
# (rdkafka_msgset_writer.c); with both at ~1 MB the buffer runs out before the batch does and the
# remaining payloads (~22% of 1 KiB records) are sent as separate iovec segments, each with its own
# ~10-byte header segment: more, smaller socket writes. A cap above batch.size keeps every payload
# in one contiguous buffer; the request itself stays at batch.size.
THROUGHPUT_CLIENT_CONF = {"message.max.bytes": 2_000_000}


def throughput_conf_args():
    return [a for k, v in THROUGHPUT_CLIENT_CONF.items() for a in ("--conf", f"{k}={v}")]


def children_cpu_seconds():
    """User + system CPU of this process's waited-for children (the driver runs, iperf3)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_driver(args, *argv):
    """Runs the driver pinned to the client core; returns its JSON output, with the driver's own
    CPU time (user + system, all its threads; taskset execs it, so it is the waited-for child)
    added as `client_cpu_s`."""
    before = children_cpu_seconds()
    r = subprocess.run(pinned(CLIENT_CPU) + [str(args.driver), *argv], capture_output=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"driver {argv[0]} failed: {r.stderr.decode(errors='replace')[-2000:]}")
    out = json.loads(r.stdout)
    out["client_cpu_s"] = children_cpu_seconds() - before
    return out


def driver_target(bootstrap, topic, partitions):
    return ["--bootstrap", bootstrap, "--topic", topic, "--partitions", str(partitions),
            "--record-bytes", str(RECORD_BYTES)]


def driver_produce(args, bootstrap, topic, partitions, acks, codec):
    out = run_driver(args, "produce", *driver_target(bootstrap, topic, partitions), "--acks", acks,
                     "--codec", codec, "--linger-ms", str(THROUGHPUT_LINGER_MS), "--records", str(args.records),
                     *throughput_conf_args())
    return out["mb_s"], out["rec_s"], out["client_cpu_s"], out["client_conf"]


def driver_consume(args, bootstrap, topic, partitions):
    out = run_driver(args, "consume", *driver_target(bootstrap, topic, partitions), "--records", str(args.records))
    return out["mb_s"], out["client_conf"]


def driver_latency(args, bootstrap, topic, partitions, acks, codec):
    out = run_driver(args, "latency", *driver_target(bootstrap, topic, partitions), "--acks", acks, "--codec", codec,
                     "--linger-ms", str(LATENCY_LINGER_MS), "--fetch-wait-max-ms", str(LATENCY_FETCH_WAIT_MAX_MS),
                     "--rate-mb", str(args.rate_mb), "--seconds", str(args.latency_seconds))
    if out["received"] < out["sent"] * 0.99:
        return float("nan"), float("nan"), out["ack_p50_ms"], out["ack_p99_ms"], out["achieved_mb_s"], out["client_conf"]
    return out["p50_ms"], out["p99_ms"], out["ack_p50_ms"], out["ack_p99_ms"], out["achieved_mb_s"], out["client_conf"]


def per_row_stripped(conf):
    """Client settings without those that vary per row (address, acks, codec), nested or not."""
    if not isinstance(conf, dict):
        return conf
    return {k: per_row_stripped(v) for k, v in conf.items() if k not in ("bootstrap.servers", "acks", "compression.type")}


def python_settings():
    return {"produce": producer_conf("BOOTSTRAP", "ACKS", "CODEC", **THROUGHPUT_CLIENT_CONF),
            "consume": {"fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760},
            "latency": {"producer": producer_conf("BOOTSTRAP", "ACKS", "CODEC"),
                        "consumer": "librdkafka defaults; consume(num_messages=1000, timeout=0.2)"}}


# ---------------------------------------------------------------- metrics on vs off

# (label, partitions, acks, record bytes, producer overrides). The last one sends many small
# Produce requests (no linger, small batches) so per-request bookkeeping weighs the most.
OVERHEAD_SCENARIOS = [
    ("1 KiB, 1 partition, acks=1", 1, "1", 1024, {}),
    ("1 KiB, 8 partitions, acks=all", 8, "all", 1024, {}),
    ("100 B, 1 partition, acks=1, linger 0, 1 KiB batches", 1, "1", 100, {"linger.ms": 0, "batch.size": 1024}),
]


def metrics_overhead(args, tmp):
    """Three brokers measured in rotating order (so drift on a noisy machine hits all alike):
    defaults (metrics on, RUST_LOG=info, so every request has an enabled span), `--metrics=false`
    with RUST_LOG=info, and metrics on with RUST_LOG=warn (request spans disabled).

    Per run it takes the produce rate, the broker's CPU time per record (/proc/PID/stat, and perf's
    task-clock where perf works) and, where the machine has hardware counters, the broker's
    instructions and cycles per record (`perf stat -p`). Instructions retired are the
    load-independent measure: a neighbour's compile changes rates and CPU time by 10-30% but not
    how many instructions the broker executes for a record. Costs are paired per round (the runs
    of one round are adjacent in time) and printed as the median with the interquartile range."""
    hardware = PerfStat.hardware_available()
    events = (("task-clock",) + (PerfStat.HARDWARE if hardware else ())) if PerfStat.available(["task-clock"]) else ()
    brokers = {
        "default": Broker(args.binary, tmp / "data-default", tmp / "broker-default.stderr.log", rust_log="info"),
        "no-metrics": Broker(args.binary, tmp / "data-no-metrics", tmp / "broker-no-metrics.stderr.log",
                             ["--metrics=false"], rust_log="info"),
        "no-spans": Broker(args.binary, tmp / "data-no-spans", tmp / "broker-no-spans.stderr.log", rust_log="warn"),
    }
    names = list(brokers)
    # measures[name] -> per-round values; keys: rate (rec/s), cpu (µs/record from /proc),
    # task (µs/record, perf task-clock), instructions and cycles (per record).
    measures = ("rate", "cpu", "task", "instructions", "cycles")
    rows = []
    try:
        time.sleep(1)
        for label, partitions, acks, size, conf in OVERHEAD_SCENARIOS:
            topic = f"overhead-{partitions}-{acks}-{size}"
            runs = {n: {m: [] for m in measures} for n in names}
            for b in brokers.values():
                create_topic(b.bootstrap, topic, partitions)
            for r in range(args.rounds):
                for n in names[r % 3:] + names[:r % 3]:
                    b = brokers[n]
                    perf = PerfStat(b.proc.pid, events) if events else None
                    before = b.cpu_seconds()
                    _, rps = produce_throughput(b.bootstrap, topic, partitions, acks, "none", args.records,
                                                record_bytes=size, **conf)
                    cpu = (b.cpu_seconds() - before) / args.records * 1e6
                    counts = perf.stop() if perf else {}
                    per_record = {e: (None if counts.get(e) is None else counts[e] / args.records) for e in events}
                    runs[n]["rate"].append(rps)
                    runs[n]["cpu"].append(cpu)
                    runs[n]["task"].append(None if per_record.get("task-clock") is None else per_record["task-clock"] * 1e3)
                    runs[n]["instructions"].append(per_record.get("instructions"))
                    runs[n]["cycles"].append(per_record.get("cycles"))
            rows.append((label, runs))
            print(f"  done: {label}", file=sys.stderr, flush=True)
        scrape = urllib.request.urlopen(f"http://{brokers['default'].admin}/metrics", timeout=10).read().decode()
    finally:
        for b in brokers.values():
            b.stop()
    produce_requests = sum(float(l.rsplit(" ", 1)[1]) for l in scrape.splitlines()
                           if l.startswith('sluice_requests_total{api="Produce"'))
    print()
    print(f"Metrics and span overhead — {args.rounds} rotating rounds of {args.records} records per scenario and "
          f"broker, brokers on cpu {BROKER_CPU}, clients on cpu {CLIENT_CPU}; the default broker answered "
          f"{produce_requests:,.0f} Produce requests")
    if not events:
        print("perf is missing or refused here: CPU time from /proc/PID/stat only (10 ms ticks), no instruction counts.")
    elif not hardware:
        print("No hardware counters here (perf: 'instructions <not supported>', e.g. a VM without a PMU): "
              "instructions/cycles n/a; CPU time from perf task-clock. Rerun where `perf stat -e instructions true` "
              "counts to resolve a 3% difference.")
    print()

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def paired(runs, measure, n, ref):
        """Median and quartiles of the per-round ratio n/ref of one measure."""
        ratios = sorted((a / b - 1) * 100 for a, b in zip(runs[n][measure], runs[ref][measure])
                        if a is not None and b)
        if not ratios:
            return "n/a"
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        return f"{statistics.median(ratios):+.1f}% (IQR {q[0]:+.1f}..{q[2]:+.1f}%)"

    def num(value, spec):
        return "n/a" if value is None else format(value, spec)
    # The load-independent measure when there is one, else CPU time.
    key = "instructions" if hardware else ("task" if events else "cpu")
    key_name = {"instructions": "instructions/record", "task": "CPU µs/record (perf task-clock)",
                "cpu": "CPU µs/record (/proc)"}[key]
    print(f"Medians; costs are medians of per-round paired ratios with their interquartile range, on {key_name}. "
          "Reference for metrics: --metrics=false; for request spans: RUST_LOG=warn (spans off).")
    print()
    print("| scenario | broker | rec/s | CPU µs/record | instructions/record | cycles/record |")
    print("|---|---|---:|---:|---:|---:|")
    for label, runs in rows:
        for n in names:
            cpu = med(runs[n]["task"]) if events else med(runs[n]["cpu"])
            print(f"| {label} | {n} | {med(runs[n]['rate']):,.0f} | {num(cpu, '.2f')} | "
                  f"{num(med(runs[n]['instructions']), ',.0f')} | {num(med(runs[n]['cycles']), ',.0f')} |")
    print()
    print(f"| scenario | cost of metrics ({key_name}) | cost of spans | metrics, rec/s | metrics, CPU time |")
    print("|---|---:|---:|---:|---:|")
    cpu_key = "task" if events else "cpu"
    for label, runs in rows:
        print(f"| {label} | {paired(runs, key, 'default', 'no-metrics')} | {paired(runs, key, 'default', 'no-spans')} | "
              f"{paired(runs, 'rate', 'default', 'no-metrics')} | {paired(runs, cpu_key, 'default', 'no-metrics')} |")
    print()
    for label, runs in rows:
        print(f"{label}: " + "; ".join(
            f"{n} " + "/".join(f"{x / 1000:.0f}k" for x in runs[n]["rate"]) + " rec/s, "
            + "/".join(num(x, ".2f") for x in runs[n][cpu_key]) + " µs"
            + ("" if not hardware else ", " + "/".join(num(x, ",.0f") for x in runs[n]["instructions"]) + " instr")
            for n in names))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.environ.get("SLUICE_BIN", REPO / "target" / "release" / "sluice"))
    ap.add_argument("--records", type=int, default=300_000, help="records per throughput run")
    ap.add_argument("--rate-mb", type=float, default=50.0, help="produce rate for the latency runs, MB/s")
    ap.add_argument("--latency-seconds", type=float, default=5.0)
    ap.add_argument("--iperf-seconds", type=int, default=3)
    ap.add_argument("--data-dir", default=None, help="broker data directory (default: a fresh temp dir)")
    ap.add_argument("--metrics-overhead", action="store_true",
                    help="only compare produce rates with metrics on and --metrics=false")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds per scenario (--metrics-overhead)")
    ap.add_argument("--client", choices=["rust", "python"], default="rust",
                    help="load driver: sluice-bench-driver (librdkafka from Rust, default) or confluent-kafka in Python")
    ap.add_argument("--driver", default=os.environ.get("SLUICE_BENCH_DRIVER", REPO / "target" / "release" / "sluice-bench-driver"),
                    help="path of the sluice-bench-driver binary (cargo build --release -p sluice-bench-driver)")
    ap.add_argument("--only", default=None, help="run only rows matching PARTITIONS/ACKS/CODEC, e.g. 1/1/none")
    ap.add_argument("--topic-config", action="append", default=[], metavar="KEY=VALUE",
                    help="topic config for the benchmark topics, e.g. flush.policy=os to take the fsync out "
                         "of the end-to-end latency (printed with the results)")
    args = ap.parse_args()
    if args.client == "rust" and not Path(args.driver).exists():
        sys.exit(f"{args.driver} missing: cargo build --release -p sluice-bench-driver, or pass --client python")

    if os.cpu_count() > 1:
        os.sched_setaffinity(0, {CLIENT_CPU})
    tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="sluice-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "broker.stderr.log"
    started = time.monotonic()
    if args.metrics_overhead:
        metrics_overhead(args, tmp)
        print(f"total benchmark time {time.monotonic() - started:.0f}s; broker logs in {tmp}")
        if not args.data_dir:
            for d in ("data-default", "data-no-metrics", "data-no-spans"):
                shutil.rmtree(tmp / d, ignore_errors=True)
        return

    ceiling = iperf3_ceiling(args.iperf_seconds)
    broker = Broker(args.binary, tmp / "data", log_path)
    try:
        time.sleep(1)
        idle_rss = broker.rss_kib()
        rows = []
        settings = python_settings() if args.client == "python" else {}
        topic_config = dict(kv.split("=", 1) for kv in args.topic_config)
        for partitions in (1, 8):
            for acks in ("1", "all"):
                for codec in ("none", "lz4"):
                    if args.only and args.only != f"{partitions}/{acks}/{codec}":
                        continue
                    topic = f"bench-p{partitions}-acks{acks}-{codec}"
                    create_topic(broker.bootstrap, topic, partitions, topic_config)
                    cpu_before = broker.cpu_seconds()
                    if args.client == "rust":
                        prod_mb, prod_rps, client_cpu_s, settings["produce"] = driver_produce(
                            args, broker.bootstrap, topic, partitions, acks, codec)
                    else:
                        self_before = resource.getrusage(resource.RUSAGE_SELF)
                        prod_mb, prod_rps = produce_throughput(broker.bootstrap, topic, partitions, acks, codec, args.records,
                                                               **THROUGHPUT_CLIENT_CONF)
                        self_after = resource.getrusage(resource.RUSAGE_SELF)
                        client_cpu_s = (self_after.ru_utime + self_after.ru_stime) - (self_before.ru_utime + self_before.ru_stime)
                    produced_mb = args.records * RECORD_BYTES / 1e6
                    cpu_ms_per_mb = (broker.cpu_seconds() - cpu_before) * 1e3 / produced_mb
                    client_ms_per_mb = client_cpu_s * 1e3 / produced_mb
                    if args.client == "rust":
                        cons_mb, settings["consume"] = driver_consume(args, broker.bootstrap, topic, partitions)
                        p50, p99, ack50, ack99, at_mb, settings["latency"] = driver_latency(
                            args, broker.bootstrap, topic, partitions, acks, codec)
                    else:
                        cons_mb = consume_throughput(broker.bootstrap, topic, partitions, args.records)
                        p50, p99, at_mb = e2e_latency(broker.bootstrap, topic, partitions, acks, codec,
                                                      args.rate_mb, args.latency_seconds)
                        ack50 = ack99 = float("nan")
                    rows.append((partitions, acks, codec, prod_mb, prod_rps, cpu_ms_per_mb, client_ms_per_mb, cons_mb, p50, p99, ack50, ack99, at_mb))
                    print(f"  done: {partitions} partitions, acks={acks}, {codec}", file=sys.stderr, flush=True)
        second_client = None
        if args.client == "rust" and not args.only:
            topic = "bench-rskafka"
            create_topic(broker.bootstrap, topic, 1, topic_config)
            cpu_before = broker.cpu_seconds()
            out = run_driver(args, "produce-batches", *driver_target(broker.bootstrap, topic, 1), "--records", str(args.records))
            produced_mb = out["bytes"] / 1e6
            second_client = (out["mb_s"], (broker.cpu_seconds() - cpu_before) * 1e3 / produced_mb,
                             out["client_cpu_s"] * 1e3 / produced_mb, out["client_conf"])
        loaded_rss = broker.rss_kib()
    finally:
        broker.stop()

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True).stdout.decode().strip()
    print()
    print(f"Sluice broker benchmark — commit {commit or '?'}, {os.cpu_count()} cores, "
          f"broker on cpu {BROKER_CPU}, clients on cpu {CLIENT_CPU}, {RECORD_BYTES} B records, "
          f"{args.records} records per throughput run, data in {tmp}")
    print(f"loopback TCP ceiling (iperf3, 1 stream, 128 KiB writes, {args.iperf_seconds}s, receiver on cpu {BROKER_CPU}, "
          f"sender on cpu {CLIENT_CPU}, before the broker starts): "
          + (f"{ceiling[0]:.1f} Gbit/s = {ceiling[0] * 1000 / 8:.0f} MB/s; iperf3 CPU ms/MB: sender {ceiling[1]:.2f}, "
             f"receiver {ceiling[2]:.2f}" if ceiling else "n/a (iperf3 missing or failed)"))
    if ceiling:
        for partitions, acks, codec, prod_mb, *_ in rows:
            if acks == "1" and codec == "none":
                print(f"  {partitions} partition(s), acks=1, uncompressed: produce = {prod_mb / (ceiling[0] * 1000 / 8) * 100:.0f}% "
                      "of the ceiling (issue 2's target: >= 50%)")
        if second_client:
            mb_s, broker_ms, client_ms, conf = second_client
            print(f"  a second client, rskafka (whole batches handed to the client, {json.dumps(conf)}), 1 partition: "
                  f"{mb_s:.1f} MB/s = {mb_s / (ceiling[0] * 1000 / 8) * 100:.0f}% of the ceiling; "
                  f"broker / client CPU {broker_ms:.2f} / {client_ms:.2f} ms/MB")
    print(f"broker RSS: idle {idle_rss / 1024:.1f} MiB, after the runs {loaded_rss / 1024:.1f} MiB")
    print(f"topic configs: {json.dumps(topic_config) if topic_config else 'defaults (flush.policy=batch: visible to consumers once fsynced)'}")
    print(f"client: {'sluice-bench-driver (librdkafka via the rdkafka crate)' if args.client == 'rust' else 'confluent-kafka (Python)'}; "
          "settings (ACKS/CODEC per row):")
    for phase in ("produce", "consume", "latency"):
        print(f"  {phase}: {json.dumps(per_row_stripped(settings.get(phase)))}")
    print()
    print("| partitions | acks | codec | produce MB/s | produce rec/s | broker CPU ms/MB | client CPU ms/MB "
          "| consume MB/s | e2e p50 ms | e2e p99 ms | ack p50 ms | ack p99 ms | latency run at MB/s |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for partitions, acks, codec, prod_mb, prod_rps, cpu_mb, client_mb, cons_mb, p50, p99, ack50, ack99, at_mb in rows:
        print(f"| {partitions} | {acks} | {codec} | {prod_mb:.1f} | {prod_rps:,.0f} | {cpu_mb:.2f} | {client_mb:.2f} | "
              f"{cons_mb:.1f} | {p50:.2f} | {p99:.2f} | {ack50:.2f} | {ack99:.2f} | {at_mb:.1f} |")
    print()
    print("broker / client CPU ms/MB: user+system CPU of the broker process / of the producing client "
          "during the produce run, per MB produced (1000 / this = the MB/s one saturated core could take "
          "on that side: the larger figure is the side that limits). e2e: send to receive; "
          "ack: send to delivery report (producer linger + broker append + acks).")
    print()
    print(f"total benchmark time {time.monotonic() - started:.0f}s; broker log: {log_path}")
    if not args.data_dir:
        shutil.rmtree(tmp / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
