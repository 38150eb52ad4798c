#!/bin/sh
# Installs every Debian package mxgate needs to build, run, test and
# benchmark. Idempotent: does nothing when all are present; runs
# apt-get update only when something is missing. Nothing is downloaded
# from anywhere but the Debian mirror.
set -e
PKGS="build-essential lld pkg-config libssl-dev libcdb-dev tinycdb libc-ares-dev
libcrypt-dev zlib1g-dev libcmocka-dev libbsd-dev libdb-dev libmd-dev ucspi-tcp daemontools openssl
swaks curl python3 libnet-ssleay-perl libio-socket-ssl-perl
dnsmasq-base dnsutils python3-dnspython python3-yaml socat netcat-openbsd
postfix postgrey libopendkim-dev opendkim-tools python3-dkim fetchmail
clamav-daemon clamav clamdscan spamd spamc procps clang libclang-rt-14-dev gawk gzip chromium"
# tests/it/test_install.py: the package check, man -l, systemd-analyze verify
# and systemd-socket-activate
PKGS="$PKGS lintian man-db systemd"
# tests/it/test_send_client.py: Dovecot's LMTP as the mail store mxgate-send hands mail to
PKGS="$PKGS dovecot-core dovecot-lmtpd"
# deps.sh build (make build-deps): only what building, installing and running
# mxgate need, for a server that is not to get the test suite's partners
if [ "${1:-}" = build ]; then
  PKGS="build-essential lld pkg-config libssl-dev libcdb-dev tinycdb libc-ares-dev libcrypt-dev
zlib1g-dev libbsd-dev libdb-dev libmd-dev libopendkim-dev ucspi-tcp daemontools openssl"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# postfix asks questions on install; answer them up front
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
