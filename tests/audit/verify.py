#!/usr/bin/env python3
"""Verifies an exported Perpetua log on its own, following docs/AUDIT.md.

Usage: verify.py [--public-key HEX]... FILE      (FILE is `-` for stdin)
       verify.py --self-test

Reads a whole-log export (JSON Lines, or a JSON array), recomputes every event's hash from
its canonical bytes, and checks the chain from the genesis: positions 1, 2, 3, … without a
gap, each `prevHash` the hash before it (32 zero bytes before position 1), each `hash`
SHA-256 of the previous hash and the event's canonical bytes, and each stream's versions
1, 2, 3, … in log order.

Then it checks the last signed checkpoint the file carries (§10): its Ed25519 signature
(RFC 8032, checked strictly as ed25519-dalek's verify_strict does) over the signed message,
made with the public key it carries, whose key id it must name; and that the file holds the
log it states: at least `treeSize` events, the one at `treeSize` with its `chainHash`, the
Merkle root over them (§9) its `rootHash`. A file cut short of its checkpoint fails here.
With --public-key (repeatable) the checkpoint must be signed by one of those keys, and a
file without a checkpoint fails; without it, the checkpoint's own key is used and its key id
printed, to be compared with the one the operator publishes.

--self-test checks the Ed25519 verifier against RFC 8032 §7.1's test vectors (and that
altered signatures are refused) and the Merkle tree against RFC 6962's test data.

Prints the verified chain's head on the first line, then the checkpoint's coverage; or one
line saying what is wrong. Exit status: 0 verified, 1 the file does not verify (the line
names the first bad position and what is wrong there, or starts `checkpoint refused:`), 2
usage error (1 when --self-test fails).

Python 3.11, standard library only. Section numbers (§) refer to docs/AUDIT.md.
"""

import argparse
import hashlib
import json
import re
import sys

ZERO_HASH = bytes(32)  # §5: the prevHash of position 1
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
AGGREGATE_TYPES = ("Order", "Account", "Position", "Market")  # §3.5
METADATA_FIELDS = ("userId", "correlationId", "causationId", "ipAddress")  # §3.10, in hashed order
REQUIRED_FIELDS = (
    "position", "eventId", "eventType", "schemaVersion", "aggregateType", "aggregateId",
    "version", "timestamp", "payload", "metadata", "prevHash", "hash",
)  # fmt: skip
JSON_WHITESPACE = " \t\n\r"
UNSIGNED_INTEGER = re.compile(r"(?:0|[1-9][0-9]*)\Z")
HEX_HASH = re.compile(r"[0-9a-fA-F]{64}\Z")
HEX_32 = re.compile(r"[0-9a-fA-F]{32}\Z")
SYMBOL = re.compile(r"[A-Z0-9]{1,15}\Z")
TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{3}))?Z\Z")


class Invalid(Exception):
    """A record that is not a well-formed event (the detail says why)."""


class Broken(Exception):
    """The chain breaks at `position` (None when the file as a whole is unreadable)."""

    def __init__(self, position, message):
        super().__init__(message)
        self.position = position
        self.message = message


# --- JSON text: the raw extent of values ----------------------------------------------------
# The payload is hashed as its exact bytes (§3.9), so the file is read as text and the
# extent of each member's value is found by scanning; Python's json module only checks the
# syntax and decodes the other fields.


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_json(text):
    """Strict JSON (RFC 8259): no NaN or Infinity. Integers come back as 0: they are checked
    here and decoded from their raw text (`decode_unsigned`), whatever their length."""
    return json.loads(text, parse_constant=_reject_constant, parse_int=lambda digits: 0)


def _skip_whitespace(text, i):
    while i < len(text) and text[i] in JSON_WHITESPACE:
        i += 1
    return i


def _skip_string(text, i):
    i += 1  # the opening quote
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _skip_value(text, i):
    """The index just past the value that starts at `i` (the text is known to be valid JSON)."""
    if text[i] == '"':
        return _skip_string(text, i)
    if text[i] in "{[":
        depth = 0
        while True:
            c = text[i]
            if c == '"':
                i = _skip_string(text, i)
                continue
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while i < len(text) and text[i] not in ",]}" + JSON_WHITESPACE:
        i += 1
    return i


def raw_elements(text, i):
    """The raw text of each element of the array that starts at `i`."""
    elements = []
    i = _skip_whitespace(text, i + 1)
    if text[i] == "]":
        return elements
    while True:
        i = _skip_whitespace(text, i)
        end = _skip_value(text, i)
        elements.append(text[i:end])
        i = _skip_whitespace(text, end)
        if text[i] == "]":
            return elements
        i += 1  # the comma


def raw_members(text):
    """(key, raw value text) of each member of the object `text`, in order."""
    members = []
    i = _skip_whitespace(text, 0) + 1
    i = _skip_whitespace(text, i)
    if text[i] == "}":
        return members
    while True:
        i = _skip_whitespace(text, i)
        key_end = _skip_string(text, i)
        key = parse_json(text[i:key_end])
        i = _skip_whitespace(text, key_end) + 1  # the colon
        i = _skip_whitespace(text, i)
        end = _skip_value(text, i)
        members.append((key, text[i:end]))
        i = _skip_whitespace(text, end)
        if text[i] == "}":
            return members
        i += 1  # the comma


def object_fields(text, what):
    """The members of an object as a dict of raw texts; a key given twice is refused."""
    fields = {}
    for key, raw in raw_members(text):
        if key in fields:
            raise Invalid(f"{what} has the field {key!r} twice")
        fields[key] = raw
    return fields


# --- Canonical encodings (§3, §4) -----------------------------------------------------------

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def json_string(text):
    """A JSON string as the canonical bytes write it (§4.1): `"` and `\\` escaped, the C0
    controls as \\b \\t \\n \\f \\r or \\u00xx (lower-case hex), everything else as UTF-8."""
    out = ['"']
    for c in text:
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("a string holds a lone surrogate") from None


def decode_unsigned(raw, name, maximum):
    if not UNSIGNED_INTEGER.match(raw):
        raise Invalid(f"{name} is not an unsigned integer: {raw}")
    value = int(raw)
    if value > maximum:
        raise Invalid(f"{name} {value} is out of range")
    return value


def decode_string(raw, name):
    value = parse_json(raw)
    if not isinstance(value, str):
        raise Invalid(f"{name} is not a string: {raw}")
    return value


def canonical_uuid(text):
    """The lower-case hyphenated form of a UUID written in any of the accepted forms (§3.2),
    or None when `text` is not a UUID."""
    if len(text) == 38 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    elif len(text) == 45 and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    if len(text) == 36 and all(text[k] == "-" for k in (8, 13, 18, 23)):
        text = text.replace("-", "")
    if not HEX_32.match(text):
        return None
    h = text.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def decode_uuid(raw, name):
    value = parse_json(raw)
    canonical = canonical_uuid(value) if isinstance(value, str) else None
    if canonical is None:
        raise Invalid(f"{name} is not a UUID string: {raw}")
    return canonical


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def decode_timestamp(raw):
    """`YYYY-MM-DDTHH:MM:SS[.mmm]Z`, a real UTC instant; canonical with milliseconds (§3.8)."""
    value = decode_string(raw, "timestamp")
    m = TIMESTAMP.match(value)
    if not m:
        raise Invalid(f"timestamp is not YYYY-MM-DDTHH:MM:SS[.mmm]Z: {raw}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    valid = (
        1 <= month <= 12
        and 1 <= day <= _days_in_month(year, month)
        and hour < 24
        and minute < 60
        and second < 60
    )
    if not valid:
        raise Invalid(f"timestamp is not a real instant: {raw}")
    return f"{value[:19]}.{m.group(7) or '000'}Z"


def decode_aggregate_id(raw):
    value = decode_string(raw, "aggregateId")
    canonical = canonical_uuid(value)
    if canonical is not None:
        return canonical
    if SYMBOL.match(value):
        return value
    raise Invalid(f"aggregateId is neither a UUID nor a symbol: {raw}")


def decode_hash(raw, name):
    value = decode_string(raw, name)
    if not HEX_HASH.match(value):
        raise Invalid(f"{name} is not 64 hex digits: {raw}")
    return bytes.fromhex(value)


def canonical_metadata(raw):
    """The metadata's four fields in their fixed order, absent ones as null (§3.10)."""
    if not isinstance(parse_json(raw), dict):
        raise Invalid(f"metadata is not an object: {raw}")
    fields = object_fields(raw, "metadata")
    unknown = sorted(set(fields) - set(METADATA_FIELDS))
    if unknown:
        raise Invalid(f"metadata has a field the hash would not cover: {unknown[0]!r}")
    parts = []
    for name in METADATA_FIELDS:
        value_raw = fields.get(name, "null")
        if parse_json(value_raw) is None:
            encoded = b"null"
        elif name == "ipAddress":
            encoded = json_string(decode_string(value_raw, "metadata.ipAddress"))
        else:
            encoded = json_string(decode_uuid(value_raw, f"metadata.{name}"))
        parts.append(json_string(name) + b":" + encoded)
    return b"{" + b",".join(parts) + b"}"


def required_fields(text, not_object, what, required):
    """The raw members of the JSON object `text` (`what` it is), refusing anything else with
    the message `not_object`, and an object without every member of `required`."""
    if not isinstance(parse_json(text), dict):
        raise Invalid(not_object)
    fields = object_fields(text, what)
    missing = [member for member in required if member not in fields]
    if missing:
        raise Invalid(f"missing field {missing[0]!r}")
    return fields


class Event:
    """One record of the export, decoded as §3 says, with its canonical bytes (§4)."""

    def __init__(self, text):
        fields = required_fields(text, "the record is not a JSON object", "the event", REQUIRED_FIELDS)
        self.position = decode_unsigned(fields["position"], "position", U64_MAX)
        self.version = decode_unsigned(fields["version"], "version", U64_MAX)
        schema_version = decode_unsigned(fields["schemaVersion"], "schemaVersion", U32_MAX)
        self.aggregate_type = decode_string(fields["aggregateType"], "aggregateType")
        if self.aggregate_type not in AGGREGATE_TYPES:
            raise Invalid(f"aggregateType is not one of {', '.join(AGGREGATE_TYPES)}: {fields['aggregateType']}")
        self.aggregate_id = decode_aggregate_id(fields["aggregateId"])
        self.prev_hash = decode_hash(fields["prevHash"], "prevHash")
        self.hash = decode_hash(fields["hash"], "hash")
        redacted = parse_json(fields.get("metadataRedacted", "false"))
        if not isinstance(redacted, bool):
            raise Invalid("metadataRedacted is not a boolean")
        self.metadata_redacted = redacted
        payload = fields["payload"].encode("utf-8")
        self.canonical = b"".join([
            b'{"position":', str(self.position).encode(),
            b',"eventId":', json_string(decode_uuid(fields["eventId"], "eventId")),
            b',"eventType":', json_string(decode_string(fields["eventType"], "eventType")),
            b',"schemaVersion":', str(schema_version).encode(),
            b',"aggregateType":', json_string(self.aggregate_type),
            b',"aggregateId":', json_string(self.aggregate_id),
            b',"version":', str(self.version).encode(),
            b',"timestamp":', json_string(decode_timestamp(fields["timestamp"])),
            b',"payload":', payload,
            b',"metadata":', canonical_metadata(fields["metadata"]),
            b"}",
        ])  # fmt: skip

    def stream(self):
        return f"{self.aggregate_type}/{self.aggregate_id}"


def chain_hash(prev_hash, canonical):
    """§5: SHA-256 over the previous hash's 32 raw bytes, then the canonical bytes."""
    return hashlib.sha256(prev_hash + canonical).digest()


# --- The file (§2) --------------------------------------------------------------------------

CHECKPOINT_PREFIX = '{"checkpoint":'  # §10: the first bytes of an export's checkpoint line


def records(text):
    """The file's records as two lists of (where, record text): its events (a JSON array's
    elements, or the non-blank lines) and its checkpoint lines (§10), each in file order. A
    JSON array holds events only."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            parse_json(stripped)
        except ValueError as e:
            raise Broken(None, f"the file is not a JSON array of events: {e}") from None
        return [(f"element {n}", raw) for n, raw in enumerate(raw_elements(stripped, 0), 1)], []
    events, checkpoints = [], []
    for n, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        if line.strip(JSON_WHITESPACE).startswith(CHECKPOINT_PREFIX):
            checkpoints.append((f"line {n}", line))
        else:
            events.append((f"line {n}", line))
    return events, checkpoints


def verify_chain(event_records):
    """The rules of §6, in order, over the event records. Returns (events verified, head
    position, head hash, the events' hashes in position order); raises Broken at the first
    fault."""
    count, head_position, head_hash = 0, 0, ZERO_HASH
    versions = {}
    hashes = []
    for where, record in event_records:
        expected = head_position + 1
        try:
            event = Event(record)
        except (Invalid, ValueError, RecursionError) as e:
            raise Broken(expected, f"{where} is not a valid event: {e}") from None
        if event.position != expected:
            raise Broken(expected, f"position {expected} is missing ({where} holds position {event.position})")
        if event.prev_hash != head_hash:
            raise Broken(
                expected,
                f"prevHash is not the previous event's hash: expected {head_hash.hex()}, found {event.prev_hash.hex()}",
            )
        computed = chain_hash(head_hash, event.canonical)
        if computed != event.hash:
            withheld = " (its metadata was withheld from this copy: metadataRedacted)" if event.metadata_redacted else ""
            raise Broken(
                expected,
                f"hash does not match the event's bytes: expected {computed.hex()}, found {event.hash.hex()}{withheld}",
            )
        last_version = versions.get(event.stream(), 0)
        if event.version != last_version + 1:
            after = f"follow version {last_version}" if last_version else "start the stream (version 1)"
            raise Broken(
                expected,
                f"version {event.version} of {event.stream()} does not {after}: expected {last_version + 1}",
            )
        versions[event.stream()] = event.version
        hashes.append(event.hash)
        count, head_position, head_hash = count + 1, event.position, event.hash
    return count, head_position, head_hash, hashes


# --- The Merkle tree (§9; RFC 9162 §2.1.1) ---------------------------------------------------


def merkle_root(leaves, start=0, end=None):
    """The root of the tree over the leaf data `leaves[start:end]` (for the log, the events'
    32-byte hashes in position order): SHA-256() when empty; SHA-256(0x00 ‖ data) for one
    leaf; otherwise SHA-256(0x01 ‖ left ‖ right), the tree split at k, the largest power of
    two smaller than its number of leaves (not the midpoint)."""
    end = len(leaves) if end is None else end
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[start]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    left, right = merkle_root(leaves, start, start + k), merkle_root(leaves, start + k, end)
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- Ed25519 (RFC 8032 §5.1): verification only ----------------------------------------------
# Integer arithmetic modulo p on the twisted Edwards curve -x² + y² = 1 + d·x²·y² (§5.1).
# A point is a tuple (X, Y, Z, T) of extended homogeneous coordinates: x = X/Z, y = Y/Z,
# x·y = T/Z (§5.1.4). Not constant-time: only public keys and signatures pass here.
#
# Verification is strict, as ed25519-dalek's `verify_strict` (docs/AUDIT.md §10): S must be
# below L, neither the public key A nor R may be of small order, and the group equation is
# the cofactorless [S]B = R + [k]A (§5.1.7 step 3 allows it). One difference: points are
# decoded as §5.1.3 says, so an encoding with y ≥ p is refused, where dalek reduces y modulo
# p. For R this changes nothing (dalek compares R's bytes with the canonical encoding of the
# R it computes); for A it refuses 20 non-canonical encodings (y = p + t, t < 19) of points
# of large order, which no signer writes and whose secret scalars nobody knows.

ED_P = 2**255 - 19  # §5.1: the prime of the field
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P  # §5.1: d = -121665/121666
ED_L = 2**252 + 27742317777372353535851937790883648493  # §5.1: the order of the base point
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)  # §5.1.3: a square root of -1
ED_IDENTITY = (0, 1, 1, 0)


def point_add(p1, p2):
    """§5.1.4: the sum of two points (the addition formula for a = -1, which also doubles)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % ED_P
    b = (y1 + x1) * (y2 + x2) % ED_P
    c = 2 * t1 * t2 * ED_D % ED_P
    d = 2 * z1 * z2 % ED_P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % ED_P, g * h % ED_P, f * g % ED_P, e * h % ED_P)


def point_multiply(scalar, point):
    """[scalar]point, by double-and-add."""
    result = ED_IDENTITY
    while scalar > 0:
        if scalar & 1:
            result = point_add(result, point)
        point = point_add(point, point)
        scalar >>= 1
    return result


def point_encode(point):
    """§5.1.2: y as 32 little-endian bytes, the top bit set to the low bit of x."""
    x, y, z, _ = point
    z_inverse = pow(z, ED_P - 2, ED_P)
    x, y = x * z_inverse % ED_P, y * z_inverse % ED_P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def point_decode(encoded):
    """§5.1.3: the point a 32-byte string encodes, or None: when y ≥ p, when (y² − 1)/(d·y² + 1)
    has no square root, or when x = 0 and the sign bit is set."""
    if len(encoded) != 32:
        return None
    number = int.from_bytes(encoded, "little")
    sign, y = number >> 255, number & ((1 << 255) - 1)  # step 1
    if y >= ED_P:
        return None
    u, v = (y * y - 1) % ED_P, (ED_D * y * y + 1) % ED_P
    x = u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P) % ED_P  # step 2
    if v * x * x % ED_P == u:  # step 3
        pass
    elif v * x * x % ED_P == -u % ED_P:
        x = x * ED_SQRT_M1 % ED_P
    else:
        return None
    if x == 0 and sign:  # step 4
        return None
    if x & 1 != sign:
        x = ED_P - x
    return (x, y, 1, x * y % ED_P)


ED_BASE = point_decode((4 * pow(5, ED_P - 2, ED_P) % ED_P).to_bytes(32, "little"))  # §5.1: B, y = 4/5, x even


def is_small_order(point):
    """Whether the point is in the curve's 8-torsion (its cofactor is 8): [8]point = identity."""
    x, y, z, _ = point_multiply(8, point)
    return x == 0 and y == z


def ed25519_verify_strict(public_key, message, signature):
    """§5.1.7, strictly (see this section's head): None when the 64-byte `signature` is the
    pure Ed25519 signature of `message` by the 32-byte `public_key`, else why it is not."""
    a = point_decode(public_key)
    if a is None:
        return "the public key is not the encoding of a point (RFC 8032 §5.1.3)"
    if len(signature) != 64:
        return "the signature is not 64 bytes"
    r_bytes, s = signature[:32], int.from_bytes(signature[32:], "little")  # step 1
    if s >= ED_L:
        return "its S is not below the group order L (a non-canonical signature)"
    r = point_decode(r_bytes)
    if r is None:
        return "its R is not the encoding of a point (RFC 8032 §5.1.3)"
    if is_small_order(r):
        return "its R is of small order"
    if is_small_order(a):
        return "the public key is of small order (a weak key)"
    digest = hashlib.sha512(r_bytes + public_key + message).digest()  # step 2: k = SHA-512(R ‖ A ‖ M)
    k = int.from_bytes(digest, "little") % ED_L
    if point_encode(point_multiply(s, ED_BASE)) != point_encode(point_add(r, point_multiply(k, a))):  # step 3
        return "[S]B is not R + [k]A: it is not this key's signature of this message"
    return None


# --- Signed checkpoints (§10) ----------------------------------------------------------------

CHECKPOINT_HEADER = "perpetua checkpoint v1"  # the first line of the signed message
CHECKPOINT_FIELDS = ("treeSize", "chainHash", "rootHash", "timestamp", "keyId", "publicKey", "signature")
MS_PER_DAY = 86_400_000


class Refused(Exception):
    """The checkpoint does not hold, or the file is not the log it states. `kind` is the
    stable word after `checkpoint refused:` (truncated, chain hash, root, signature, …)."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def days_from_civil(year, month, day):
    """Days since 1970-01-01 of a date of the proleptic Gregorian calendar."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def timestamp_millis(canonical):
    """Milliseconds since the Unix epoch of a canonical timestamp `YYYY-MM-DDTHH:MM:SS.mmmZ`
    (§3.8); negative before 1970."""
    year, month, day = int(canonical[0:4]), int(canonical[5:7]), int(canonical[8:10])
    hour, minute, second = int(canonical[11:13]), int(canonical[14:16]), int(canonical[17:19])
    ms = int(canonical[20:23])
    return days_from_civil(year, month, day) * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + ms


def parse_hex(text, length):
    """The bytes of exactly `length` bytes written as hex digits (either case), or None."""
    if len(text) != 2 * length or not all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return bytes.fromhex(text)


def key_id(public_key):
    """The key id: the first 8 bytes of SHA-256 of the 32-byte public key, in 16 hex digits."""
    return hashlib.sha256(public_key).digest()[:8].hex()


class Checkpoint:
    """One checkpoint line, `{"checkpoint": {...}}` and no other member, decoded: the head it
    states, its key and its signature (unknown members of the checkpoint are ignored)."""

    def __init__(self, line):
        if not isinstance(parse_json(line), dict):
            raise Invalid("the line is not a JSON object")
        outer = object_fields(line, "the line")
        other = sorted(set(outer) - {"checkpoint"})
        if other:
            raise Invalid(f"the line has a member besides checkpoint: {other[0]!r}")
        raw = outer["checkpoint"]
        fields = required_fields(raw, "checkpoint is not an object", "the checkpoint", CHECKPOINT_FIELDS)
        self.tree_size = decode_unsigned(fields["treeSize"], "treeSize", U64_MAX)
        self.chain_hash = decode_hash(fields["chainHash"], "chainHash")
        self.root_hash = decode_hash(fields["rootHash"], "rootHash")
        self.timestamp = decode_timestamp(fields["timestamp"])
        self.key_id = decode_string(fields["keyId"], "keyId")
        self.public_key = decode_string(fields["publicKey"], "publicKey")
        self.signature = decode_string(fields["signature"], "signature")

    def message(self):
        """The signed bytes: five ASCII lines, each ended by \\n — the header, treeSize,
        chainHash and rootHash in lower-case hex, the signing time in epoch milliseconds."""
        lines = (
            CHECKPOINT_HEADER,
            str(self.tree_size),
            self.chain_hash.hex(),
            self.root_hash.hex(),
            str(timestamp_millis(self.timestamp)),
        )
        return "".join(line + "\n" for line in lines).encode("ascii")


def check_signature(checkpoint, trusted):
    """The checkpoint is signed by the key it carries, which its key id names, and which is one
    of `trusted` (public keys, 32 bytes each) when any are given; in this order, as
    `perpetua verify` checks. Raises Refused."""
    public = parse_hex(checkpoint.public_key, 32)
    if public is None:
        raise Refused("public key", f"{checkpoint.public_key!r} is not 64 hex digits")
    actual = key_id(public)
    if checkpoint.key_id != actual:
        raise Refused("key id", f"the checkpoint names key {checkpoint.key_id!r}, its public key's id is {actual}")
    if trusted and public not in trusted:
        raise Refused(
            "untrusted key",
            f"signed by key {actual} (public key {public.hex()}), which is not one given with --public-key",
        )
    if point_decode(public) is None:
        raise Refused("public key", f"{public.hex()} is not an Ed25519 public key (RFC 8032 §5.1.3)")
    signature = parse_hex(checkpoint.signature, 64)
    if signature is None:
        raise Refused("signature", f"it is not 128 hex digits (the checkpoint of {checkpoint.tree_size} events)")
    why = ed25519_verify_strict(public, checkpoint.message(), signature)
    if why is not None:
        raise Refused("signature", f"{why} (the checkpoint of {checkpoint.tree_size} events, key {actual})")


def check_coverage(checkpoint, hashes):
    """Whether the file holds the log the checkpoint states. `hashes` are its events' hashes,
    their chain verified from position 1, so `hashes[i]` is the event at position i + 1.
    Returns how many events follow the checkpoint's; raises Refused."""
    size = checkpoint.tree_size
    if len(hashes) < size:
        raise Refused(
            "truncated",
            f"the checkpoint signed at {checkpoint.timestamp} covers {size} events, "
            f"the file ends at position {len(hashes)}",
        )
    actual = hashes[size - 1] if size else ZERO_HASH
    if actual != checkpoint.chain_hash:
        raise Refused(
            "chain hash",
            f"not the log the checkpoint states: the event at position {size} has hash {actual.hex()}, "
            f"the checkpoint's chainHash is {checkpoint.chain_hash.hex()}",
        )
    root = merkle_root(hashes, 0, size)
    if root != checkpoint.root_hash:
        raise Refused(
            "root",
            f"not the log the checkpoint states: the Merkle root over {size} events is {root.hex()}, "
            f"the checkpoint's rootHash is {checkpoint.root_hash.hex()}",
        )
    return len(hashes) - size


def check_checkpoint(checkpoint_records, hashes, trusted):
    """§10 over the file's last checkpoint line (every one must be well-formed): its signature,
    then its coverage. Returns the line that says what it proves; raises Refused."""
    checkpoints = []
    for where, line in checkpoint_records:
        try:
            checkpoints.append(Checkpoint(line))
        except (Invalid, ValueError, RecursionError) as e:
            raise Refused("malformed", f"{where} is not a valid checkpoint line: {e}") from None
    if not checkpoints:
        if trusted:
            raise Refused("missing", "the file carries no signed checkpoint, and --public-key asks for one")
        return "no checkpoint: the export's completeness is not proven"
    checkpoint = checkpoints[-1]
    check_signature(checkpoint, trusted)
    after = check_coverage(checkpoint, hashes)
    by = f"trusted key {checkpoint.key_id}" if trusted else f"key {checkpoint.key_id}"
    line = (
        f"checkpoint: {checkpoint.tree_size} events signed at {checkpoint.timestamp} by {by} "
        f"(root {checkpoint.root_hash.hex()}), {after} after it unsigned"
    )
    if not trusted:
        line += "; the key is the file's own: compare its id with the operator's, or give --public-key"
    return line


# --- Self-test ------------------------------------------------------------------------------

# RFC 8032 §7.1, TEST 1 to TEST 3: (name, secret key, public key, message, signature), hex.
RFC8032_VECTORS = (
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
)  # fmt: skip

# RFC 6962's test data (published with Certificate Transparency's implementations): eight
# leaves, and the roots of the trees over the first 0 to 8 of them.
RFC6962_LEAVES = ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
RFC6962_ROOTS = (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)


def secret_scalar(secret_key):
    """§5.1.5 steps 1-2: the secret scalar s of a 32-byte secret key (SHA-512's first half,
    clamped). Only the self-test signs: it forges signatures a strict verifier must refuse."""
    h = bytearray(hashlib.sha512(secret_key).digest()[:32])
    h[0] &= 248
    h[31] = (h[31] & 127) | 64
    return int.from_bytes(h, "little")


def _vector_cases(name, secret, public, message, signature):
    """One RFC 8032 vector: the key is the secret key's, the signature verifies, and no
    altered copy of it does."""

    def refused(signature, message=message):
        return ed25519_verify_strict(public, message, signature) is not None

    public_of_secret = point_encode(point_multiply(secret_scalar(secret), ED_BASE))
    cases = [
        (f"{name}: the public key is [s]B of the secret key", public_of_secret == public),
        (f"{name}: the signature verifies", ed25519_verify_strict(public, message, signature) is None),
        (f"{name}: refused for another message", refused(signature, message + b"\x00")),
    ]
    for bit in (0, 255, 256, 300, 511):  # in R, R's sign bit, in S (low, middle, high)
        flipped = bytearray(signature)
        flipped[bit // 8] ^= 1 << (bit % 8)
        cases.append((f"{name}: refused with bit {bit} of the signature flipped", refused(bytes(flipped))))
    # S + L satisfies the group equation as S does: only the range check refuses it.
    s_plus_l = signature[:32] + (int.from_bytes(signature[32:], "little") + ED_L).to_bytes(32, "little")
    why = ed25519_verify_strict(public, message, s_plus_l) or ""
    cases.append((f"{name}: refused with S + L (a non-canonical S)", "not below" in why))
    return cases


def _small_order_cases():
    """Signatures that pass the group equation but have a small-order key or R: refused."""
    # The identity as the public key: R = [S]B passes [S]B = R + [k]A for any message.
    identity, s = point_encode(ED_IDENTITY), 12345
    weak_key_signature = point_encode(point_multiply(s, ED_BASE)) + s.to_bytes(32, "little")
    weak_key = ed25519_verify_strict(identity, b"m", weak_key_signature) or ""
    # The identity as R under TEST 1's key: S = k·s passes the equation.
    secret, public = bytes.fromhex(RFC8032_VECTORS[0][1]), bytes.fromhex(RFC8032_VECTORS[0][2])
    k = int.from_bytes(hashlib.sha512(identity + public + b"m").digest(), "little") % ED_L
    weak_r_signature = identity + (k * secret_scalar(secret) % ED_L).to_bytes(32, "little")
    weak_r = ed25519_verify_strict(public, b"m", weak_r_signature) or ""
    return [
        ("a small-order public key refused", "small order" in weak_key),
        ("a small-order R refused", "small order" in weak_r),
    ]


def self_test_cases():
    """(what, passed) of each self-test check."""
    base = point_encode(ED_BASE) == bytes.fromhex("58" + "66" * 31)
    cases = [("the base point B encodes as 5866…66 (RFC 8032 §5.1)", base)]
    for name, *vector in RFC8032_VECTORS:
        cases += _vector_cases(name, *(bytes.fromhex(h) for h in vector))
    test2_public, test1_signature = bytes.fromhex(RFC8032_VECTORS[1][2]), bytes.fromhex(RFC8032_VECTORS[0][4])
    other_key = ed25519_verify_strict(test2_public, b"", test1_signature) is not None
    cases.append(("TEST 1's signature refused under TEST 2's key", other_key))
    cases += _small_order_cases()
    leaves = [bytes.fromhex(h) for h in RFC6962_LEAVES]
    for n, root in enumerate(RFC6962_ROOTS):
        cases.append((f"RFC 6962 test data: the Merkle root of {n} leaves", merkle_root(leaves[:n]).hex() == root))
    return cases


def self_test():
    """Runs the self-test, one line a check; 0 when every check passes, else 1."""
    failed = 0
    for what, passed in self_test_cases():
        print(f"{'ok  ' if passed else 'FAIL'} {what}")
        failed += not passed
    print(f"self-test: {'every check passed' if not failed else f'{failed} check(s) failed'}")
    return 1 if failed else 0


# --- The command ----------------------------------------------------------------------------


def read_input(path):
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def parse_arguments(argv):
    """The arguments; exits 2 on a usage error. `trusted` is the --public-key keys as bytes."""
    parser = argparse.ArgumentParser(
        prog="verify.py",
        usage="verify.py [--public-key HEX]... FILE   (FILE is - for stdin)\n       verify.py --self-test",
        description="\n\n".join(__doc__.split("\n\n")[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", nargs="?", help="the export, or - for stdin")
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="HEX",
        help="a trusted public key (64 hex digits) the checkpoint must be signed by; repeatable",
    )
    parser.add_argument(
        "--self-test", action="store_true", help="check the Ed25519 and Merkle code against test vectors"
    )
    args = parser.parse_args(argv[1:])
    if args.self_test == (args.file is not None) or (args.self_test and args.public_key):
        parser.error("give FILE (with --public-key if you like), or --self-test alone")
    args.trusted = []
    for key in args.public_key:
        public = parse_hex(key.strip(), 32)
        if public is None:
            parser.error(f"--public-key {key!r} is not 64 hex digits")
        args.trusted.append(public)
    return args


def main(argv):
    args = parse_arguments(argv)
    if args.self_test:
        return self_test()
    try:
        data = read_input(args.file)
    except OSError as e:
        print(f"verify.py: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Broken(None, f"the file is not UTF-8 (byte {e.start})") from None
        event_records, checkpoint_records = records(text)
        count, head_position, head_hash, hashes = verify_chain(event_records)
    except Broken as broken:
        where = "" if broken.position is None else f" at position {broken.position}"
        print(f"chain broken{where}: {broken.message}")
        return 1
    try:
        coverage = check_checkpoint(checkpoint_records, hashes, args.trusted)
    except Refused as refused:
        print(f"checkpoint refused: {refused.kind}: {refused.message}")
        return 1
    print(f"verified {count} events, head position {head_position} hash {head_hash.hex()}")
    print(coverage)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
