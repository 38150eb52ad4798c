#!/bin/sh
# make deb: a Debian binary package of make install's files (PREFIX=/usr,
# units in /lib/systemd/system), with the control data of debian/: control
# and changelog through dpkg-gencontrol, library dependencies from
# dpkg-shlibdeps, postinst/postrm (the users; nothing of the home).
# Prints the path of the .deb on its last line.
# usage: scripts/deb.sh   (BIN= the built programs, DEBOUT= the output dir)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BIN=${BIN:-bin}
out=${DEBOUT:-build/deb}
case $out in /*) ;; *) out=$top/$out ;; esac
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/DEBIAN"
umask 022

BIN=$BIN DESTDIR=$stage PREFIX=/usr SBINDIR=/usr/sbin SYSTEMDDIR=/lib/systemd/system \
  MANDIR=/usr/share/man sh scripts/install.sh install >/dev/null
# Debian wants stripped programs (the build keeps -g for the tests),
# compressed man pages and the copyright and changelog in the doc dir
for p in "$stage"/usr/bin/*; do
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$p"
done
find "$stage/usr/share/man" -type f -exec gzip -9n {} +
doc=$stage/usr/share/doc/mxgate
mkdir -p "$doc" "$stage/usr/share/lintian/overrides"
cp debian/copyright "$doc/copyright"
gzip -9n < debian/changelog > "$doc/changelog.gz"
cp debian/lintian-overrides "$stage/usr/share/lintian/overrides/mxgate"
chmod 644 "$doc/copyright" "$doc/changelog.gz" "$stage/usr/share/lintian/overrides/mxgate"

cp debian/postinst debian/postrm "$stage/DEBIAN/"
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
: > "$out/substvars"
set --
for p in "$stage"/usr/bin/mxgate-*; do set -- "$@" "-e$p"; done
dpkg-shlibdeps -T"$out/substvars" "$@" 2>"$out/shlibdeps.log" \
  || { cat "$out/shlibdeps.log" >&2; exit 1; }
dpkg-gencontrol -pmxgate -T"$out/substvars" -f"$out/files" -P"$stage"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) \
  > "$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=$out/mxgate_${version}_$arch.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"
