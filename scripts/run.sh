#!/usr/bin/env bash
# Builds everything (the workspace natively, the core and its bindings for wasm32) and runs
# the main job. Today that is the demo: the story runs through the engine, its sealed log is
# written to ./perpetua-demo.jsonl, read back, verified and replayed; then it is imported
# into the event store (./perpetua.db, SQLite; again on a second run is a no-op) and the
# store's hash chain is verified. (The HTTP server with its browser viewer is not built yet;
# when it is, this script will start it.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/wasm-env.sh
CARGO_TARGET_DIR="$WASM_TARGET_DIR" "${WASM_CARGO[@]}" build --release -p perpetua-core -p perpetua-wasm \
  --target "$WASM_TARGET" "${WASM_BUILD_STD[@]}"
cargo build --release --workspace
target/release/perpetua demo --out perpetua-demo.jsonl
target/release/perpetua import perpetua-demo.jsonl --database-url sqlite://perpetua.db
exec target/release/perpetua verify --database-url sqlite://perpetua.db
