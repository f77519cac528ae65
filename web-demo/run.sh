#!/usr/bin/env bash
# The main job: build the wasm engine and serve the demo on 127.0.0.1, printing its URL.
#   bash web-demo/run.sh [PORT]        (default 8080; PORT=0 picks a free one)
# Installs what the build needs when missing (the wasm target, the pinned wasm-bindgen CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bindings/wasm/build.sh
exec node web-demo/serve.mjs "${1:-${PORT:-8080}}"
