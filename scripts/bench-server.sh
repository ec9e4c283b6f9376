#!/usr/bin/env bash
# The server under load (BENCHMARKS.md). Builds in release, then for each backend (a fresh
# SQLite file, a fresh PostgreSQL database; durability on) starts `perpetua serve` and runs
# perpetua-load against it:
#   1. closed loop, CLIENTS clients for SECONDS, the realistic mix (a third of the commands
#      with an Idempotency-Key, a tenth of the requests to POST /v1/orders/batch);
#   2. closed loop, the deposit workload (the comparison with a one-transaction-per-command
#      peer, scripts/bench-peer.sh);
#   3. unless SWEEP=0, the open-loop sweep: the highest rate held with p99 <= 20 ms, then
#      p50/p99/p99.9 and projection lag at 25, 50 and 75 % of it;
# then stops the server and times `perpetua rebuild all` over the log the load wrote.
#
# COMPARE_WITH=<commit> builds that commit in a worktree beside this one (its own target
# directory) and runs every step against it too, alternating old and new per backend, with
# this checkout's load generator for both (an old server without the batch route gets single
# orders instead, and the generator says so); OLD_BIN=<path to a perpetua binary> does the
# same with one built already. Every run prints a `RESULT {json}` line.
#
#   SECONDS=15 COMPARE_WITH=dde5572 scripts/bench-server.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-64}
# bash keeps its own SECONDS (time since start): read the one given in the environment.
SECONDS_RUN=$(printenv SECONDS || echo 15)
SWEEP=${SWEEP:-1}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_ADMIN=${PERPETUA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
# A load generator is one client with few tokens: the per-token rate limit is off for it
# (an older binary ignores the variable).
export PERPETUA_RATE_LIMIT_PER_TOKEN=0
PORT=18190

cargo build --release -p perpetua-server
servers=("new:$PWD/target/release/perpetua")
if [ -n "${COMPARE_WITH:-}" ]; then
  base="$PWD/target/bench-base/src"
  git worktree remove --force "$base" 2>/dev/null || true
  git worktree add --detach "$base" "$COMPARE_WITH" >/dev/null
  CARGO_TARGET_DIR="$PWD/target/bench-base/target" cargo build --release -p perpetua-server --manifest-path "$base/Cargo.toml"
  servers=("old:$PWD/target/bench-base/target/release/perpetua" "${servers[@]}")
elif [ -n "${OLD_BIN:-}" ]; then
  # An old server built already (for example by an earlier COMPARE_WITH run).
  servers=("old:$OLD_BIN" "${servers[@]}")
fi
load=target/release/perpetua-load
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "== $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

for backend in $BACKENDS; do
  for entry in "${servers[@]}"; do
    name=${entry%%:*}
    bin=${entry#*:}
    case $backend in
      sqlite) url="sqlite://$dir/$name.db" ;;
      postgres)
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS perpetua_bench WITH (FORCE)" -c "CREATE DATABASE perpetua_bench" >/dev/null
        url="${PG_ADMIN%/*}/perpetua_bench"
        ;;
    esac
    echo
    echo "== $name server ($bin) on $backend"
    "$bin" serve --listen 127.0.0.1:$PORT --database-url "$url" --web-dir /nonexistent >"$dir/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.2; done
    common=(--url http://127.0.0.1:$PORT --seconds "$SECONDS_RUN")
    echo "-- closed loop, realistic mix"
    "$load" "${common[@]}" --clients "$CLIENTS" --mix realistic
    curl -s -H "Authorization: Bearer $PERPETUA_ADMIN_TOKEN" http://127.0.0.1:$PORT/metrics |
      grep -E '^perpetua_(batch_commands|commit_seconds)_(sum|count)'
    echo "-- closed loop, deposits"
    "$load" "${common[@]}" --clients "$CLIENTS" --workload deposits
    if [ "$SWEEP" != 0 ]; then
      echo "-- open-loop sweep, realistic mix"
      "$load" --url http://127.0.0.1:$PORT --seconds 5 --sweep
    fi
    kill "$server"
    wait "$server" || true
    echo "-- rebuild all"
    "$bin" rebuild all --database-url "$url" 2>/dev/null
  done
done
