#!/bin/sh
# make fuzz: builds every tests/fuzz/fuzz_<dir>_*.c with libFuzzer + ASan +
# UBSan against the sources of src/lib and src/<dir> (without main.c) and
# runs each for FUZZ_SECONDS (default 60) on its corpus in build/fuzz/.
# FUZZ_RUNS=N instead: a fixed run of N inputs (of up to 4 KiB) from seed
# 1 and the seeds alone, the same inputs wherever it runs, so that it
# finds nothing on a CI machine it did not find here: make check does that
# (tests/run.sh); make fuzz explores.
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
secs=${FUZZ_SECONDS:-60}
out="$top/build/fuzz"      # absolute: some targets chdir
mkdir -p "$out"
pass=0 fail=0
# the harnesses whose code calls no uninstrumented library (OpenSSL,
# c-ares, ...) also run under MemorySanitizer, as <name>-msan: a read of
# memory never written (a parser leaves a line's unused fields unset)
msan="fuzz_lib_log fuzz_sessions_parse"
for src in tests/fuzz/fuzz_${FUZZ_ONLY:-}*.c; do
  base=$(basename "$src" .c)
  dir=$(echo "$base" | cut -d_ -f2)
  extra=""
  [ "$dir" != lib ] && [ -d "src/$dir" ] && extra=$(ls src/$dir/*.c | grep -v '/main\.c$' || true)
  for name in "$base" $(echo " $msan " | grep -q " $base " && echo "$base-msan"); do
    case $name in
      *-msan) san="-fsanitize=fuzzer,memory -fsanitize-memory-track-origins" ;;
      *)      san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined" ;;
    esac
    clang -g -O1 -std=c11 -D_GNU_SOURCE $san \
      -Isrc/lib -Isrc/"$dir" -o "$out/$name" "$src" src/lib/*.c $extra \
      -lopendkim -lcdb -lssl -lcrypto -lcares -lcrypt -lz -lm
    seeds=""                                      # tests/fuzz/seeds/<harness>/: real inputs to start from
    [ -d "tests/fuzz/seeds/$base" ] && seeds="tests/fuzz/seeds/$base"
    if [ -n "${FUZZ_RUNS:-}" ]; then              # the fixed run
      corpus="$out/run-$name"; rm -rf "$corpus"; mkdir -p "$corpus"
      how="-seed=1 -runs=$FUZZ_RUNS -max_len=4096"; said="seed 1, $FUZZ_RUNS runs"
    else                                          # a timed run, growing the corpus in build/fuzz
      corpus="$out/corpus-$name"; mkdir -p "$corpus"
      how="-max_total_time=$secs"; said="${secs}s"
    fi
    if "$out/$name" -max_len=65536 $how -timeout=20 -artifact_prefix="$out/$name-" "$corpus" $seeds \
         > "$out/$name.log" 2>&1; then
      pass=$((pass + 1)); echo "fuzz $name: ok ($(grep -c . "$out/$name.log") log lines, $said)"
    else
      fail=$((fail + 1)); echo "fuzz $name: FAILED"; tail -40 "$out/$name.log"
    fi
  done
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
