#!/bin/sh
# bench/opensmtpd.sh start|stop DIR PORT [nosync] -- a private OpenSMTPD instance on
# 127.0.0.1:PORT for the benchmarks (unpacked by scripts/opensmtpd.sh):
# its config, certificate and log under DIR, mail for bench.test (and for
# relay.example, the relay rows' domain, as Postfix discards it) accepted,
# queued and then delivered to "cat > /dev/null" as nobody; no limit on the
# messages per connection (its default of 100 would stop smtp-source -d).
#
# Durability: OpenSMTPD 6.8's queue never calls fsync (strace of its queue
# and smtp processes shows none before the 250), so its spool is an ext4
# file system of its own, mounted sync,dirsync: every write and rename is
# on disk when it returns, which makes its 250 at least as durable as
# Postfix's and mxgate's; it is also dearer than one fsync per message
# (each of its writes waits for the disk), so this figure is a lower bound.
# With "nosync" the file system is mounted as usual: OpenSMTPD as shipped,
# for reference, less durable than the rest. That mount and the bind mount of its helper
# programs on the paths compiled into it live in a mount namespace of the
# instance's own (unshare), so the system sees none of them.
#
# Its resolver reads /etc/hosts only after DNS, whose server is out of
# reach here; so that a connection from 127.0.0.1 is named from /etc/hosts
# at once, as Postfix does, the namespace also gets a resolv.conf saying
# "lookup file bind" with a loopback name server. Its control socket is
# compiled in as /var/run/smtpd.sock: the namespace has a /run of the
# instance's own, so that two instances can run side by side.
#
# Its listening socket has a backlog of 5 (compiled in; ss -ltn shows it):
# when 20 clients reconnect at once, the kernel drops the connections
# that find the queue full and the clients send their SYN again a second
# later. bench/run.py prints how many (the kernel's ListenOverflows), and
# sends it a tenth of the messages for the figures with a connection per
# message: those are paced by the retries, not by its work.
#
# STARTTLS is configured, but Debian 12's OpenSMTPD 6.8.0p2 cannot finish
# a TLS handshake with OpenSSL 3 (the private key operation fails with
# "EVP lib"; OpenSMTPD issues 1171 and 1239), so it has no TLS figure.
set -e
cmd=$1 dir=$2 port=$3 sync=sync,dirsync
[ "$4" = nosync ] && sync=defaults
top=$(cd "$(dirname "$0")/.." && pwd)
root="$top/build/opensmtpd/root"
case "$cmd" in
start)
  sh "$top/scripts/opensmtpd.sh"
  rm -rf "$dir"; mkdir -p "$dir"
  chmod 755 "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=opensmtpd.bench.test \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  cat > "$dir/smtpd.conf" <<CF
pki bench cert "$dir/cert.pem"
pki bench key "$dir/key.pem"
table vusers { "@bench.test" = "nobody", "@relay.example" = "nobody" }
smtp limit max-mails 1000000
listen on 127.0.0.1 port $port tls pki bench hostname opensmtpd.bench.test
action "discard" mda "cat > /dev/null" virtual <vusers>
match from any for domain { "bench.test", "relay.example" } action "discard"
CF
  printf 'nameserver 127.0.0.1\nlookup file bind\n' > "$dir/resolv.conf"
  mkdir -p "$dir/run"
  truncate -s 2G "$dir/spool.img"
  mkfs.ext4 -q -F "$dir/spool.img"
  # in the foreground, in a mount namespace of its own, logging to a file
  setsid unshare --mount --propagation private sh -c "
    mount -o loop,$sync '$dir/spool.img' /var/spool/smtpd && chmod 711 /var/spool/smtpd &&
    mount --bind '$root/usr/libexec/opensmtpd' /usr/libexec/opensmtpd &&
    mount --bind '$dir/resolv.conf' /etc/resolv.conf &&
    mount --bind '$dir/run' /run &&
    exec '$root/usr/sbin/smtpd' -d -f '$dir/smtpd.conf'" > "$dir/maillog" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for i in $(seq 1 100); do
    nc -z 127.0.0.1 "$port" 2>/dev/null && exit 0
    sleep 0.1
  done
  echo "opensmtpd did not start" >&2; cat "$dir/maillog" >&2; exit 1 ;;
stop)
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  [ -n "$pid" ] || exit 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true ;;
esac
