#!/bin/sh
# make bench: every benchmark, one after another, on this machine.
#   bench/run.py            mxgate (tcpserver and listener modes) against Postfix
#   bench/content/run.py    DATA throughput with the content checks off and on
#   bench/sessions/run.py   mxgate-sessions against wc -l and gawk
#   bench/send.py           mxgate-send against Postfix: delivery from a full queue; memory with 100,000 queued
# BENCH_QUICK=1 makes them short. Benchmarks print figures; they never fail on a time.
set -e
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/run.py
[ -f bench/content/run.py ] && /usr/bin/python3 bench/content/run.py ${BENCH_QUICK:+1}
/usr/bin/python3 bench/send.py
BENCH_SESSIONS_BYTES=${BENCH_SESSIONS_BYTES:-$([ -n "$BENCH_QUICK" ] && echo 100000000 || echo 1073741824)} \
  /usr/bin/python3 bench/sessions/run.py
