#!/usr/bin/env bash
# Installs the built library into a staging directory (meson install
# --destdir) and builds a program against it through `pkg-config lighthouse`.
# Usage: install_test.sh BUILD_DIR SOURCE_ROOT          (the shared library)
#        install_test.sh --static SOURCE_ROOT            (a fresh static build)
set -euo pipefail
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ "$1" = "--static" ]; then
  src=$(cd "$2" && pwd)
  # The core library only (-Dreplication=disabled: the shared install test
  # installs liblighthouse_replication with the rest). A unity build (eight sources per file): the same library in half the
  # compile time (57 s against 25 s on this machine, measured).
  meson setup "$stage/build" "$src" -Ddefault_library=static -Dtests=false -Dtools=false --buildtype=plain \
    -Dbenchmarks=false -Dreplication=disabled --unity=on --unity-size=8 >/dev/null
  ninja -C "$stage/build" >/dev/null
  meson install -C "$stage/build" --destdir "$stage/root" --quiet >/dev/null
  pc=$(find "$stage/root" -name lighthouse.pc | head -n1)
  export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage/root
  g++ -std=c++20 -Wall -Wextra -Wpedantic -Werror "$src/tests/consumer/consumer.cpp" \
    -o "$stage/consumer" $(pkg-config --static --cflags --libs lighthouse)
  "$stage/consumer" "$stage/store"
  exit 0
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
meson install -C "$build" --destdir "$stage" --no-rebuild --quiet >/dev/null
pc=$(find "$stage" -name lighthouse.pc | head -n1)
[ -n "$pc" ] || { echo "lighthouse.pc was not installed" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs lighthouse)
# Only public headers are installed: no private header may leak.
if find "$stage" -path '*include/lighthouse/*' -name '*.h' | xargs grep -l -E '#include <(lmdb|msgpack|openssl)' ; then
  echo "an installed header includes a private dependency" >&2
  exit 1
fi
g++ -std=c++20 -Wall -Wextra -Wpedantic -Werror "$src/tests/consumer/consumer.cpp" -o "$stage/consumer" $flags
libdir=$(dirname "$(find "$stage" -name 'liblighthouse.so*' | head -n1)")
soname=$(objdump -p "$libdir/liblighthouse.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "liblighthouse.so.3" ] || { echo "unexpected SONAME '$soname'" >&2; exit 1; }
LD_LIBRARY_PATH=$libdir "$stage/consumer" "$stage/store"
