#!/usr/bin/env bash
# A small deployment of the exchange in parts, on one machine, with the same binary and
# flags that would run on several (docs/SCALING.md):
#
#   PostgreSQL (the machine's own)  database perpetua_deploy: the log, users, read models
#   NATS JetStream                  a nats-server of this script's own, on $NATS_PORT
#   writer  A  :8181  perpetua serve --role writer --standby     (takes the writer lease)
#   writer  B  :8182  perpetua serve --role writer --standby     (waits for it: hot standby)
#   relay           perpetua relay                                (the log onto NATS)
#   projector  :8183  perpetua serve --role projector --nats-url  (read models, fed from NATS)
#   query 1    :8184  perpetua serve --role query
#   query 2    :8185  perpetua serve --role query
# (the ports from PORT, 8181 by default).
#
# Runs until Ctrl-C, then stops every process. With SMOKE=1 it checks the deployment instead
# and exits: a deposit on the active writer read on each query node with minPosition, the
# active writer SIGKILLed and a deposit acknowledged by the standby, read on a query node.
#
#   scripts/deploy-local.sh            # or: SMOKE=1 scripts/deploy-local.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${DB:-perpetua_deploy}
PG_ADMIN=${PERPETUA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
URL="${PG_ADMIN%/*}/$DB"
NATS_PORT=${NATS_PORT:-14222}
NATS="nats://127.0.0.1:$NATS_PORT"
PORT=${PORT:-8181}
A=$PORT B=$((PORT + 1)) P=$((PORT + 2)) Q1=$((PORT + 3)) Q2=$((PORT + 4))
BIN=${PERPETUA_BIN:-}
export PERPETUA_ADMIN_TOKEN=${PERPETUA_ADMIN_TOKEN:-deploy-admin-token-0123456789}
export RUST_LOG=${RUST_LOG:-warn}
if [ -z "$BIN" ]; then
  cargo build --release -p perpetua-server --bin perpetua
  BIN=target/release/perpetua
fi
run=$(mktemp -d)
pids=()
stop() {
  local status=$?
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The logs stay when something failed.
  if [ "$status" = 0 ]; then rm -rf "$run"; else echo "the processes' logs: $run" >&2; fi
}
trap stop EXIT
trap 'exit 0' INT TERM

PGOPTIONS='-c client_min_messages=warning' psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

# NATS with JetStream on disk; fsync on every write where the server has the setting (2.10+;
# deploy/nats-server.conf says why).
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
version=$("$nats_server" --version | sed 's/.*v//')
sync=""
if [ "$(printf '%s\n2.10.0\n' "$version" | sort -V | head -1)" = "2.10.0" ]; then sync="  sync_interval: always"; fi
printf 'listen: 127.0.0.1:%s\njetstream {\n  store_dir: "%s/jetstream"\n%s\n}\n' "$NATS_PORT" "$run" "$sync" >"$run/nats.conf"
"$nats_server" -c "$run/nats.conf" >"$run/nats.log" 2>&1 &
pids+=($!)

start() { # NAME PORT ARGS...: a `perpetua serve`, its log in the run directory
  local name=$1 port=$2
  shift 2
  "$BIN" serve --listen "127.0.0.1:$port" --database-url "$URL" "$@" >"$run/$name.out" 2>"$run/$name.log" &
  pids+=($!)
  eval "pid_$name=$!"
}
up() { # PORT [PROBE]: until it answers /healthz (or /readyz: ready)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/${2:-healthz}" >/dev/null && return; sleep 0.1; done
  echo "nothing answers /${2:-healthz} on port $1" >&2
  exit 1
}

start writer_a $A --role writer --standby
up $A readyz
start writer_b $B --role writer --standby
"$BIN" relay --database-url "$URL" --nats-url "$NATS" >"$run/relay.out" 2>"$run/relay.log" &
pids+=($!)
start projector $P --role projector --nats-url "$NATS"
start query_1 $Q1 --role query
start query_2 $Q2 --role query
for port in $B $P $Q1 $Q2; do up $port; done

cat <<EOF
Perpetua in parts on PostgreSQL ($URL) and NATS ($NATS); logs in $run
  writer A   http://127.0.0.1:$A  (active: holds the writer lease)
  writer B   http://127.0.0.1:$B  (hot standby: 503 STANDBY until A is gone)
  relay      the log onto the JetStream stream PERPETUA_EVENTS
  projector  http://127.0.0.1:$P  (read models, fed from NATS)
  query 1    http://127.0.0.1:$Q1
  query 2    http://127.0.0.1:$Q2
  admin token: $PERPETUA_ADMIN_TOKEN
EOF

auth=(-H "Authorization: Bearer $PERPETUA_ADMIN_TOKEN" -H 'Content-Type: application/json')
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
deposit() { # PORT ACCOUNT: a deposit's position (retried until a writer acknowledges it)
  for _ in $(seq 500); do
    local answer
    answer=$(curl -s -X POST "http://127.0.0.1:$1/v1/accounts/$2/deposits" "${auth[@]}" \
      -H "Idempotency-Key: smoke-$1-$3" -d '{"amount":"10"}')
    if position=$(echo "$answer" | json '["position"]' 2>/dev/null); then echo "$position"; return; fi
    sleep 0.02
  done
  echo "no writer on port $1 acknowledged a deposit" >&2
  exit 1
}
balance() { # PORT ACCOUNT POSITION EXPECTED: the balance there, which must be EXPECTED
  local found
  found=$(curl -sf "http://127.0.0.1:$1/v1/accounts/$2?minPosition=$3" "${auth[@]}" | json '["balance"]')
  [ "$found" = "$4" ] || { echo "port $1 shows balance $found at position $3, not $4" >&2; exit 1; }
  echo "$found"
}

if [ "${SMOKE:-0}" = 1 ]; then
  account=$(curl -sf -X POST "http://127.0.0.1:$A/v1/users" "${auth[@]}" -d '{"name":"smoke","role":"trader"}' | json '["accountId"]')
  at=$(deposit $A "$account" 1)
  one=$(balance $Q1 "$account" "$at" 10)
  two=$(balance $Q2 "$account" "$at" 10)
  echo "deposit at position $at: balance $one on query 1, $two on query 2"
  kill -9 "$pid_writer_a"
  wait "$pid_writer_a" 2>/dev/null || true
  at=$(deposit $B "$account" 2)
  one=$(balance $Q1 "$account" "$at" 20)
  two=$(balance $Q2 "$account" "$at" 20)
  echo "writer A killed; writer B acknowledged a deposit at position $at: balance $one on query 1, $two on query 2"
  echo "smoke check passed"
  exit 0
fi
echo "Ctrl-C stops them all."
wait
