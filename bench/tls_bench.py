#!/usr/bin/env python3
"""TLS cost benchmark: produce throughput through PLAINTEXT, SSL and SASL_SSL listeners of ONE
broker, in the same run, so the plaintext figure is the reference for the other two.

1 KiB records, one partition, acks=1 and acks=all, uncompressed (compression would hide the
encryption cost), confluent-kafka (librdkafka) as the client. Broker and client are pinned to
different cores (see broker_bench.py). Rounds alternate the listeners so drift on this shared
machine hits all of them; the median per listener is printed with its cost relative to
PLAINTEXT. Certificates are generated with `openssl` into a temp dir. Figures, not assertions.

Beside MB/s (which swings with the machine's load) it prints what does not: CPU milliseconds per
MB of the broker (`perf stat` task-clock on its pid, all threads) and of the client (this
process: Python plus librdkafka's threads), the broker's read syscalls per MB, and, where the VM
has a PMU, broker instructions per byte. With each process pinned to its own core, 1000 / (CPU
ms per MB) is the MB/s that side could reach alone: the smaller of the two says which side limits
the run on a quiet machine.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_bench import BROKER_CPU, RECORD_BYTES, REPO, PerfStat, create_topic, payload, pinned, producer_conf  # noqa: E402

USER, PASSWORD = "bench", "bench-password"

# Client settings applied to EVERY listener alike, on top of broker_bench.producer_conf (linger.ms=5,
# batch.size=1000000). Why they matter over TLS (bench/README.md, "Why librdkafka writes small TLS
# records"): librdkafka sends a request with one write per buffer segment, and over TLS one
# SSL_write is one TLS record and one write(2). Its request buffer grows in segments of 1.5x; once
# a segment has less room than one payload, every following payload is referenced as its own
# segment (and its ~11-byte record header gets one too) until the ~11-byte headers have used up
# that room. That happens a fixed number of times per request, so bigger requests have fewer such
# segments per MB. message.max.bytes caps the request; batch.size caps the batch inside it.
CLIENT_CONF = {"batch.size": 4_000_000, "message.max.bytes": 4_000_000}


def make_certs(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    Path(d, "server.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                     "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "server.ext")


def start_broker(binary, data_dir, certs, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"RUST_LOG": "warn", "SLUICE_SASL_BOOTSTRAP_USER": USER, "SLUICE_SASL_BOOTSTRAP_PASSWORD": PASSWORD})
    args = [str(binary), "serve", "--admin-addr", "127.0.0.1:0", "--data-dir", str(data_dir),
            "--listener", "PLAINTEXT=PLAINTEXT://127.0.0.1:0", "--listener", "SSL=SSL://127.0.0.1:0",
            "--listener", "SASL_SSL=SASL_SSL://127.0.0.1:0",
            "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key")]
    proc = subprocess.Popen(pinned(BROKER_CPU) + args, stdout=subprocess.PIPE, stderr=open(log_path, "ab"),
                            stdin=subprocess.DEVNULL, env=env)
    line = proc.stdout.readline().decode()
    m = re.search(r"listeners=(\S+)", line)
    if not m:
        proc.kill()
        sys.exit(f"broker did not start (stdout {line!r}); see {log_path}")
    listeners = dict(item.split("://", 1) for item in m.group(1).split(","))
    return proc, listeners


def security_conf(name, listeners, certs):
    conf = {"bootstrap.servers": listeners[name], "security.protocol": name}
    if "SSL" in name:
        conf["ssl.ca.location"] = str(certs / "ca.crt")
    if name.startswith("SASL"):
        conf.update({"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD})
    return conf


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Broker-side counters per run: CPU time, context switches, and the syscalls that read the
# socket (tokio reads with read(2); recvfrom is listed in case a runtime switches).
SOFTWARE_EVENTS = ("task-clock", "context-switches", "syscalls:sys_enter_read", "syscalls:sys_enter_recvfrom")
# Client-side: the syscalls that send. librdkafka over OpenSSL calls SSL_write once per buffer
# segment, so this shows whether the client sends whole requests or one TLS record per piece.
CLIENT_EVENTS = ("syscalls:sys_enter_write", "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_sendto")


def produce_run(conf, topic, acks, records, broker_pid, events):
    """One timed run: {mb_s, broker_busy, client_busy, broker_ms_per_mb, client_ms_per_mb,
    reads_per_mb, instr_per_byte}; per-MB figures are None where the counter is missing.
    `conf` holds the listener's security settings and the client settings shared by all."""
    p = Producer(producer_conf(conf["bootstrap.servers"], acks, "none", **conf))
    values = [payload(i) for i in range(1000)]
    p.produce(topic, values[0])  # connect and authenticate before the clock starts
    p.flush(60)
    perf = PerfStat(broker_pid, events) if events else None
    client_perf = PerfStat(os.getpid(), CLIENT_EVENTS) if events else None  # librdkafka's threads exist now
    start = time.perf_counter()
    broker_cpu, client_cpu = cpu_seconds(broker_pid), time.process_time()
    for i in range(records):
        while True:
            try:
                p.produce(topic, values[i % 1000])
                break
            except BufferError:
                p.poll(0.005)
    left = p.flush(120)
    elapsed = time.perf_counter() - start
    broker_cpu, client_cpu = cpu_seconds(broker_pid) - broker_cpu, time.process_time() - client_cpu
    counts = perf.stop() if perf else {}
    client_counts = client_perf.stop() if client_perf else {}
    if left:
        raise RuntimeError(f"{left} records unacknowledged")
    mb = records * RECORD_BYTES / 1e6

    def per_mb(event, scale=1.0):
        value = counts.get(event)
        return None if value is None else value * scale / mb
    reads = [counts.get(e) for e in ("syscalls:sys_enter_read", "syscalls:sys_enter_recvfrom")]
    return {
        "mb_s": mb / elapsed,
        "broker_busy": broker_cpu / elapsed,
        "client_busy": client_cpu / elapsed,
        # perf's task-clock is exact; /proc ticks (10 ms) are the fallback without perf.
        "broker_ms_per_mb": per_mb("task-clock") if counts.get("task-clock") is not None else broker_cpu * 1000 / mb,
        "client_ms_per_mb": client_cpu * 1000 / mb,
        "reads_per_mb": None if all(r is None for r in reads) else sum(r or 0 for r in reads) / mb,
        "instr_per_byte": per_mb("instructions", 1e-6),
        "client_sends_per_mb": sum(v for v in client_counts.values() if v is not None) / mb if client_counts else None,
    }


def median_of(runs, key):
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    """`format(value, spec)`, or n/a padded to the spec's width."""
    width = int(spec.split(".")[0] or 0)
    return f"{'n/a':>{width}}" if value is None else format(value, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.environ.get("SLUICE_BIN", REPO / "target" / "release" / "sluice"))
    ap.add_argument("--records", type=int, default=200_000, help="records per run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per listener")
    ap.add_argument("--only", choices=["PLAINTEXT", "SSL", "SASL_SSL"], help="run one listener (for profiling)")
    ap.add_argument("--client-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="librdkafka setting for every listener, over CLIENT_CONF (repeatable); "
                         "e.g. batch.size=1000000 message.max.bytes=1000000 for the old defaults")
    args = ap.parse_args()
    client_conf = dict(CLIENT_CONF)
    for item in args.client_conf:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--client-conf {item!r}: expected KEY=VALUE")
        client_conf[key] = value
    events = ()
    if PerfStat.available(SOFTWARE_EVENTS):
        events = SOFTWARE_EVENTS + (PerfStat.HARDWARE if PerfStat.hardware_available() else ())
    if not os.environ.get("TLS_BENCH_UNPINNED"):
        os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="sluice-tls-bench-") as tmp:
        tmp = Path(tmp)
        make_certs(tmp)
        proc, listeners = start_broker(args.binary, tmp / "data", tmp, tmp / "broker.log")
        try:
            results = {}
            for acks in ("1", "all"):
                topic = f"tls-{acks}-{uuid.uuid4().hex[:6]}"
                create_topic(listeners["PLAINTEXT"], topic, 1)
                for _ in range(args.rounds):
                    for name in [args.only] if args.only else ("PLAINTEXT", "SSL", "SASL_SSL"):
                        conf = {**client_conf, **security_conf(name, listeners, tmp)}
                        run = produce_run(conf, topic, acks, args.records, proc.pid, events)
                        results.setdefault((acks, name), []).append(run)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if args.only:
        for key, runs in results.items():
            print(key, runs)
        return
    print(f"produce, 1 KiB records, 1 partition, uncompressed, {args.records} records x {args.rounds} rounds (medians)")
    shared = {**producer_conf("", "", "none"), **client_conf}
    shared = {k: v for k, v in shared.items() if k not in ("bootstrap.servers", "acks", "compression.type")}
    print("client settings, the same for every listener: " + " ".join(f"{k}={v}" for k, v in shared.items()))
    print("busy: fraction of one core during the run; ms/MB: CPU milliseconds per MB produced; alone: 1000 / ms/MB,")
    print("the MB/s that side could reach on its own core; reads/MB: the broker's read syscalls per MB;")
    print("sends/MB: the client's write/sendmsg syscalls per MB (over TLS: one per TLS record it writes)")
    if not events:
        print("perf missing or refused here: broker CPU from /proc ticks, no syscall or instruction counts")
    elif "instructions" not in events:
        print("no hardware counters here (VM without a PMU): instructions/byte n/a, CPU time from perf task-clock")
    print(f"{'acks':>5} {'listener':>10} {'MB/s':>7} {'vs PLAIN':>9} {'broker':>7} {'client':>7} {'broker':>9} {'client':>9}"
          f" {'broker':>8} {'client':>8} {'reads':>7} {'sends':>7} {'instr':>7}")
    print(f"{'':>5} {'':>10} {'':>7} {'':>9} {'busy':>7} {'busy':>7} {'ms/MB':>9} {'ms/MB':>9} {'alone':>8} {'alone':>8}"
          f" {'/MB':>7} {'/MB':>7} {'/byte':>7}")
    for acks in ("1", "all"):
        reference = median_of(results[(acks, "PLAINTEXT")], "mb_s")
        for name in ("PLAINTEXT", "SSL", "SASL_SSL"):
            runs = results[(acks, name)]
            mb = median_of(runs, "mb_s")
            broker_ms, client_ms = median_of(runs, "broker_ms_per_mb"), median_of(runs, "client_ms_per_mb")
            cost = "reference" if name == "PLAINTEXT" else f"{(mb / reference - 1) * 100:+.1f}%"
            alone = [None if ms is None or ms <= 0 else 1000 / ms for ms in (broker_ms, client_ms)]
            print(f"{acks:>5} {name:>10} {mb:7.1f} {cost:>9} {median_of(runs, 'broker_busy'):7.0%} "
                  f"{median_of(runs, 'client_busy'):7.0%} {fmt(broker_ms, '9.2f')} {fmt(client_ms, '9.2f')} "
                  f"{fmt(alone[0], '8.0f')} {fmt(alone[1], '8.0f')} {fmt(median_of(runs, 'reads_per_mb'), '7.0f')} "
                  f"{fmt(median_of(runs, 'client_sends_per_mb'), '7.0f')} "
                  f"{fmt(median_of(runs, 'instr_per_byte'), '7.2f')}")

if __name__ == "__main__":
    main()
