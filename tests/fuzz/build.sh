#!/bin/sh
# make fuzz: builds every tests/fuzz/fuzz_<dir>_*.c with libFuzzer + ASan +
# UBSan against the sources of src/lib and src/<dir> (without main.c) and
# runs each for FUZZ_SECONDS (default 60) on its corpus in build/fuzz/.
# FUZZ_SECONDS=5 is the short run make check does.
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
secs=${FUZZ_SECONDS:-60}
out="$top/build/fuzz"      # absolute: some targets chdir
mkdir -p "$out"
pass=0 fail=0
for src in tests/fuzz/fuzz_${FUZZ_ONLY:-}*.c; do
  name=$(basename "$src" .c)
  dir=$(echo "$name" | cut -d_ -f2)
  extra=""
  [ "$dir" != lib ] && [ -d "src/$dir" ] && extra=$(ls src/$dir/*.c | grep -v '/main\.c$' || true)
  clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Isrc/lib -Isrc/"$dir" -o "$out/$name" "$src" src/lib/*.c $extra \
    -lcdb -lssl -lcrypto -lcares -lcrypt -lz -lm
  mkdir -p "$out/corpus-$name"
  if "$out/$name" -max_total_time="$secs" -max_len=65536 -timeout=20 -artifact_prefix="$out/$name-" "$out/corpus-$name" \
       > "$out/$name.log" 2>&1; then
    pass=$((pass + 1)); echo "fuzz $name: ok ($(grep -c . "$out/$name.log") log lines, ${secs}s)"
  else
    fail=$((fail + 1)); echo "fuzz $name: FAILED"; tail -40 "$out/$name.log"
  fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
