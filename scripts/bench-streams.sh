#!/usr/bin/env bash
# Live-stream fan-out (BENCHMARKS.md): `perpetua serve` on a fresh SQLite file (durability
# on), a closed-loop order load of CLIENTS clients for SECONDS, and beside it N stream
# clients holding a market's stream (`/v1/markets/BTCUSDT/live`) — N in STREAMS (default
# "0 100 1000") — then 100 clients on the whole log's (`/v1/events/live`). perpetua-load
# reports each run's commands/s, the clients still held at the end, the messages they
# received per second together, and the delay from a command's answer to its message
# (a `STREAMS {json}` line).
#
#   SECONDS=10 scripts/bench-streams.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-16}
SECONDS_RUN=$(printenv SECONDS || echo 10)
STREAMS=${STREAMS:-0 100 1000}
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
export PERPETUA_RATE_LIMIT_PER_TOKEN=0
PORT=18191
cargo build --release -p perpetua-server
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "== $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
run() { # STREAM_KIND N
  rm -f "$dir"/perpetua.db*
  RUST_LOG=warn target/release/perpetua serve --listen "127.0.0.1:$PORT" --database-url "sqlite://$dir/perpetua.db" \
    >"$dir/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  echo "-- $2 $1 streams, $CLIENTS order clients, ${SECONDS_RUN} s"
  target/release/perpetua-load --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --seconds "$SECONDS_RUN" \
    --stream-clients "$2" --stream "$1" | grep -v '^RESULT'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
for n in $STREAMS; do run market "$n"; done
run log 100
