#!/usr/bin/env bash
# Builds tests/consumer with Lighthouse as a Meson subproject and runs it.
# Usage: consumer_subproject_test.sh SOURCE_ROOT
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/tests/consumer/meson.build" "$src/tests/consumer/consumer.cpp" "$work/"
mkdir "$work/subprojects"
# The subproject is this source tree, without its build directories.
mkdir "$work/subprojects/lighthouse"
for entry in meson.build meson_options.txt include lib; do
  ln -s "$src/$entry" "$work/subprojects/lighthouse/$entry"
done
# No optimisation, no debug information: what is tested is that it builds
# cleanly and works, in the least time.
# The subproject as a unity build (eight sources per file): half the compile
# time; the consumer itself is built as it is.
meson setup "$work/build" "$work" --wrap-mode=nodownload --buildtype=plain --unity=subprojects --unity-size=8 \
  >"$work/setup.log" 2>&1 ||
  { cat "$work/setup.log"; exit 1; }
ninja -C "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
if grep -q "warning:" "$work/build.log"; then
  grep "warning:" "$work/build.log"
  echo "consumer build has warnings" >&2
  exit 1
fi
"$work/build/consumer" "$work/store"
