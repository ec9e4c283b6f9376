#!/usr/bin/env bash
# Builds everything (the workspace natively, the core and its bindings for wasm32, the audit
# viewer) and runs the main job: the exchange server on SQLite (./perpetua.db) with demo data,
# serving the API and the viewer. The first start prints an admin token and the demo users'
# tokens (once: they are stored hashed). Stop it with Ctrl-C; run again to continue with the
# same store.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/wasm-env.sh
CARGO_TARGET_DIR="$WASM_TARGET_DIR" "${WASM_CARGO[@]}" build --release -p perpetua-core -p perpetua-wasm \
  --target "$WASM_TARGET" "${WASM_BUILD_STD[@]}"
scripts/web-build.sh
cargo build --release --workspace
exec target/release/perpetua serve --demo --database-url "${PERPETUA_DATABASE_URL:-sqlite://perpetua.db}" \
  --listen "${PERPETUA_LISTEN:-127.0.0.1:8080}"
