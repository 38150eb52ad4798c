#!/bin/sh
# bench/startup/run.sh: what one start of mxgate-smtpd costs under
# tcpserver, for one or more builds side by side (docs/bench.md, "Start-up
# under tcpserver"). Each BIN is a directory holding mxgate-smtpd and
# mxgate-queue (bin/, or a build of an older commit). Two sessions on
# stdin, in a tcpserver-like environment with a private home (control/me,
# rcpthosts, a certificate, one Maildir): EHLO-QUIT, and one message for
# a local Maildir. Per build: size, relocations, user-space instructions
# (valgrind's callgrind, child processes included), page faults (perf),
# then ROUNDS rounds of both sessions with every build in turn
# (execloop.c): median wall and CPU time. A static binary doing nothing
# is timed beside them as the floor of fork+exec+exit.
# A benchmark, never a test: nothing fails on a time.
# usage: bench/startup/run.sh [-r ROUNDS] BIN...
set -e
rounds=200
if [ "$1" = "-r" ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: bench/startup/run.sh [-r ROUNDS] BIN..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/mxgate-startup-XXXXXX)
trap 'rm -rf "$work"' EXIT
home=$work/home
mkdir -p "$home/control" "$home/maildirs/u/Maildir/tmp" "$home/maildirs/u/Maildir/new" "$home/maildirs/u/Maildir/cur"
echo mx.bench.test >"$home/control/me"
echo bench.test >"$home/control/rcpthosts"
echo bench.test >"$home/control/locals"
echo "u@bench.test:$home/maildirs/u/Maildir" >"$home/control/maildirs"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.bench.test \
  -keyout "$work/key.pem" -out "$work/crt.pem" >/dev/null 2>&1
cat "$work/key.pem" "$work/crt.pem" >"$home/control/servercert.pem"
chmod 600 "$home/control/servercert.pem"
printf 'EHLO client.test\r\nQUIT\r\n' >"$work/ehlo"
printf 'EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<u@bench.test>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n' >"$work/message"
cc -O2 -o "$work/execloop" "$here/execloop.c"
echo 'int main(void) { return 0; }' | cc -O2 -static -x c -o "$work/trivial-static" -
tcpenv() {
  env -i PATH=/usr/bin:/bin MXGATE_HOME="$home" PROTO=TCP TCPLOCALIP=127.0.0.1 TCPLOCALPORT=25 \
    TCPLOCALHOST=mx.bench.test TCPREMOTEIP=127.0.0.1 TCPREMOTEPORT=40000 "$@"
}
progs=""
n=0
for b in "$@"; do
  n=$((n + 1))
  d=$(cd "$b" && pwd)
  mkdir -p "$work/b$n"                 # copies, so each run's queue is the one beside its smtpd
  cp "$d/mxgate-smtpd" "$d/mxgate-queue" "$work/b$n/"
  s=$work/b$n/mxgate-smtpd
  progs="$progs $s"
  echo "== b$n: $b"
  printf '  mxgate-smtpd %s bytes, %s relocations; mxgate-queue %s bytes, %s relocations\n' \
    "$(stat -c %s "$s")" "$(readelf -rW "$s" | grep -c R_X86_64 || true)" \
    "$(stat -c %s "$work/b$n/mxgate-queue")" "$(readelf -rW "$work/b$n/mxgate-queue" | grep -c R_X86_64 || true)"
  for sess in ehlo message; do
    if command -v valgrind >/dev/null; then
      tcpenv valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/cg.%p" "$s" \
        <"$work/$sess" >/dev/null 2>"$work/vg"
      ir=$(sed -n 's/.*I *refs: *//p' "$work/vg" | tr -d , | tr '\n' ' ')
      rm -f "$work"/cg.*
    else ir="(no valgrind)"; fi
    pf=$(tcpenv perf stat -x, -e page-faults "$s" <"$work/$sess" 2>&1 >/dev/null | sed -n 's/^\([0-9]*\),,page-faults.*/\1/p')
    printf '  %-8s instructions (per process, a fork counting its parent'"'"'s before it): %s; page faults: %s\n' \
      "$sess" "$ir" "${pf:-(no perf)}"
  done
done
for sess in ehlo message; do
  echo "== $rounds rounds of $sess, builds in turn"
  tcpenv "$work/execloop" "$rounds" "$work/$sess" $progs "$work/trivial-static"
done
