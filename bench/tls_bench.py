#!/usr/bin/env python3
"""TLS cost benchmark: produce throughput through PLAINTEXT, SSL and SASL_SSL listeners of ONE
broker, in the same run, so the plaintext figure is the reference for the other two.

1 KiB records, one partition, acks=1 and acks=all, uncompressed (compression would hide the
encryption cost), confluent-kafka (librdkafka) as the client. Broker and client are pinned to
different cores (see broker_bench.py). Rounds alternate the listeners so drift on this shared
machine hits all of them; the median per listener is printed with its cost relative to
PLAINTEXT. Certificates are generated with `openssl` into a temp dir. Figures, not assertions.

Reading the CPU columns: neither process saturates its core over TLS, and a profile of the broker
(`--only SSL`, `perf record -p <broker>`) shows AES-GCM (ring) at ~6% of its samples. The gap to
PLAINTEXT is therefore not broker crypto; see ARCHITECTURE.md's note under `protocol/tls.rs`.
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
from broker_bench import BROKER_CPU, RECORD_BYTES, REPO, create_topic, payload, pinned, producer_conf  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


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


def produce_mb_s(conf, topic, acks, records, broker_pid):
    """(MB/s, broker CPU busy fraction, client CPU busy fraction) for one run."""
    p = Producer(producer_conf(conf["bootstrap.servers"], acks, "none", **conf))
    values = [payload(i) for i in range(1000)]
    p.produce(topic, values[0])  # connect and authenticate before the clock starts
    p.flush(60)
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
    if left:
        raise RuntimeError(f"{left} records unacknowledged")
    return records * RECORD_BYTES / elapsed / 1e6, broker_cpu / elapsed, client_cpu / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.environ.get("SLUICE_BIN", REPO / "target" / "release" / "sluice"))
    ap.add_argument("--records", type=int, default=200_000, help="records per run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per listener")
    ap.add_argument("--only", choices=["PLAINTEXT", "SSL", "SASL_SSL"], help="run one listener (for profiling)")
    args = ap.parse_args()
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
                        run = produce_mb_s(security_conf(name, listeners, tmp), topic, acks, args.records, proc.pid)
                        results.setdefault((acks, name), []).append(run)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if args.only:
        print(args.only, results)
        return
    print(f"produce, 1 KiB records, 1 partition, uncompressed, {args.records} records x {args.rounds} rounds (median MB/s)")
    print("broker/client CPU: busy fraction of one core during the run (each is pinned to its own core)")
    print(f"{'acks':>5} {'listener':>10} {'MB/s':>8} {'vs PLAINTEXT':>13} {'broker CPU':>11} {'client CPU':>11}")
    for acks in ("1", "all"):
        reference = statistics.median(r[0] for r in results[(acks, "PLAINTEXT")])
        for name in ("PLAINTEXT", "SSL", "SASL_SSL"):
            runs = results[(acks, name)]
            mb = statistics.median(r[0] for r in runs)
            broker = statistics.median(r[1] for r in runs)
            client = statistics.median(r[2] for r in runs)
            cost = "reference" if name == "PLAINTEXT" else f"{(mb / reference - 1) * 100:+.1f}%"
            print(f"{acks:>5} {name:>10} {mb:8.1f} {cost:>13} {broker:10.0%} {client:10.0%}")


if __name__ == "__main__":
    main()
