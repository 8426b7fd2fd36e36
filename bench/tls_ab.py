#!/usr/bin/env python3
"""Paired A/B of TLS produce cost: two brokers (or one broker binary twice) and two client
settings, runs alternating A, B, A, B… so drift on a shared machine hits both sides alike.

Each side: a broker binary and librdkafka settings on top of tls_bench's (`CLIENT_CONF` unless
overridden). Prints per side the medians of MB/s, client busy (CPU / wall), client and broker CPU
ms per MB. Used for bench/README.md "TLS cost": the receive low-water mark (binary A vs B) and
1 MB vs 4 MB requests (the same binary, --b-conf). Figures, not assertions.

    python3 bench/tls_ab.py --a-binary OLD --b-binary target/release/sluice
    python3 bench/tls_ab.py --a-conf batch.size=1000000 --a-conf message.max.bytes=1000000
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_bench import RECORD_BYTES, REPO, create_topic, payload, producer_conf  # noqa: E402
from tls_bench import CLIENT_CONF, cpu_seconds, make_certs, security_conf, start_broker  # noqa: E402


def parse_conf(items, ap):
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"{item!r}: expected KEY=VALUE")
        conf[key] = value
    return conf


def one_run(broker, listeners, certs, listener, conf, records, acks):
    """(MB/s, client busy, client ms/MB, broker ms/MB) of one run of `records` 1 KiB records."""
    full = {**CLIENT_CONF, **conf, **security_conf(listener, listeners, certs)}
    p = Producer(producer_conf(full["bootstrap.servers"], acks, "none", **full))
    values = [payload(i) for i in range(1000)]
    p.produce("ab", values[0])  # connect and authenticate before the clock starts
    p.flush(60)
    start, client0, broker0 = time.perf_counter(), time.process_time(), cpu_seconds(broker.pid)
    for i in range(records):
        while True:
            try:
                p.produce("ab", values[i % 1000])
                break
            except BufferError:
                p.poll(0.005)
    if p.flush(120):
        raise RuntimeError("records unacknowledged")
    wall, client, brk = time.perf_counter() - start, time.process_time() - client0, cpu_seconds(broker.pid) - broker0
    mb = records * RECORD_BYTES / 1e6
    return mb / wall, client / wall, client * 1000 / mb, brk * 1000 / mb


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = str(os.environ.get("SLUICE_BIN", REPO / "target" / "release" / "sluice"))
    ap.add_argument("--a-binary", default=default)
    ap.add_argument("--b-binary", default=default)
    ap.add_argument("--a-conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--b-conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--listener", choices=["PLAINTEXT", "SSL", "SASL_SSL"], default="SSL")
    ap.add_argument("--acks", choices=["1", "all"], default="1")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    sides = {"A": (args.a_binary, parse_conf(args.a_conf, ap)), "B": (args.b_binary, parse_conf(args.b_conf, ap))}
    os.sched_setaffinity(0, {0})  # the client on cpu 0, brokers on cpu 1 (start_broker pins them)
    with tempfile.TemporaryDirectory(prefix="sluice-tls-ab-") as tmp:
        tmp = Path(tmp)
        make_certs(tmp)
        brokers = {}
        try:
            for name, (binary, _) in sides.items():
                brokers[name] = start_broker(binary, tmp / f"data-{name}", tmp, tmp / f"broker-{name}.log")
                create_topic(brokers[name][1]["PLAINTEXT"], "ab", 1)
            runs = {name: [] for name in sides}
            for _ in range(args.rounds):
                for name, (_, conf) in sides.items():
                    proc, listeners = brokers[name]
                    runs[name].append(one_run(proc, listeners, tmp, args.listener, conf, args.records, args.acks))
        finally:
            for proc, _ in brokers.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    print(f"{args.listener}, 1 KiB records, acks={args.acks}, {args.records} records x {args.rounds} alternating rounds (medians)")
    for name, (binary, conf) in sides.items():
        mb_s, busy, client_ms, broker_ms = (statistics.median(r[i] for r in runs[name]) for i in range(4))
        extra = " ".join(f"{k}={v}" for k, v in {**CLIENT_CONF, **conf}.items())
        print(f"{name}: {mb_s:6.0f} MB/s  client busy {busy:4.0%}  client {client_ms:5.2f} ms/MB  "
              f"broker {broker_ms:5.2f} ms/MB   ({binary}; {extra})")


if __name__ == "__main__":
    main()
