#!/bin/sh
# scripts/opensmtpd.sh -- OpenSMTPD for the benchmark only, never installed.
# Debian's opensmtpd package conflicts with postfix (both are an MTA), so
# the .deb is downloaded and unpacked into build/opensmtpd/root, and only
# what its binary needs at run time is set up: the users it drops
# privileges to (opensmtpd, opensmtpq, as the package's postinst makes
# them), its chroot directory, and empty mount points for the paths it has
# compiled in (/var/spool/smtpd, /usr/libexec/opensmtpd), which
# bench/opensmtpd.sh covers with private mounts. No service is configured.
# Idempotent; exits 0 when everything is there.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/opensmtpd"
if [ ! -x "$dir/root/usr/sbin/smtpd" ]; then
  mkdir -p "$dir"
  cd "$dir"
  rm -f opensmtpd_*.deb
  apt-get download opensmtpd >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download opensmtpd >/dev/null; }
  rm -rf root
  dpkg -x opensmtpd_*.deb root
fi
# its run-time libraries (none conflicts with postfix)
missing=$(ldd "$dir/root/usr/sbin/smtpd" | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p')
[ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libevent-2.1-7 >/dev/null
for name in opensmtpd opensmtpq; do
  getent group "$name" >/dev/null || addgroup --system --quiet "$name"
  id "$name" >/dev/null 2>&1 || adduser --system --quiet --home /var/lib/opensmtpd/empty --no-create-home \
    --disabled-password --ingroup "$name" "$name"
done
mkdir -p /var/lib/opensmtpd/empty /var/spool/smtpd /usr/libexec/opensmtpd
