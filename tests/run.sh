#!/bin/sh
# Runs the unit tests (cmocka binaries in BUILD/tests), a short run of
# each fuzz harness, and then the integration tests (tests/it, real
# programs under real tcpserver), and
# prints one closing line "N passed, N failed". Exits non-zero on failure.
# usage: tests/run.sh BUILD BIN   (e.g. build bin, or build-asan bin-asan)
BUILD=${1:-build}
BIN=${2:-bin}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
pass=0
fail=0
out=$(mktemp)
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" >"$out" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$f" -ne 0 ]; then cat "$out"; fi
  echo "unit $(basename "$t"): $p passed, $f failed"
  pass=$((pass + p)); fail=$((fail + f))
done
rm -f "$out"
# the libFuzzer harnesses, built and each run on its seeds and archived
# corpus, nothing new, so alike on every machine (tests/fuzz/build.sh;
# make fuzz explores)
fz=$(mktemp)
FUZZ_RUNS=${FUZZ_RUNS:-0} sh tests/fuzz/build.sh >"$fz" 2>&1
fzrc=$?
grep '^fuzz fuzz_' "$fz"
fp=$(grep -c '^fuzz fuzz_.*: ok' "$fz")
ff=$(grep -c '^fuzz fuzz_.*: FAILED' "$fz")
if [ "$fzrc" -ne 0 ]; then [ "$ff" -eq 0 ] && ff=1; cat "$fz"; fi   # a harness that did not build
rm -f "$fz"
pass=$((pass + fp)); fail=$((fail + ff))
itres=$(mktemp)
MXGATE_BIN="$top/$BIN" /usr/bin/python3 tests/it/run.py --result "$itres"
itrc=$?
if [ -s "$itres" ]; then
  read -r ip if_ < "$itres"
else
  ip=0; if_=1
fi
[ "$itrc" -ne 0 ] && [ "$if_" -eq 0 ] && if_=1
rm -f "$itres"
pass=$((pass + ip)); fail=$((fail + if_))
# the same row batteries again under mxgate-listen: both modes must log and reply alike
MXGATE_MODE=listen MXGATE_BIN="$top/$BIN" /usr/bin/python3 tests/it/run.py --result "$itres" \
  tests/it/test_rows_smtp.py tests/it/test_submission.py tests/it/test_dns_checks.py tests/it/test_grey.py \
  tests/it/test_dkim.py tests/it/test_sqmail_recipients.py tests/it/test_sqmail_senders.py \
  tests/it/test_slow_clients.py tests/it/test_commit_crash.py \
  tests/it/test_dkim_sign.py
itrc=$?
if [ -s "$itres" ]; then read -r ip if_ < "$itres"; else ip=0; if_=1; fi
[ "$itrc" -ne 0 ] && [ "$if_" -eq 0 ] && if_=1
echo "listener mode: $ip passed, $if_ failed"
rm -f "$itres"
pass=$((pass + ip)); fail=$((fail + if_))
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
