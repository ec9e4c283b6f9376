#!/usr/bin/env bash
# Proves that an OpenAPI document is usable by real client tools.
#
#   tests/client/run.sh DOCUMENT
#
# (a) openapi-spec-validator accepts DOCUMENT;
# (b) openapi-typescript generates api.d.ts from it, without lossy types;
# (c) uses-every-route.ts type-checks against it (tsc --strict);
# (d) each must-fail/*.ts fails to type-check, with the TypeScript error its
#     first line names (`// expect: TS2322`, and the text of an optional
#     `// expect-text: ...` line), and no other error;
# (e) every (method, path) of DOCUMENT is called in uses-every-route.ts.
#
# Needs node + npm (installs node_modules from package-lock.json when absent)
# and openapi-spec-validator on PATH (pip install -r requirements.txt).
# Prints one summary line per step; exits non-zero if any step fails.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DOCUMENT" >&2
  exit 2
fi
DOCUMENT="$(realpath "$1")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

TSC_FLAGS=(--noEmit --strict --target es2022 --module esnext --moduleResolution bundler)
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
failed=0
summary=()

say() { # STEP STATUS TEXT
  local line
  line="$(printf '[%s] %-4s %s' "$1" "$2" "$3")"
  summary+=("$line")
  echo "$line"
  [[ "$2" == FAIL ]] && failed=1
  return 0
}

if [[ ! -d node_modules/openapi-typescript || ! -d node_modules/openapi-fetch || ! -d node_modules/typescript ]]; then
  npm ci --no-audit --no-fund >"$LOG/npm" 2>&1 || { cat "$LOG/npm"; echo "npm ci failed" >&2; exit 1; }
fi

# (a) validate
if openapi-spec-validator "$DOCUMENT" >"$LOG/a" 2>&1; then
  say a PASS "openapi-spec-validator $(openapi-spec-validator --version 2>/dev/null | head -1 | awk '{print $NF}'): document valid"
else
  cat "$LOG/a"
  say a FAIL "openapi-spec-validator rejects $DOCUMENT"
fi

# (b) generate api.d.ts, then look for types that the generation lost:
# a schema `{type: object}` without properties becomes Record<string, never>
# (no field can be read or sent), an empty schema `{}` becomes unknown.
rm -f api.d.ts
generated=0
if npx --no-install openapi-typescript "$DOCUMENT" -o api.d.ts >"$LOG/b" 2>&1 && [[ -s api.d.ts ]]; then
  generated=1
  # Lines past the fixed preamble; webhooks/$defs/`: never` members are the generator's own.
  lossy="$(grep -nE 'Record<string, never>|[^]]: unknown;|: any;' api.d.ts |
    grep -vE '^[0-9]+:export type (webhooks|\$defs) = Record<string, never>;$' || true)"
  if grep -qiE 'warn|⚠' "$LOG/b"; then
    cat "$LOG/b"
    say b FAIL "openapi-typescript warned while generating api.d.ts"
  elif [[ -n "$lossy" ]]; then
    echo "lossy types in api.d.ts (line: text  <- enclosing schema or operation):"
    while IFS= read -r hit; do
      n="${hit%%:*}"
      # the nearest enclosing member names, for the report
      ctx="$(head -n "$n" api.d.ts | awk '/^    [A-Za-z"]/ {a=$1} /^        [A-Za-z"]/ {b=$1} END {gsub(/[:?]/, "", a); gsub(/[:?]/, "", b); print a "." b}')"
      echo "  $hit  <- $ctx"
    done <<<"$lossy"
    say b FAIL "openapi-typescript $(npx --no-install openapi-typescript --version 2>/dev/null | awk '{print $NF}'): api.d.ts generated, $(wc -l <<<"$lossy") lossy type(s)"
  else
    say b PASS "openapi-typescript $(npx --no-install openapi-typescript --version 2>/dev/null | awk '{print $NF}'): api.d.ts generated ($(wc -l <api.d.ts) lines), no lossy types"
  fi
else
  cat "$LOG/b"
  say b FAIL "openapi-typescript could not generate api.d.ts"
fi

# (c) the program that uses every route must type-check
if [[ $generated -eq 1 ]]; then
  if npx --no-install tsc "${TSC_FLAGS[@]}" uses-every-route.ts >"$LOG/c" 2>&1; then
    say c PASS "tsc $(npx --no-install tsc --version | awk '{print $NF}'): uses-every-route.ts type-checks"
  else
    cat "$LOG/c"
    say c FAIL "tsc: uses-every-route.ts does not type-check ($(grep -c 'error TS' "$LOG/c" || true) errors)"
  fi
else
  say c SKIP "no api.d.ts"
fi

# (d) each must-fail program must fail, for its stated reason only
if [[ $generated -eq 1 ]]; then
  d_total=0
  d_bad=()
  for file in must-fail/*.ts; do
    d_total=$((d_total + 1))
    expect="$(head -1 "$file" | sed -nE 's#^// *expect: *(TS[0-9]+) *$#\1#p')"
    text="$(sed -nE 's#^// *expect-text: *(.*[^ ]) *$#\1#p' "$file" | head -1)"
    if [[ -z "$expect" ]]; then
      d_bad+=("$file: first line is not '// expect: TSnnnn'")
      continue
    fi
    if npx --no-install tsc "${TSC_FLAGS[@]}" "$file" >"$LOG/d" 2>&1; then
      d_bad+=("$file: type-checks, but must fail with $expect (the schema is too loose?)")
      continue
    fi
    codes="$(grep -oE 'error TS[0-9]+' "$LOG/d" | awk '{print $2}' | sort -u | tr '\n' ' ' | sed 's/ $//')"
    elsewhere="$(grep -E 'error TS[0-9]+' "$LOG/d" | grep -vF "$file(" || true)"
    if [[ "$codes" != "$expect" ]]; then
      d_bad+=("$file: expected only $expect, tsc reported: ${codes:-no error code}")
      sed 's/^/      /' "$LOG/d" | cut -c1-300
    elif [[ -n "$elsewhere" ]]; then
      d_bad+=("$file: errors outside the file itself: $elsewhere")
    elif [[ -n "$text" ]] && ! grep -qF -- "$text" "$LOG/d"; then
      d_bad+=("$file: $expect reported, but not with the text: $text")
      sed 's/^/      /' "$LOG/d" | cut -c1-300
    fi
  done
  if [[ ${#d_bad[@]} -eq 0 ]]; then
    say d PASS "must-fail: all $d_total programs fail with their expected error"
  else
    printf '  %s\n' "${d_bad[@]}"
    say d FAIL "must-fail: ${#d_bad[@]} of $d_total programs did not fail as expected"
  fi
else
  say d SKIP "no api.d.ts"
fi

# (e) every operation of the document is called
if node check-routes.mjs "$DOCUMENT" uses-every-route.ts >"$LOG/e" 2>&1; then
  say e PASS "coverage: $(tail -1 "$LOG/e")"
else
  cat "$LOG/e"
  say e FAIL "coverage: uses-every-route.ts misses operations of the document"
fi

echo "---"
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
  echo "client harness: FAILED"
  exit 1
fi
echo "client harness: all steps passed"
