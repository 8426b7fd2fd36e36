#!/usr/bin/env bash
# One end-to-end latency run at 50 MB/s (librdkafka driver, linger.ms=1, 1 KiB records), broker
# pinned to cpu 1 and driver to cpu 0, for comparing two broker builds run after run (A/B):
#   bench/latency_probe.sh BINARY [PARTITIONS=8] [ACKS=1] [extra `serve` args...]
# Prints e2e and ack p50/p99, the broker's CPU seconds, and with PERF=1 the broker's context
# switches and fdatasync/futex/write syscalls during the run (`perf stat`, tracepoints work on
# VMs without hardware counters). SECS sets the run's length (default 5). Needs the driver:
# `cargo build --release -p sluice-bench-driver`.
set -euo pipefail
BIN=${1:?usage: bench/latency_probe.sh BINARY [PARTITIONS] [ACKS] [serve args...]}; P=${2:-8}; ACKS=${3:-1}; shift 3 || shift $#
DRV=${SLUICE_BENCH_DRIVER:-$(cd "$(dirname "$0")/.." && pwd)/target/release/sluice-bench-driver}
D=$(mktemp -d /tmp/sluice-latency-probe.XXXX)
KPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
APORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
taskset -c 1 "$BIN" serve --kafka-addr 127.0.0.1:$KPORT --admin-addr 127.0.0.1:$APORT --data-dir $D/data "$@" > $D/broker.log 2>&1 &
BPID=$!
trap 'kill $BPID 2>/dev/null; rm -rf "$D"' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$APORT/healthz >/dev/null && break; sleep 0.1; done
# The admin API answers 503 while the broker still opens its logs.
for i in $(seq 50); do "$BIN" topic create lat --partitions $P --admin http://127.0.0.1:$APORT >/dev/null 2>&1 && break; sleep 0.2; done
T0=$(awk '{print $14+$15}' /proc/$BPID/stat)
if [ -n "${PERF:-}" ]; then perf stat -e task-clock,context-switches,syscalls:sys_enter_fdatasync,syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait -p $BPID -o $D/perf.txt & PP=$!; fi
START=$(date +%s.%N)
taskset -c 0 $DRV latency --bootstrap 127.0.0.1:$KPORT --topic lat --partitions $P --record-bytes 1024 --acks $ACKS --codec none --linger-ms 1 --fetch-wait-max-ms 500 --rate-mb 50 --seconds ${SECS:-5} > $D/out.json
END=$(date +%s.%N)
T1=$(awk '{print $14+$15}' /proc/$BPID/stat)
if [ -n "${PP:-}" ]; then kill -INT $PP; wait $PP || true; fi
python3 - "$D/out.json" "$T0" "$T1" "$START" "$END" <<'PY'
import json,sys
o=json.load(open(sys.argv[1])); t0,t1=int(sys.argv[2]),int(sys.argv[3]); s,e=float(sys.argv[4]),float(sys.argv[5])
print(f"e2e p50 {o['p50_ms']:.2f} p99 {o['p99_ms']:.2f} max {o['max_ms']:.1f} | ack p50 {o['ack_p50_ms']:.2f} p99 {o['ack_p99_ms']:.2f} | {o['achieved_mb_s']:.1f} MB/s recv {o['received']}/{o['sent']} | broker cpu {(t1-t0)/100:.2f}s over {e-s:.1f}s")
PY
if [ -f $D/perf.txt ]; then grep -E 'task-clock|context-switches|sys_enter' $D/perf.txt | awk '{printf "%s %s | ", $1, $2}'; echo; fi
kill $BPID; wait $BPID 2>/dev/null || true
