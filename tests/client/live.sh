#!/usr/bin/env bash
# Runs schemathesis.sh against `perpetua serve --demo` on a fresh store of one backend: a
# temporary SQLite file, or a fresh database on the local PostgreSQL server
# (PERPETUA_TEST_POSTGRES_URL, by default postgres://postgres@127.0.0.1:5432/postgres).
#
#   tests/client/live.sh PERPETUA_BIN sqlite|postgres
#
# The server runs with its rate limit off, and is stopped at the end whatever happens.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 PERPETUA_BIN sqlite|postgres" >&2
  exit 2
fi
bin="$(realpath "$1")"
backend="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(mktemp -d -t perpetua-live.XXXXXX)"
case "$backend" in
  sqlite) url="sqlite://$dir/perpetua.db" ;;
  postgres)
    admin_url="${PERPETUA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    name=perpetua_schemathesis
    psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
    url="${admin_url%/*}/$name"
    ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
token="schemathesis-admin-$(date +%s%N)"
PERPETUA_ADMIN_TOKEN="$token" PERPETUA_RATE_LIMIT_PER_TOKEN=0 RUST_LOG=warn \
  "$bin" serve --demo --listen 127.0.0.1:0 --database-url "$url" >"$dir/server.out" 2>"$dir/server.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
base_url=""
for _ in $(seq 150); do
  base_url="$(grep -o 'http://[0-9.:]*' "$dir/server.out" | head -1 || true)"
  [[ -n "$base_url" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/server.err" >&2; echo "the server did not start" >&2; exit 1; }
  sleep 0.2
done
[[ -n "$base_url" ]] || { echo "the server did not print its address" >&2; exit 1; }
echo "live: perpetua serve --demo on $backend at $base_url"
status=0
REPORT_DIR="$dir/report" "$here/schemathesis.sh" "$base_url" "$token" || status=$?
# A 5xx is logged at ERROR by the server; schemathesis already fails on one, this shows why.
if grep -q '"level":"ERROR"\|ERROR' "$dir/server.err"; then
  echo "live: the server logged errors:" >&2
  grep 'ERROR' "$dir/server.err" | head -20 >&2
fi
exit "$status"
