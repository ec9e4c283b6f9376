#!/usr/bin/env bash
# Replay from JSON natively and in wasm32 under Node, side by side (BENCHMARKS.md): builds
# perpetua-wasm for wasm32 in release, generates its Node package with wasm-bindgen, then
# runs host-wasm/benches/replay.rs, which times both on the same log.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/wasm-env.sh
CARGO_TARGET_DIR="$WASM_TARGET_DIR" "${WASM_CARGO[@]}" build --release -p perpetua-wasm \
  --target "$WASM_TARGET" "${WASM_BUILD_STD[@]}"
pkg=target/wasm-node-pkg
wasm-bindgen --target nodejs --out-dir "$pkg" "$WASM_TARGET_DIR/$WASM_TARGET/release/perpetua_wasm.wasm"
ls -l "$pkg"/*.wasm
PERPETUA_WASM_NODE_PKG="$PWD/$pkg" cargo bench -p perpetua-wasm --bench replay
