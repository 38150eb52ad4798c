#!/bin/sh
# bench/postfix.sh start|stop DIR PORT [RELAY] -- a private Postfix instance
# on 127.0.0.1:PORT for the benchmarks: its own config, queue and data
# directories under DIR, mail for bench.test accepted and discarded after
# it was queued (Postfix fsyncs each queue file before its 250, as
# mxgate-queue does). Nothing of the system instance is touched.
#
# With RELAY (IP:PORT, bench/send.py), every message is relayed there by
# SMTP instead, up to CONC (default 20) connections from the start, and
# each message goes on hold as it is queued (smtpd's access action HOLD:
# the queue manager never sees it). Then
#   bench/postfix.sh unhold DIR    moves them to the deferred queue (postsuper -H)
#   bench/postfix.sh flush DIR     asks the queue manager to deliver them now (postqueue -f)
# No setting changes and no reload: the queue manager that delivers is the
# one already running, with the configuration it started with.
set -e
cmd=$1 dir=$2 port=$3 relay=$4
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
  if [ -n "$relay" ]; then
    postconf -c "$dir/etc" -e "relayhost = [${relay%:*}]:${relay##*:}" "default_transport = smtp" \
      "relay_transport = smtp" "smtpd_client_restrictions = check_client_access static:HOLD" \
      "default_destination_concurrency_limit = ${CONC:-20}" "smtp_destination_concurrency_limit = ${CONC:-20}" \
      "initial_destination_concurrency = ${CONC:-20}"
  fi
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
unhold)
  postsuper -c "$dir/etc" -H ALL 2>/dev/null ;;
flush)
  postqueue -c "$dir/etc" -f ;;
stop)
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || true ;;
esac
