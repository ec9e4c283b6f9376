#!/usr/bin/env bash
# Runs every test of Perpetua: formatting and lints, the core built for wasm32, the shared
# domain vectors in wasm32 under Node, the native tests (unit tests, the same vectors,
# property tests, determinism, the event store on three databases, the server end to end),
# the API with real client tools (openapi-spec-validator, openapi-typescript, schemathesis),
# an independent verifier of exports in Python (tests/audit),
# and the audit viewer's unit and browser tests. Installs what it
# needs first (scripts/setup.sh). This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup"
scripts/setup.sh
. scripts/wasm-env.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "perpetua-core and perpetua-wasm for $WASM_TARGET ($WASM_MODE toolchain)"
CARGO_TARGET_DIR="$WASM_TARGET_DIR" "${WASM_CARGO[@]}" build -p perpetua-core -p perpetua-wasm \
  --target "$WASM_TARGET" "${WASM_BUILD_STD[@]}"

step "shared vectors and demo determinism in wasm32 (wasm-bindgen-test under Node)"
CARGO_TARGET_DIR="$WASM_TARGET_DIR" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  "${WASM_CARGO[@]}" test -p perpetua-wasm --tests --target "$WASM_TARGET" "${WASM_BUILD_STD_TEST[@]}"

step "the viewer's types of the wasm answers (ts-rs, web/src/wasm/answers.gen.ts) are current"
cargo clippy -q -p perpetua-wasm --all-targets --features ts -- -D warnings
cargo test -q -p perpetua-wasm --features ts --lib typescript
wasm_types=$(mktemp --suffix=.ts)
cargo run -q -p perpetua-wasm --features ts --example typescript >"$wasm_types"
if ! diff -q web/src/wasm/answers.gen.ts "$wasm_types" >/dev/null; then
  echo "web/src/wasm/answers.gen.ts is not what the Rust types generate: run scripts/api-docs.sh" >&2
  rm -f "$wasm_types"
  exit 1
fi
rm -f "$wasm_types"
echo "viewer wasm types: web/src/wasm/answers.gen.ts is generated from the Rust types"

step "the audit viewer's build (web/dist, built into the server binary)"
scripts/web-build.sh

step "cargo test (unit tests, shared vectors, property tests)"
log=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
PERPETUA_SKIP_LOG="$skips" cargo test --workspace --lib --bins --tests 2>&1 | tee "$log"
# A test that found its database unreachable (and was allowed to skip it, PERPETUA_SKIP_BACKENDS)
# returns early and writes a line to $skips; it is counted here apart from those that ran.
skipped=$(grep -c '^SKIPPED: ' "$skips" || true)
awk -v skipped="$skipped" '/^test result:/ { passed += $4; failed += $6 }
  END { printf "\ncargo test: %d passed, %d failed, %d skipped\n", passed - skipped, failed, skipped }' "$log"

cargo build -p perpetua-server --bin perpetua
client_venv="${PERPETUA_CLIENT_VENV:-$HOME/.cache/perpetua/client-venv}"

step "the API with real client tools (tests/client): openapi-spec-validator, openapi-typescript, tsc"
openapi=$(mktemp)
trap 'rm -f "$log" "$skips" "$openapi"' EXIT
target/debug/perpetua openapi >"$openapi"
PATH="$client_venv/bin:$PATH" tests/client/run.sh "$openapi"
# The viewer's API types are generated from the same document (and type-checked with the
# viewer in its build): stale ones fail here.
viewer_types=$(mktemp --suffix=.d.ts)
tests/client/node_modules/.bin/openapi-typescript "$openapi" -o "$viewer_types" >/dev/null 2>&1
if ! diff -q web/src/api/schema.gen.d.ts "$viewer_types" >/dev/null; then
  echo "web/src/api/schema.gen.d.ts is not what /openapi.json generates: run scripts/api-docs.sh" >&2
  rm -f "$viewer_types"
  exit 1
fi
rm -f "$viewer_types"
echo "viewer API types: web/src/api/schema.gen.d.ts is generated from the document"

step "schemathesis against perpetua serve --demo (SQLite, PostgreSQL): no 5xx, every answer as documented"
for backend in sqlite postgres; do
  if [ "$backend" = postgres ] && [[ ",${PERPETUA_SKIP_BACKENDS:-}," == *",postgres,"* ]]; then
    echo "SKIPPED: schemathesis on postgres (PERPETUA_SKIP_BACKENDS)"
    continue
  fi
  PATH="$client_venv/bin:$PATH" tests/client/live.sh target/debug/perpetua "$backend"
done

step "the independent verifier (tests/audit/verify.py, written from docs/AUDIT.md): a fresh export verifies under its signed checkpoint, each tampering and each cut-off tail fails"
tests/audit/run.sh target/debug/perpetua

step "the deployment in parts on one machine (scripts/deploy-local.sh, SMOKE=1): two writers, relay, projector from NATS, two query nodes"
if [[ ",${PERPETUA_SKIP_BACKENDS:-}," == *",postgres,"* ]]; then
  echo "SKIPPED: the deployment smoke check needs PostgreSQL (PERPETUA_SKIP_BACKENDS)"
else
  # Ports and a database of its own, apart from a deployment a developer may be running.
  PERPETUA_BIN=target/debug/perpetua SMOKE=1 PORT=18681 NATS_PORT=18622 DB=perpetua_deploy_test scripts/deploy-local.sh
fi

step "audit viewer: TypeScript unit tests and browser tests (Chromium) against perpetua serve --demo"
PERPETUA_BIN="$PWD/target/debug/perpetua" PERPETUA_WEB_BUILT=1 scripts/test-web.sh
