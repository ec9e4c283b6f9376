#!/usr/bin/env bash
# Checks the independent verifier (tests/audit/verify.py, written from docs/AUDIT.md) against
# the perpetua binary: a fresh store with the demo data is signed by a server started on it
# for a moment (one checkpoint, docs/AUDIT.md §10) and exported with `perpetua export`; the
# verifier must pass its self-test (RFC 8032 and RFC 6962 test vectors), pass on the export,
# with and without the server's public key, and agree with `perpetua verify` (the file and
# the store) on the count and the head; and it must fail, naming the right position, on each
# tampered copy, where `perpetua verify FILE` must fail at the same position; and refuse the
# checkpoint, for the right reason, of each copy cut short of it, rewritten under it, or
# carrying an altered or foreign one, where `perpetua verify FILE` must fail too.
#
# Needs python3 and curl.
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
server_pid=
# The server started below is stopped whatever happens: on exit, on an error, on a signal.
stop_server() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
cd "$work"
db="sqlite://$work/store.db"
failures=0

pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
die() { printf 'run.sh: %s\n' "$*" >&2; [[ -f server.log ]] && tail -n 20 server.log >&2; exit 1; }

# A fresh store with the demo data, without a server: `perpetua demo` runs the demo story
# through the engine and writes its sealed log; `perpetua import` appends it to an empty
# SQLite store.
"$bin" demo --out demo.jsonl >/dev/null
"$bin" import demo.jsonl --database-url "$db" >/dev/null

# The CLI cannot sign: a server on the store, with a signing key made in the work directory
# and no periodic signing, signs the head once when asked (POST /v1/audit/checkpoints, staff:
# the admin's token, chosen here) and is stopped. It listens on a free port (port 0) and
# prints the address; it logs the id of its key at start-up, which the operator publishes.
admin_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
PERPETUA_ADMIN_TOKEN=$admin_token "$bin" serve --listen 127.0.0.1:0 --database-url "$db" \
    --signing-key "$work/signing.key" --checkpoint-every-ms 0 --log-format json >server.log 2>&1 &
server_pid=$!
url=
for _ in $(seq 240); do
    url=$(grep -o 'listening on http://[0-9.:]*' server.log | head -1 | sed 's/^listening on //') || true
    [[ -n $url ]] && break
    kill -0 "$server_pid" 2>/dev/null || die "the server exited before listening"
    sleep 0.5
done
[[ -n $url ]] || die "the server printed no address"
signed=$(curl -fsS -X POST -H "Authorization: Bearer $admin_token" "$url/v1/audit/checkpoints") ||
    die "POST $url/v1/audit/checkpoints failed"
published_key_id=$(grep -o '"key_id":"[0-9a-f]*"' server.log | head -1 | sed 's/.*:"\(.*\)"/\1/')
stop_server

# `perpetua export` writes the store's log, then the newest checkpoint it reaches: the one
# just signed.
"$bin" export --database-url "$db" --out export.jsonl >/dev/null
# field JSON NAME...: the member at that path of a JSON object (a checkpoint, a line).
field() {
    python3 -c 'import json, sys
value = json.loads(sys.argv[1])
for name in sys.argv[2:]:
    value = value[name]
print(value)' "$@"
}
tree_size=$(field "$signed" treeSize)
public_key=$(field "$signed" publicKey)
key_id=$(field "$signed" keyId)
root_hash=$(field "$signed" rootHash)
events=$(grep -vc '^{"checkpoint":' export.jsonl)
echo "export: $events events from a fresh store with the demo data, signed at $tree_size events by key $key_id"
if [[ $(tail -n 1 export.jsonl) == "{\"checkpoint\":$signed}" ]]; then
    pass "the export ends with the checkpoint line of the checkpoint signed"
else
    fail "the export does not end with the checkpoint signed: $(tail -c 300 export.jsonl)"
fi
if [[ -n $published_key_id && $published_key_id == "$key_id" ]]; then
    pass "the checkpoint's key id is the one the server logged at start-up ($published_key_id)"
else
    fail "the checkpoint's key id $key_id is not the one the server logged (${published_key_id:-none})"
fi

# --- The self-test: Ed25519 against RFC 8032 §7.1, the Merkle tree against RFC 6962 ---------

self_rc=0
self_out=$(python3 "$verify_py" --self-test) || self_rc=$?
if [[ $self_rc -eq 0 ]]; then
    pass "verify.py --self-test: $(grep -c '^ok ' <<<"$self_out") checks: $(tail -n 1 <<<"$self_out")"
else
    fail "verify.py --self-test (exit $self_rc): $(grep -v '^ok ' <<<"$self_out" | tr '\n' ' ')"
fi

# --- The fresh export verifies, and both sides agree on the head ----------------------------

py_rc=0
py_out=$(python3 "$verify_py" export.jsonl) || py_rc=$?
stdin_out=$(python3 "$verify_py" - <export.jsonl) || true
file_out=$("$bin" verify export.jsonl)
store_out=$("$bin" verify --database-url "$db")
# verify.py:  verified N events, head position P hash H
#             checkpoint: N events signed at T by key K (root R), M after it unsigned; …
# perpetua:   verified: N events, chain head H   /   verified: N events in the store, chain head H
py_first=$(head -n 1 <<<"$py_out")
py_count=$(sed -n 's/^verified \([0-9]*\) events, head position [0-9]* hash [0-9a-f]*$/\1/p' <<<"$py_first")
py_head=$(sed -n 's/^verified [0-9]* events, head position \([0-9]*\) hash [0-9a-f]*$/\1/p' <<<"$py_first")
py_hash=$(sed -n 's/^verified [0-9]* events, head position [0-9]* hash \([0-9a-f]*\)$/\1/p' <<<"$py_first")
py_checkpoint=$(sed -n 2p <<<"$py_out")
file_line=$(grep '^verified: ' <<<"$file_out" || true)
store_line=$(grep '^verified: ' <<<"$store_out" || true)
lines=$events

if [[ $py_rc -eq 0 && -n $py_hash && $py_count == "$lines" && $py_head == "$lines" ]]; then
    pass "fresh export: verify.py: $py_first"
else
    fail "fresh export: verify.py (exit $py_rc): $py_out"
fi
# The whole export is under the checkpoint; without --public-key its key is the file's own,
# and the line names its id, to be compared with the operator's.
if [[ $py_checkpoint == "checkpoint: $tree_size events signed at "*" by key $key_id (root $root_hash), 0 after it unsigned; "* &&
    $tree_size == "$lines" ]]; then
    pass "fresh export: verify.py: $py_checkpoint"
else
    fail "fresh export: verify.py's checkpoint line: $py_checkpoint"
fi
# With the server's public key given as the trusted one.
trusted_rc=0
trusted_out=$(python3 "$verify_py" --public-key "$public_key" export.jsonl) || trusted_rc=$?
trusted_line=$(sed -n 2p <<<"$trusted_out")
rust_trusted_rc=0
"$bin" verify --public-key "$public_key" export.jsonl >/dev/null 2>&1 || rust_trusted_rc=$?
if [[ $trusted_rc -eq 0 && $rust_trusted_rc -eq 0 && $(head -n 1 <<<"$trusted_out") == "$py_first" &&
    $trusted_line == "checkpoint: $tree_size events signed at "*" by trusted key $key_id (root $root_hash), 0 after it unsigned" ]]
then
    pass "fresh export with --public-key <the server's key>: $trusted_line [perpetua verify --public-key: verified]"
else
    fail "fresh export with --public-key <the server's key> (exit $trusted_rc, perpetua verify $rust_trusted_rc): $trusted_out"
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
# Each edit is a few lines of Python over the export's event lines (`lines`, without their
# "\n") and its checkpoint line (`checkpoint`, written back after them unless set to None),
# made on a copy; it prints what the expectation needs (the position at which the chain must
# be found broken, …). `m` is an index in the middle of the log, `size` the checkpoint's
# treeSize. The helpers use verify.py's own functions.

tamper() { # tamper NAME OUT PYTHON-EDIT
    PYTHONDONTWRITEBYTECODE=1 python3 - "$1" "$2" export.jsonl <<EOF
import hashlib, json, re, sys
sys.path.insert(0, "$here")
import verify
name, out, source = sys.argv[1:]
lines = open(source, encoding="utf-8").read().split("\n")[:-1]
checkpoint = lines.pop() if lines and lines[-1].startswith('{"checkpoint":') else None
size = json.loads(checkpoint)["checkpoint"]["treeSize"] if checkpoint else len(lines)
m = len(lines) // 2
# RFC 8032 §7.1 TEST 1's secret key, and TEST 2's public key: keys that are not the server's.
TEST1_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
TEST2_PUBLIC = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
def flip(hex_digit):
    return "1" if hex_digit == "0" else "0"
def bump_payload_digit(i):
    """Adds one (mod 10) to the first digit of line i's payload."""
    line = lines[i]
    start, end = line.index(",\"payload\":"), line.index(",\"metadata\":")
    digit = next(k for k in range(start + 11, end) if line[k].isdigit())
    lines[i] = line[:digit] + str((int(line[digit]) + 1) % 10) + line[digit + 1:]
def reseal(start, prev):
    """Recomputes every prevHash and hash from line start on, the chain starting at prev."""
    for i in range(start, len(lines)):
        sealed = re.sub(r",\"prevHash\":\"[0-9a-f]{64}\",\"hash\":\"[0-9a-f]{64}\"", "", lines[i])
        digest = verify.chain_hash(prev, verify.Event(lines[i]).canonical)
        lines[i] = sealed[:-1] + ",\"prevHash\":\"%s\",\"hash\":\"%s\"}" % (prev.hex(), digest.hex())
        prev = digest
def sign(secret, message):
    """RFC 8032 §5.1.5-5.1.6: (public key, signature) of message by the 32-byte secret key."""
    digest, s = hashlib.sha512(secret).digest(), verify.secret_scalar(secret)
    public = verify.point_encode(verify.point_multiply(s, verify.ED_BASE))
    r = int.from_bytes(hashlib.sha512(digest[32:] + message).digest(), "little") % verify.ED_L
    r_bytes = verify.point_encode(verify.point_multiply(r, verify.ED_BASE))
    k = int.from_bytes(hashlib.sha512(r_bytes + public + message).digest(), "little") % verify.ED_L
    return public, r_bytes + ((r + k * s) % verify.ED_L).to_bytes(32, "little")
def resign(tree_size, root=None):
    """The checkpoint line of the first tree_size events (with this root, else their own),
    signed now with TEST 1's key: what a forger without the server's key can make."""
    hashes = [verify.Event(line).hash for line in lines[:tree_size]]
    fields = json.loads(checkpoint)["checkpoint"]
    fields.update(treeSize=tree_size, chainHash=hashes[-1].hex(), rootHash=(root or verify.merkle_root(hashes)).hex())
    message = verify.Checkpoint(json.dumps({"checkpoint": fields})).message()
    public, signature = sign(TEST1_SECRET, message)
    fields.update(keyId=verify.key_id(public), publicKey=public.hex(), signature=signature.hex())
    return json.dumps({"checkpoint": fields}, separators=(",", ":"))
$3
open(out, "w", encoding="utf-8").write("".join(line + "\n" for line in lines + ([checkpoint] if checkpoint else [])))
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
bump_payload_digit(m)
print(m + 1)')
expect_broken "one payload digit changed" payload.jsonl "$at" rust

at=$(tamper "metadata" metadata.jsonl '
i = next(i for i in range(m, len(lines)) if "\"ipAddress\":\"" in lines[i])
lines[i] = re.sub(r"\"ipAddress\":\"([^\"]*)\"", lambda g: "\"ipAddress\":\"" + g.group(1) + "9\"", lines[i])
print(i + 1)')
expect_broken "one metadata value changed (ipAddress)" metadata.jsonl "$at" rust

# One event line removed, the checkpoint line kept (as in every copy of this part): the chain
# is checked first and breaks before the checkpoint is looked at.
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

# --- The checkpoint refused (docs/AUDIT.md §10) ----------------------------------------------
# Copies whose chain is sound, so that only the checkpoint can tell: verify.py must exit 1
# with `checkpoint refused: KIND: …`, and `perpetua verify FILE` (given the same
# --public-key) must fail too, saying RUST-TEXT.

# expect_refused NAME FILE KIND RUST-TEXT [--public-key HEX]
expect_refused() {
    local name=$1 file=$2 kind=$3 rust_text=$4
    shift 4
    local out rc=0 rust_err rust_rc=0
    out=$(python3 "$verify_py" "$@" "$file") || rc=$?
    if [[ $rc -ne 1 || $out != "checkpoint refused: $kind: "* ]]; then
        fail "$name: verify.py (exit $rc, expected 1 with 'checkpoint refused: $kind:'): $out"
        return
    fi
    rust_err=$("$bin" verify "$@" "$file" 2>&1 >/dev/null) || rust_rc=$?
    if [[ $rust_rc -eq 0 || $rust_err != *"$rust_text"* ]]; then
        fail "$name: perpetua verify FILE (exit $rust_rc) does not fail with '$rust_text': $rust_err"
        return
    fi
    pass "$name: $out [perpetua verify: $rust_text]"
}

# The tail cut off, the checkpoint line kept: what is left is a sound, shorter chain, but
# it ends before the checkpoint's treeSize.
at=$(tamper "cut" cut.jsonl '
del lines[size - 3:]
print(size - 3)')
expect_refused "the last 3 events cut off" cut.jsonl truncated "truncated: the checkpoint signed at"
if [[ $(python3 "$verify_py" cut.jsonl) == *"covers $tree_size events, the file ends at position $at" ]]; then
    pass "the last 3 events cut off: verify.py names the checkpoint's $tree_size events and the file's end at $at"
else
    fail "the last 3 events cut off: verify.py does not name $tree_size events and the end at $at"
fi

# Re-sealing does not help: a log rewritten (a payload digit in the middle changed) and every
# hash from there on recomputed, so that the chain is sound and as long as the one signed;
# its event at treeSize is not the one signed. (A tail cut off and re-sealed is still the
# file of the case above: re-sealing unchanged events gives the same hashes.)
at=$(tamper "rewritten" rewritten.jsonl '
bump_payload_digit(m)
reseal(m, bytes.fromhex(re.search(r"\"prevHash\":\"([0-9a-f]{64})\"", lines[m]).group(1)))
print(m + 1)')
expect_refused "a payload digit changed, the chain re-sealed after it" rewritten.jsonl "chain hash" \
    "not the log the checkpoint states: the event at"

# The signature altered: one hex digit of it, the first of its S (the signature is R, then
# S, 32 bytes each), so that the group equation fails, not the decoding of R.
tamper "signature" signature.jsonl '
k = checkpoint.index("\"signature\":\"") + 13 + 64
checkpoint = checkpoint[:k] + flip(checkpoint[k]) + checkpoint[k + 1:]'
expect_refused "one hex digit of the signature changed" signature.jsonl signature "does not verify"

# The treeSize altered to fit the tail cut off: the message signed is no longer the one the
# signature is of, and only the server's key could sign the new one.
tamper "treeSize" treesize.jsonl '
del lines[size - 3:]
checkpoint = checkpoint.replace("\"treeSize\":%d," % size, "\"treeSize\":%d," % (size - 3))'
expect_refused "the tail cut off and the treeSize lowered to match" treesize.jsonl signature "does not verify"

# The key id altered: it is not the id of the public key the checkpoint carries.
tamper "keyId" keyid.jsonl '
checkpoint = re.sub(r"\"keyId\":\"([0-9a-f])", lambda g: "\"keyId\":\"" + flip(g.group(1)), checkpoint)'
expect_refused "the key id altered" keyid.jsonl "key id" "is not the public key's"

# A sound file, but the auditor trusts another key (RFC 8032 TEST 2's public key).
test2_public=3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c
expect_refused "the export checked against another trusted key" export.jsonl "untrusted key" "which is not trusted" \
    --public-key "$test2_public"

# A forger cuts the tail off and signs a checkpoint of what is left with a key of their own
# (TEST 1's): in itself it holds, and verify.py says whose key it is, not the operator's;
# given the operator's key, it is refused.
tamper "forged" forged.jsonl '
del lines[size - 3:]
checkpoint = resign(size - 3)'
forged_rc=0
forged_out=$(python3 "$verify_py" forged.jsonl) || forged_rc=$?
forged_key=$(field "$(tail -n 1 forged.jsonl)" checkpoint keyId)
forged_rust_rc=0
forged_rust=$("$bin" verify forged.jsonl 2>/dev/null) || forged_rust_rc=$?
if [[ $forged_rc -eq 0 && $forged_rust_rc -eq 0 && $forged_key != "$key_id" &&
    $(sed -n 2p <<<"$forged_out") == *" by key $forged_key "* && $forged_rust == *"by key $forged_key"* ]]; then
    pass "the tail cut off and re-signed with another key: without --public-key it holds," \
        "naming key $forged_key, not the server's $key_id [perpetua verify: the same]"
else
    fail "the tail cut off and re-signed with another key, without --public-key" \
        "(exit $forged_rc, perpetua verify $forged_rust_rc): $forged_out / $forged_rust"
fi
expect_refused "the tail cut off and re-signed with another key, the server's key trusted" forged.jsonl \
    "untrusted key" "which is not trusted" --public-key "$public_key"

# A checkpoint signed (with TEST 1's key) over the right chain hash but another Merkle root:
# with a sound chain only the root can tell it from the log's own.
tamper "root" root.jsonl '
checkpoint = resign(size, root=bytes(32))'
expect_refused "a checkpoint of the right chain hash and another root" root.jsonl root \
    "not the log the checkpoint states: the Merkle root over"

# No checkpoint line at all: nothing proves the file whole; with --public-key, refused.
tamper "none" unsigned.jsonl '
checkpoint = None'
unsigned_rc=0
unsigned_out=$(python3 "$verify_py" unsigned.jsonl) || unsigned_rc=$?
if [[ $unsigned_rc -eq 0 && $(sed -n 2p <<<"$unsigned_out") == "no checkpoint: the export's completeness is not proven" ]]
then
    pass "no checkpoint line: $(sed -n 2p <<<"$unsigned_out")"
else
    fail "no checkpoint line (exit $unsigned_rc): $unsigned_out"
fi
expect_refused "no checkpoint line, the server's key trusted" unsigned.jsonl missing "carries no signed checkpoint" \
    --public-key "$public_key"

if [[ $failures -ne 0 ]]; then
    echo "audit: $failures expectation(s) failed"
    exit 1
fi
echo "audit: every expectation held"
