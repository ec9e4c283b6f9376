#!/usr/bin/env bash
# Deposits against a classic CQRS/ES peer and against Perpetua, in one run: builds in release,
# starts host-server/examples/peer_cqrs_es.rs (cqrs-es and postgres-es: one transaction per
# command, the aggregate loaded from the store, optimistic concurrency) on a fresh PostgreSQL
# database and runs `perpetua-load --workload deposits` against it, then does the same against
# `perpetua serve` on another fresh database. Prints both RESULT lines and Perpetua's rate over
# the peer's. CLIENTS concurrent clients (default 64) over TRADERS accounts (default 16) for
# SECONDS (default 15); PEER_STORE picks the peer's store (aggregate, snapshot or event; see
# the example's documentation). Durability on in both (PostgreSQL's defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-64}
TRADERS=${TRADERS:-16}
# SECONDS as given in the environment: bash's own SECONDS (time since the shell started) is
# always set, so `${SECONDS:-15}` would never take the default.
SECONDS_RUN=$(printenv SECONDS || echo 15)
PEER_STORE=${PEER_STORE:-aggregate}
PG_ADMIN=${PERPETUA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE=${PG_ADMIN%/*}
ADMIN_TOKEN=bench-admin-token-0123456789
bin=${CARGO_TARGET_DIR:-target}/release
cargo build --release -p perpetua-server --bins --example peer_cqrs_es
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

fresh() {
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" 2>/dev/null
}

wait_healthy() {
  for _ in $(seq 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.2; done
  echo "no answer from $1/healthz" >&2
  return 1
}

# Runs the deposits workload against $1 with token $2; prints its output, keeps the RESULT line in $3.
load() {
  "$bin/perpetua-load" --url "$1" --token "$2" --workload deposits --clients "$CLIENTS" --traders "$TRADERS" \
    --seconds "$SECONDS_RUN" | tee "$dir/load.out"
  grep '^RESULT ' "$dir/load.out" >"$3"
}

echo "== peer: cqrs-es 0.5 + postgres-es 0.5 (--store $PEER_STORE), ${PG_BASE}/perpetua_peer"
fresh perpetua_peer
"$bin/examples/peer_cqrs_es" --listen 127.0.0.1:18390 --database-url "$PG_BASE/perpetua_peer" \
  --store "$PEER_STORE" >"$dir/peer.log" 2>&1 &
peer=$!
wait_healthy http://127.0.0.1:18390
load http://127.0.0.1:18390 peer "$dir/peer.result"
kill "$peer"; wait "$peer" || true
grep '^peer_cqrs_es: .*committed' "$dir/peer.log" || true

echo "== perpetua, ${PG_BASE}/perpetua_bench"
fresh perpetua_bench
PERPETUA_RATE_LIMIT_PER_TOKEN=0 PERPETUA_ADMIN_TOKEN=$ADMIN_TOKEN "$bin/perpetua" serve --listen 127.0.0.1:18190 \
  --database-url "$PG_BASE/perpetua_bench" --web-dir /nonexistent >"$dir/server.log" 2>&1 &
server=$!
wait_healthy http://127.0.0.1:18190
load http://127.0.0.1:18190 "$ADMIN_TOKEN" "$dir/perpetua.result"
curl -s -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:18190/metrics |
  grep -E '^perpetua_(batch_commands|commit_seconds)_(sum|count)' || true
kill "$server"; wait "$server" || true

echo "== deposits, $CLIENTS clients over $TRADERS accounts, $SECONDS_RUN s"
echo "peer     $(cat "$dir/peer.result")"
echo "perpetua $(cat "$dir/perpetua.result")"
rate() { sed 's/^RESULT //' "$1" | jq -r .rate_achieved_per_s; }
peer_rate=$(rate "$dir/peer.result")
perpetua_rate=$(rate "$dir/perpetua.result")
awk -v a="$perpetua_rate" -v b="$peer_rate" \
  'BEGIN { if (b > 0) printf "Perpetua / peer: %.0f / %.0f deposits/s = %.1fx\n", a, b, a / b; else print "the peer committed nothing" }'
