#!/usr/bin/env bash
# Builds the wasm binding (pkg/node) and runs its Node tests (every *.test.mjs here).
# Usage: bash bindings/wasm/tests/run.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/../../.."
if [ "${1:-}" != "--no-build" ]; then
  bash bindings/wasm/build.sh
fi
out=$(mktemp)
status=0
node --test bindings/wasm/tests/ 2>&1 | tee "$out" || status=$?
if [ "$status" -ne 0 ] || ! grep -q '^# fail 0$' "$out"; then
  echo "bindings/wasm Node tests FAILED" >&2
  rm -f "$out"
  exit 1
fi
rm -f "$out"
echo "bindings/wasm Node tests passed"
