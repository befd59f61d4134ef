#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 under ASan+UBSan (build-fuzz/)
# and runs each for SECONDS (default 600) on its checked-in seed corpus
# (fuzz/corpus/TARGET/, copied to build-fuzz/corpus/TARGET/ where new inputs
# accumulate). Crashes are written to build-fuzz/crashes/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   targets: fuzz_record fuzz_id_time fuzz_json_line fuzz_archive fuzz_page_walker
# fuzz_page_walker's inputs are whole data.mdb files: up to 256 KiB.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_record fuzz_id_time fuzz_json_line fuzz_archive fuzz_page_walker)
EXTRA_PACKAGES="clang-14 libfuzzer-14-dev" bash scripts/install-deps.sh
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang-14 CXX=clang++-14 meson setup build-fuzz -Dfuzzing=true -Dtests=false -Dbenchmarks=false \
    -Dtools=false -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized >/dev/null
fi
ninja -C build-fuzz >/dev/null
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  cp -n fuzz/corpus/"$t"/* "build-fuzz/corpus/$t/" 2>/dev/null || true
  echo "== $t: ${seconds}s"
  max_len=65536
  [ "$t" = fuzz_page_walker ] && max_len=262144
  if ! build-fuzz/fuzz/"$t" -max_total_time="$seconds" -max_len=$max_len -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/crashes/$t-" -print_final_stats=1 \
      "build-fuzz/corpus/$t" 2> "build-fuzz/$t.log"; then
    echo "$t: FOUND A CRASH (see build-fuzz/$t.log and build-fuzz/crashes/)"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov: " "build-fuzz/$t.log" | tail -3
done
exit $status
