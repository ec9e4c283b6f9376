#!/usr/bin/env bash
# Checks the independent verifier (tests/audit/verify.py, written from docs/AUDIT.md) against
# the perpetua binary: a fresh store with the demo data is exported with `perpetua export`;
# the verifier must pass on the export and agree with `perpetua verify` (the file and the
# store) on the count and the head; and it must fail, naming the right position, on each
# tampered copy, where `perpetua verify FILE` must fail at the same position.
#
# Not tested here: a truncated export (its tail cut off) is itself a valid, shorter chain; it
# is caught against the signed checkpoint the export carries (docs/AUDIT.md §10), which
# verify.py does not check yet (tests/server's signed_checkpoints and the browser tests do).
#
# Usage: tests/audit/run.sh [PATH-TO-perpetua]   (default: the checkout's target/debug/perpetua)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/debug/perpetua}
if [[ ! -x $bin ]]; then
    echo "run.sh: no perpetua binary at $bin (build it, or give its path)" >&2
    exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
verify_py=$here/verify.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
db="sqlite://$work/store.db"
failures=0

pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

# A fresh store with the demo data, without a server: `perpetua demo` runs the demo story
# through the engine and writes its sealed log; `perpetua import` appends it to an empty
# SQLite store; `perpetua export` writes the store's log back out.
"$bin" demo --out demo.jsonl >/dev/null
"$bin" import demo.jsonl --database-url "$db" >/dev/null
"$bin" export --database-url "$db" --out export.jsonl >/dev/null
echo "export: $(wc -l <export.jsonl) events from a fresh store with the demo data"

# --- The fresh export verifies, and both sides agree on the head ----------------------------

py_rc=0
py_out=$(python3 "$verify_py" export.jsonl) || py_rc=$?
stdin_out=$(python3 "$verify_py" - <export.jsonl) || true
file_out=$("$bin" verify export.jsonl)
store_out=$("$bin" verify --database-url "$db")
# verify.py:  verified N events, head position P hash H
# perpetua:   verified: N events, chain head H   /   verified: N events in the store, chain head H
py_count=$(sed -n 's/^verified \([0-9]*\) events, head position [0-9]* hash [0-9a-f]*$/\1/p' <<<"$py_out")
py_head=$(sed -n 's/^verified [0-9]* events, head position \([0-9]*\) hash [0-9a-f]*$/\1/p' <<<"$py_out")
py_hash=$(sed -n 's/^verified [0-9]* events, head position [0-9]* hash \([0-9a-f]*\)$/\1/p' <<<"$py_out")
file_line=$(grep '^verified: ' <<<"$file_out" || true)
store_line=$(grep '^verified: ' <<<"$store_out" || true)
lines=$(grep -c . export.jsonl)

if [[ $py_rc -eq 0 && -n $py_hash && $py_count == "$lines" && $py_head == "$lines" ]]; then
    pass "fresh export: verify.py: $py_out"
else
    fail "fresh export: verify.py (exit $py_rc): $py_out"
fi
if [[ $stdin_out == "$py_out" ]]; then
    pass "fresh export read from stdin: the same answer"
else
    fail "fresh export read from stdin: $stdin_out"
fi
if [[ $file_line == "verified: $py_count events, chain head $py_hash" ]]; then
    pass "perpetua verify FILE agrees: $file_line"
else
    fail "perpetua verify FILE disagrees: $file_line"
fi
if [[ $store_line == "verified: $py_count events in the store, chain head $py_hash" ]]; then
    pass "perpetua verify (the store) agrees: $store_line"
else
    fail "perpetua verify (the store) disagrees: $store_line"
fi
golden=$here/../golden/demo-chain-head.txt
if [[ -f $golden ]]; then
    # Informational: the golden head belongs to the checkout's demo story, which a binary
    # built from other sources may not tell.
    if [[ $(tr -d '[:space:]' <"$golden") == "$py_hash" ]]; then
        echo "NOTE the head is the golden demo chain head (tests/golden/demo-chain-head.txt)"
    else
        echo "NOTE the head differs from tests/golden/demo-chain-head.txt (a binary of other sources?)"
    fi
fi

# --- Tampered copies -------------------------------------------------------------------------
# Each edit is a few lines of Python over the export's lines (`lines`, without their "\n"),
# made on a copy; it prints the position at which the chain must be found broken. `m` is an
# index in the middle of the log.

tamper() { # tamper NAME OUT PYTHON-EDIT
    python3 - "$1" "$2" export.jsonl <<EOF
import re, sys
name, out, source = sys.argv[1:]
lines = open(source, encoding="utf-8").read().split("\n")[:-1]
m = len(lines) // 2
def flip(hex_digit):
    return "1" if hex_digit == "0" else "0"
def reseal(start, prev):
    """Recomputes every prevHash and hash from line start on, the chain starting at prev."""
    sys.path.insert(0, "$here")
    import verify
    for i in range(start, len(lines)):
        sealed = re.sub(r",\"prevHash\":\"[0-9a-f]{64}\",\"hash\":\"[0-9a-f]{64}\"", "", lines[i])
        digest = verify.chain_hash(prev, verify.Event(lines[i]).canonical)
        lines[i] = sealed[:-1] + ",\"prevHash\":\"%s\",\"hash\":\"%s\"}" % (prev.hex(), digest.hex())
        prev = digest
$3
open(out, "w", encoding="utf-8").write("".join(line + "\n" for line in lines))
EOF
}

# expect_broken NAME FILE POSITION CHECK-RUST: verify.py exits 1 naming POSITION; when
# CHECK-RUST is "rust", `perpetua verify FILE` also fails there.
expect_broken() {
    local name=$1 file=$2 position=$3 check_rust=$4
    local out rc=0 rust_err rust_rc=0 rust_at
    out=$(python3 "$verify_py" "$file") || rc=$?
    if [[ $rc -ne 1 || $out != "chain broken at position $position: "* ]]; then
        fail "$name: verify.py (exit $rc, expected 1 at position $position): $out"
        return
    fi
    if [[ $check_rust == rust ]]; then
        rust_err=$("$bin" verify "$file" 2>&1 >/dev/null) || rust_rc=$?
        rust_at=$(grep -o 'chain broken at position [0-9]*' <<<"$rust_err" | grep -o '[0-9]*$' || true)
        if [[ $rust_rc -eq 0 || $rust_at != "$position" ]]; then
            fail "$name: perpetua verify FILE (exit $rust_rc) does not fail at position $position: $rust_err"
            return
        fi
        out="$out [perpetua verify: position $rust_at too]"
    fi
    pass "$name: $out"
}

at=$(tamper "payload" payload.jsonl '
line = lines[m]
start, end = line.index(",\"payload\":"), line.index(",\"metadata\":")
digit = next(i for i in range(start + 11, end) if line[i].isdigit())
lines[m] = line[:digit] + str((int(line[digit]) + 1) % 10) + line[digit + 1:]
print(m + 1)')
expect_broken "one payload digit changed" payload.jsonl "$at" rust

at=$(tamper "metadata" metadata.jsonl '
i = next(i for i in range(m, len(lines)) if "\"ipAddress\":\"" in lines[i])
lines[i] = re.sub(r"\"ipAddress\":\"([^\"]*)\"", lambda g: "\"ipAddress\":\"" + g.group(1) + "9\"", lines[i])
print(i + 1)')
expect_broken "one metadata value changed (ipAddress)" metadata.jsonl "$at" rust

at=$(tamper "delete" deleted.jsonl '
del lines[m]
print(m + 1)')
expect_broken "an event deleted from the middle" deleted.jsonl "$at" rust

at=$(tamper "swap" swapped.jsonl '
lines[m], lines[m + 1] = lines[m + 1], lines[m]
print(m + 1)')
expect_broken "two events swapped" swapped.jsonl "$at" rust

at=$(tamper "hash" hash.jsonl '
line = lines[m]
k = line.index("\"hash\":\"") + 8
lines[m] = line[:k] + flip(line[k]) + line[k + 1:]
print(m + 1)')
expect_broken "a hash altered" hash.jsonl "$at" rust

at=$(tamper "prevHash" prevhash.jsonl '
line = lines[m]
k = line.index("\"prevHash\":\"") + 12
lines[m] = line[:k] + flip(line[k]) + line[k + 1:]
print(m + 1)')
expect_broken "a prevHash altered" prevhash.jsonl "$at" rust

# Beyond what `perpetua verify FILE` checks (docs/AUDIT.md §6 rule 4 and §7): it verifies a
# file as a range from its first event's prevHash, and it does not check stream versions.
at=$(tamper "head" headless.jsonl '
del lines[0]
print(1)')
expect_broken "the first event deleted" headless.jsonl "$at" -
# perpetua verify FILE takes the rest as a range, and must say so.
if "$bin" verify headless.jsonl | grep -q "events from position 2 (a range: its first prevHash"; then
    pass "the first event deleted: perpetua verify FILE names the file a range from position 2"
else
    fail "the first event deleted: perpetua verify FILE does not say the file is only a range"
fi

# The whole log re-sealed from a non-zero prevHash at position 1: every link holds, but the
# genesis rule does not.
at=$(tamper "genesis" genesis.jsonl '
reseal(0, bytes([7]) * 32)
print(1)')
expect_broken "the log re-sealed on a non-zero genesis prevHash" genesis.jsonl "$at" rust

# A stream version skipped, and every hash from there on recomputed, so that the chain itself
# is sound: only the version rule finds it.
at=$(tamper "version" version.jsonl '
line = lines[m]
version = int(re.search(r",\"version\":([0-9]+),", line).group(1))
lines[m] = re.sub(r",\"version\":[0-9]+,", ",\"version\":%d," % (version + 1), line, count=1)
reseal(m, bytes.fromhex(re.search(r"\"prevHash\":\"([0-9a-f]{64})\"", lines[m]).group(1)))
print(m + 1)')
expect_broken "a stream version skipped, the chain re-sealed after it" version.jsonl "$at" -

echo "NOTE a truncated export (its tail cut off) verifies as a shorter log; it is caught against the signed checkpoint an export carries by perpetua verify and the viewer (tests/server, the browser tests), not yet by verify.py"

if [[ $failures -ne 0 ]]; then
    echo "audit: $failures expectation(s) failed"
    exit 1
fi
echo "audit: every expectation held"
