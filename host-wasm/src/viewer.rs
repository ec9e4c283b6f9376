//! The audit viewer's questions, answered from a loaded log with the core's own folds: the
//! state of a stream at a version or a time, every state it went through, what changed
//! between two versions, the chain's verification, series for charts, the rows of the
//! global log as columns, and the events one command or one user caused. Plain Rust
//! returning JSON text (or plain vectors), so the same code is tested natively and in
//! wasm32; `lib.rs` wraps it for JavaScript. A loaded log only grows, by whole events that
//! continue it (the live tail); it is never edited.

use perpetua_core::audit::{self, ChainFault, HashChain, VerifyReport};
use perpetua_core::checkpoint::{self, Checkpoint, Coverage};
use perpetua_core::event::{
    parse_export, AggregateId, AggregateType, Event, EventEnvelope, Metadata, StoredEvent, StreamId, EVENT_TYPES,
};
use perpetua_core::ids::AccountId;
use perpetua_core::merkle::MerkleTree;
use perpetua_core::projection::{AccountSummary, PositionView, ReadModels};
use perpetua_core::time::Timestamp;
use perpetua_core::timetravel::{self, AggregateState};
use serde::Serialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// A loaded log: the events as stored (for verification and display) and decoded (for folds),
/// indexed by stream. The chain is verified when asked, from where the last answer left off,
/// so a viewer can show the log first and the verification just after, and a growing log is
/// never verified twice.
pub struct Log {
    stored: Vec<StoredEvent>,
    events: Vec<EventEnvelope>,
    /// Stream -> its number: streams are numbered in the order of their first event.
    streams: HashMap<StreamId, u32>,
    /// Per stream number: the stream and the indexes of its events, in version order.
    stream_rows: Vec<(StreamId, Vec<usize>)>,
    /// Per event: its stream's number.
    row_stream: Vec<u32>,
    chain: RefCell<Chain>,
    /// The signed checkpoints the file carried (`docs/AUDIT.md` §10), in file order.
    checkpoints: Vec<Checkpoint>,
    /// The Merkle tree (RFC 9162) over the loaded events' hashes, in load order: a
    /// checkpoint's root is checked in O(log n), never by hashing a million leaves at once.
    tree: MerkleTree,
}

/// The last checkpoint a loaded export carries, checked (`AuditLog.checkpoint`): its
/// signature under the key it names, and whether the file holds the log it states.
#[derive(Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct CheckpointReport {
    /// The checkpoint; `null` when the file carries none (its completeness is then unproven).
    pub checkpoint: Option<Checkpoint>,
    /// Why its signature does not verify; `null` when it does (under the key it names: an
    /// auditor compares `keyId` with the operator's published one).
    pub signature_error: Option<String>,
    /// How the file's events stand against it; `null` without a checkpoint.
    pub coverage: Option<Coverage>,
}

/// The verification of the first `checked` events, and the head to continue it from.
struct Chain {
    scope: Scope,
    report: VerifyReport,
    head: HashChain,
    checked: usize,
    /// Events of a stream export whose metadata was withheld from this viewer (another user's
    /// identity): linked to their neighbours, but their hashes cannot be recomputed.
    withheld: u64,
    /// The scope and whether any metadata is withheld, as found at a length of the log.
    kind: Option<(usize, Scope, bool)>,
}

impl Chain {
    fn new(scope: Scope) -> Chain {
        let head = HashChain::default();
        let report = VerifyReport { verified: 0, first_bad_position: None, fault: None, last_hash: head.last_hash };
        Chain { scope, report, head, checked: 0, withheld: 0, kind: None }
    }
}

/// What a loaded log is, as the server exports it: a range of the global log (contiguous
/// positions, so the chain itself is checked, a missing position included), or the events of
/// one stream or of one correlation id (positions with gaps: each event's hash is checked
/// against its bytes and its `prevHash`, and the link to the event before wherever the two
/// are adjacent; what lies in the gaps cannot be checked offline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Range,
    Stream,
    Correlation,
}

/// The verification as the viewer reads it (`AuditLog.verify`): the core's report, what was
/// verified, and how many events could only be linked.
#[derive(Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ScopedReport<'a> {
    /// A range of the log (its chain), or a stream or correlation export (event by event).
    pub scope: Scope,
    /// The core's report.
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub report: &'a VerifyReport,
    /// Events of a stream export whose metadata the server withheld from this reader
    /// (another user's identity): linked to their neighbours, but their hashes cannot be
    /// recomputed.
    pub withheld: u64,
    /// The first bad event's hash against what it should be; `null` when every event
    /// verifies or the fault is a missing position.
    pub mismatch: Option<Mismatch>,
    /// Events loaded but not checked yet (`verifySome` checks a slice at a time).
    pub pending: u64,
}

/// What the first bad event holds against what it should: a `hash` that is not its bytes'
/// (expected: the hash of its bytes), or a `prevHash` that is not the hash of the event
/// before it (expected: that event's hash).
#[derive(Serialize, Debug, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// `hash` or `prevHash`.
    pub field: &'static str,
    /// The value the chain requires.
    pub expected: audit::Hash,
    /// The value the event carries.
    pub actual: audit::Hash,
}

/// The global log as columns, from one row on: what the viewer's list and filters need for
/// every event without parsing any JSON. Row `i` of each column is the event at index
/// `from + i` of the log.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    /// Global positions.
    pub positions: Vec<f64>,
    /// Times, milliseconds since the epoch.
    pub timestamps: Vec<f64>,
    /// Versions within their streams.
    pub versions: Vec<u32>,
    /// Event types, as indexes into [`EVENT_TYPES`].
    pub event_types: Vec<u8>,
    /// Stream numbers (see [`Rows::new_streams`]).
    pub streams: Vec<u32>,
    /// The streams first seen in these rows, in number order, continuing the numbers the
    /// earlier rows used: `[{aggregateType, aggregateId}]` as JSON.
    pub new_streams: String,
}

/// A stream, as the viewer names it: `{aggregateType, aggregateId}`.
#[derive(Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StreamKey {
    /// The kind of stream.
    pub aggregate_type: AggregateType,
    /// Its id (a UUID, or a market's symbol).
    pub aggregate_id: String,
}

impl From<&StreamId> for StreamKey {
    fn from(stream: &StreamId) -> Self {
        StreamKey { aggregate_type: stream.aggregate_type, aggregate_id: stream.aggregate_id.to_string() }
    }
}

/// A position an account held, as the account view lists it.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct HeldPosition {
    /// The position stream's id.
    pub position_id: String,
    /// Its market.
    pub symbol: String,
}

/// One field that differs between two states: its JSON path and both values (`null` where
/// the field is absent).
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Change {
    /// `/`-separated path into the state (`/state/balance`).
    pub path: String,
    /// The value at the older version.
    pub old: Value,
    /// The value at the newer version.
    pub new: Value,
}

/// A point of a chart series.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Global position of the event after which the value holds.
    pub position: u64,
    /// Its time (milliseconds since the epoch).
    pub timestamp: i64,
    /// The value, as a decimal string.
    pub value: String,
}

/// `AuditLog.pnlSeries`: an account's equity and realized PnL over time, and the events to
/// mark on its charts.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PnlSeries {
    /// Wallet balance plus the unrealized PnL of every open position at its market's last
    /// mark, after each event that moves either (the account's, its positions', a mark of a
    /// market it holds).
    pub equity: Vec<Point>,
    /// The PnL realized by the account's positions' fills so far (each decrease and close),
    /// after each that realizes some. A liquidation is a marker: the insurance account takes
    /// the position over at the mark.
    pub realized: Vec<Point>,
    /// The account's liquidations and funding payments, in log order.
    pub markers: Vec<Marker>,
}

/// An event marked on a chart.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    /// Global position of the event.
    pub position: u64,
    /// Its time (milliseconds since the epoch).
    pub timestamp: i64,
    /// `LIQUIDATION` or `FUNDING`.
    pub kind: &'static str,
    /// What happened, in a few words (`funding paid 1.2 on BTCUSDT`).
    pub label: String,
}

/// `AuditLog.accountReadModel`: an account as the read models saw it right after
/// `last_position`.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AccountReadModel {
    /// The last position folded in.
    pub last_position: u64,
    /// The account's summary; `None` before it was opened.
    pub account: Option<AccountSummary>,
    /// Its open positions, valued at the marks of that moment.
    pub positions: Vec<PositionView>,
}

/// `AuditLog.versionView`: what the stream view shows for one version.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VersionView {
    /// The state after the event of that version (`None` when the stream has no such event
    /// and none before it).
    pub state: Option<AggregateState>,
    /// What changed from the version before.
    pub changes: Vec<Change>,
}

/// `replaySummary`: how much a replay of a whole log folded.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    /// The last position replayed.
    pub last_position: u64,
    /// Accounts, orders and positions in the replayed exchange.
    pub accounts: usize,
    /// Orders.
    pub orders: usize,
    /// Positions.
    pub positions: usize,
}

fn stream_of(aggregate_type: &str, aggregate_id: &str) -> Result<StreamId, String> {
    let aggregate_type =
        AggregateType::parse(aggregate_type).ok_or_else(|| format!("unknown aggregate type {aggregate_type:?}"))?;
    let aggregate_id =
        aggregate_id.parse::<AggregateId>().map_err(|e| format!("aggregate id {aggregate_id:?}: {e}"))?;
    Ok(StreamId { aggregate_type, aggregate_id })
}

/// The index of an event type in [`EVENT_TYPES`] (the catalog has fewer than 256 types).
fn event_type_code(event_type: &str) -> u8 {
    let code = EVENT_TYPES.iter().position(|&name| name == event_type).expect("decoded events have catalog types");
    u8::try_from(code).expect("fewer than 256 event types")
}

/// The event type names, in catalog order: the codes of [`Rows::event_types`] index them.
pub fn event_type_names() -> String {
    json(&EVENT_TYPES)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("viewer values serialize")
}

/// An order, account, position, user, correlation or causation id (a UUID), as the
/// [`AggregateId`] it would be.
fn parse_uuid(text: &str) -> Result<AggregateId, String> {
    match text.trim().parse::<AggregateId>() {
        Ok(id @ AggregateId::Uuid(_)) => Ok(id),
        _ => Err(format!("{text:?} is not an id (a UUID)")),
    }
}

fn decode(stored: &[StoredEvent]) -> Result<Vec<EventEnvelope>, String> {
    stored
        .iter()
        .map(|e| e.decode().map_err(|err| format!("position {}: {err} ({})", e.position, err.code())))
        .collect()
}

/// A file or a tail as read: the events as stored and decoded, and the checkpoints it carried.
struct Parsed {
    stored: Vec<StoredEvent>,
    events: Vec<EventEnvelope>,
    checkpoints: Vec<Checkpoint>,
}

fn parse(text: &str) -> Result<Parsed, String> {
    let export = parse_export(text).map_err(|e| format!("{e} ({})", e.code()))?;
    let events = decode(&export.events)?;
    Ok(Parsed { stored: export.events, events, checkpoints: export.checkpoints })
}

impl Log {
    /// Parses a JSON array or JSON Lines of stored events and decodes every one.
    pub fn parse(text: &str) -> Result<Log, String> {
        let Parsed { stored, events, checkpoints } = parse(text)?;
        let chain = RefCell::new(Chain::new(Scope::Range));
        let mut log = Log {
            stored: Vec::new(),
            events: Vec::new(),
            streams: HashMap::new(),
            stream_rows: Vec::new(),
            row_stream: Vec::new(),
            chain,
            checkpoints,
            tree: MerkleTree::new(),
        };
        log.extend(stored, events);
        Ok(log)
    }

    /// Appends events that continue the log (a JSON array or JSON Lines, as the live tail
    /// delivers them): the first must be at the position after the last loaded one, and the
    /// rest contiguous. Events at or before the last loaded position are skipped (a tail that
    /// resumes from an earlier position). Returns how many were appended; on an error nothing
    /// is appended.
    pub fn append(&mut self, text: &str) -> Result<usize, String> {
        // A live tail carries no checkpoints.
        let Parsed { mut stored, mut events, .. } = parse(text)?;
        let last = self.stored.last().map(|e| e.position);
        if let Some(last) = last {
            let skip = stored.iter().take_while(|e| e.position <= last).count();
            stored.drain(..skip);
            events.drain(..skip);
        }
        for (n, event) in stored.iter().enumerate() {
            let expected = match (n, last) {
                (0, None) => event.position,
                (0, Some(last)) => last + 1,
                (n, _) => stored[n - 1].position + 1,
            };
            if event.position != expected {
                return Err(format!("position {expected} is missing: the next event is at {}", event.position));
            }
        }
        let appended = stored.len();
        self.extend(stored, events);
        Ok(appended)
    }

    /// Room for `additional` more events (a file loaded in parts, its size known): a million
    /// events are not moved each time their vectors double.
    pub fn reserve(&mut self, additional: usize) {
        self.stored.reserve(additional);
        self.events.reserve(additional);
        self.row_stream.reserve(additional);
    }

    /// The next part of a file being loaded a part at a time (JSON Lines cut at line ends):
    /// its events and checkpoints are added as [`Log::parse`] of the whole file would have
    /// them, gaps included (a stream export has gaps; verification judges them). Returns how
    /// many events were added; on an error nothing is.
    pub fn load_more(&mut self, text: &str) -> Result<usize, String> {
        let Parsed { stored, events, checkpoints } = parse(text)?;
        let added = stored.len();
        self.extend(stored, events);
        self.checkpoints.extend(checkpoints);
        Ok(added)
    }

    /// Indexes new events, which continue the log.
    fn extend(&mut self, stored: Vec<StoredEvent>, events: Vec<EventEnvelope>) {
        debug_assert_eq!(stored.len(), events.len());
        for event in &events {
            let index = self.row_stream.len();
            let next_number = self.stream_rows.len() as u32;
            let number = *self.streams.entry(event.stream).or_insert(next_number);
            if number == next_number {
                self.stream_rows.push((event.stream, Vec::new()));
            }
            self.stream_rows[number as usize].1.push(index);
            self.row_stream.push(number);
        }
        for event in &stored {
            self.tree.push_event(&event.hash);
        }
        self.stored.extend(stored);
        self.events.extend(events);
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// True when the log has no event.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// The verification of everything loaded (`{scope, verified, firstBadPosition, fault,
    /// lastHash}`, see [`Scope`]): a range is verified on its own terms, from its first event's
    /// `prevHash`. Only the events appended since the last call are checked; once a fault is
    /// found it stays the answer.
    pub fn verify(&self) -> String {
        self.verify_some(usize::MAX)
    }

    /// [`Log::verify`] of at most `limit` more events: a viewer verifies a large log a slice
    /// at a time, never holding the page for long; `pending` in the report says how many are
    /// left.
    pub fn verify_some(&self, limit: usize) -> String {
        let mut chain = self.chain.borrow_mut();
        // What the loaded events are, found once per length (a large log is verified in many
        // slices; scanning it for each would cost as much as the slice).
        let (scope, withheld) = match chain.kind {
            Some((len, scope, withheld)) if len == self.stored.len() => (scope, withheld),
            _ => (self.scope(), self.stored.iter().any(|e| e.metadata_redacted)),
        };
        if scope != chain.scope {
            *chain = Chain::new(scope);
        }
        chain.kind = Some((self.stored.len(), scope, withheld));
        // A copy with withheld metadata cannot be checked as a chain (the withheld events'
        // hashes cannot be recomputed): it is checked event by event, links included.
        let end = chain.checked.saturating_add(limit).min(self.stored.len());
        if scope == Scope::Range && !withheld {
            self.verify_chain(&mut chain, end);
        } else {
            self.verify_events(&mut chain, end);
        }
        chain.checked = end;
        let mismatch = self.mismatch(&chain.report);
        let pending = (self.stored.len() - end) as u64;
        json(&ScopedReport { scope, report: &chain.report, withheld: chain.withheld, mismatch, pending })
    }

    /// The bad event's hash or `prevHash` against the value the chain requires.
    fn mismatch(&self, report: &VerifyReport) -> Option<Mismatch> {
        let position = report.first_bad_position?;
        let index = self.stored.binary_search_by_key(&position, |e| e.position).ok()?;
        let event = &self.stored[index];
        match report.fault.as_ref()? {
            ChainFault::HashMismatch => Some(Mismatch {
                field: "hash",
                expected: audit::chain_hash(&event.prev_hash, event),
                actual: event.hash,
            }),
            ChainFault::PrevHashMismatch => {
                // The hash of the event before: the last good one in a range, the adjacent one
                // in a stream export.
                let expected = match index.checked_sub(1).map(|i| &self.stored[i]) {
                    Some(before) => before.hash,
                    None => report.last_hash,
                };
                Some(Mismatch { field: "prevHash", expected, actual: event.prev_hash })
            }
            ChainFault::PositionGap { .. } | ChainFault::HeadMismatch => None,
        }
    }

    /// The last checkpoint the file carried, checked: `{checkpoint, signatureError,
    /// coverage}` ([`CheckpointReport`]).
    pub fn checkpoint(&self) -> String {
        let Some(last) = self.checkpoints.last() else {
            return json(&CheckpointReport { checkpoint: None, signature_error: None, coverage: None });
        };
        json(&self.check(last))
    }

    /// A checkpoint from elsewhere (the server's, on the live tail), checked as
    /// [`Log::checkpoint`] checks the file's own: its signature, and how the loaded events
    /// stand against it. An error for JSON that is not a checkpoint.
    pub fn check_checkpoint(&self, checkpoint_json: &str) -> Result<String, String> {
        let checkpoint: Checkpoint =
            serde_json::from_str(checkpoint_json).map_err(|e| format!("not a checkpoint: {e}"))?;
        Ok(json(&self.check(&checkpoint)))
    }

    fn check(&self, checkpoint: &Checkpoint) -> CheckpointReport {
        CheckpointReport {
            checkpoint: Some(checkpoint.clone()),
            signature_error: checkpoint::verify(checkpoint, None).err().map(|e| e.to_string()),
            coverage: Some(checkpoint::coverage_with_root(&self.stored, checkpoint, |covered| {
                self.tree.root(covered.len() as u64).expect("the tree holds every loaded event")
            })),
        }
    }

    /// A log with gaps in its positions whose events all belong to one stream, or all share
    /// one correlation id, is that export; anything else is a range of the global log.
    fn scope(&self) -> Scope {
        let contiguous = self.stored.windows(2).all(|pair| pair[1].position == pair[0].position + 1);
        let one = |key: &dyn Fn(&StoredEvent) -> Option<String>| {
            let first = self.stored.first().and_then(key);
            first.is_some() && self.stored.iter().all(|e| key(e) == first)
        };
        if contiguous {
            Scope::Range
        } else if one(&|e| Some(format!("{}/{}", e.aggregate_type.as_str(), e.aggregate_id))) {
            Scope::Stream
        } else if one(&|e| e.metadata.correlation_id.map(|id| id.to_string())) {
            Scope::Correlation
        } else {
            Scope::Range
        }
    }

    /// Each event of a stream or correlation export on its own: its hash matches its bytes
    /// and `prevHash`, and `prevHash` is the hash of the event before when that one is
    /// adjacent in the log.
    fn verify_events(&self, chain: &mut Chain, end: usize) {
        for (index, event) in self.stored.iter().enumerate().take(end).skip(chain.checked) {
            if !chain.report.is_ok() {
                return;
            }
            let before = index.checked_sub(1).map(|i| &self.stored[i]);
            // A withheld event's hash covers metadata this copy lacks: only its links are checked,
            // and it is counted apart, never as verified. An event marked withheld that still
            // carries an identity was not withheld by the server: a fault.
            let hash_ok = audit::chain_hash(&event.prev_hash, event) == event.hash;
            let withheld = event.metadata_redacted && !hash_ok;
            let marked_falsely =
                event.metadata_redacted && (event.metadata.user_id.is_some() || event.metadata.ip_address.is_some());
            let fault = if marked_falsely || (!hash_ok && !withheld) {
                Some(ChainFault::HashMismatch)
            } else if before.is_some_and(|b| b.position + 1 == event.position && b.hash != event.prev_hash) {
                Some(ChainFault::PrevHashMismatch)
            } else {
                None
            };
            match fault {
                Some(fault) => {
                    chain.report.first_bad_position = Some(event.position);
                    chain.report.fault = Some(fault);
                }
                None if withheld => {
                    chain.withheld += 1;
                    chain.report.last_hash = event.hash;
                }
                None => {
                    chain.report.verified += 1;
                    chain.report.last_hash = event.hash;
                }
            }
        }
    }

    /// The global log's chain, continued from where the last call stopped.
    fn verify_chain(&self, chain: &mut Chain, end: usize) {
        if chain.checked == 0 {
            if let Some(first) = self.stored.first() {
                chain.head = HashChain { last_position: first.position.saturating_sub(1), last_hash: first.prev_hash };
            }
        }
        let unchecked = &self.stored[chain.checked..end];
        if chain.report.is_ok() && !unchecked.is_empty() {
            let report = audit::verify(unchecked, chain.head);
            if let Some(last) = unchecked.last().filter(|_| report.is_ok()) {
                chain.head = HashChain { last_position: last.position, last_hash: last.hash };
            }
            chain.report = VerifyReport { verified: chain.report.verified + report.verified, ..report };
        }
    }

    fn rows_of(&self, stream: &StreamId) -> &[usize] {
        match self.streams.get(stream) {
            Some(&number) => &self.stream_rows[number as usize].1,
            None => &[],
        }
    }

    fn stream_events(&self, stream: &StreamId) -> Vec<EventEnvelope> {
        self.rows_of(stream).iter().map(|&i| self.events[i].clone()).collect()
    }

    /// The fold of a stream's first events, while `keep` holds: the prefix folds of
    /// `timetravel::state_at_version` and `state_at_time`, over the loaded events by reference
    /// (a stream of 10,000 events is not copied to answer one question).
    fn fold_while(&self, stream: &StreamId, keep: impl Fn(&EventEnvelope) -> bool) -> Option<AggregateState> {
        let events = self.rows_of(stream).iter().map(|&i| &self.events[i]).take_while(|e| keep(e));
        timetravel::fold_stream(stream.aggregate_type, events)
    }

    /// The order streams whose order was placed (or rejected) with the client's own id
    /// `client_order_id` (JSON array of stream keys, in log order): a client order id is the
    /// client's, unique per account at most, so several orders may answer.
    pub fn orders_with_client_order_id(&self, client_order_id: &str) -> String {
        let mut found: Vec<StreamId> = Vec::new();
        for envelope in &self.events {
            let (order_id, id) = match &envelope.event {
                Event::OrderPlaced(e) => (e.order_id, &e.client_order_id),
                Event::OrderRejected(e) => (e.order_id, &e.client_order_id),
                _ => continue,
            };
            let stream = StreamId::order(order_id);
            if id.as_deref() == Some(client_order_id) && !found.contains(&stream) {
                found.push(stream);
            }
        }
        json(&found.iter().map(StreamKey::from).collect::<Vec<_>>())
    }

    /// The stored events of a stream, in version order (JSON array).
    pub fn stream(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let stored: Vec<&StoredEvent> = self.rows_of(&stream).iter().map(|&i| &self.stored[i]).collect();
        Ok(json(&stored))
    }

    /// The indexes (into the log) of a stream's events, in version order.
    pub fn stream_indexes(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<u32>, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        Ok(self.rows_of(&stream).iter().map(|&i| i as u32).collect())
    }

    /// The stored event at `index` (0-based, in log order) as JSON, or `null` past the end.
    pub fn event(&self, index: usize) -> String {
        json(&self.stored.get(index))
    }

    /// The stored events at `indexes` as a JSON array (indexes past the end are left out).
    pub fn events(&self, indexes: &[u32]) -> String {
        let events: Vec<&StoredEvent> = indexes.iter().filter_map(|&i| self.stored.get(i as usize)).collect();
        json(&events)
    }

    /// The global log as columns, from index `from` on.
    pub fn rows(&self, from: usize) -> Rows {
        let events = self.events.get(from..).unwrap_or_default();
        let first_new_stream = self.row_stream[..from.min(self.row_stream.len())].iter().max().map_or(0, |n| n + 1);
        let new_streams: Vec<StreamKey> =
            self.stream_rows[first_new_stream as usize..].iter().map(|(stream, _)| stream.into()).collect();
        Rows {
            positions: events.iter().map(|e| e.position as f64).collect(),
            timestamps: events.iter().map(|e| e.timestamp.millis() as f64).collect(),
            versions: events.iter().map(|e| e.version as u32).collect(),
            event_types: events.iter().map(|e| event_type_code(e.event.event_type())).collect(),
            streams: self.row_stream.get(from..).unwrap_or_default().to_vec(),
            new_streams: json(&new_streams),
        }
    }

    fn indexes_where(&self, keep: impl Fn(&Metadata) -> bool) -> Vec<u32> {
        self.stored.iter().enumerate().filter(|(_, e)| keep(&e.metadata)).map(|(i, _)| i as u32).collect()
    }

    /// The indexes of every event with this correlation id: everything one request caused.
    pub fn by_correlation(&self, id: &str) -> Result<Vec<u32>, String> {
        let id = parse_uuid(id)?;
        Ok(self.indexes_where(|m| m.correlation_id.map(AggregateId::Uuid) == Some(id)))
    }

    /// The indexes of every event this command (its causation id) produced.
    pub fn by_causation(&self, id: &str) -> Result<Vec<u32>, String> {
        let id = parse_uuid(id)?;
        Ok(self.indexes_where(|m| m.causation_id.map(AggregateId::Uuid) == Some(id)))
    }

    /// The indexes of every event recorded on behalf of this user.
    pub fn by_user(&self, id: &str) -> Result<Vec<u32>, String> {
        let id = parse_uuid(id)?;
        Ok(self.indexes_where(|m| m.user_id.is_some_and(|user| AggregateId::Uuid(user.0) == id)))
    }

    /// The accounts this user owns (from their `AccountCreated`), as a JSON array of ids.
    pub fn accounts_of_user(&self, id: &str) -> Result<String, String> {
        let id = parse_uuid(id)?;
        let accounts: Vec<String> = self
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::AccountCreated(created) if AggregateId::Uuid(created.user_id.0) == id => {
                    Some(created.account_id.to_string())
                }
                _ => None,
            })
            .collect();
        Ok(json(&accounts))
    }

    /// The positions this account held (from their `PositionOpened`, each once), as a JSON
    /// array of [`HeldPosition`].
    pub fn positions_of_account(&self, account_id: &str) -> Result<String, String> {
        let id = parse_uuid(account_id)?;
        let mut positions: Vec<HeldPosition> = Vec::new();
        for event in &self.events {
            if let Event::PositionOpened(opened) = &event.event {
                let position_id = opened.position_id.to_string();
                if AggregateId::Uuid(opened.account_id.0) == id
                    && positions.iter().all(|p| p.position_id != position_id)
                {
                    positions.push(HeldPosition { position_id, symbol: opened.symbol.to_string() });
                }
            }
        }
        Ok(json(&positions))
    }

    /// The streams whose id is `id` (an order, account or position id, or a market's
    /// symbol), as a JSON array of `{aggregateType, aggregateId}`.
    pub fn streams_with_id(&self, id: &str) -> String {
        let keys: Vec<StreamKey> = match id.trim().parse::<AggregateId>() {
            Ok(id) => AggregateType::ALL
                .into_iter()
                .map(|aggregate_type| StreamId { aggregate_type, aggregate_id: id })
                .filter(|stream| self.streams.contains_key(stream))
                .map(|stream| StreamKey::from(&stream))
                .collect(),
            Err(_) => Vec::new(),
        };
        json(&keys)
    }

    /// The state of a stream after its event of `version` (`null` before its first event).
    pub fn state_at_version(&self, aggregate_type: &str, aggregate_id: &str, version: u64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        Ok(json(&self.fold_while(&stream, |e| e.version <= version)))
    }

    /// The state of a stream as of a time (milliseconds since the epoch).
    pub fn state_at_time(&self, aggregate_type: &str, aggregate_id: &str, at: i64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        Ok(json(&self.fold_while(&stream, |e| e.timestamp <= Timestamp(at))))
    }
    /// Every state the stream went through, one per event.
    pub fn states(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        Ok(json(&timetravel::states_of_stream(stream.aggregate_type, &self.stream_events(&stream))))
    }

    /// What changed in a stream's state from version `from` to version `to` (JSON array of
    /// `{path, old, new}`; version 0 is "before the stream existed").
    pub fn diff(&self, aggregate_type: &str, aggregate_id: &str, from: u64, to: u64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let at = |version: u64| -> Value {
            let state = self.fold_while(&stream, |e| e.version <= version).filter(|_| version > 0);
            serde_json::to_value(state).expect("states serialize")
        };
        let mut changes = Vec::new();
        diff_values(String::new(), &at(from), &at(to), &mut changes);
        Ok(json(&changes))
    }

    /// An account as the server's read models saw it right after global position `position`
    /// (`{lastPosition, account, positions}`: its summary with available and unrealized PnL,
    /// its open positions valued at the marks of that moment), folded in the browser with the
    /// core's read-model folds over the log's first events. Needs the log from position 1.
    pub fn account_read_model(&self, account_id: &str, position: u64) -> Result<String, String> {
        let account_id: AccountId =
            account_id.trim().parse().map_err(|e| format!("{account_id:?} is not an account id: {e}"))?;
        if self.stored.first().is_some_and(|first| first.position != 1) {
            return Err("read models are folds of the log from position 1; this log starts later".to_owned());
        }
        let mut models = ReadModels::new();
        for event in self.events.iter().take_while(|e| e.position <= position) {
            models.apply(event);
        }
        Ok(json(&AccountReadModel {
            last_position: models.last_position(),
            account: models.accounts().summary(account_id),
            positions: models.positions_for_account(account_id),
        }))
    }

    /// What the stream view shows for one version: `{state, changes}`, the state after the
    /// event of `version` and what changed from the version before — [`Log::state_at_version`]
    /// and [`Log::diff`] of `version - 1` and `version` in one fold (the state before, then
    /// that one event applied to a copy).
    pub fn version_view(&self, aggregate_type: &str, aggregate_id: &str, version: u64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let before = self.fold_while(&stream, |e| e.version < version);
        let after = match (before.clone(), self.rows_of(&stream).get(version.wrapping_sub(1) as usize)) {
            (Some(mut state), Some(&row)) => {
                state.apply(&self.events[row]);
                Some(state)
            }
            (None, Some(&row)) => timetravel::fold_stream(stream.aggregate_type, [&self.events[row]]),
            (before, None) => before,
        };
        let value = |state: &Option<AggregateState>| serde_json::to_value(state).expect("states serialize");
        let mut changes = Vec::new();
        diff_values(String::new(), &value(&before), &value(&after), &mut changes);
        Ok(json(&VersionView { state: after, changes }))
    }

    /// An account's balance after each of its events.
    pub fn balance_series(&self, account_id: &str) -> Result<String, String> {
        self.series("Account", account_id, |state| match state {
            AggregateState::Account(account) => Some(account.balance.to_string()),
            _ => None,
        })
    }

    /// A position's size after each of its events.
    pub fn position_size_series(&self, position_id: &str) -> Result<String, String> {
        self.series("Position", position_id, |state| match state {
            AggregateState::Position(position) => Some(position.size.to_string()),
            _ => None,
        })
    }

    /// An account's equity and realized PnL over time, with its liquidations and funding
    /// payments ([`PnlSeries`]): one pass of the read models over the log from position 1.
    pub fn pnl_series(&self, account_id: &str) -> Result<String, String> {
        let account_id: AccountId =
            account_id.trim().parse().map_err(|e| format!("{account_id:?} is not an account id: {e}"))?;
        if self.stored.first().is_some_and(|first| first.position != 1) {
            return Err("read models are folds of the log from position 1; this log starts later".to_owned());
        }
        let mut models = ReadModels::new();
        let mut series = PnlSeries { equity: Vec::new(), realized: Vec::new(), markers: Vec::new() };
        let mut held: Vec<perpetua_core::ids::PositionId> = Vec::new();
        let mut realized = perpetua_core::Decimal::ZERO;
        for event in &self.events {
            models.apply(event);
            let at = |value: String| Point { position: event.position, timestamp: event.timestamp.millis(), value };
            let ours = |position_id| held.contains(&position_id);
            let mut marker: Option<(&'static str, String)> = None;
            let (moves, realizes) = match &event.event {
                Event::PositionOpened(e) if e.account_id == account_id => {
                    held.push(e.position_id);
                    (true, None)
                }
                Event::PositionDecreased(e) if ours(e.position_id) => (true, Some(e.realized_pnl)),
                Event::PositionClosed(e) if ours(e.position_id) => (true, Some(e.realized_pnl)),
                Event::PositionLiquidated(e) if e.account_id == account_id => {
                    marker = Some((
                        "LIQUIDATION",
                        format!(
                            "liquidated {} {} at mark {} (PnL at mark {}, margin {} released)",
                            e.size, e.symbol, e.mark_price, e.pnl_at_mark, e.margin_released
                        ),
                    ));
                    (true, None)
                }
                Event::FundingPaid(e) if e.account_id == account_id => {
                    marker = Some(("FUNDING", format!("funding paid {} on {}", e.amount, e.symbol)));
                    (true, None)
                }
                Event::FundingReceived(e) if e.account_id == account_id => {
                    marker = Some(("FUNDING", format!("funding received {} on {}", e.amount, e.symbol)));
                    (true, None)
                }
                Event::MarkPriceSet(_) => (!held.is_empty(), None),
                _ => (
                    event.stream == StreamId::account(account_id)
                        || matches!(event.stream.aggregate_type, AggregateType::Position)
                            && held.iter().any(|p| event.stream == StreamId::position(*p)),
                    None,
                ),
            };
            if let Some((kind, label)) = marker {
                series.markers.push(Marker {
                    position: event.position,
                    timestamp: event.timestamp.millis(),
                    kind,
                    label,
                });
            }
            if let Some(pnl) = realizes {
                realized += pnl;
                series.realized.push(at(realized.to_string()));
            }
            if moves {
                if let Some(summary) = models.accounts().summary(account_id) {
                    let open: perpetua_core::Decimal =
                        models.positions_for_account(account_id).iter().map(|p| p.unrealized_pnl).sum();
                    series.equity.push(at((summary.balance + open).to_string()));
                }
            }
        }
        Ok(json(&series))
    }

    fn series(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        value: impl Fn(&AggregateState) -> Option<String>,
    ) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        // One pass, one state: each event is applied to the state before it (as
        // `timetravel::states_of_stream` does), and only the charted value is kept.
        let mut state: Option<AggregateState> = None;
        let mut points = Vec::new();
        for &row in self.rows_of(&stream) {
            let event = &self.events[row];
            match state.as_mut() {
                Some(state) => state.apply(event),
                None => state = timetravel::fold_stream(stream.aggregate_type, [event]),
            }
            if let Some(value) = state.as_ref().and_then(&value) {
                points.push(Point { position: event.position, timestamp: event.timestamp.millis(), value });
            }
        }
        Ok(json(&points))
    }
}

/// Appends to `changes` every leaf where `old` and `new` differ, depth first, keys in order.
/// An absent side (`null`) against an object or array counts as an empty one, so a stream's
/// first state shows as each of its fields appearing.
fn diff_values(path: String, old: &Value, new: &Value, changes: &mut Vec<Change>) {
    let empty = |other: &Value| match other {
        Value::Object(_) => Value::Object(Default::default()),
        Value::Array(_) => Value::Array(Vec::new()),
        _ => Value::Null,
    };
    let (old, new) = match (old, new) {
        (Value::Null, b) => (&empty(b), new),
        (a, Value::Null) => (old, &empty(a)),
        _ => (old, new),
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
            keys.sort();
            for key in keys {
                let (x, y) = (a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null));
                diff_values(format!("{path}/{key}"), x, y, changes);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let (x, y) = (a.get(i).unwrap_or(&Value::Null), b.get(i).unwrap_or(&Value::Null));
                diff_values(format!("{path}/{i}"), x, y, changes);
            }
        }
        (a, b) if a != b => changes.push(Change { path, old: a.clone(), new: b.clone() }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perpetua_core::event::parse_stored_events;

    fn demo_lines() -> Vec<String> {
        let (_, stored) = perpetua_core::demo::sealed_log();
        stored.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect()
    }

    /// The demo's log as an export that carries a checkpoint of its head, and that checkpoint.
    fn demo_export() -> (Vec<String>, String) {
        use perpetua_core::checkpoint::Head;
        let (_, log) = perpetua_core::demo::sealed_log();
        let size = log.len() as u64;
        let root = perpetua_core::merkle::MerkleTree::of_events(log.iter().map(|e| &e.hash)).root(size).unwrap();
        let head =
            Head { tree_size: size, chain_hash: log.last().unwrap().hash, root_hash: root, timestamp: Timestamp(9) };
        let signed = checkpoint::sign(head, &ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
        let lines = log.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        (lines, checkpoint::export_line(&signed))
    }

    #[test]
    fn the_checkpoint_of_an_export_is_checked_and_a_cut_export_is_caught() {
        let (lines, signed) = demo_export();
        let report =
            |text: String| -> Value { serde_json::from_str(&Log::parse(&text).unwrap().checkpoint()).unwrap() };
        let whole = report(format!("{}\n{signed}\n", lines.join("\n")));
        assert_eq!(whole["coverage"]["kind"], "COVERED", "{whole}");
        assert_eq!(whole["signatureError"], Value::Null);
        assert_eq!(whole["checkpoint"]["treeSize"], lines.len());
        let cut = report(format!("{}\n{signed}\n", lines[..lines.len() - 2].join("\n")));
        assert_eq!(cut["coverage"]["kind"], "TRUNCATED", "{cut}");
        assert_eq!(cut["coverage"]["lastPosition"], lines.len() - 2);
        let forged = report(format!("{}\n{}\n", lines.join("\n"), signed.replace("\"treeSize\":", "\"treeSize\":1")));
        assert!(forged["signatureError"].is_string(), "{forged}");
        let none = report(lines.join("\n"));
        assert_eq!(none["checkpoint"], Value::Null);
        assert_eq!(Log::parse(&format!("{}\n{signed}", lines.join("\n"))).unwrap().len(), lines.len(), "not an event");
    }

    /// A file loaded in parts, and verified a slice at a time, is the file loaded and verified
    /// at once: the same events, the same checkpoint, the same report — a fault included.
    #[test]
    fn a_log_loaded_in_parts_and_verified_in_slices_is_the_log_at_once() {
        let (mut lines, signed) = demo_export();
        let at = lines.len() / 3;
        lines[at] = lines[at].replacen("\"version\":", "\"version\":1", 1);
        lines.push(signed);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let whole = Log::parse(&text).unwrap();
        let mut parts = Log::parse(&lines[..700].iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        for chunk in lines[700..].chunks(600) {
            parts.load_more(&chunk.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        }
        assert_eq!(parts.len(), whole.len());
        assert_eq!(parts.checkpoint(), whole.checkpoint());
        let mut report: Value = serde_json::from_str(&parts.verify_some(500)).unwrap();
        assert_eq!(report["pending"], whole.len() - 500);
        let mut slices = 1;
        while report["pending"] != 0 {
            report = serde_json::from_str(&parts.verify_some(500)).unwrap();
            slices += 1;
        }
        assert_eq!(slices, whole.len().div_ceil(500));
        let at_once: Value = serde_json::from_str(&whole.verify()).unwrap();
        assert_eq!(report, at_once);
        assert_eq!(at_once["firstBadPosition"], at + 1, "{at_once}");
        assert!(parts.load_more("not json").is_err());
        assert_eq!(parts.len(), whole.len(), "nothing added on an error");
    }

    /// A checkpoint the live server hands over is checked against the events loaded: the
    /// one of this log covers it; one of another log at the same size does not.
    #[test]
    fn a_checkpoint_from_elsewhere_is_checked_against_the_loaded_events() {
        let (lines, signed) = demo_export();
        let log = Log::parse(&lines.join("\n")).unwrap();
        let checkpoint = &signed["{\"checkpoint\":".len()..signed.len() - 1];
        let ours: Value = serde_json::from_str(&log.check_checkpoint(checkpoint).unwrap()).unwrap();
        assert_eq!(ours["coverage"]["kind"], "COVERED", "{ours}");
        // Another log of the same size: one event's hash differs, so its Merkle root does.
        let mut other = lines.clone();
        let middle = &mut other[lines.len() / 2];
        let at = middle.find("\"hash\":\"").unwrap() + 8;
        let digit = if &middle[at..at + 1] == "0" { "1" } else { "0" };
        middle.replace_range(at..at + 1, digit);
        let forked = Log::parse(&other.join("\n")).unwrap();
        let theirs: Value = serde_json::from_str(&forked.check_checkpoint(checkpoint).unwrap()).unwrap();
        assert_ne!(theirs["coverage"]["kind"], "COVERED", "{theirs}");
        assert!(log.check_checkpoint("{}").is_err());
    }

    fn demo() -> Log {
        Log::parse(&demo_lines().concat()).unwrap()
    }

    fn indexes(log: &Log, found: Vec<u32>) -> Vec<Value> {
        serde_json::from_str(&log.events(&found)).unwrap()
    }

    #[test]
    fn diff_names_each_changed_leaf() {
        let old = serde_json::json!({"a": "1", "b": {"c": [1, 2]}, "gone": true});
        let new = serde_json::json!({"a": "2", "b": {"c": [1, 3, 4]}, "added": 5});
        let mut changes = Vec::new();
        diff_values(String::new(), &old, &new, &mut changes);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["/a", "/added", "/b/c/1", "/b/c/2", "/gone"]);
        assert_eq!(changes[0], Change { path: "/a".into(), old: "1".into(), new: "2".into() });
    }

    #[test]
    fn questions_about_the_demo_log() {
        let log = demo();
        assert!(log.verify().contains("\"firstBadPosition\":null"));
        // The first account opened: its balance series follows its stream event by event.
        let account = log.events.iter().find(|e| e.stream.aggregate_type == AggregateType::Account).unwrap();
        let id = account.stream.aggregate_id.to_string();
        let stream: Vec<Value> = serde_json::from_str(&log.stream("Account", &id).unwrap()).unwrap();
        let series: Vec<Value> = serde_json::from_str(&log.balance_series(&id).unwrap()).unwrap();
        assert_eq!(series.len(), stream.len());
        let last = &series[series.len() - 1];
        let state: Value =
            serde_json::from_str(&log.state_at_version("Account", &id, stream.len() as u64).unwrap()).unwrap();
        assert_eq!(last["value"], state["state"]["balance"]);
        assert_eq!(log.state_at_version("Account", &id, 0).unwrap(), "null");
        // From nothing to version 1 every field is new; between two versions only what moved.
        let created: Vec<Value> = serde_json::from_str(&log.diff("Account", &id, 0, 1).unwrap()).unwrap();
        assert!(created.iter().all(|c| c["old"].is_null()));
        let moved: Vec<Value> = serde_json::from_str(&log.diff("Account", &id, 1, 2).unwrap()).unwrap();
        assert!(created.iter().any(|c| c["path"] == "/aggregateType" && c["new"] == "Account"));
        assert!(moved.iter().all(|c| c["path"] != "/aggregateType" && !c["old"].is_null()), "{moved:?}");
        assert!(moved.iter().any(|c| c["path"] == "/state/version" && c["old"] == 1 && c["new"] == 2));
        assert!(log.stream("Nope", &id).is_err());
    }

    #[test]
    fn a_log_loaded_in_two_parts_is_the_log_loaded_at_once() {
        let lines = demo_lines();
        let whole = Log::parse(&lines.concat()).unwrap();
        let mut parts = Log::parse(&lines[..100].concat()).unwrap();
        assert!(parts.verify().contains("\"verified\":100,"));
        // The tail resumes a little early: what is already loaded is skipped.
        assert_eq!(parts.append(&lines[90..].concat()), Ok(lines.len() - 100));
        assert_eq!(parts.len(), whole.len());
        assert_eq!(parts.verify(), whole.verify());
        assert_eq!(parts.rows(0), whole.rows(0));
        assert_eq!(parts.rows(100), whole.rows(100));
        assert_eq!(parts.append(""), Ok(0));
    }

    /// A trader's export of its own account stream: the events another user's command caused
    /// come with that user's identity withheld. They are counted apart, never as verified —
    /// also when a forger marks an altered event as withheld.
    #[test]
    fn withheld_metadata_is_never_counted_as_verified() {
        let (_, stored) = perpetua_core::demo::sealed_log();
        // A resting order filled by another trader's order: the maker's stream.
        let fill =
            stored.iter().find(|e| e.event_type == "OrderMatched" && e.payload.get().contains("\"isMaker\":true"));
        let stream = fill.unwrap().aggregate_id;
        let of_stream: Vec<_> = stored.iter().filter(|e| e.aggregate_id == stream).collect();
        let viewer = of_stream[0].metadata.user_id.expect("the maker placed it");
        let copies: Vec<StoredEvent> = of_stream.iter().map(|e| e.redacted_for(viewer)).collect();
        let withheld = copies.iter().filter(|e| e.metadata_redacted).count();
        assert!(withheld > 0, "the fill came from another user's command");
        assert!(copies.iter().all(|e| e.metadata_redacted || e.metadata.user_id == Some(viewer)));
        assert!(copies.iter().filter(|e| e.metadata_redacted).all(|e| e.metadata.ip_address.is_none()));
        let text: String = copies.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        let report: Value = serde_json::from_str(&Log::parse(&text).unwrap().verify()).unwrap();
        assert_eq!(report["scope"], "stream");
        assert_eq!(report["withheld"], withheld);
        assert_eq!(report["verified"], copies.len() - withheld);
        assert_eq!(report["firstBadPosition"], Value::Null);

        // A forged amount on a withheld copy is never counted as verified; marking an event
        // withheld while it still names its user is a fault.
        let mut forged: Vec<String> = copies.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        let at = copies.iter().position(|e| e.metadata_redacted).unwrap();
        forged[at] = forged[at].replacen("\"quantity\":\"", "\"quantity\":\"9", 1);
        assert_ne!(forged[at], serde_json::to_string(&copies[at]).unwrap(), "the payload was altered");
        let report: Value = serde_json::from_str(&Log::parse(&forged.join("\n")).unwrap().verify()).unwrap();
        assert_eq!(report["withheld"], withheld);
        assert_eq!(report["verified"], copies.len() - withheld);
        let lines: Vec<String> = of_stream.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        let mut marked = lines.clone();
        marked[1] = marked[1].replacen("\"hash\"", "\"metadataRedacted\":true,\"hash\"", 1);
        let report: Value = serde_json::from_str(&Log::parse(&marked.join("\n")).unwrap().verify()).unwrap();
        assert_eq!(report["firstBadPosition"], of_stream[1].position, "{report}");
        // A withheld account stream whose positions are contiguous is checked event by event.
        let around = fill.unwrap().position as usize;
        let contiguous: Vec<StoredEvent> =
            stored[around - 5..around + 5].iter().map(|e| e.redacted_for(viewer)).collect();
        let text: String = contiguous.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        let report: Value = serde_json::from_str(&Log::parse(&text).unwrap().verify()).unwrap();
        assert_eq!(report["firstBadPosition"], Value::Null, "{report}");
        assert!(report["withheld"].as_u64().unwrap() > 0);
    }

    #[test]
    fn append_refuses_a_gap_and_appends_nothing() {
        let lines = demo_lines();
        let mut log = Log::parse(&lines[..10].concat()).unwrap();
        let error = log.append(&lines[11..20].concat()).unwrap_err();
        assert!(error.contains("position 11 is missing"), "{error}");
        assert_eq!(log.len(), 10);
        assert!(log.append("not json").is_err());
        assert_eq!(log.len(), 10);
    }

    #[test]
    fn an_altered_payload_is_named_and_stays_named_as_the_log_grows() {
        let mut lines = demo_lines();
        let at = lines.iter().position(|l| l.contains("\"PositionOpened\"")).unwrap();
        let original = lines[at].clone();
        lines[at] = original.replacen("\"size\":\"", "\"size\":\"1", 1);
        assert_ne!(lines[at], original, "the size was altered");
        let mut log = Log::parse(&lines[..at - 5].concat()).unwrap();
        assert!(log.verify().contains("\"firstBadPosition\":null"));
        log.append(&lines[at - 5..at + 5].concat()).unwrap();
        let report: Value = serde_json::from_str(&log.verify()).unwrap();
        assert_eq!(report["firstBadPosition"], at + 1);
        assert_eq!(report["fault"]["kind"], "HASH_MISMATCH");
        // The stored hash is the original's; the hash its bytes now give is another.
        let stored: Value = serde_json::from_str(&original).unwrap();
        let altered = parse_stored_events(&lines[at]).unwrap().remove(0);
        assert_eq!(report["mismatch"]["field"], "hash");
        assert_eq!(report["mismatch"]["actual"], stored["hash"]);
        assert_eq!(report["mismatch"]["expected"], audit::chain_hash(&altered.prev_hash, &altered).to_string());
        assert_ne!(report["mismatch"]["expected"], report["mismatch"]["actual"]);
        log.append(&lines[at + 5..].concat()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&log.verify()).unwrap(), report);
    }

    /// A `prevHash` that is not the hash of the event before: both are named.
    #[test]
    fn an_altered_prev_hash_names_the_hash_it_should_be() {
        let mut lines = demo_lines();
        let at = lines.len() / 2;
        let before: Value = serde_json::from_str(&lines[at - 1]).unwrap();
        let prev = before["hash"].as_str().unwrap().to_string();
        let other = format!("{}{}", if prev.starts_with('0') { "1" } else { "0" }, &prev[1..]);
        lines[at] = lines[at].replace(&format!("\"prevHash\":\"{prev}\""), &format!("\"prevHash\":\"{other}\""));
        let log = Log::parse(&lines.concat()).unwrap();
        let report: Value = serde_json::from_str(&log.verify()).unwrap();
        assert_eq!(report["firstBadPosition"], at + 1);
        assert_eq!(report["mismatch"], serde_json::json!({ "field": "prevHash", "expected": prev, "actual": other }));
        assert_eq!(serde_json::from_str::<Value>(&demo().verify()).unwrap()["mismatch"], Value::Null);
    }

    #[test]
    fn rows_are_columns_of_the_log() {
        let log = demo();
        let rows = log.rows(0);
        assert_eq!(rows.positions.len(), log.len());
        let streams: Vec<Value> = serde_json::from_str(&rows.new_streams).unwrap();
        assert_eq!(streams.len(), log.stream_rows.len());
        let names: Vec<String> = serde_json::from_str(&event_type_names()).unwrap();
        for (i, event) in log.stored.iter().enumerate().step_by(97) {
            assert_eq!(rows.positions[i], event.position as f64);
            assert_eq!(rows.versions[i] as u64, event.version);
            assert_eq!(names[rows.event_types[i] as usize], event.event_type);
            let stream = &streams[rows.streams[i] as usize];
            assert_eq!(stream["aggregateType"], event.aggregate_type.as_str());
            assert_eq!(stream["aggregateId"], event.aggregate_id.to_string());
        }
        // From a later row, only the streams first seen there are new.
        let later = log.rows(log.len() - 1);
        let seen_before = log.row_stream[..log.len() - 1].iter().max().unwrap() + 1;
        let new: Vec<Value> = serde_json::from_str(&later.new_streams).unwrap();
        assert_eq!(new.len(), log.stream_rows.len() - seen_before as usize);
    }

    /// The liquidated account's equity ends where its read model does, its realized PnL is the
    /// sum of its positions' fills, and its liquidation is marked.
    #[test]
    fn an_accounts_equity_and_realized_pnl_follow_its_read_model() {
        let log = demo();
        let liquidated = log.events.iter().find_map(|e| match &e.event {
            Event::PositionLiquidated(l) => Some(l.clone()),
            _ => None,
        });
        let liquidated = liquidated.expect("the demo liquidates");
        let account = liquidated.account_id.to_string();
        let series: Value = serde_json::from_str(&log.pnl_series(&account).unwrap()).unwrap();
        let markers = series["markers"].as_array().unwrap();
        assert!(markers.iter().any(|m| m["kind"] == "LIQUIDATION"), "{markers:?}");
        let last = log.stored.last().unwrap().position;
        let model: Value = serde_json::from_str(&log.account_read_model(&account, last).unwrap()).unwrap();
        let open: perpetua_core::Decimal = model["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["unrealizedPnl"].as_str().unwrap().parse::<perpetua_core::Decimal>().unwrap())
            .sum();
        let balance: perpetua_core::Decimal = model["account"]["balance"].as_str().unwrap().parse().unwrap();
        let equity = series["equity"].as_array().unwrap().last().unwrap()["value"].as_str().unwrap();
        assert_eq!(equity.parse::<perpetua_core::Decimal>().unwrap(), balance + open);
        let positions: Vec<_> = log
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::PositionOpened(o) if o.account_id == liquidated.account_id => Some(o.position_id),
                _ => None,
            })
            .collect();
        let fills: perpetua_core::Decimal = log
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::PositionDecreased(d) if positions.contains(&d.position_id) => Some(d.realized_pnl),
                Event::PositionClosed(c) if positions.contains(&c.position_id) => Some(c.realized_pnl),
                _ => None,
            })
            .sum();
        let realized = series["realized"].as_array().unwrap();
        let last_realized =
            realized.last().map_or(perpetua_core::Decimal::ZERO, |p| p["value"].as_str().unwrap().parse().unwrap());
        assert_eq!(last_realized, fills);
        assert!(log.pnl_series("not an id").is_err());
    }

    #[test]
    fn one_command_and_one_user_are_found_across_streams() {
        let log = demo();
        let liquidated = log.stored.iter().find(|e| e.event_type == "PositionLiquidated").unwrap();
        let command = liquidated.metadata.causation_id.unwrap().to_string();
        let caused = indexes(&log, log.by_causation(&command).unwrap());
        assert!(caused.iter().any(|e| e["eventType"] == "PositionLiquidated"));
        assert!(caused.iter().any(|e| e["aggregateType"] == "Account"), "the liquidation settles accounts");
        assert!(caused.iter().all(|e| e["metadata"]["causationId"] == command));
        let correlated = log.by_correlation(&command).unwrap();
        assert!(correlated.len() >= caused.len());
        assert!(log.by_causation("not an id").is_err());

        let placed = log.events.iter().find(|e| matches!(e.event, Event::OrderPlaced(_))).unwrap();
        let Event::OrderPlaced(order) = &placed.event else { unreachable!() };
        let user = order.user_id.0.to_string();
        let by_user = indexes(&log, log.by_user(&user).unwrap());
        assert!(by_user.iter().all(|e| e["metadata"]["userId"] == user.as_str()));
        let accounts: Vec<String> = serde_json::from_str(&log.accounts_of_user(&user).unwrap()).unwrap();
        assert_eq!(accounts, vec![order.account_id.to_string()]);

        let position = liquidated.aggregate_id.to_string();
        let owner = log.events.iter().find_map(|e| match &e.event {
            Event::PositionOpened(opened) if opened.position_id.to_string() == position => Some(opened.account_id),
            _ => None,
        });
        let held: Vec<Value> =
            serde_json::from_str(&log.positions_of_account(&owner.unwrap().to_string()).unwrap()).unwrap();
        assert!(held.iter().any(|p| p["positionId"] == position.as_str() && p["symbol"] == "BTCUSDT"));
        assert_eq!(
            log.streams_with_id(&position),
            format!(r#"[{{"aggregateType":"Position","aggregateId":"{position}"}}]"#)
        );
        assert_eq!(log.streams_with_id("BTCUSDT"), r#"[{"aggregateType":"Market","aggregateId":"BTCUSDT"}]"#);
        assert_eq!(log.streams_with_id("nothing here"), "[]");
        // The demo's traders name some orders: each is found by its client order id alone.
        let named = log.events.iter().find_map(|e| match &e.event {
            Event::OrderPlaced(placed) => placed.client_order_id.clone().map(|id| (id, placed.order_id)),
            _ => None,
        });
        let (client_order_id, order_id) = named.expect("the demo names orders");
        assert_eq!(
            log.orders_with_client_order_id(&client_order_id),
            format!(r#"[{{"aggregateType":"Order","aggregateId":"{order_id}"}}]"#)
        );
        assert_eq!(log.orders_with_client_order_id("no-such-order"), "[]");
        let versions = log.stream_indexes("Position", &position).unwrap();
        assert_eq!(indexes(&log, versions.clone()).last().unwrap()["version"], versions.len());
    }

    #[test]
    fn folds_by_reference_agree_with_time_travel() {
        let log = demo();
        let liquidated = log.stored.iter().find(|e| e.event_type == "PositionLiquidated").unwrap();
        let account = log.stored.iter().rev().find(|e| e.aggregate_type == AggregateType::Account).unwrap();
        for event in [liquidated, account] {
            let (kind, id) = (event.aggregate_type.as_str(), event.aggregate_id.to_string());
            let stream = stream_of(kind, &id).unwrap();
            let events = log.stream_events(&stream);
            for version in 0..=events.len() as u64 + 1 {
                let expected = timetravel::state_at_version(stream.aggregate_type, &events, version);
                assert_eq!(log.state_at_version(kind, &id, version).unwrap(), json(&expected));
            }
            for event in &events {
                let at = event.timestamp;
                let expected = timetravel::state_at_time(stream.aggregate_type, &events, at);
                assert_eq!(log.state_at_time(kind, &id, at.millis()).unwrap(), json(&expected));
                let before = Timestamp(at.millis() - 1);
                let expected = timetravel::state_at_time(stream.aggregate_type, &events, before);
                assert_eq!(log.state_at_time(kind, &id, before.millis()).unwrap(), json(&expected));
            }
        }
    }

    #[test]
    fn series_follow_every_state_of_the_stream() {
        let log = demo();
        for event in log.stored.iter().filter(|e| e.aggregate_type != AggregateType::Order).step_by(53) {
            let (kind, id) = (event.aggregate_type.as_str(), event.aggregate_id.to_string());
            let stream = stream_of(kind, &id).unwrap();
            let events = log.stream_events(&stream);
            let expected: Vec<String> = timetravel::states_of_stream(stream.aggregate_type, &events)
                .iter()
                .filter_map(|state| match state {
                    AggregateState::Account(account) => Some(account.balance.to_string()),
                    AggregateState::Position(position) => Some(position.size.to_string()),
                    _ => None,
                })
                .collect();
            let series = match event.aggregate_type {
                AggregateType::Account => log.balance_series(&id).unwrap(),
                AggregateType::Position => log.position_size_series(&id).unwrap(),
                _ => continue,
            };
            let values: Vec<Value> = serde_json::from_str(&series).unwrap();
            let values: Vec<&str> = values.iter().map(|p| p["value"].as_str().unwrap()).collect();
            assert_eq!(values, expected, "{kind} {id}");
        }
    }

    #[test]
    fn the_view_of_a_version_is_its_state_and_the_diff_from_the_one_before() {
        let log = demo();
        let account = log.stored.iter().rev().find(|e| e.aggregate_type == AggregateType::Account).unwrap();
        let liquidated = log.stored.iter().find(|e| e.event_type == "PositionLiquidated").unwrap();
        for event in [account, liquidated] {
            let (kind, id) = (event.aggregate_type.as_str(), event.aggregate_id.to_string());
            let versions = log.stream_indexes(kind, &id).unwrap().len() as u64;
            for version in 0..=versions + 1 {
                let view: Value = serde_json::from_str(&log.version_view(kind, &id, version).unwrap()).unwrap();
                let state: Value = serde_json::from_str(&log.state_at_version(kind, &id, version).unwrap()).unwrap();
                assert_eq!(view["state"], state, "{kind} v{version}");
                if (1..=versions).contains(&version) {
                    let changes: Value =
                        serde_json::from_str(&log.diff(kind, &id, version - 1, version).unwrap()).unwrap();
                    assert_eq!(view["changes"], changes, "{kind} v{version}");
                }
            }
        }
    }

    #[test]
    fn stream_and_correlation_exports_are_verified_event_by_event() {
        let lines = demo_lines();
        let log = demo();
        let liquidated = log.stored.iter().find(|e| e.event_type == "PositionLiquidated").unwrap();
        let of = |keep: &dyn Fn(&StoredEvent) -> bool| -> Vec<String> {
            log.stored.iter().zip(&lines).filter(|(e, _)| keep(e)).map(|(_, line)| line.clone()).collect()
        };
        let report = |lines: &[String]| -> Value {
            serde_json::from_str(&Log::parse(&lines.concat()).unwrap().verify()).unwrap()
        };

        let stream = of(&|e| e.aggregate_id == liquidated.aggregate_id);
        let verified = report(&stream);
        assert_eq!(
            (verified["scope"].as_str(), verified["verified"].as_u64()),
            (Some("stream"), Some(stream.len() as u64))
        );
        assert!(verified["firstBadPosition"].is_null());

        // One command's events are contiguous: its correlation export is a range.
        let command = liquidated.metadata.correlation_id;
        let correlated = of(&|e| e.metadata.correlation_id == command);
        let verified = report(&correlated);
        assert_eq!((verified["scope"].as_str(), verified["verified"].as_u64()), (Some("range"), Some(5)));
        assert!(verified["firstBadPosition"].is_null(), "{verified}");

        // A request of two commands apart in the log (the log re-sealed with the second
        // command correlated to the first) is exported with a gap: each event is checked.
        let mut envelopes = log.events.clone();
        let (first, second) = (envelopes[100].metadata.clone(), envelopes[400].metadata.causation_id);
        for envelope in envelopes.iter_mut().filter(|e| e.metadata.causation_id == second) {
            let mut metadata = (*envelope.metadata).clone();
            metadata.correlation_id = first.correlation_id;
            envelope.metadata = std::sync::Arc::new(metadata);
        }
        let resealed = perpetua_core::audit::HashChain::default().seal(&mut envelopes);
        let request: Vec<String> = resealed
            .iter()
            .filter(|e| e.metadata.correlation_id == first.correlation_id)
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        let verified = report(&request);
        assert_eq!(
            (verified["scope"].as_str(), verified["verified"].as_u64()),
            (Some("correlation"), Some(request.len() as u64))
        );

        // An altered event is found on its own, even with no neighbour to link to.
        let mut altered = stream.clone();
        altered[0] = altered[0].replacen("\"size\":\"", "\"size\":\"1", 1);
        let found = report(&altered);
        assert_eq!(
            found["firstBadPosition"],
            log.stored.iter().find(|e| e.aggregate_id == liquidated.aggregate_id).unwrap().position
        );
        assert_eq!(found["fault"]["kind"], "HASH_MISMATCH");

        // A range of the global log with an event missing is a gap, not a stream export.
        let mut range = lines[..50].to_vec();
        range.remove(20);
        let gap = report(&range);
        assert_eq!((gap["scope"].as_str(), gap["firstBadPosition"].as_u64()), (Some("range"), Some(21)));
        assert_eq!(gap["fault"]["kind"], "POSITION_GAP");
    }

    #[test]
    fn an_account_as_the_read_models_saw_it_at_a_position() {
        let log = demo();
        let liquidated = log.stored.iter().find(|e| e.event_type == "PositionLiquidated").unwrap();
        let opened = log.events.iter().find_map(|e| match &e.event {
            Event::PositionOpened(p) if p.position_id.to_string() == liquidated.aggregate_id.to_string() => Some(p),
            _ => None,
        });
        let account = opened.unwrap().account_id.to_string();
        let at = |position: u64| -> Value {
            serde_json::from_str(&log.account_read_model(&account, position).unwrap()).unwrap()
        };
        // Just before the liquidation the isolated position is open; just after, it is gone.
        let before = at(liquidated.position - 1);
        assert_eq!(before["lastPosition"], liquidated.position - 1);
        assert!(before["positions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["positionId"] == liquidated.aggregate_id.to_string()));
        let after = at(liquidated.position);
        assert!(after["positions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["positionId"] != liquidated.aggregate_id.to_string()));
        // The balance is the account stream's balance at the same point.
        let balance: Vec<Value> = serde_json::from_str(&log.balance_series(&account).unwrap()).unwrap();
        let last = balance.iter().rev().find(|p| p["position"].as_u64().unwrap() <= liquidated.position).unwrap();
        assert_eq!(after["account"]["balance"], last["value"]);
        assert!(log.account_read_model("nope", 1).is_err());
        let later = Log::parse(&demo_lines()[10..].concat()).unwrap();
        assert!(later.account_read_model(&account, 2_000).unwrap_err().contains("position 1"));
    }
}
