#!/usr/bin/env bash
# The server under load (BENCHMARKS.md): builds in release, starts `perpetua serve` on a fresh
# SQLite file and on a fresh PostgreSQL database (durability on), runs perpetua-load against
# each (CLIENTS concurrent clients for SECONDS), then stops the server and times
# `perpetua rebuild all` over the log the load wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-64}
SECONDS_RUN=${SECONDS:-15}
PG_ADMIN=${PERPETUA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
cargo build --release -p perpetua-server
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS perpetua_bench WITH (FORCE)" -c "CREATE DATABASE perpetua_bench" 2>/dev/null
for url in "sqlite://$dir/bench.db" "${PG_ADMIN%/*}/perpetua_bench"; do
  echo "== $url"
  target/release/perpetua serve --listen 127.0.0.1:18190 --database-url "$url" --web-dir /nonexistent >"$dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18190/healthz >/dev/null && break; sleep 0.2; done
  target/release/perpetua-load --url http://127.0.0.1:18190 --clients "$CLIENTS" --seconds "$SECONDS_RUN"
  curl -s -H "Authorization: Bearer $PERPETUA_ADMIN_TOKEN" http://127.0.0.1:18190/metrics |
    grep -E '^perpetua_(batch_commands|commit_seconds)_(sum|count)'
  kill "$server"; wait "$server" || true
  target/release/perpetua rebuild all --database-url "$url" 2>/dev/null
done
