#!/usr/bin/env bash
# Usage: tests/watchdog.sh SECONDS COMMAND [ARG...]
#
# Runs COMMAND. If it is still running after SECONDS, prints the threads of every `sluice` broker it started
# (gdb: native stacks, with the release build's debug info) and of COMMAND itself (SIGABRT makes
# pytest's faulthandler print every Python thread), then ends it and exits 124.
#
# Why: pytest-timeout ends a hung test from a Python thread, which cannot run while a C call holds
# the GIL; one CI run hung that way until CI's own limit, with nothing printed to say where. This
# outer limit fails the run instead, with the stacks needed to find the hang.
set -uo pipefail

limit="$1"
shift
"$@" &
child=$!
# A background command of a script ignores SIGINT, so Ctrl-C would leave it running: stop it
# (SIGTERM; its brokers die with it) and leave.
stop_child() {
  kill -TERM "$child" 2>/dev/null
  wait "$child"
  exit 130
}
trap stop_child INT TERM

# `tail --pid` returns when the child exits; `timeout` bounds the wait (--foreground: in this
# process group, so Ctrl-C reaches it). Nothing is left running in the background either way (a
# stray process holding CI's stdout would keep the run open).
timeout --foreground "$limit" tail --pid="$child" -f /dev/null
waited=$?
if [ "$waited" -eq 0 ]; then
  wait "$child"
  exit $?
fi
# Not the limit (124): the wait was interrupted, and bash does not run its trap when the command
# it waited for handled the signal itself.
[ "$waited" -ne 124 ] && stop_child

echo "== watchdog: '$*' still running after ${limit}s; thread dumps follow" >&2
ps -eo pid,ppid,stat,etime,time,args --forest >&2 || true
if command -v gdb >/dev/null 2>&1; then
  for pid in $(pgrep -P "$child" -x sluice); do
    echo "== watchdog: threads of sluice pid $pid" >&2
    timeout 60 gdb -p "$pid" -batch -nx -ex "thread apply all bt 30" </dev/null 2>&1 | grep -v '^\[New LWP' | head -n 1500 >&2
  done
  echo "== watchdog: native threads of pid $child" >&2
  timeout 60 gdb -p "$child" -batch -nx -ex "thread apply all bt 40" </dev/null 2>&1 | grep -v '^\[New LWP' | head -n 800 >&2
fi
# Every process the command started (brokers, S3 servers, clients): ended with it, so none keeps
# CI's output open.
descendants() {
  local pid
  for pid in $(pgrep -P "$1"); do
    echo "$pid"
    descendants "$pid"
  done
}
left=$(descendants "$child")
echo "== watchdog: SIGABRT to pid $child (Python's faulthandler prints every thread)" >&2
kill -ABRT "$child" 2>/dev/null
sleep 15
kill -KILL "$child" 2>/dev/null
wait "$child" 2>/dev/null
[ -n "$left" ] && kill -KILL $left 2>/dev/null
exit 124
