#!/usr/bin/env bash
# Installs what building and testing Perpetua needs on a fresh Debian machine and is a no-op
# where it is already there: Debian's Rust with its std source and rust-lld (only when the
# rustup toolchain lacks the wasm32 target), the wasm-bindgen CLI matching Cargo.lock, promtool,
# and the API's client tools (tests/client).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-env.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "$WASM_MODE" = missing ]; then
  echo "setup: the rustup toolchain has no wasm32 target; installing Debian's Rust with its std source"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 >/dev/null
fi

# The wasm-bindgen CLI (and its test runner) must match the wasm-bindgen crate in Cargo.lock.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
installed=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$installed" != "$bindgen_version" ]; then
  echo "setup: installing wasm-bindgen-cli $bindgen_version (found: ${installed:-none})"
  # --locked first (the versions its authors tested); when a locked dependency is no longer
  # in the registry (seen: webpki-roots 1.0.11), resolve afresh within its semver ranges.
  cargo install --quiet --locked wasm-bindgen-cli --version "$bindgen_version" ||
    cargo install --quiet wasm-bindgen-cli --version "$bindgen_version"
fi

# promtool (Debian's prometheus package) checks the server's /metrics in the test command.
# Only the package's files are wanted: its service is not started.
if ! command -v promtool >/dev/null; then
  echo "setup: installing promtool (Debian's prometheus package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# nats-server (Debian's package): the relay's and the split roles' tests, and
# scripts/deploy-local.sh, run NATS servers of their own (the machine's own service is left
# alone; the package's service is not enabled by this).
if [ ! -x /usr/sbin/nats-server ] && ! command -v nats-server >/dev/null; then
  echo "setup: installing nats-server (Debian's package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >/dev/null
fi

# The API's client tools (tests/client): openapi-spec-validator and schemathesis from PyPI, in
# a virtual environment of the project's own (remade when requirements.txt changes), and
# openapi-typescript, openapi-fetch and TypeScript from the npm lock file.
client_venv="${PERPETUA_CLIENT_VENV:-$HOME/.cache/perpetua/client-venv}"
wanted=$(sha256sum tests/client/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$client_venv/.requirements" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing the API's client tools (tests/client/requirements.txt) into $client_venv"
  python3 -m venv "$client_venv"
  "$client_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/client/requirements.txt
  echo "$wanted" >"$client_venv/.requirements"
fi
if [ ! -d tests/client/node_modules ] || [ tests/client/package-lock.json -nt tests/client/node_modules ]; then
  (cd tests/client && npm ci --no-audit --no-fund --silent)
fi
