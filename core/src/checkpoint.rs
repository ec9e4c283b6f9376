//! Signed checkpoints: a statement of the log's head — its size, the chain hash of its last
//! event, the Merkle root over its events ([`crate::merkle`]) and a time — signed with
//! Ed25519 (RFC 8032). A verifier that trusts the public key learns from one checkpoint that
//! the log had exactly these `treeSize` events at that time: an export cut short of a
//! checkpoint it carries, or a log rewritten under one, no longer matches it.
//!
//! The signed message is text, so that it can be read and rebuilt by hand (`docs/AUDIT.md`
//! §10): five lines, each ended by `\n`:
//!
//! ```text
//! perpetua checkpoint v1
//! <treeSize, decimal>
//! <chainHash, 64 lower-case hex digits>
//! <rootHash, 64 lower-case hex digits>
//! <timestamp, milliseconds since the Unix epoch, decimal>
//! ```
//!
//! A key is named by its key id: the first 8 bytes of SHA-256 of its 32-byte public key, in
//! hex. Signing needs the secret key and is done by the server; verifying needs only the
//! public key, and runs natively and in wasm32.

use crate::audit::Hash;
use crate::time::Timestamp;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The first line of every signed message: the format and its version.
pub const MESSAGE_HEADER: &str = "perpetua checkpoint v1";

/// What a checkpoint states: the log's head.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// The log's size: its events are at positions 1 to `treeSize`.
    pub tree_size: u64,
    /// The chain hash of the event at `treeSize` (zero for the empty log).
    pub chain_hash: Hash,
    /// The Merkle root over the events' hashes at positions 1 to `treeSize`.
    pub root_hash: Hash,
    /// When it was signed.
    pub timestamp: Timestamp,
}

impl Head {
    /// The bytes that are signed (the module's doc gives the format).
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{MESSAGE_HEADER}\n{}\n{}\n{}\n{}\n",
            self.tree_size,
            self.chain_hash,
            self.root_hash,
            self.timestamp.millis()
        )
        .into_bytes()
    }
}

/// A head with its signature, the key id that names the key, and the public key itself (a
/// verifier must not take the public key from the checkpoint on trust: see [`verify`]).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The head signed.
    #[serde(flatten)]
    pub head: Head,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The signing key's public key, 64 hex digits.
    pub public_key: String,
    /// The Ed25519 signature of [`Head::message`], 128 hex digits.
    pub signature: String,
}

/// Why a checkpoint does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// The public key is not 32 bytes of hex, or not a point of the curve.
    BadPublicKey,
    /// The key id is not the public key's.
    KeyIdMismatch {
        /// The id the checkpoint gives.
        stated: String,
        /// The id of its public key.
        actual: String,
    },
    /// The checkpoint is signed by another key than the one trusted.
    UntrustedKey {
        /// The checkpoint's key id.
        key_id: String,
    },
    /// The signature is not 64 bytes of hex, or does not verify.
    BadSignature,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::BadPublicKey => write!(f, "the public key is not an Ed25519 public key"),
            CheckpointError::KeyIdMismatch { stated, actual } => {
                write!(f, "the key id {stated} is not the public key's ({actual})")
            }
            CheckpointError::UntrustedKey { key_id } => write!(f, "signed by key {key_id}, which is not trusted"),
            CheckpointError::BadSignature => write!(f, "the signature does not verify"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// The key id of a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex(&Sha256::digest(public_key)[..8])
}

/// Signs `head` with `key`.
pub fn sign(head: Head, key: &SigningKey) -> Checkpoint {
    let public = key.verifying_key().to_bytes();
    Checkpoint {
        head,
        key_id: key_id(&public),
        public_key: hex(&public),
        signature: hex(&key.sign(&head.message()).to_bytes()),
    }
}

/// Verifies `checkpoint`'s signature. With `trusted` (public keys given out of band), it must
/// also be signed by one of them; without, the key it names is checked for consistency only,
/// which proves the checkpoint is unaltered but not who signed it. Uses `verify_strict`
/// (no small-order keys, canonical signatures only).
pub fn verify(checkpoint: &Checkpoint, trusted: Option<&[[u8; 32]]>) -> Result<(), CheckpointError> {
    let public: [u8; 32] = unhex(&checkpoint.public_key).ok_or(CheckpointError::BadPublicKey)?;
    let actual = key_id(&public);
    if actual != checkpoint.key_id {
        return Err(CheckpointError::KeyIdMismatch { stated: checkpoint.key_id.clone(), actual });
    }
    if let Some(trusted) = trusted {
        if !trusted.contains(&public) {
            return Err(CheckpointError::UntrustedKey { key_id: actual });
        }
    }
    let key = VerifyingKey::from_bytes(&public).map_err(|_| CheckpointError::BadPublicKey)?;
    let signature: [u8; 64] = unhex(&checkpoint.signature).ok_or(CheckpointError::BadSignature)?;
    key.verify_strict(&checkpoint.head.message(), &Signature::from_bytes(&signature))
        .map_err(|_| CheckpointError::BadSignature)
}

/// Parses a public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    unhex(text.trim())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// How a checkpoint is carried in an export: one line of its own after the events, starting
/// with exactly these bytes and holding `{"checkpoint": <Checkpoint>}`.
pub const EXPORT_LINE_PREFIX: &str = "{\"checkpoint\":";

/// The export line of `checkpoint` (without its `\n`).
pub fn export_line(checkpoint: &Checkpoint) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        checkpoint: &'a Checkpoint,
    }
    serde_json::to_string(&Line { checkpoint }).expect("checkpoints serialize")
}

/// The checkpoint of an export line, if the line is one (see [`EXPORT_LINE_PREFIX`]).
pub fn parse_export_line(line: &str) -> Option<Result<Checkpoint, String>> {
    let line = line.trim();
    if !line.starts_with(EXPORT_LINE_PREFIX) {
        return None;
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        checkpoint: Checkpoint,
    }
    Some(serde_json::from_str::<Line>(line).map(|l| l.checkpoint).map_err(|e| e.to_string()))
}

/// How the events of an export stand against a checkpoint it carries.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE", rename_all_fields = "camelCase")]
pub enum Coverage {
    /// The file's events 1 to `treeSize` are the log the checkpoint states: the chain hash of
    /// the last of them and the Merkle root over them are the checkpoint's. `after` events
    /// of the file follow them, under no checkpoint.
    Covered {
        /// The checkpoint's size.
        tree_size: u64,
        /// Events of the file after it.
        after: u64,
    },
    /// The file ends before the checkpoint's last event: its tail was cut off.
    Truncated {
        /// The checkpoint's size.
        tree_size: u64,
        /// The file's last position (0 when it has no event).
        last_position: u64,
    },
    /// The file's event at `treeSize` is not the one the checkpoint states.
    ChainHashMismatch {
        /// The checkpoint's size.
        tree_size: u64,
        /// The checkpoint's chain hash.
        expected: Hash,
        /// The file's.
        actual: Hash,
    },
    /// The Merkle root over the file's first `treeSize` events is not the checkpoint's.
    RootMismatch {
        /// The checkpoint's size.
        tree_size: u64,
        /// The checkpoint's root.
        expected: Hash,
        /// The file's.
        actual: Hash,
    },
    /// The file does not start at position 1, or its positions have gaps (a range, a stream,
    /// a correlation id): the root cannot be computed from it alone.
    NotWholeLog,
}

impl Coverage {
    /// True when the events are the log the checkpoint states.
    pub fn is_covered(&self) -> bool {
        matches!(self, Coverage::Covered { .. })
    }
}

/// How `events` (in position order, their chain already verified) stand against
/// `checkpoint`. Only a whole log (positions 1, 2, 3… with no gap) can be checked.
pub fn coverage(events: &[crate::event::StoredEvent], checkpoint: &Checkpoint) -> Coverage {
    coverage_with_root(events, checkpoint, |covered| {
        crate::merkle::MerkleTree::of_events(covered.iter().map(|e| &e.hash))
            .root(covered.len() as u64)
            .expect("the tree holds size leaves")
    })
}

/// [`coverage`], with the Merkle root of the covered events computed by `root_of` (a viewer
/// that keeps the tree of the events it holds answers it in O(log n)).
pub fn coverage_with_root(
    events: &[crate::event::StoredEvent],
    checkpoint: &Checkpoint,
    root_of: impl FnOnce(&[crate::event::StoredEvent]) -> Hash,
) -> Coverage {
    let whole = events.iter().enumerate().all(|(i, e)| e.position == i as u64 + 1);
    if !whole {
        return Coverage::NotWholeLog;
    }
    let size = checkpoint.head.tree_size;
    let last_position = events.len() as u64;
    if last_position < size {
        return Coverage::Truncated { tree_size: size, last_position };
    }
    let covered = &events[..usize::try_from(size).expect("within the file")];
    let actual = covered.last().map_or(Hash::ZERO, |e| e.hash);
    if actual != checkpoint.head.chain_hash {
        return Coverage::ChainHashMismatch { tree_size: size, expected: checkpoint.head.chain_hash, actual };
    }
    let root = root_of(covered);
    if root != checkpoint.head.root_hash {
        return Coverage::RootMismatch { tree_size: size, expected: checkpoint.head.root_hash, actual: root };
    }
    Coverage::Covered { tree_size: size, after: last_position - size }
}

/// A receipt: some events (an order's) each with its inclusion proof under a signed
/// checkpoint, so that whoever holds it can check, with nothing else, that the log the
/// checkpoint states holds these events at these positions (`docs/AUDIT.md` §11).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The checkpoint the proofs lead to.
    pub checkpoint: Checkpoint,
    /// The events, in position order, each with its proof.
    pub events: Vec<ReceiptEvent>,
}

/// One event of a receipt and its audit path (RFC 9162 §2.1.3) in the tree of
/// `checkpoint.treeSize` leaves, nearest the leaf first; its leaf is `position − 1`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptEvent {
    /// The event as stored (its metadata withheld when it names another user: then only its
    /// hash, not its bytes, can be checked).
    pub event: crate::event::StoredEvent,
    /// The audit path.
    pub proof: Vec<Hash>,
}

/// Why a receipt does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptError {
    /// The checkpoint's signature.
    Checkpoint(CheckpointError),
    /// The event at `position` does not hash to its `hash`: it was altered.
    EventAltered {
        /// Its position.
        position: u64,
    },
    /// The event at `position` is not in the tree the checkpoint states (or its proof is wrong).
    NotIncluded {
        /// Its position.
        position: u64,
    },
}

impl fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiptError::Checkpoint(e) => write!(f, "the checkpoint: {e}"),
            ReceiptError::EventAltered { position } => write!(f, "the event at {position} does not hash to its hash"),
            ReceiptError::NotIncluded { position } => {
                write!(f, "the event at {position} is not under the checkpoint: its proof does not lead to the root")
            }
        }
    }
}

impl std::error::Error for ReceiptError {}

/// Verifies a receipt: the checkpoint's signature (by one of `trusted` when given), then
/// each event's hash over its bytes (unless its metadata was withheld) and its inclusion
/// proof to the checkpoint's root. Returns how many events' bytes were checked.
pub fn verify_receipt(receipt: &Receipt, trusted: Option<&[[u8; 32]]>) -> Result<u64, ReceiptError> {
    verify(&receipt.checkpoint, trusted).map_err(ReceiptError::Checkpoint)?;
    let head = &receipt.checkpoint.head;
    let mut bytes_checked = 0;
    for item in &receipt.events {
        let event = &item.event;
        if !event.metadata_redacted {
            if crate::audit::chain_hash(&event.prev_hash, event) != event.hash {
                return Err(ReceiptError::EventAltered { position: event.position });
            }
            bytes_checked += 1;
        }
        let leaf = crate::merkle::leaf_hash(&event.hash.0);
        let index = event.position.checked_sub(1).ok_or(ReceiptError::NotIncluded { position: 0 })?;
        if !crate::merkle::verify_inclusion(index, head.tree_size, &leaf, &item.proof, &head.root_hash) {
            return Err(ReceiptError::NotIncluded { position: event.position });
        }
    }
    Ok(bytes_checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head {
        Head {
            tree_size: 3,
            chain_hash: Hash([1; 32]),
            root_hash: Hash([2; 32]),
            timestamp: Timestamp(1_764_547_200_000),
        }
    }

    /// RFC 8032 §7.1, test 1: the secret key whose public key is d75a98…511a.
    fn key() -> SigningKey {
        let seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        SigningKey::from_bytes(&seed)
    }

    #[test]
    fn the_message_is_five_lines_of_text() {
        let text = String::from_utf8(head().message()).unwrap();
        let expected = format!("perpetua checkpoint v1\n3\n{}\n{}\n1764547200000\n", "01".repeat(32), "02".repeat(32));
        assert_eq!(text, expected);
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_names_its_key() {
        let checkpoint = sign(head(), &key());
        assert_eq!(checkpoint.public_key, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(checkpoint.key_id, key_id(&key().verifying_key().to_bytes()));
        assert_eq!(checkpoint.key_id.len(), 16);
        assert_eq!(verify(&checkpoint, None), Ok(()));
        assert_eq!(verify(&checkpoint, Some(&[key().verifying_key().to_bytes()])), Ok(()));
    }

    #[test]
    fn every_altered_field_is_refused() {
        let good = sign(head(), &key());
        let mut cases = Vec::new();
        for change in 0..4 {
            let mut forged = good.clone();
            match change {
                0 => forged.head.tree_size -= 1,
                1 => forged.head.chain_hash.0[31] ^= 1,
                2 => forged.head.root_hash.0[0] ^= 0x80,
                _ => forged.head.timestamp = Timestamp(forged.head.timestamp.0 + 1),
            }
            cases.push(forged);
        }
        for forged in &cases {
            assert_eq!(verify(forged, None), Err(CheckpointError::BadSignature), "{forged:?}");
        }
        let mut bad_signature = good.clone();
        bad_signature.signature.replace_range(0..2, if &good.signature[0..2] == "00" { "01" } else { "00" });
        assert_eq!(verify(&bad_signature, None), Err(CheckpointError::BadSignature));
        let mut short = good.clone();
        short.signature.pop();
        assert_eq!(verify(&short, None), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn another_key_is_caught_by_its_id_or_by_the_trusted_keys() {
        let other = SigningKey::from_bytes(&[42; 32]);
        let theirs = sign(head(), &other);
        // Signed by another key, named as ours: the key id does not match the public key.
        let mut renamed = theirs.clone();
        renamed.key_id = key_id(&key().verifying_key().to_bytes());
        assert!(matches!(verify(&renamed, None), Err(CheckpointError::KeyIdMismatch { .. })));
        // Consistent in itself, but not the key the auditor trusts.
        assert_eq!(verify(&theirs, None), Ok(()));
        assert_eq!(
            verify(&theirs, Some(&[key().verifying_key().to_bytes()])),
            Err(CheckpointError::UntrustedKey { key_id: theirs.key_id.clone() })
        );
        // Our public key put on their signature: the signature does not verify.
        let mut swapped = theirs.clone();
        swapped.public_key = sign(head(), &key()).public_key;
        swapped.key_id = key_id(&key().verifying_key().to_bytes());
        assert_eq!(verify(&swapped, None), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn it_reads_back_as_written() {
        let checkpoint = sign(head(), &key());
        let json = serde_json::to_string(&checkpoint).unwrap();
        assert!(json.starts_with(r#"{"treeSize":3,"chainHash":""#), "{json}");
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), checkpoint);
    }

    /// A demo log under a checkpoint of its head, signed with the RFC's key.
    fn demo_under_checkpoint() -> (Vec<crate::event::StoredEvent>, Checkpoint) {
        let (_, log) = crate::demo::sealed_log();
        let size = log.len() as u64;
        let root = crate::merkle::MerkleTree::of_events(log.iter().map(|e| &e.hash)).root(size).unwrap();
        let head =
            Head { tree_size: size, chain_hash: log.last().unwrap().hash, root_hash: root, timestamp: Timestamp(5) };
        (log, sign(head, &key()))
    }

    #[test]
    fn a_whole_export_is_covered_and_a_cut_one_is_truncated() {
        let (log, checkpoint) = demo_under_checkpoint();
        let size = log.len() as u64;
        assert_eq!(coverage(&log, &checkpoint), Coverage::Covered { tree_size: size, after: 0 });
        let cut = &log[..log.len() - 3];
        assert_eq!(coverage(cut, &checkpoint), Coverage::Truncated { tree_size: size, last_position: size - 3 });
        assert_eq!(coverage(&[], &checkpoint), Coverage::Truncated { tree_size: size, last_position: 0 });
        assert_eq!(coverage(&log[1..], &checkpoint), Coverage::NotWholeLog);
        // Under an older checkpoint, the events after it are counted.
        let (older, _) = {
            let head = Head {
                tree_size: size - 2,
                chain_hash: log[log.len() - 3].hash,
                root_hash: crate::merkle::MerkleTree::of_events(log.iter().map(|e| &e.hash)).root(size - 2).unwrap(),
                timestamp: Timestamp(4),
            };
            (sign(head, &key()), ())
        };
        assert_eq!(coverage(&log, &older), Coverage::Covered { tree_size: size - 2, after: 2 });
    }

    #[test]
    fn a_log_rewritten_under_a_checkpoint_does_not_match_it() {
        let (log, checkpoint) = demo_under_checkpoint();
        // Re-sealed after a change at position 3: the chain verifies, the head does not match.
        let mut events: Vec<_> = log.iter().map(|e| e.decode().unwrap()).collect();
        events[2].timestamp = Timestamp(events[2].timestamp.0 + 1);
        let mut chain = crate::audit::HashChain::default();
        let resealed = chain.seal(&mut events);
        assert!(crate::audit::verify_range(&resealed).is_ok());
        assert!(matches!(coverage(&resealed, &checkpoint), Coverage::ChainHashMismatch { .. }));
        // The right last hash but another leaf: only the root can tell.
        let mut swapped = log.clone();
        swapped[0].hash.0[0] ^= 1;
        assert!(matches!(coverage(&swapped, &checkpoint), Coverage::RootMismatch { .. }));
    }

    #[test]
    fn an_export_line_reads_back() {
        let (_, checkpoint) = demo_under_checkpoint();
        let line = export_line(&checkpoint);
        assert!(line.starts_with(EXPORT_LINE_PREFIX));
        assert_eq!(parse_export_line(&line), Some(Ok(checkpoint)));
        assert_eq!(parse_export_line(r#"{"position":1}"#), None);
        assert!(matches!(parse_export_line(r#"{"checkpoint":{"treeSize":1}}"#), Some(Err(_))));
    }

    #[test]
    fn a_receipt_verifies_with_nothing_else_and_any_change_is_caught() {
        let (log, checkpoint) = demo_under_checkpoint();
        let tree = crate::merkle::MerkleTree::of_events(log.iter().map(|e| &e.hash));
        let size = log.len() as u64;
        let events = [3usize, 40, log.len() - 1]
            .iter()
            .map(|&i| ReceiptEvent { event: log[i].clone(), proof: tree.inclusion_proof(i as u64, size).unwrap() })
            .collect();
        let receipt = Receipt { checkpoint, events };
        let json = serde_json::to_string(&receipt).unwrap();
        let read: Receipt = serde_json::from_str(&json).unwrap();
        assert_eq!(verify_receipt(&read, Some(&[key().verifying_key().to_bytes()])), Ok(3));
        let mut altered = receipt.clone();
        altered.events[1].event.timestamp = Timestamp(altered.events[1].event.timestamp.0 + 1);
        assert_eq!(verify_receipt(&altered, None), Err(ReceiptError::EventAltered { position: 41 }));
        let mut moved = receipt.clone();
        moved.events[0].event.position += 1;
        assert!(verify_receipt(&moved, None).is_err(), "another position: another leaf");
        let mut bad_proof = receipt.clone();
        bad_proof.events[2].proof[0].0[0] ^= 1;
        assert_eq!(verify_receipt(&bad_proof, None), Err(ReceiptError::NotIncluded { position: size }));
        let mut other_root = receipt.clone();
        other_root.checkpoint.head.root_hash.0[5] ^= 1;
        assert!(matches!(verify_receipt(&other_root, None), Err(ReceiptError::Checkpoint(_))));
    }
}
