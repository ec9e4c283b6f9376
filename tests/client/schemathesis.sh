#!/usr/bin/env bash
# Fuzzes a live Perpetua server against the OpenAPI document it serves.
#
#   tests/client/schemathesis.sh BASE_URL ADMIN_TOKEN
#
# BASE_URL is the server's root (http://127.0.0.1:8080); the document is read
# from BASE_URL/openapi.json. The first pass sends `Authorization: Bearer
# ADMIN_TOKEN`; a second pass uses the token of a trader that the admin creates
# and funds, since the trading routes answer staff 403 FORBIDDEN. Start the
# server with its rate limit off (PERPETUA_RATE_LIMIT_PER_TOKEN=0), or 429s
# will crowd out the answers.
#
# Needs schemathesis 4 on PATH (pip install -r requirements.txt) and curl.
# Environment knobs: MAX_EXAMPLES (default 20), SEED (default 1, for runs that
# repeat), WORKERS (default 1: with 2, CPython 3.11 once failed in hypothesis's
# ast.parse from two threads, "AST constructor recursion depth mismatch", a
# crash of the tool and not a finding), REPORT_DIR (default: a temporary directory,
# printed; holds each pass's junit and ndjson reports, and schemathesis's
# crash cache, since schemathesis runs from inside it).
#
# Checked here with curl rather than by schemathesis:
#   GET /v1/events/live (streamEvents), and likewise streamAccount and
#   streamMarket - a Server-Sent Events stream that never
#   ends (heartbeats keep the connection alive), so a request/response fuzzer
#   waits on its first 200 forever. It is checked with bounded requests: its
#   200 must be text/event-stream with an `event` message, its 400 JSON.
#   GET /openapi.json (getOpenApi) - schemathesis 4 does not select the operation
#   that serves the document it was pointed at; it must
#   answer 200 application/json with an OpenAPI 3.1 document.
# POST /v1/admin/projections/{name}/rebuild is NOT excluded: each call starts
# one rebuild of the read models into fresh tables (no event is touched), and
# --max-examples bounds how many calls schemathesis makes.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BASE_URL ADMIN_TOKEN" >&2
  exit 2
fi
BASE_URL="${1%/}"
ADMIN_TOKEN="$2"
MAX_EXAMPLES="${MAX_EXAMPLES:-20}"
SEED="${SEED:-1}"
WORKERS="${WORKERS:-1}"
REPORT_DIR="${REPORT_DIR:-$(mktemp -d -t perpetua-schemathesis.XXXXXX)}"
mkdir -p "$REPORT_DIR"
REPORT_DIR="$(realpath "$REPORT_DIR")"
failed=0

# --- the live stream, bounded --------------------------------------------
sse_body="$REPORT_DIR/events-live.txt"
sse_headers="$REPORT_DIR/events-live.headers"
# curl exits 28 when --max-time ends the (endless) stream: that is expected.
set +e
curl -sS -N --max-time 3 -D "$sse_headers" -o "$sse_body" \
  -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE_URL/v1/events/live?fromPosition=1"
rc=$?
set -e
status="$(awk 'NR==1 {print $2}' "$sse_headers" 2>/dev/null || true)"
ctype="$(grep -i '^content-type:' "$sse_headers" 2>/dev/null | tr -d '\r' | awk '{print $2}' || true)"
if [[ ($rc -eq 0 || $rc -eq 28) && "$status" == 200 && "$ctype" == text/event-stream* ]] && grep -q '^event: event$' "$sse_body"; then
  echo "[sse] PASS GET /v1/events/live?fromPosition=1: 200 text/event-stream with event messages"
else
  echo "[sse] FAIL GET /v1/events/live?fromPosition=1: curl rc=$rc status=${status:-none} content-type=${ctype:-none}"
  failed=1
fi
bad_status="$(curl -sS --max-time 5 -o "$REPORT_DIR/events-live-400.json" -w '%{http_code} %{content_type}' \
  -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE_URL/v1/events/live?fromPosition=abc" || true)"
if [[ "$bad_status" == "400 application/json"* ]] && grep -q '"code"' "$REPORT_DIR/events-live-400.json"; then
  echo "[sse] PASS GET /v1/events/live?fromPosition=abc: 400 application/json error"
else
  echo "[sse] FAIL GET /v1/events/live?fromPosition=abc: got '$bad_status': $(head -c 300 "$REPORT_DIR/events-live-400.json" 2>/dev/null)"
  failed=1
fi

# The market stream (public) starts with its book snapshot.
market_body="$REPORT_DIR/market-live.txt"
set +e
curl -sS -N --max-time 3 -o "$market_body" "$BASE_URL/v1/markets/BTCUSDT/live"
rc=$?
set -e
if [[ ($rc -eq 0 || $rc -eq 28) ]] && [[ "$(grep -m1 '^event: ' "$market_body")" == "event: book" ]]; then
  echo "[sse] PASS GET /v1/markets/BTCUSDT/live: a book snapshot first"
else
  echo "[sse] FAIL GET /v1/markets/BTCUSDT/live: curl rc=$rc, first message: $(head -c 200 "$market_body" 2>/dev/null)"
  failed=1
fi

# GET /openapi.json: schemathesis does not select the operation that serves the
# document it reads, so check that one here.
doc_status="$(curl -sS --max-time 10 -o "$REPORT_DIR/openapi.json" -w '%{http_code} %{content_type}' "$BASE_URL/openapi.json" || true)"
if [[ "$doc_status" == "200 application/json"* ]] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["openapi"].startswith("3.1") and d["paths"]' "$REPORT_DIR/openapi.json" 2>/dev/null; then
  echo "[doc] PASS GET /openapi.json: 200 application/json, an OpenAPI 3.1 document"
else
  echo "[doc] FAIL GET /openapi.json: got '$doc_status'"
  failed=1
fi

# --- schemathesis over every other operation ------------------------------
# Two passes: as the admin (staff routes), then as a funded trader the admin
# creates (the trader routes, which answer the admin 403 FORBIDDEN).
run_schemathesis() { # LABEL TOKEN
  local label="$1" token="$2" st
  echo "[$label] schemathesis $(schemathesis --version | awk '{print $NF}') against $BASE_URL/openapi.json, max $MAX_EXAMPLES examples per operation, seed $SEED"
  set +e
  # From inside REPORT_DIR: schemathesis keeps a crash cache (.schemathesis/)
  # in its working directory, which must not land in the work tree.
  (cd "$REPORT_DIR" && schemathesis run "$BASE_URL/openapi.json" \
    --url "$BASE_URL" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers "$WORKERS" \
    --request-timeout 30 \
    --exclude-operation-id streamEvents \
    --exclude-operation-id streamAccount \
    --exclude-operation-id streamMarket \
    --generation-database none \
    --report junit,ndjson \
    --report-dir "$REPORT_DIR/$label" \
    --no-color)
  st=$?
  set -e
  if [[ $st -ne 0 ]]; then
    echo "[$label] FAIL schemathesis exit $st; reports in $REPORT_DIR/$label"
    failed=1
  else
    echo "[$label] PASS schemathesis"
  fi
  return 0
}

run_schemathesis admin "$ADMIN_TOKEN"

user="$(curl -sS --max-time 10 -X POST "$BASE_URL/v1/users" \
  -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: schemathesis-trader-$(date +%s%N)" \
  -d "{\"name\":\"schemathesis-trader\",\"role\":\"trader\"}" || true)"
trader_token="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["apiToken"])' "$user" 2>/dev/null || true)"
trader_account="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accountId"])' "$user" 2>/dev/null || true)"
if [[ -z "$trader_token" || -z "$trader_account" ]]; then
  echo "[trader] FAIL could not create a trader: $user"
  failed=1
else
  curl -sS --max-time 10 -o /dev/null -X POST "$BASE_URL/v1/accounts/$trader_account/deposits" \
    -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d '{"amount":"100000"}'
  run_schemathesis trader "$trader_token"
fi

echo "reports in $REPORT_DIR"
exit $failed
