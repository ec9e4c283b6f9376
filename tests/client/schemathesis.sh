#!/usr/bin/env bash
# Fuzzes a live Perpetua server against the OpenAPI document it serves.
#
#   tests/client/schemathesis.sh BASE_URL ADMIN_TOKEN
#
# BASE_URL is the server's root (http://127.0.0.1:8080); the document is read
# from BASE_URL/openapi.json. Every request carries `Authorization: Bearer
# ADMIN_TOKEN`. Start the server with its rate limit off
# (PERPETUA_RATE_LIMIT_PER_TOKEN=0), or 429s will crowd out the answers.
#
# Needs schemathesis 4 on PATH (pip install -r requirements.txt) and curl.
# Environment knobs: MAX_EXAMPLES (default 20), SEED (default 1, for runs that
# repeat), WORKERS (default 2), REPORT_DIR (default: a temporary directory,
# printed; holds junit.xml and the ndjson event log of the run).
#
# Excluded from schemathesis, and checked here with curl instead:
#   GET /v1/events/live (streamEvents) - a Server-Sent Events stream that never
#   ends (heartbeats keep the connection alive), so a request/response fuzzer
#   waits on its first 200 forever. It is checked with bounded requests: its
#   200 must be text/event-stream with an `event` message, its 400 JSON.
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
WORKERS="${WORKERS:-2}"
REPORT_DIR="${REPORT_DIR:-$(mktemp -d -t perpetua-schemathesis.XXXXXX)}"
mkdir -p "$REPORT_DIR"
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

# --- schemathesis over every other operation ------------------------------
echo "schemathesis $(schemathesis --version | awk '{print $NF}') against $BASE_URL/openapi.json, max $MAX_EXAMPLES examples per operation, seed $SEED; reports in $REPORT_DIR"
set +e
schemathesis run "$BASE_URL/openapi.json" \
  --url "$BASE_URL" \
  --header "Authorization: Bearer $ADMIN_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --workers "$WORKERS" \
  --request-timeout 30 \
  --exclude-operation-id streamEvents \
  --generation-database none \
  --report junit,ndjson \
  --report-dir "$REPORT_DIR" \
  --no-color
st=$?
set -e
if [[ $st -ne 0 ]]; then
  echo "[schemathesis] FAIL (exit $st); reports in $REPORT_DIR"
  failed=1
else
  echo "[schemathesis] PASS"
fi

exit $failed
