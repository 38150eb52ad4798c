#!/bin/sh
# tests/it/postfix_dest.sh start|stop DIR PORT -- a private Postfix on
# 127.0.0.1:PORT as the next hop of mxgate-send's client tests
# (test_send_client.py): mail for dest.test is taken and discarded, except
# that soft@dest.test gets a 450 and hard@dest.test a 550 at RCPT;
# messages above 20000 bytes are refused (SIZE 20000); STARTTLS with
# DIR/cert.pem and DIR/key.pem, which the test makes (a certificate its own
# CA signed). Nothing of the system instance is touched.
set -e
cmd=$1 dir=$2 port=$3
case "$cmd" in
start)
  mkdir -p "$dir/spool" "$dir/data"
  chmod 755 "$dir"; chown postfix:postfix "$dir/data"
  rm -rf "$dir/etc"; cp -r /etc/postfix "$dir/etc"
  cat > "$dir/rcpt_access" <<MAP
soft@dest.test 450 4.2.1 soft is away, try later
hard@dest.test 550 5.1.1 hard is no user here
MAP
  cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.dest.test
mydestination = dest.test
local_recipient_maps =
local_transport = discard
default_transport = discard
relay_transport = discard
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = check_recipient_access texthash:$dir/rcpt_access, permit_mynetworks, reject
message_size_limit = 20000
maillog_file = /dev/stdout
smtpd_banner = \$myhostname ESMTP
biff = no
smtpd_tls_cert_file = $dir/cert.pem
smtpd_tls_key_file = $dir/key.pem
smtpd_tls_security_level = may
CF
  # master.cf: smtpd on PORT instead of 25, no chroot anywhere
  sed -e "s/^smtp      inet/$port      inet/" -e 's/^\([a-z0-9]* *\(unix\|inet\|fifo\|pass\|unix-dgram\) *[-yn] *[-yn] *\)[-yn]/\1n/' \
      /etc/postfix/master.cf > "$dir/etc/master.cf"
  setsid postfix -c "$dir/etc" start-fg > "$dir/maillog" 2>&1 < /dev/null &
  for i in $(seq 1 200); do
    nc -z 127.0.0.1 "$port" 2>/dev/null && exit 0
    sleep 0.1
  done
  echo "postfix did not start" >&2; cat "$dir/maillog" >&2; exit 1 ;;
stop)
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || true ;;
esac
