#!/usr/bin/env bash
# Builds the browser audit viewer: perpetua-wasm for wasm32 in release (the machine's wasm
# route, scripts/wasm-env.sh), its browser package with wasm-bindgen (`--target web`, with
# TypeScript declarations) into host-wasm/pkg (gitignored), then the app with Vite into
# web/dist, which `perpetua serve` serves at `/`. The browser package leaves out the wasm's
# name and producers sections (a sixth of its size; function names only help a profiler).
# The viewer's types of the wasm answers (web/src/wasm/answers.gen.ts) are generated first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/wasm-env.sh

CARGO_TARGET_DIR="$WASM_TARGET_DIR" "${WASM_CARGO[@]}" build --release -p perpetua-wasm \
  --target "$WASM_TARGET" "${WASM_BUILD_STD[@]}"
wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir host-wasm/pkg \
  "$WASM_TARGET_DIR/$WASM_TARGET/release/perpetua_wasm.wasm"

# The TypeScript types of the wasm answers, generated from their Rust types (ts-rs): a change on
# the Rust side fails the viewer's type check below. (The test command first checks that the
# committed copy is current.)
cargo run -q -p perpetua-wasm --features ts --example typescript >web/src/wasm/answers.gen.ts.new
mv web/src/wasm/answers.gen.ts.new web/src/wasm/answers.gen.ts

cd web
npm ci --no-audit --no-fund
npm run build
