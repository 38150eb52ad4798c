#!/bin/sh
# make fuzz: builds every tests/fuzz/fuzz_<dir>_*.c with libFuzzer + ASan +
# UBSan against the sources of src/lib and src/<dir> (without main.c) and
# runs each for FUZZ_SECONDS (default 60), exploring: its corpus in
# build/fuzz/ grows, starting from tests/fuzz/seeds/<harness>/ (inputs
# written by hand) and tests/fuzz/corpus/<harness>.tar.gz (what earlier
# explorations found, minimized).
#
# FUZZ_RUNS=N instead: the seeds and the archived corpus, then N inputs
# from seed 1 (make check: N=0, every archived input once and nothing new,
# so the run is the same on every machine).
#
# To archive what the explorations found (after make fuzz), for each harness H:
#   mkdir /tmp/m; build/fuzz/H -merge=1 -max_len=4096 /tmp/m <old inputs> build/fuzz/corpus-H*
#   and tar the files of /tmp/m into tests/fuzz/corpus/H.tar.gz
#
# A harness that must stand in for one file of its directory (say the
# process a login starts) names it in a line "fuzz-without: src/DIR/FILE.c".
# A harness whose code calls another directory's, as a program linked with
# that directory's archive does (mxgate-smtpd with src/queue, the embedded
# queue), names it in a line "fuzz-with: src/DIR": its sources (without
# main.c) are compiled with -Isrc/DIR into an archive the harness links,
# so only the objects it calls are pulled in, as in the Makefile.
# Each source is compiled once per sanitizer into build/fuzz/obj-*/ and
# every harness links those objects (the build is most of make check's
# fuzz time).
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
secs=${FUZZ_SECONDS:-60}
out="$top/build/fuzz"      # absolute: some targets chdir
mkdir -p "$out"
rm -rf "$out/obj-asan" "$out/obj-msan"; mkdir -p "$out/obj-asan" "$out/obj-msan"
pass=0 fail=0
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -DPIDBITS=65536 -DBUCKETS=64 -DSEEN_FIRST=16 -DMAP_FIRST=16 -DKEYBLOCK=1024 -DROWCACHE=16"
# mxgate-sessions' tables, small: fresh ones for every input (PIDBITS: the pid map,
# 8 KB, not 512 KB; BUCKETS, SEEN_FIRST, MAP_FIRST, KEYBLOCK, ROWCACHE:
# join.c, report_summary.c, summary.h)
# objects of the sources named, for sanitizer $1 (asan or msan) with the
# include path of directory $2, compiled on first use; their paths printed
objects() {
  fl=$1 inc=$2; shift 2
  case $fl in
    msan) san="-fsanitize=fuzzer-no-link,memory -fsanitize-memory-track-origins" ;;
    *)    san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" ;;
  esac
  for c in "$@"; do
    o="$out/obj-$fl/$(echo "$c" | tr / _ | sed 's/\.c$/.o/')"
    [ -f "$o" ] || clang $cflags $san -Isrc/lib -Isrc/"$inc" -c "$c" -o "$o" >&2 || return 1
    echo "$o"
  done
}
# the harnesses whose code calls no uninstrumented library (OpenSSL,
# c-ares, ...) also run under MemorySanitizer, as <name>-msan: a read of
# memory never written (a parser leaves a line's unused fields unset)
msan="fuzz_lib_log fuzz_sessions_parse fuzz_lib_dns fuzz_lib_spf fuzz_popup_commands fuzz_queue_envelope"
for src in tests/fuzz/fuzz_${FUZZ_ONLY:-}*.c; do
  base=$(basename "$src" .c)
  dir=$(echo "$base" | cut -d_ -f2)
  extra=""
  without=$(sed -n 's/.*fuzz-without: \([^ ]*\).*/\1/p' "$src")
  [ "$dir" != lib ] && [ -d "src/$dir" ] && extra=$(ls src/$dir/*.c | grep -v '/main\.c$' |
    grep -vxF "${without:-/none}" || true)
  inputs=""                                     # absolute paths, as the corpus: some targets chdir
  [ -d "tests/fuzz/seeds/$base" ] && inputs="$top/tests/fuzz/seeds/$base"
  if [ -f "tests/fuzz/corpus/$base.tar.gz" ]; then
    rm -rf "$out/archive-$base"; mkdir -p "$out/archive-$base"
    tar -xzf "tests/fuzz/corpus/$base.tar.gz" -C "$out/archive-$base"
    inputs="$inputs $out/archive-$base"
  fi
  for name in "$base" $(echo " $msan " | grep -q " $base " && echo "$base-msan"); do
    case $name in
      *-msan) fl=msan san="-fsanitize=fuzzer,memory -fsanitize-memory-track-origins" ;;
      *)      fl=asan san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined" ;;
    esac
    objs="$(objects $fl lib src/lib/*.c) $(objects $fl "$dir" $extra)"
    for w in $(sed -n 's/.*fuzz-with: src\/\([a-z]*\).*/\1/p' "$src"); do
      a="$out/obj-$fl/lib$w.a"
      wobjs=$(objects $fl "$w" $(ls src/$w/*.c | grep -v '/main\.c$'))
      rm -f "$a"; ar rcs "$a" $wobjs
      objs="$objs $a"
    done
    clang $cflags $san -Isrc/lib -Isrc/"$dir" -o "$out/$name" "$src" $objs \
      -lopendkim -lcdb -lssl -lcrypto -lcares -lcrypt -lz -lm
    if [ -n "${FUZZ_RUNS:-}" ]; then              # the fixed run
      corpus="$out/run-$name"; rm -rf "$corpus"; mkdir -p "$corpus"
      how="-seed=1 -runs=$FUZZ_RUNS -max_len=4096"; said="the archived inputs, then $FUZZ_RUNS runs"
    else                                          # exploring, the corpus in build/fuzz growing
      corpus="$out/corpus-$name"; mkdir -p "$corpus"
      how="-max_total_time=$secs"; said="${secs}s"
    fi
    if "$out/$name" -max_len=65536 $how -timeout=20 -artifact_prefix="$out/$name-" "$corpus" $inputs \
         > "$out/$name.log" 2>&1; then
      pass=$((pass + 1)); echo "fuzz $name: ok ($(grep -c . "$out/$name.log") log lines, $said)"
    else
      fail=$((fail + 1)); echo "fuzz $name: FAILED"; tail -40 "$out/$name.log"
    fi
  done
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
