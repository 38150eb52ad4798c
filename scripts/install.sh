#!/bin/sh
# make install / make uninstall: puts the built programs, mxgate-setup, the
# man pages, the run-script templates and the systemd units where the
# variables say (the Makefile passes them; see "Installation" in
# docs/decisions.md), with the installed paths written into the scripts
# and units. DESTDIR is prepended to every path written to, never to a
# path written into a file.
# usage: scripts/install.sh install|uninstall|list   (list: the files, one a line)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
: "${BIN:=bin}" "${DESTDIR:=}" "${PREFIX:=/usr/local}"
: "${BINDIR:=$PREFIX/bin}" "${SBINDIR:=$PREFIX/sbin}" "${DATADIR:=$PREFIX/share}"
: "${MANDIR:=$DATADIR/man}" "${PKGDATADIR:=$DATADIR/mxgate}" "${SYSTEMDDIR:=$PREFIX/lib/systemd/system}"
: "${MXGATE_HOME:=/var/mxgate}" "${MXGATE_USER:=mxgate}" "${MXGATE_GROUP:=$MXGATE_USER}"
: "${MXGATE_LOGDIR:=/var/log/mxgate}" "${MXGATE_LOGUSER:=mxlog}"

subst() {
  sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@PKGDATADIR@|$PKGDATADIR|g" \
      -e "s|@MXGATE_HOME@|$MXGATE_HOME|g" -e "s|@MXGATE_USER@|$MXGATE_USER|g" \
      -e "s|@MXGATE_GROUP@|$MXGATE_GROUP|g" -e "s|@LOGDIR@|$MXGATE_LOGDIR|g" \
      -e "s|@LOGUSER@|$MXGATE_LOGUSER|g" "$1"
}

# every installed file as "SOURCE TARGET MODE HOW" (HOW: copy or subst)
files() {
  for m in src/*/main.c; do
    p=mxgate-$(basename "$(dirname "$m")")
    echo "$BIN/$p $BINDIR/$p 755 copy"
  done
  echo "scripts/mxgate-setup $SBINDIR/mxgate-setup 755 subst"
  echo "scripts/mxgate-dkimkey $SBINDIR/mxgate-dkimkey 755 subst"
  for m in docs/*.[158]; do
    echo "$m $MANDIR/man${m##*.}/$(basename "$m") 644 copy"
  done
  for r in etc/service/*/run etc/service/*/log/run; do
    echo "$r $PKGDATADIR/${r#etc/} 755 subst"
  done
  for u in etc/systemd/*; do echo "$u $SYSTEMDDIR/$(basename "$u") 644 subst"; done
}

install_all() {
  [ -x "$BIN/mxgate-smtpd" ] || { echo "install: build first (make)" >&2; exit 1; }
  files | while read -r src dst mode how; do
    mkdir -p "$DESTDIR$(dirname "$dst")"
    if [ "$how" = subst ]; then
      subst "$src" > "$DESTDIR$dst.tmp"
    else
      cp "$src" "$DESTDIR$dst.tmp"
    fi
    chmod "$mode" "$DESTDIR$dst.tmp"
    mv -f "$DESTDIR$dst.tmp" "$DESTDIR$dst"
    echo "installed $DESTDIR$dst"
  done
}

uninstall_all() {
  files | while read -r src dst mode how; do
    rm -f "$DESTDIR$dst"
  done
  for s in etc/service/*; do
    rmdir "$DESTDIR$PKGDATADIR/${s#etc/}/log" "$DESTDIR$PKGDATADIR/${s#etc/}" 2>/dev/null || true
  done
  rmdir "$DESTDIR$PKGDATADIR/service" "$DESTDIR$PKGDATADIR" 2>/dev/null || true
  echo "uninstalled from $DESTDIR$PREFIX (mxgate-setup's home $MXGATE_HOME and the users are left alone)"
}

case ${1:-} in
  install) install_all ;;
  uninstall) uninstall_all ;;
  list) files | while read -r src dst mode how; do echo "$dst"; done ;;
  *) echo "usage: $0 install|uninstall|list" >&2; exit 2 ;;
esac
