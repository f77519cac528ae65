#!/usr/bin/env bash
# The embedded store's benchmarks (issue 7): put/get in wasm under Node vs the same driver
# natively vs redb 4 compiled to wasm, and the size of the .wasm.
#   bash bindings/wasm/bench/run.sh [keys] [rounds]        (defaults 100000 3)
#   SMOKE=1 bash bindings/wasm/bench/run.sh                 (1000 keys, 1 round; no redb, no sizes)
# Needs what bindings/wasm/build.sh installs, plus npm's binaryen for wasm-opt (installed into
# bindings/wasm/bench/node_modules when missing). redb-wasm is its own workspace
# (bench/redb-wasm), built here only.
set -euo pipefail
cd "$(dirname "$0")/../../.."
KEYS="${1:-100000}"
ROUNDS="${2:-3}"
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
if [ -n "${SMOKE:-}" ]; then KEYS=1000; ROUNDS=1; fi

bash bindings/wasm/build.sh >/dev/null
LINES="$(mktemp)"
trap 'rm -f "$LINES"' EXIT
echo "== native (same driver, in-memory backend)"
# The same profile as the wasm build (fat LTO), so both sides get the same optimiser.
cargo run --quiet --profile wasm-release -p strata-wasm --example db_bench -- "$KEYS" "$ROUNDS" | tee -a "$LINES"
if [ -z "${SMOKE:-}" ]; then
  echo "== redb 4 for wasm32 (in-memory backend)"
  (cd bindings/wasm/bench/redb-wasm && cargo build --quiet --release --target wasm32-unknown-unknown --target-dir "$TARGET_DIR/redb-wasm")
  wasm-bindgen --target nodejs --out-dir bindings/wasm/bench/redb-wasm/pkg "$TARGET_DIR/redb-wasm/wasm32-unknown-unknown/release/redb_wasm_bench.wasm"
fi
echo "== wasm under Node ($(node --version))"
node bindings/wasm/bench/db_bench.mjs "$KEYS" "$ROUNDS" | tee -a "$LINES"
echo "== summary (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
node bindings/wasm/bench/summary.mjs < "$LINES"
[ -n "${SMOKE:-}" ] && exit 0

echo "== sizes"
if [ ! -x bindings/wasm/bench/node_modules/.bin/wasm-opt ]; then
  (cd bindings/wasm/bench && npm install --no-save --silent binaryen@132 >/dev/null)
fi
OPT=bindings/wasm/bench/node_modules/.bin/wasm-opt
size() {
  local label="$1" wasm="$2" out
  out="$(mktemp -d)"
  wasm-bindgen --target web --out-dir "$out" "$wasm"
  local bg="$out/$(basename "${wasm%.wasm}")_bg.wasm"
  "$OPT" -O3 --strip-debug --strip-producers "$bg" -o "$out/opt.wasm"
  printf '%-34s raw %8d  wasm-opt -O3 %8d  gzip -9 %8d bytes\n' "$label" \
    "$(stat -c %s "$bg")" "$(stat -c %s "$out/opt.wasm")" "$(gzip -9 -c "$out/opt.wasm" | wc -c)"
  rm -rf "$out"
}
size "strata-wasm (store + cluster)" "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/strata_wasm.wasm"
cargo build --quiet --profile wasm-release --target wasm32-unknown-unknown -p strata-wasm --no-default-features --features db
size "strata-wasm --features db (store)" "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/strata_wasm.wasm"
bash bindings/wasm/build.sh >/dev/null   # leave the full build in pkg/
size "redb-wasm-bench" "$TARGET_DIR/redb-wasm/wasm32-unknown-unknown/release/redb_wasm_bench.wasm"
