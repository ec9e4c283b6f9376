#!/usr/bin/env bash
# Takeover by a hot standby on a large log (docs/SCALING.md, BENCHMARKS.md): a PostgreSQL
# database filled with EVENTS events of the engine's mixed workload (`perpetua import`), an
# active `perpetua serve` and a `--standby` beside it; the active one is SIGKILLed and the
# time until the standby commits a deposit (retried every 10 ms) is printed, then, for
# comparison, a cold start: the standby stopped and a server started on the same database
# again, timed from its launch to its first commit.
#
# ROLE=writer runs the writers as `--role writer` beside a `--role projector`: a takeover then
# loads the engine and the keys only, not the projector's fold of the whole log.
#
#   EVENTS=200000 scripts/bench-failover.sh
#   ROLE=writer EVENTS=200000 scripts/bench-failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-200000}
ROLE=${ROLE:-all}
DB=perpetua_bench_failover
URL="postgres://postgres@127.0.0.1:5432/$DB"
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
export PERPETUA_RATE_LIMIT_PER_TOKEN=0 RUST_LOG=warn
A=127.0.0.1:18301
B=127.0.0.1:18302
cargo build --release -p perpetua-server --bin perpetua
dir=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "== $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $EVENTS events; role $ROLE"
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
cargo run -q --release -p perpetua-wasm --example viewer_logs -- workload "$EVENTS" "$dir/log.jsonl" >/dev/null
target/release/perpetua import "$dir/log.jsonl" --database-url "$URL" | tail -1
account=$(grep -m1 '"AccountCreated"' "$dir/log.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["aggregateId"])')
now_ms() { date +%s%3N; }
until_committed() { # BASE KEY: retries a deposit under KEY until it is acknowledged
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$1/v1/accounts/$account/deposits" \
    -H "Authorization: Bearer $PERPETUA_ADMIN_TOKEN" -H "Idempotency-Key: $2" -H 'Content-Type: application/json' \
    -d '{"amount":"1"}')" = 201 ]; do sleep 0.01; done
}
settled() { # BASE: the read models at the head
  curl -sf "http://$1/healthz" | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(0 if h.get("headPosition") == h.get("projectionPosition") else 1)'
}
target/release/perpetua serve --role "$ROLE" --listen "$A" --database-url "$URL" >"$dir/a.log" 2>&1 &
active=$!
if [ "$ROLE" = writer ]; then
  target/release/perpetua serve --role projector --listen 127.0.0.1:18303 --database-url "$URL" >"$dir/p.log" 2>&1 &
fi
until curl -sf "http://$A/healthz" >/dev/null 2>&1; do sleep 0.1; done
until settled "$A"; do sleep 0.2; done
until_committed "$A" warm-up
target/release/perpetua serve --role "$ROLE" --standby --listen "$B" --database-url "$URL" >"$dir/b.log" 2>&1 &
standby=$!
until curl -sf "http://$B/healthz" 2>/dev/null | grep -q standby; do sleep 0.1; done
start=$(now_ms)
kill -9 "$active"
until_committed "$B" after-kill
echo "takeover: SIGKILL to the standby's first commit: $(($(now_ms) - start)) ms"
kill -TERM "$standby"
wait "$standby" || true
start=$(now_ms)
target/release/perpetua serve --role "$ROLE" --listen "$A" --database-url "$URL" >"$dir/c.log" 2>&1 &
until_committed "$A" cold-start
echo "cold start: launch to the first commit: $(($(now_ms) - start)) ms"
