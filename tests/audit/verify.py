#!/usr/bin/env python3
"""Verifies an exported Perpetua log on its own, following docs/AUDIT.md.

Usage: verify.py FILE      (FILE is `-` for stdin)

Reads a whole-log export (JSON Lines, or a JSON array), recomputes every event's hash from
its canonical bytes, and checks the chain from the genesis: positions 1, 2, 3, … without a
gap, each `prevHash` the hash before it (32 zero bytes before position 1), each `hash`
SHA-256 of the previous hash and the event's canonical bytes, and each stream's versions
1, 2, 3, … in log order.

Prints one line. Exit status: 0 verified, 1 the file does not verify (the line names the
first bad position and what is wrong there), 2 usage error.

Python 3.11, standard library only. Section numbers (§) refer to docs/AUDIT.md.
"""

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


class Event:
    """One record of the export, decoded as §3 says, with its canonical bytes (§4)."""

    def __init__(self, text):
        if not isinstance(parse_json(text), dict):
            raise Invalid("the record is not a JSON object")
        fields = object_fields(text, "the event")
        missing = [name for name in REQUIRED_FIELDS if name not in fields]
        if missing:
            raise Invalid(f"missing field {missing[0]!r}")
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


def records(text):
    """(where, record text) of each event: a JSON array's elements, or the non-blank lines."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            parse_json(stripped)
        except ValueError as e:
            raise Broken(None, f"the file is not a JSON array of events: {e}") from None
        return [(f"element {n}", raw) for n, raw in enumerate(raw_elements(stripped, 0), 1)]
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip():
            out.append((f"line {n}", line))
    return out


def verify(text):
    """The rules of §6, in order. Returns (events verified, head position, head hash); raises
    Broken at the first fault."""
    count, head_position, head_hash = 0, 0, ZERO_HASH
    versions = {}
    for where, record in records(text):
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
        count, head_position, head_hash = count + 1, event.position, event.hash
    return count, head_position, head_hash


def read_input(path):
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 2:
        print("usage: verify.py FILE   (FILE is - for stdin)", file=sys.stderr)
        return 2
    try:
        data = read_input(argv[1])
    except OSError as e:
        print(f"verify.py: cannot read {argv[1]}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Broken(None, f"the file is not UTF-8 (byte {e.start})") from None
        count, head_position, head_hash = verify(text)
    except Broken as broken:
        where = "" if broken.position is None else f" at position {broken.position}"
        print(f"chain broken{where}: {broken.message}")
        return 1
    print(f"verified {count} events, head position {head_position} hash {head_hash.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
