#!/usr/bin/env bash
# Installs the Debian 12 packages Lighthouse builds, tests and benchmarks with.
# Skips apt entirely when everything is already installed.
set -euo pipefail

packages=(
  meson ninja-build pkg-config g++ python3
  liblmdb-dev lmdb-utils libmsgpack-cxx-dev libssl-dev libzstd-dev
  libspdlog-dev libfmt-dev catch2 libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libdeflate-dev zlib1g-dev
  libxxhash-dev python3-xxhash python3-matplotlib
  libsqlite3-dev librocksdb-dev python3-msgpack gzip pigz prometheus
  libboost1.74-dev curl python3-websockets wrk openssl protobuf-compiler
  nats-server libnats-dev
)
# Node.js and npm run the second WebSocket client of the server's tests
# and the subscription benchmark (clients/node, its packages pinned by
# package-lock.json): Debian's,
# unless a Node.js with npm is already installed (another packaging of it
# would conflict with Debian's).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi
# Extra packages for one script (scripts/fuzz.sh: clang-14 libfuzzer-14-dev).
read -r -a extra <<< "${EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} != 0)); then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node.js test client's packages, exactly as package-lock.json pins them
# (installed here, never while the tests run).
node_dir="$(dirname "$0")/../clients/node"
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
   [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
