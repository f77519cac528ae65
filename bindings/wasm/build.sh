#!/usr/bin/env bash
# Build the wasm binding: `cargo build --target wasm32-unknown-unknown`, then `wasm-bindgen`
# into bindings/wasm/pkg/web (ES module for pages) and bindings/wasm/pkg/node (CommonJS for
# the binding's tests in Node). Installs the wasm target and the pinned wasm-bindgen CLI when
# missing.
#   bash bindings/wasm/build.sh          the `wasm-release` profile: what pages ship and the
#                                        benches measure (fat LTO: several minutes)
#   bash bindings/wasm/build.sh --dev    the `dev` profile (the cores still at opt-level 2,
#                                        debug assertions on): CI's tests, a fraction of the time
set -euo pipefail
cd "$(dirname "$0")/../.."
BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen` pin in bindings/wasm/Cargo.toml

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $BINDGEN_VERSION" ]; then
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION"
fi

# `wasm-release` (root Cargo.toml): release + fat LTO, one codegen unit, no debug info.
PROFILE=wasm-release
OUT_DIR=wasm-release
case "${1:-}" in
  "") ;;
  --dev) PROFILE=dev; OUT_DIR=debug ;;
  *) echo "usage: bash bindings/wasm/build.sh [--dev]" >&2; exit 2 ;;
esac
cargo build --profile "$PROFILE" --target wasm32-unknown-unknown -p strata-wasm
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WASM="$TARGET_DIR/wasm32-unknown-unknown/$OUT_DIR/strata_wasm.wasm"
wasm-bindgen --target web --out-dir bindings/wasm/pkg/web "$WASM"
wasm-bindgen --target nodejs --out-dir bindings/wasm/pkg/node "$WASM"
echo "built bindings/wasm/pkg/{web,node} from $WASM ($(stat -c %s "$WASM") bytes)"
