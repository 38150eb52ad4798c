#!/bin/sh
# bench/postfix.sh start|stop DIR PORT -- a private Postfix instance on
# 127.0.0.1:PORT for the benchmarks: its own config, queue and data
# directories under DIR, mail for bench.test accepted and discarded after
# it was queued (Postfix fsyncs each queue file before its 250, as
# mxgate-queue does). Nothing of the system instance is touched.
set -e
cmd=$1 dir=$2 port=$3
case "$cmd" in
start)
  rm -rf "$dir"; mkdir -p "$dir/spool" "$dir/data"
  chmod 755 "$dir"; chown postfix:postfix "$dir/data"
  cp -r /etc/postfix "$dir/etc"
  cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.test
mydestination = bench.test
local_recipient_maps =
local_transport = discard
default_transport = discard
relay_transport = discard
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file = /dev/stdout
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
anvil_rate_time_unit = 60s
smtpd_banner = \$myhostname ESMTP
biff = no
smtpd_tls_cert_file = $dir/cert.pem
smtpd_tls_key_file = $dir/key.pem
smtpd_tls_security_level = may
CF
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=postfix.bench.test \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  # master.cf: smtpd on the bench port instead of 25, no chroot anywhere
  sed -e "s/^smtp      inet/$port      inet/" -e 's/^\([a-z0-9]* *\(unix\|inet\|fifo\|pass\|unix-dgram\) *[-yn] *[-yn] *\)[-yn]/\1n/' \
      /etc/postfix/master.cf > "$dir/etc/master.cf"
  # in the foreground, logging to a file of its own (no syslog needed)
  setsid postfix -c "$dir/etc" start-fg > "$dir/maillog" 2>&1 < /dev/null &
  for i in $(seq 1 100); do
    nc -z 127.0.0.1 "$port" 2>/dev/null && exit 0
    sleep 0.1
  done
  echo "postfix did not start" >&2; exit 1 ;;
stop)
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || true ;;
esac
