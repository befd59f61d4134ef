#!/usr/bin/env bash
# Sets everything up and runs the demo on an embedded default store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec ./build/examples/lighthouse-demo "$@"
