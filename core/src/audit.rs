//! The audit hash chain. Each event's `hash = SHA-256(prevHash ‖ canonical bytes)` along the
//! global order, so any edit, insertion or deletion in the log is detectable. The canonical
//! bytes of an event are the compact JSON of its stored envelope without the two hash fields,
//! fields in the fixed order of [`StoredEvent`], the payload exactly as stored.

use crate::event::{AggregateId, AggregateType, EventEnvelope, Metadata, StoredEvent};
use crate::ids::EventId;
use crate::time::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
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

/// The canonical bytes of a stored event (everything but `prevHash` and `hash`).
pub fn canonical_bytes(event: &StoredEvent) -> Vec<u8> {
    let view = Canonical {
        position: event.position,
        event_id: event.event_id,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        version: event.version,
        timestamp: event.timestamp,
        payload: &event.payload,
        metadata: &event.metadata,
    };
    serde_json::to_vec(&view).expect("canonical view always serializes")
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
pub fn verify(events: &[StoredEvent], start: HashChain) -> VerifyReport {
    let mut head = start;
    let mut verified = 0;
    for event in events {
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
            return VerifyReport {
                verified,
                first_bad_position: Some(first_bad),
                fault: Some(fault),
                last_hash: head.last_hash,
            };
        }
        head = HashChain { last_position: event.position, last_hash: event.hash };
        verified += 1;
    }
    VerifyReport { verified, first_bad_position: None, fault: None, last_hash: head.last_hash }
}

#[cfg(test)]
mod tests {
    use super::*;

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
