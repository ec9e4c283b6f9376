#!/usr/bin/env bash
# Merkle proofs served at scale (BENCHMARKS.md): a log of EVENTS events (default 1,000,000) of
# the engine's mixed workload imported into a fresh SQLite store, `perpetua serve` over it, then
# the first tree head (the levels filled from the stored hashes), and REQUESTS inclusion
# proofs at random positions and as many consistency proofs, each timed by curl on one kept-
# alive connection (time_total: the request and its answer, connection reuse included).
#
#   EVENTS=1000000 REQUESTS=2000 scripts/bench-proofs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
REQUESTS=${REQUESTS:-2000}
PORT=${PORT:-18195}
export PERPETUA_ADMIN_TOKEN=bench-admin-token-0123456789
export PERPETUA_RATE_LIMIT_PER_TOKEN=0

cargo build --release -p perpetua-server --bin perpetua
cargo build --release -p perpetua-wasm --example viewer_logs
bin=$PWD/target/release/perpetua
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/release/examples/viewer_logs workload "$EVENTS" "$work/log.jsonl" >/dev/null
"$bin" import "$work/log.jsonl" --database-url "sqlite://$work/store.db" | tail -1
rm -f "$work/log.jsonl"
RUST_LOG=error "$bin" serve --database-url "sqlite://$work/store.db" --listen "127.0.0.1:$PORT" \
  --web-dir /nonexistent >/dev/null &
server=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 600); do
  curl -sf "$base/readyz" >/dev/null && break
  sleep 0.5
done
auth=(-H "Authorization: Bearer $PERPETUA_ADMIN_TOKEN")
echo "-- the first tree head ($EVENTS leaves read from the store)"
curl -s "${auth[@]}" -o /dev/null -w 'first /v1/audit/tree: %{time_total} s\n' "$base/v1/audit/tree"

timed() { # timed NAME URL-LIST-FILE
  # One curl, one connection: each URL with its own output (a curl config file).
  sed 's/.*/url = "&"\noutput = "\/dev\/null"/' "$2" >"$2.curl"
  curl -s "${auth[@]}" -w '%{time_total}\n' -K "$2.curl" |
    sort -n | awk -v name="$1" '{ t[NR] = $1 * 1000 } END {
      printf "%s: %d requests, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
        name, NR, t[int(NR * 0.5)], t[int(NR * 0.99)], t[NR] }'
}
python3 - "$EVENTS" "$REQUESTS" "$base" "$work" <<'EOF'
import random, sys
events, requests, base, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = random.Random(1)
with open(f"{work}/inclusion", "w") as f:
    for _ in range(requests):
        f.write(f"{base}/v1/audit/proofs/inclusion?position={rng.randint(1, events)}\n")
with open(f"{work}/consistency", "w") as f:
    for _ in range(requests):
        f.write(f"{base}/v1/audit/proofs/consistency?first={rng.randint(1, events)}\n")
with open(f"{work}/head", "w") as f:
    for _ in range(requests):
        f.write(f"{base}/v1/audit/tree\n")
EOF
timed "tree head" "$work/head"
timed "inclusion proof" "$work/inclusion"
timed "consistency proof" "$work/consistency"
