#!/usr/bin/env python3
"""What metrics cost per produced record, counted in instructions, not seconds.

Time-based figures on a shared 2-core VM move by 10-30% between back-to-back runs, and this VM
has no hardware counters (`perf stat -e instructions` says <not supported>), so a 3% difference
cannot be seen with them. Valgrind's callgrind counts the instructions the broker executes:
repeatable for the same binary and workload whatever else the machine does.

For each broker setting (`--metrics=true`, the default, and `--metrics=false`) it runs the broker
under callgrind while librdkafka (bench/driver) produces a fixed number of records with fixed
batching (`batch.num.messages`, a long linger, one request in flight), so every run sends the same
requests; it prints the broker's instructions per record (start-up and shutdown included, the same
for both settings) as the median over `--rounds` interleaved rounds with their range. Instruction
counts still move by about 1% between identical runs (allocator and scheduling paths).

  python3 bench/metrics_instructions.py [--records 20000] [--rounds 3]
needs valgrind (apt) and the driver (`cargo build --release -p sluice -p sluice-bench-driver`).
The broker runs with `--transform-instances-max 1`: the default wasm pool reserves ~2 TB of
address space, more than valgrind allows.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SCENARIOS = {
    # name: (record bytes, records per Produce request)
    "1 KiB records, 100 per request": (1024, 100),
    "100 B records, 10 per request": (100, 10),
}


def run_broker_under_callgrind(binary, metrics, records, record_bytes, per_request, driver, workdir):
    out = Path(workdir) / f"callgrind.{metrics}.{records}.{time.monotonic_ns()}"
    data = Path(tempfile.mkdtemp(dir=workdir))
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}", str(binary), "serve",
           "--kafka-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", str(data),
           "--transform-instances-max", "1", "--metrics", metrics]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    bootstrap = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.match(r"sluice ready kafka=(\S+) admin=(\S+)", line or "")
        if m:
            bootstrap = m.group(1)
            break
        if not line and proc.poll() is not None:
            break
    if bootstrap is None:
        proc.kill()
        raise RuntimeError("the broker did not start under valgrind")
    try:
        subprocess.run([str(driver), "produce", "--bootstrap", bootstrap, "--topic", "m", "--partitions", "1",
                        "--record-bytes", str(record_bytes), "--records", str(records), "--acks", "1",
                        "--linger-ms", "5000", "--conf", f"batch.num.messages={per_request}",
                        "--conf", "max.in.flight.requests.per.connection=1"],
                       check=True, stdout=subprocess.DEVNULL, timeout=1800)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    # One file per thread. The wasm engine's epoch ticker wakes every 10 ms whatever the load, so
    # its count grows with wall time (and valgrind's slowdown), not with the records: left out.
    total, files = 0, sorted(Path(workdir).glob(out.name + "-*"))
    if not files:
        raise RuntimeError(f"no callgrind output {out}-*")
    for f in files:
        text = f.read_text(errors="replace")
        if "increment_epoch" in text:
            continue
        m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if not m:
            raise RuntimeError(f"no instruction total in {f}")
        total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=REPO / "target/release/sluice")
    ap.add_argument("--driver", default=REPO / "target/release/sluice-bench-driver")
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as workdir:
        print(f"broker instructions (callgrind, user space, whole run incl. start-up) per produced record; "
              f"{args.records} records per run, {args.rounds} rounds, metrics on/off interleaved")
        for name, (record_bytes, per_request) in SCENARIOS.items():
            per_record = {"true": [], "false": []}
            for _ in range(args.rounds):
                for metrics in ("true", "false"):
                    total = run_broker_under_callgrind(args.binary, metrics, args.records, record_bytes, per_request, args.driver, workdir)
                    per_record[metrics].append(total / args.records)
            on, off = statistics.median(per_record["true"]), statistics.median(per_record["false"])
            spread = lambda xs: f"{min(xs):,.0f}..{max(xs):,.0f}"
            print(f"  {name}: metrics on {on:,.0f} Ir/record ({spread(per_record['true'])}), "
                  f"off {off:,.0f} ({spread(per_record['false'])}), cost of metrics {100 * (on - off) / off:+.2f}%")


if __name__ == "__main__":
    main()
