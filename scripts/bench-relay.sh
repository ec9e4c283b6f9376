#!/usr/bin/env bash
# The relay beside the writer at its highest rate (BENCHMARKS.md, docs/SCALING.md):
# `perpetua serve` on a fresh SQLite file (durability on) under a closed-loop order load of
# CLIENTS clients for SECONDS, `perpetua relay` publishing to a nats-server of its own (file
# storage, on a free port) from the start. The load generator prints the writer's
# commands/s; the relay's summary (on SIGTERM, after it has caught up) prints the events it
# published per second and its lag from a page's commit to the stream's acknowledgement;
# the log's event count over the load's seconds is the writer's events/s.
#
#   SECONDS=15 scripts/bench-relay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-64}
SECONDS_RUN=$(printenv SECONDS || echo 15)
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
export PERPETUA_RATE_LIMIT_PER_TOKEN=0
PORT=18193
NATS_PORT=18194
cargo build --release -p perpetua-server
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "== $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(/usr/sbin/nats-server --version)"
printf 'listen: 127.0.0.1:%s\njetstream {\n  store_dir: "%s/js"\n}\n' "$NATS_PORT" "$dir" >"$dir/nats.conf"
/usr/sbin/nats-server -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
RUST_LOG=warn target/release/perpetua serve --listen "127.0.0.1:$PORT" --database-url "sqlite://$dir/perpetua.db" \
  >"$dir/server.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
RUST_LOG=warn target/release/perpetua relay --database-url "sqlite://$dir/perpetua.db" \
  --nats-url "nats://127.0.0.1:$NATS_PORT" >"$dir/relay.out" 2>"$dir/relay.log" &
relay=$!
start_head=$(curl -sf "http://127.0.0.1:$PORT/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["headPosition"])')
echo "-- $CLIENTS order clients, ${SECONDS_RUN} s, the relay following"
target/release/perpetua-load --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --seconds "$SECONDS_RUN" | grep -v '^RESULT'
end_head=$(curl -sf "http://127.0.0.1:$PORT/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["headPosition"])')
echo "writer: $((end_head - start_head)) events in ${SECONDS_RUN} s: $(( (end_head - start_head) / SECONDS_RUN )) events/s"
# Let the relay reach the head, then stop it for its summary.
for _ in $(seq 300); do
  if target/release/perpetua relay --check --database-url "sqlite://$dir/perpetua.db" \
    --nats-url "nats://127.0.0.1:$NATS_PORT" 2>/dev/null | grep -q "(0 behind)"; then break; fi
  sleep 0.2
done
kill -TERM "$relay"
wait "$relay" || true
cat "$dir/relay.out"
target/release/perpetua relay --check --database-url "sqlite://$dir/perpetua.db" --nats-url "nats://127.0.0.1:$NATS_PORT"
