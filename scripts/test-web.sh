#!/usr/bin/env bash
# Tests the browser audit viewer (web/): builds it (scripts/web-build.sh), runs the
# TypeScript unit tests (vitest, some over the wasm package with the demo log), then the
# browser tests (playwright-core driving Debian's Chromium, installed here when missing)
# with screenshots in test-output/screenshots/.
#
# With PERPETUA_BIN pointing at a `perpetua` binary that has `serve`, the browser tests run
# against the real server started with demo data (with PERPETUA_WEB_BUILT, the viewer built
# into that binary, run from another directory; else web/dist with --web-dir), in both
# modes: a file opened offline, and connected with an auditor token, following the live
# tail. Without it, they run offline against Vite's preview server over web/dist, with the
# demo log written by the same core (`viewer_logs demo`, byte for byte `perpetua demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/chromium ]; then
  step "installing Debian's Chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ -z "${PERPETUA_WEB_BUILT:-}" ]; then
  step "build the viewer (wasm package and app)"
  scripts/web-build.sh
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step "the demo log"
if [ -n "${PERPETUA_BIN:-}" ]; then
  "$PERPETUA_BIN" demo --out "$work/demo.jsonl"
else
  nice -n 10 cargo run -q -p perpetua-wasm --example viewer_logs -- demo "$work/demo.jsonl"
fi
export DEMO_LOG="$work/demo.jsonl"

step "viewer formatting (prettier --check) and unit tests (vitest; the data layer over the wasm package with the demo log)"
(cd web && npm run format:check && npm test)
export SCREENSHOT_DIR="$repo/test-output/screenshots"
rm -rf "$SCREENSHOT_DIR"

if [ -n "${PERPETUA_BIN:-}" ] && "$PERPETUA_BIN" serve --help >/dev/null 2>&1; then
  step "start perpetua serve --demo"
  admin_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # From a directory without web/ and without --web-dir: the viewer is the one built into
  # the binary (PERPETUA_WEB_BUILT: web/dist was built before it).
  web_dir=()
  [ -n "${PERPETUA_WEB_BUILT:-}" ] || web_dir=(--web-dir "$repo/web/dist")
  (cd "$work" && PERPETUA_ADMIN_TOKEN="$admin_token" exec "$PERPETUA_BIN" serve --demo --listen 127.0.0.1:0 "${web_dir[@]}" \
    --database-url "sqlite://$work/t.db") >"$work/server.log" 2>&1 &
  server_pid=$!
  # The server prints the address it listens on (port 0 picks a free one).
  url=
  for _ in $(seq 240); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$work/server.log" | head -1 | sed 's/^listening on //') || true
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "test-web: the server exited" >&2; exit 1; }
    sleep 0.5
  done
  [ -n "$url" ] || { cat "$work/server.log"; echo "test-web: the server printed no address" >&2; exit 1; }
  curl -fsS "$url/healthz" >/dev/null || { cat "$work/server.log"; echo "test-web: no /healthz at $url" >&2; exit 1; }
  auditor=$(curl -fsS -X POST "$url/v1/users" -H "Authorization: Bearer $admin_token" \
    -H 'Content-Type: application/json' -d '{"name":"auditor","role":"auditor"}')
  export PERPETUA_URL="$url" PERPETUA_ADMIN_TOKEN="$admin_token"
  AUDITOR_TOKEN=$(node -e "console.log(JSON.parse(process.argv[1]).apiToken)" "$auditor")
  export AUDITOR_TOKEN
  step "browser tests against $url (offline file and live mode)"
else
  step "browser tests against Vite's preview server (offline file; no PERPETUA_BIN with serve)"
fi
if ! (cd web && npm run test:browser); then
  if [ -n "$server_pid" ]; then
    echo "test-web: the server's output:" >&2
    tail -n 50 "$work/server.log" >&2
  fi
  exit 1
fi
echo "screenshots: $SCREENSHOT_DIR"
