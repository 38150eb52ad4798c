#!/bin/sh
# make run / make stop: a demo mxgate on 127.0.0.1 high ports, under real
# tcpserver with multilog, in ./var (home, Maildirs, logs). Safe to re-run:
# the home is kept, the servers are restarted.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
bin="$top/bin"
home="$var/home"
pidfile="$var/run/pids"

stop() {
  if [ -f "$pidfile" ]; then
    while read -r pgid; do kill -TERM "-$pgid" 2>/dev/null || true; done < "$pidfile"
    rm -f "$pidfile"
    echo "mxgate demo stopped"
  fi
}

# the home is what mxgate-setup makes for example.test (run as ourselves,
# so no user is created and no owner changed), plus the demo users
make_home() {
  mkdir -p "$var/log" "$var/run"
  [ -f "$home/control/users" ] && grep -q '^alice:' "$home/control/users" && return 0
  MXGATE_HOME="$home" MXGATE_USER=$(id -un) sh "$top/scripts/mxgate-setup" --me mx.example.test example.test >/dev/null
  # demo users for SMTP AUTH and POP3: alice/alice-secret, bob/bob-secret;
  # the password is also the CRAM-MD5/APOP secret here (see users(5))
  for u in alice bob; do
    md="$home/maildirs/$u/Maildir"
    mkdir -p "$md/tmp" "$md/new" "$md/cur"
    hash=$(printf '%s\n' "$u-secret" | "$bin/mxgate-authuser" --hash)
    printf '%s:%s:%s:::%s:Maildir\n' "$u" "$hash" "$u-secret" "$home/maildirs/$u" >> "$home/control/users"
  done
  printf '127.0.0.1:allow\n:deny\n' > "$var/run/rules.txt"
  tcprules "$var/run/rules.cdb" "$var/run/rules.tmp" < "$var/run/rules.txt"
}

# another site's mail server, for example.net (user carol), on port 2526:
# mail for it leaves through mxgate-send, by the route in smtproutes
make_remote() {
  remote="$var/remote"
  mkdir -p "$remote/control" "$remote/maildirs/carol/Maildir/tmp" "$remote/maildirs/carol/Maildir/new" \
    "$remote/maildirs/carol/Maildir/cur"
  echo mx.example.net > "$remote/control/me"
  echo example.net > "$remote/control/rcpthosts"
  echo example.net > "$remote/control/locals"
  echo "carol@example.net:$remote/maildirs/carol/Maildir" > "$remote/control/maildirs"
  echo "example.net:[127.0.0.1]:2526" > "$home/control/smtproutes"
}

# serve NAME PORT [VAR=value...] -- PROGRAM [ARGS...]: tcpserver piped into
# multilog, both in a process group of their own (stop kills the group)
serve() {
  name=$1; port=$2; shift 2
  mkdir -p "$var/log/$name"
  setsid sh -c '
    name=$1 port=$2 rules=$3 log=$4; shift 4
    envs=""
    while [ "$1" != "--" ]; do envs="$envs $1"; shift; done; shift
    env $envs tcpserver -v -R -H -l0 -x "$rules" 127.0.0.1 "$port" "$@" 2>&1 </dev/null | multilog t "$log"
  ' sh "$name" "$port" "$var/run/rules.cdb" "$var/log/$name" MXGATE_HOME="${MXGATE_HOME:-$home}" "$@" >/dev/null 2>&1 &
  echo $! >> "$pidfile"
}

# the queue runner, logging through multilog into var/log/send
run_send() {
  mkdir -p "$var/log/send"
  setsid sh -c 'MXGATE_HOME="$1" "$2" 2>&1 </dev/null | multilog t "$3"' sh "$home" "$bin/mxgate-send" \
    "$var/log/send" >/dev/null 2>&1 &
  echo $! >> "$pidfile"
}

start() {
  stop >/dev/null 2>&1 || true
  make_home
  make_remote
  serve smtpd 2525 -- "$bin/mxgate-smtpd"
  serve submission 2587 SMTPAUTH=! UCSPITLS=! LOCALMFCHECK=example.test \
    -- "$bin/mxgate-smtpd" "$bin/mxgate-authuser" /bin/true
  serve smtps 2465 SMTPS=1 SMTPAUTH=! LOCALMFCHECK=example.test \
    -- "$bin/mxgate-smtpd" "$bin/mxgate-authuser" /bin/true
  # POP3: the login log is on fd 5, sent to the same multilog as stderr
  serve pop3 2110 POP3AUTH=+apop \
    -- sh -c 'exec "$@" 5>&2' sh "$bin/mxgate-popup" pop.example.test "$bin/mxgate-authuser" "$bin/mxgate-pop3d" Maildir
  serve pop3s 2995 POP3S=1 \
    -- sh -c 'exec "$@" 5>&2' sh "$bin/mxgate-popup" pop.example.test "$bin/mxgate-authuser" "$bin/mxgate-pop3d" Maildir
  run_send
  MXGATE_HOME="$var/remote" serve remote 2526 -- "$bin/mxgate-smtpd"
  cat <<MSG
mxgate demo is running (home: $home)

  SMTP (MX)      127.0.0.1:2525   for example.test (users alice, bob)
  submission     127.0.0.1:2587   STARTTLS + AUTH required (alice/alice-secret, bob/bob-secret)
  SMTPS          127.0.0.1:2465   TLS from the start + AUTH required
  POP3           127.0.0.1:2110   USER/PASS, APOP, STLS;  POP3S 127.0.0.1:2995

Send a message:
  swaks --server 127.0.0.1:2525 --from you@example.org --to alice@example.test
  printf 'Subject: hi\r\n\r\nhello\r\n' | curl -s smtp://127.0.0.1:2525 --mail-from you@example.org --mail-rcpt bob@example.test -T -

Send as alice (submission, STARTTLS, AUTH; relays anywhere):
  swaks --server 127.0.0.1:2587 --tls --auth LOGIN --auth-user alice --auth-password alice-secret \\
        --from alice@example.test --to bob@example.test
  printf 'Subject: via curl\r\n\r\nhello bob\r\n' | curl -sk --ssl-reqd smtp://127.0.0.1:2587 \\
        --user alice:alice-secret --mail-from alice@example.test --mail-rcpt bob@example.test -T -
  swaks --server 127.0.0.1:2465 --tlsc --auth PLAIN --auth-user bob --auth-password bob-secret \\
        --from bob@example.test --to alice@example.test
  (a file with Unix line ends: curl --crlf ... -T file; mxgate refuses bare LF, see docs/decisions.md)

Send out (alice to carol@example.net, another site's server on 127.0.0.1:2526,
reached by the route in $home/control/smtproutes): mxgate-send delivers it
  swaks --server 127.0.0.1:2587 --tls --auth LOGIN --auth-user alice --auth-password alice-secret \\
        --from alice@example.test --to carol@example.net
  Delivery log:   tai64nlocal < $var/log/send/current
  Arrived:        ls $var/remote/maildirs/carol/Maildir/new
  Queue:          ls $home/queue/todo    (empty once delivered)

Read alice's mail:
  curl -s pop3://127.0.0.1:2110/ --user alice:alice-secret          (list; .../1 retrieves message 1)
  python3 -c 'import poplib; p=poplib.POP3("127.0.0.1",2110); p.user("alice"); p.pass_("alice-secret"); print(p.stat())'
  POP3 login log:  tai64nlocal < $var/log/pop3/current

Delivered mail:   ls $home/maildirs/alice/Maildir/new
Session log:      tai64nlocal < $var/log/smtpd/current
Sessions report:  $bin/mxgate-sessions $var/log/smtpd
Stop:             make stop
MSG
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
