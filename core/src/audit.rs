//! The audit hash chain. Each event's `hash = SHA-256(prevHash ‖ canonical bytes)` along the
//! global order, so any edit, insertion or deletion in the log is detectable. The canonical
//! bytes of an event are the compact JSON of its stored envelope without the two hash fields,
//! fields in the fixed order of [`StoredEvent`], the payload exactly as stored.

use crate::event::{AggregateId, EventEnvelope, StoredEvent};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prevHash` of the first event of the log.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Hash> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        const INVALID: u8 = 0xff;
        const NIBBLES: [u8; 256] = {
            let mut table = [INVALID; 256];
            let mut c = 0;
            while c < 256 {
                table[c] = match c as u8 {
                    d @ b'0'..=b'9' => d - b'0',
                    d @ b'a'..=b'f' => d - b'a' + 10,
                    d @ b'A'..=b'F' => d - b'A' + 10,
                    _ => INVALID,
                };
                c += 1;
            }
            table
        };
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let (hi, lo) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
            bad |= (hi | lo) & 0xf0;
            out[i] = hi << 4 | (lo & 0x0f);
        }
        (bad == 0).then_some(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::parse_str(deserializer, "64 hex digits")
    }
}

impl std::str::FromStr for Hash {
    type Err = &'static str;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(text).ok_or("expected 64 hex digits")
    }
}

/// The canonical bytes of a stored event (everything but `prevHash` and `hash`).
///
/// Laid out by hand, byte for byte what serde_json writes for the envelope's fields in this
/// order (`docs/AUDIT.md` §4; a test holds it to serde_json's output, and the golden chain
/// heads and shared vectors to the bytes ever hashed): ids, times, symbols and type names are
/// written without an escaping pass (their characters never need one); the event type, the
/// numbers and the metadata go through serde_json; the payload is written as stored.
pub fn canonical_bytes(event: &StoredEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.payload.get().len() + 512);
    out.extend_from_slice(b"{\"position\":");
    json(&mut out, &event.position);
    out.extend_from_slice(b",\"eventId\":");
    quoted_uuid(&mut out, &event.event_id.0);
    out.extend_from_slice(b",\"eventType\":");
    json(&mut out, &event.event_type.as_str());
    out.extend_from_slice(b",\"schemaVersion\":");
    json(&mut out, &event.schema_version);
    out.extend_from_slice(b",\"aggregateType\":\"");
    out.extend_from_slice(event.aggregate_type.as_str().as_bytes());
    out.extend_from_slice(b"\",\"aggregateId\":");
    match &event.aggregate_id {
        AggregateId::Uuid(id) => quoted_uuid(&mut out, id),
        // A symbol is upper-case letters and digits: nothing to escape.
        AggregateId::Symbol(symbol) => {
            out.push(b'"');
            out.extend_from_slice(symbol.as_str().as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"version\":");
    json(&mut out, &event.version);
    // An RFC 3339 time: digits, `-`, `:`, `.`, `T` and `Z`.
    out.extend_from_slice(b",\"timestamp\":\"");
    use std::io::Write as _;
    write!(out, "{}", event.timestamp).expect("writing to a Vec does not fail");
    out.extend_from_slice(b"\",\"payload\":");
    out.extend_from_slice(event.payload.get().as_bytes());
    out.extend_from_slice(b",\"metadata\":");
    json(&mut out, &event.metadata);
    out.push(b'}');
    out
}

/// A value as serde_json writes it.
fn json(out: &mut Vec<u8>, value: &impl Serialize) {
    serde_json::to_writer(out, value).expect("a canonical field always serializes");
}

/// A UUID as JSON: lower-case hyphenated hex between quotes.
fn quoted_uuid(out: &mut Vec<u8>, id: &uuid::Uuid) {
    let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
    out.push(b'"');
}

/// `SHA-256(prev ‖ canonical bytes of event)`.
pub fn chain_hash(prev: &Hash, event: &StoredEvent) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev.0);
    hasher.update(canonical_bytes(event));
    Hash(hasher.finalize().into())
}

/// The head of the chain: the last sealed position and its hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashChain {
    /// Global position of the last sealed event (0 before the first).
    pub last_position: u64,
    /// Hash of that event (zero before the first).
    pub last_hash: Hash,
}

impl HashChain {
    /// Fills in `prevHash` and `hash` of freshly produced events, which must continue the chain
    /// at `last_position + 1` without gaps; returns their stored form.
    pub fn seal(&mut self, events: &mut [EventEnvelope]) -> Vec<StoredEvent> {
        let mut stored_events = Vec::with_capacity(events.len());
        for envelope in events.iter_mut() {
            assert_eq!(envelope.position, self.last_position + 1, "sealed positions must be contiguous");
            envelope.prev_hash = self.last_hash;
            let mut stored = envelope.to_stored();
            stored.hash = chain_hash(&self.last_hash, &stored);
            envelope.hash = stored.hash;
            self.last_position = envelope.position;
            self.last_hash = stored.hash;
            stored_events.push(stored);
        }
        stored_events
    }
}

/// What is wrong at the first position that does not verify.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChainFault {
    /// The positions are not contiguous: `expected` is missing.
    PositionGap {
        /// The position that should have come next.
        expected: u64,
    },
    /// `prevHash` is not the previous event's hash.
    PrevHashMismatch,
    /// `hash` does not match the event's bytes: the event was altered.
    HashMismatch,
    /// The chain verifies but does not end where the store's recorded head says: events were
    /// added past it, or the chain was rewritten, outside the store.
    HeadMismatch,
}

/// The result of verifying a range of the chain.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Events checked and found good before the first fault (or all of them).
    pub verified: u64,
    /// Position of the first event that does not verify; `None` when all do.
    pub first_bad_position: Option<u64>,
    /// What is wrong at `first_bad_position`; `None` when every event verifies.
    pub fault: Option<ChainFault>,
    /// Hash of the last good event.
    pub last_hash: Hash,
}

impl VerifyReport {
    /// True when every event verified.
    pub fn is_ok(&self) -> bool {
        self.first_bad_position.is_none()
    }
}

/// Verifies an exported range on its own terms: the chain is taken to start just before the
/// first event, at that event's `prevHash`, except that a log from position 1 starts at
/// `Hash::ZERO` (its first `prevHash` is checked against it). To check that the range also
/// continues a known head, use [`verify`] with that head.
pub fn verify_range(events: &[StoredEvent]) -> VerifyReport {
    let start = match events.first() {
        Some(first) if first.position > 1 => {
            HashChain { last_position: first.position - 1, last_hash: first.prev_hash }
        }
        _ => HashChain::default(),
    };
    verify(events, start)
}

/// Verifies `events` (in global order) continue the chain from `start` (the head before the
/// first of them: `HashChain::default()` for a log that starts at position 1).
///
/// The answer is the one of checking each event in turn — its position, then its `prevHash`,
/// then its hash — and stopping at the first fault. It is computed in two passes: the links
/// (positions and `prevHash`es, comparisons only) in order, then the hashes up to the first
/// broken link, which each event's stored `prevHash` makes independent of one another, so a
/// large range is hashed on every core ([`first_hash_mismatch`]).
pub fn verify(events: &[StoredEvent], start: HashChain) -> VerifyReport {
    let link = first_link_fault(events, start);
    let linked = link.as_ref().map_or(events.len(), |(index, _)| *index);
    // Up to the first broken link every `prevHash` is the hash before it, so hashing an
    // event from its own `prevHash` is hashing it from the chain.
    let fault = match first_hash_mismatch(&events[..linked]) {
        Some(index) => Some((index, ChainFault::HashMismatch)),
        None => link,
    };
    let Some((index, fault)) = fault else {
        let last_hash = events.last().map_or(start.last_hash, |e| e.hash);
        return VerifyReport { verified: events.len() as u64, first_bad_position: None, fault: None, last_hash };
    };
    let first_bad = match fault {
        ChainFault::PositionGap { expected } => expected,
        _ => events[index].position,
    };
    let last_hash = index.checked_sub(1).map_or(start.last_hash, |before| events[before].hash);
    VerifyReport { verified: index as u64, first_bad_position: Some(first_bad), fault: Some(fault), last_hash }
}

/// The first event whose position does not follow the one before, or whose `prevHash` is not
/// the hash before it (from `start`).
fn first_link_fault(events: &[StoredEvent], start: HashChain) -> Option<(usize, ChainFault)> {
    let mut head = start;
    for (index, event) in events.iter().enumerate() {
        if event.position != head.last_position + 1 {
            return Some((index, ChainFault::PositionGap { expected: head.last_position + 1 }));
        }
        if event.prev_hash != head.last_hash {
            return Some((index, ChainFault::PrevHashMismatch));
        }
        head = HashChain { last_position: event.position, last_hash: event.hash };
    }
    None
}

/// Ranges smaller than this are hashed on the calling thread (a writer's batch, a live page).
#[cfg(not(target_arch = "wasm32"))]
const PARALLEL_HASHING_FROM: usize = 4_096;

/// The first event whose hash is not `SHA-256(prevHash ‖ canonical bytes)`: the range cut in
/// one part per core, each hashed on its own thread (natively; wasm32 has one thread).
fn first_hash_mismatch(events: &[StoredEvent]) -> Option<usize> {
    let sequential = |part: &[StoredEvent]| part.iter().position(|e| chain_hash(&e.prev_hash, e) != e.hash);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads > 1 && events.len() >= PARALLEL_HASHING_FROM {
            let part_len = events.len().div_ceil(threads);
            return std::thread::scope(|scope| {
                let parts: Vec<_> = events
                    .chunks(part_len)
                    .enumerate()
                    .map(|(n, part)| scope.spawn(move || sequential(part).map(|i| n * part_len + i)))
                    .collect();
                // The earliest part with a mismatch holds the first (the scope joins the rest).
                parts.into_iter().find_map(|part| part.join().expect("hashing does not panic"))
            });
        }
    }
    sequential(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AggregateType, Metadata};
    use crate::ids::EventId;
    use crate::time::Timestamp;
    use serde_json::value::RawValue;

    /// The canonical bytes as serde_json writes the envelope's fields: what the hand-laid
    /// [`canonical_bytes`] must equal.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Canonical<'a> {
        position: u64,
        event_id: EventId,
        event_type: &'a str,
        schema_version: u32,
        aggregate_type: AggregateType,
        aggregate_id: AggregateId,
        version: u64,
        timestamp: Timestamp,
        payload: &'a RawValue,
        metadata: &'a Metadata,
    }

    /// Every event of the demo, and events with characters to escape in their type and
    /// metadata, give serde_json's bytes.
    #[test]
    fn the_canonical_bytes_are_serde_jsons() {
        let serde = |e: &StoredEvent| {
            serde_json::to_vec(&Canonical {
                position: e.position,
                event_id: e.event_id,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                aggregate_type: e.aggregate_type,
                aggregate_id: e.aggregate_id,
                version: e.version,
                timestamp: e.timestamp,
                payload: &e.payload,
                metadata: &e.metadata,
            })
            .unwrap()
        };
        let (_, log) = crate::demo::sealed_log();
        for event in &log {
            assert_eq!(canonical_bytes(event), serde(event), "position {}", event.position);
        }
        let mut odd = log[log.len() - 1].clone();
        odd.event_type = "Odd\"Type\\\u{1}é".to_owned();
        odd.metadata.ip_address = Some("::1\"\n".to_owned());
        odd.metadata.user_id = None;
        assert_eq!(canonical_bytes(&odd), serde(&odd));
    }

    /// The chain checked one event at a time, stopping at the first fault: what [`verify`]
    /// must answer.
    fn verify_one_by_one(events: &[StoredEvent], start: HashChain) -> VerifyReport {
        let mut head = start;
        for (verified, event) in events.iter().enumerate() {
            let fault = if event.position != head.last_position + 1 {
                Some(ChainFault::PositionGap { expected: head.last_position + 1 })
            } else if event.prev_hash != head.last_hash {
                Some(ChainFault::PrevHashMismatch)
            } else if chain_hash(&head.last_hash, event) != event.hash {
                Some(ChainFault::HashMismatch)
            } else {
                None
            };
            if let Some(fault) = fault {
                let first_bad = match fault {
                    ChainFault::PositionGap { expected } => expected,
                    _ => event.position,
                };
                let (first_bad_position, last_hash) = (Some(first_bad), head.last_hash);
                return VerifyReport { verified: verified as u64, first_bad_position, fault: Some(fault), last_hash };
            }
            head = HashChain { last_position: event.position, last_hash: event.hash };
        }
        VerifyReport { verified: events.len() as u64, first_bad_position: None, fault: None, last_hash: head.last_hash }
    }

    /// On a log large enough to be hashed on several threads, every kind of tampering, early
    /// or late, and two at once, gets the answer of checking one event at a time.
    #[test]
    fn a_large_range_is_verified_as_one_event_at_a_time_would() {
        let mut setup = crate::workload::Setup::new(8, 200, 3);
        setup.mixed_workload(1_500, 5);
        let log = HashChain::default().seal(&mut setup.log.clone());
        assert!(log.len() > 2 * PARALLEL_HASHING_FROM, "{} events", log.len());
        let check = |events: &[StoredEvent], what: &str| {
            assert_eq!(verify(events, HashChain::default()), verify_one_by_one(events, HashChain::default()), "{what}");
        };
        check(&log, "untouched");
        assert!(verify(&log, HashChain::default()).is_ok());
        let n = log.len();
        for at in [0, 1, n / 3, n / 2 + 7, n - 1] {
            let mut altered = log.clone();
            altered[at].version += 1;
            check(&altered, "a version altered");
            let mut relinked = log.clone();
            relinked[at].prev_hash.0[0] ^= 1;
            check(&relinked, "a prevHash altered");
            let mut removed = log.clone();
            removed.remove(at);
            check(&removed, "an event removed");
        }
        // A hash fault late, a link fault early: the link fault is first; and the reverse.
        let mut both = log.clone();
        both[n - 10].version += 1;
        both[n / 4].prev_hash.0[0] ^= 1;
        check(&both, "a late hash fault, an early link fault");
        let mut both = log.clone();
        both[n / 4].version += 1;
        both[n - 10].prev_hash.0[0] ^= 1;
        check(&both, "an early hash fault, a late link fault");
        assert_eq!(verify(&both, HashChain::default()).first_bad_position, Some(both[n / 4].position));
    }

    /// A log from position 1 starts at the zero hash: a first event sealed on another
    /// `prevHash` is refused, while a range from later on starts at its own first `prevHash`.
    #[test]
    fn a_log_from_position_one_starts_at_the_zero_hash() {
        let (_, log) = crate::demo::sealed_log();
        assert!(verify_range(&log).is_ok());
        assert!(verify_range(&log[10..]).is_ok(), "a range is taken on its own terms");
        let mut forged = crate::demo::run(&mut crate::engine::Exchange::new(), crate::demo::DEMO_START);
        let mut other_start = HashChain { last_position: 0, last_hash: Hash([7; 32]) };
        let resealed = other_start.seal(&mut forged);
        let report = verify_range(&resealed);
        assert_eq!((report.first_bad_position, report.fault), (Some(1), Some(ChainFault::PrevHashMismatch)));
    }

    #[test]
    fn hex_round_trips_and_rejects_non_hex() {
        let hash = Hash(std::array::from_fn(|i| (i * 37) as u8));
        assert_eq!(Hash::from_hex(&hash.to_string()), Some(hash));
        assert_eq!(Hash::from_hex(&hash.to_string().to_uppercase()), Some(hash));
        let mut bad = hash.to_string();
        bad.replace_range(10..11, "g");
        assert_eq!(Hash::from_hex(&bad), None);
        assert_eq!(Hash::from_hex("abc"), None);
    }
}
