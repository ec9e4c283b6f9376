#!/usr/bin/env bash
# The capacity of each role on this machine (docs/SCALING.md, BENCHMARKS.md). On a fresh
# PostgreSQL database: a `--role writer`, a `--role projector` (from SQL), a `--role query`,
# the relay and a NATS server of this script's own. Release builds; everything on one
# machine, the load generator included, so each figure is what is left beside the others.
#
#   1. the writer: closed loop, CLIENTS clients, deposits, then the realistic order mix;
#   2. read-your-writes: 16 clients deposit on the writer and read each deposit back at once
#      on the query server with minPosition (perpetua-load --read-url): the wait's p50/p99;
#   3. the query server: wrk, 64 connections, on an account and on a market's book;
#   4. the projector: a second projector, fed from NATS into a fresh database, started after
#      the load, timed until it reaches the head (events/s, start-up included); and, with
#      everything stopped, `perpetua rebuild all` from SQL.
#
#   SECONDS=10 scripts/bench-roles.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=$(printenv SECONDS || echo 10)
CLIENTS=${CLIENTS:-64}
PG_ADMIN=${PERPETUA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
URL="${PG_ADMIN%/*}/perpetua_bench_roles"
URL2="${PG_ADMIN%/*}/perpetua_bench_roles_nats"
NATS_PORT=${NATS_PORT:-14322}
NATS="nats://127.0.0.1:$NATS_PORT"
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
export PERPETUA_RATE_LIMIT_PER_TOKEN=0 RUST_LOG=warn
W=127.0.0.1:18401 P=127.0.0.1:18402 Q=127.0.0.1:18403 N=127.0.0.1:18404
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -p perpetua-server --bins
bin=target/release/perpetua
load=target/release/perpetua-load
run=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$run"' EXIT
echo "== $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for db in perpetua_bench_roles perpetua_bench_roles_nats; do
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
done
printf 'listen: 127.0.0.1:%s\njetstream {\n  store_dir: "%s/jetstream"\n}\n' "$NATS_PORT" "$run" >"$run/nats.conf"
"$(command -v nats-server || echo /usr/sbin/nats-server)" -c "$run/nats.conf" >"$run/nats.log" 2>&1 &
up() { for _ in $(seq 300); do curl -sf "http://$1/healthz" >/dev/null && return; sleep 0.1; done; echo "no server on $1" >&2; exit 1; }
health() { curl -sf "http://$1/healthz" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
"$bin" serve --role writer --listen $W --database-url "$URL" 2>"$run/writer.log" >/dev/null &
writer=$!
up $W
"$bin" serve --role projector --listen $P --database-url "$URL" 2>"$run/projector.log" >/dev/null &
projector=$!
"$bin" serve --role query --listen $Q --database-url "$URL" 2>"$run/query.log" >/dev/null &
"$bin" relay --database-url "$URL" --nats-url "$NATS" 2>"$run/relay.log" >/dev/null &
up $P
up $Q

echo "-- 1. the writer: closed loop, $CLIENTS clients, deposits"
"$load" --url "http://$W" --seconds "$SECONDS_RUN" --clients "$CLIENTS" --workload deposits
echo "-- 1. the writer: closed loop, $CLIENTS clients, the realistic order mix"
"$load" --url "http://$W" --seconds "$SECONDS_RUN" --clients "$CLIENTS" --mix realistic
echo "   the projector, after: head $(health $W headPosition), projected $(health $P projectionPosition)"

echo "-- 2. read-your-writes: 16 clients deposit on the writer, each read back on the query server"
"$load" --url "http://$W" --read-url "http://$Q" --seconds "$SECONDS_RUN" --clients 16 --workload deposits

echo "-- 3. the query server: wrk, 2 threads, 64 connections"
auth="Authorization: Bearer $PERPETUA_ADMIN_TOKEN"
user=$(curl -sf -X POST "http://$W/v1/users" -H "$auth" -H 'Content-Type: application/json' -d '{"name":"wrk","role":"trader"}')
token=$(echo "$user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiToken"])')
account=$(echo "$user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accountId"])')
for _ in $(seq 100); do curl -sf -o /dev/null "http://$Q/v1/accounts/$account" -H "Authorization: Bearer $token" && break; sleep 0.05; done
for path in "/v1/accounts/$account" "/v1/markets/BTCUSDT/book?depth=20"; do
  echo "   GET $path"
  wrk -t2 -c64 -d"${SECONDS_RUN}s" -H "Authorization: Bearer $token" "http://$Q$path" | grep -E 'Requests/sec|Latency|Non-2xx'
done

echo "-- 4. the projector: one fed from NATS into a fresh database, from its start to the head"
head=$(health $W headPosition)
# The relay keeps up within about 100 ms (scripts/bench-relay.sh): two seconds after the load
# the stream holds the head.
sleep 2
started=$(date +%s%N)
"$bin" serve --role projector --nats-url "$NATS" --listen $N --database-url "$URL2" 2>"$run/nats-projector.log" >/dev/null &
up $N
for _ in $(seq 2400); do [ "$(health $N projectionPosition)" -ge "$head" ] && break; sleep 0.05; done
ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "   $head events in $ms ms: $(( head * 1000 / (ms > 0 ? ms : 1) )) events/s (start-up included)"
echo "-- 4. the projector from SQL: perpetua rebuild all, everything else stopped"
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true
"$bin" rebuild all --database-url "$URL" 2>&1 | tail -1
