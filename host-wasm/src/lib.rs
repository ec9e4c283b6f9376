//! wasm-bindgen bindings over `perpetua-core` for the browser audit viewer.
//!
//! An exported log (JSON array or JSON Lines) is loaded into an `AuditLog`, which answers what
//! the viewer (`web/`) asks: the chain's verification, the global log as columns, a stream's
//! events, its state at a version or a time, every state it went through, a structured diff
//! between two versions, the events one command, request or user caused, balance and
//! position-size series; it grows by the events of the live tail (`append`). Beside it, the
//! one-shot `verifyChain` and `replaySummary`, and the Merkle proofs' verifiers
//! (`verifyInclusionProof`, `verifyConsistencyProof`). Answers are JSON text or typed arrays.

pub mod proofs;
#[cfg(feature = "ts")]
pub mod typescript;
pub mod viewer;

use perpetua_core::audit;
use perpetua_core::event::parse_stored_events;
use perpetua_core::Exchange;
use wasm_bindgen::prelude::*;

/// Verifies the hash chain of an exported log; returns the JSON `VerifyReport`
/// (`{verified, firstBadPosition, fault, lastHash}`), or throws with a decode error.
#[wasm_bindgen(js_name = verifyChain)]
pub fn verify_chain(log: &str) -> Result<String, JsError> {
    let events = parse_stored_events(log).map_err(|e| JsError::new(&e.to_string()))?;
    let report = audit::verify_range(&events);
    Ok(serde_json::to_string(&report).expect("report serializes"))
}

/// Whether an inclusion proof (the JSON of `/v1/audit/proofs/inclusion`) holds: its event's
/// leaf is under its `rootHash` (RFC 9162). Throws on JSON that is not such a proof.
#[wasm_bindgen(js_name = verifyInclusionProof)]
pub fn verify_inclusion_proof(proof: &str) -> Result<bool, JsError> {
    proofs::inclusion_holds(proof).map_err(js_error)
}

/// Whether a consistency proof (the JSON of `/v1/audit/proofs/consistency`) holds: the later
/// tree head extends the earlier one, the log only appended to. Throws on JSON that is not
/// such a proof.
#[wasm_bindgen(js_name = verifyConsistencyProof)]
pub fn verify_consistency_proof(proof: &str) -> Result<bool, JsError> {
    proofs::consistency_holds(proof).map_err(js_error)
}

/// Checks an order's receipt (the JSON of `/v1/orders/{orderId}/receipt`) with nothing else:
/// the checkpoint's signature (by one of `trustedKeys`, public keys in hex, when any are
/// given), each event's hash over its bytes, and its inclusion proof to the checkpoint's
/// root. Returns `{ok, eventsBytesChecked, error}`; throws on JSON that is not a receipt.
#[wasm_bindgen(js_name = verifyReceipt)]
pub fn verify_receipt(receipt: &str, trusted_keys: Vec<String>) -> Result<String, JsError> {
    proofs::receipt_report(receipt, &trusted_keys).map_err(js_error)
}

/// Replays an exported log from position 1 and returns `{lastPosition, accounts, orders, positions}`.
#[wasm_bindgen(js_name = replaySummary)]
pub fn replay_summary(log: &str) -> Result<String, JsError> {
    summary(log)
}

/// [`replay_summary`] over the log's bytes (a file or a fetched body as a `Uint8Array`): the
/// bytes are copied into wasm memory as they are, without re-encoding a JavaScript string.
#[wasm_bindgen(js_name = replaySummaryBytes)]
pub fn replay_summary_bytes(log: &[u8]) -> Result<String, JsError> {
    summary(utf8(log)?)
}

fn utf8(bytes: &[u8]) -> Result<&str, JsError> {
    std::str::from_utf8(bytes).map_err(|e| JsError::new(&format!("the log is not UTF-8: {e}")))
}

fn summary(log: &str) -> Result<String, JsError> {
    let stored = parse_stored_events(log).map_err(|e| JsError::new(&e.to_string()))?;
    let events =
        stored.iter().map(|e| e.decode()).collect::<Result<Vec<_>, _>>().map_err(|e| JsError::new(&e.to_string()))?;
    let exchange = Exchange::replay(&events);
    let summary = viewer::ReplaySummary {
        last_position: exchange.last_position(),
        accounts: exchange.accounts().count(),
        orders: exchange.orders().count(),
        positions: exchange.positions().count(),
    };
    Ok(serde_json::to_string(&summary).expect("summary serializes"))
}

fn js_error(message: String) -> JsError {
    JsError::new(&message)
}

/// A loaded log, queried by the audit viewer. Answers are JSON text or typed arrays.
#[wasm_bindgen]
pub struct AuditLog(viewer::Log);

#[wasm_bindgen]
impl AuditLog {
    /// Parses and decodes a JSON array or JSON Lines of stored events; throws on bad input.
    #[wasm_bindgen(constructor)]
    pub fn new(text: &str) -> Result<AuditLog, JsError> {
        viewer::Log::parse(text).map(AuditLog).map_err(js_error)
    }

    /// [`AuditLog::new`] over the log's bytes (a file or a fetched body as a `Uint8Array`).
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditLog, JsError> {
        AuditLog::new(utf8(bytes)?)
    }

    /// Number of events.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.0.len()
    }

    /// `{scope, verified, firstBadPosition, fault, lastHash}` for everything loaded: a range of
    /// the log (`scope: "range"`) is verified as a chain; a stream or correlation export, whose
    /// positions have gaps, event by event. Only the events appended since the last call are
    /// checked.
    pub fn verify(&self) -> String {
        self.0.verify()
    }

    /// `verify`, of at most `limit` more events (`pending` says how many are left): a large
    /// log is verified a slice at a time, the page kept responsive between slices.
    #[wasm_bindgen(js_name = verifySome)]
    pub fn verify_some(&self, limit: u32) -> String {
        self.0.verify_some(limit as usize)
    }

    /// The next part of a file loaded a part at a time (JSON Lines bytes cut at a line end):
    /// its events and checkpoints are added as if the whole file had been parsed at once.
    /// Returns how many events were added; throws, adding nothing, when they do not decode.
    /// Room for `additional` more events, before a large file's parts are loaded.
    pub fn reserve(&mut self, additional: u32) {
        self.0.reserve(additional as usize);
    }

    #[wasm_bindgen(js_name = loadMore)]
    pub fn load_more(&mut self, bytes: &[u8]) -> Result<usize, JsError> {
        self.0.load_more(utf8(bytes)?).map_err(js_error)
    }

    /// `{checkpoint, signatureError, coverage}`: the last signed checkpoint the file carried,
    /// its signature checked under the key it names, and whether the file's events are the log
    /// it states (`coverage.kind`: `COVERED`, `TRUNCATED`, `CHAIN_HASH_MISMATCH`,
    /// `ROOT_MISMATCH`, `NOT_WHOLE_LOG`); all `null` when the file carries none.
    pub fn checkpoint(&self) -> String {
        self.0.checkpoint()
    }

    /// A checkpoint from elsewhere (the live server's), checked the same way: `{checkpoint,
    /// signatureError, coverage}` against the loaded events.
    #[wasm_bindgen(js_name = checkCheckpoint)]
    pub fn check_checkpoint(&self, checkpoint: &str) -> Result<String, JsError> {
        self.0.check_checkpoint(checkpoint).map_err(js_error)
    }

    /// The stored events of a stream, in version order.
    pub fn stream(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, JsError> {
        self.0.stream(aggregate_type, aggregate_id).map_err(js_error)
    }

    /// `{aggregateType, state}` after the event of `version`, or `null`.
    #[wasm_bindgen(js_name = stateAtVersion)]
    pub fn state_at_version(&self, aggregate_type: &str, aggregate_id: &str, version: u32) -> Result<String, JsError> {
        self.0.state_at_version(aggregate_type, aggregate_id, u64::from(version)).map_err(js_error)
    }

    /// The state as of a time (milliseconds since the epoch), or `null`.
    #[wasm_bindgen(js_name = stateAtTime)]
    pub fn state_at_time(&self, aggregate_type: &str, aggregate_id: &str, at: f64) -> Result<String, JsError> {
        self.0.state_at_time(aggregate_type, aggregate_id, at as i64).map_err(js_error)
    }

    /// Every state the stream went through.
    pub fn states(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, JsError> {
        self.0.states(aggregate_type, aggregate_id).map_err(js_error)
    }

    /// `{lastPosition, account, positions}`: an account's summary and open positions as the
    /// read models saw them right after global position `position` (the log from position 1).
    #[wasm_bindgen(js_name = accountReadModel)]
    pub fn account_read_model(&self, account_id: &str, position: f64) -> Result<String, JsError> {
        self.0.account_read_model(account_id, position as u64).map_err(js_error)
    }

    /// `{state, changes}`: the state after the event of `version` and the `[{path, old, new}]`
    /// from the version before, in one fold (what the stream view shows).
    #[wasm_bindgen(js_name = versionView)]
    pub fn version_view(&self, aggregate_type: &str, aggregate_id: &str, version: u32) -> Result<String, JsError> {
        self.0.version_view(aggregate_type, aggregate_id, u64::from(version)).map_err(js_error)
    }

    /// `[{path, old, new}]` between versions `from` and `to` (0 is before the first event).
    pub fn diff(&self, aggregate_type: &str, aggregate_id: &str, from: u32, to: u32) -> Result<String, JsError> {
        self.0.diff(aggregate_type, aggregate_id, u64::from(from), u64::from(to)).map_err(js_error)
    }

    /// `[{position, timestamp, value}]`: an account's balance after each of its events.
    #[wasm_bindgen(js_name = balanceSeries)]
    pub fn balance_series(&self, account_id: &str) -> Result<String, JsError> {
        self.0.balance_series(account_id).map_err(js_error)
    }

    /// `{equity, realized, markers}`: an account's equity and realized PnL over time, and its
    /// liquidations and funding payments to mark on the charts.
    #[wasm_bindgen(js_name = pnlSeries)]
    pub fn pnl_series(&self, account_id: &str) -> Result<String, JsError> {
        self.0.pnl_series(account_id).map_err(js_error)
    }

    /// `[{position, timestamp, value}]`: a position's size after each of its events.
    #[wasm_bindgen(js_name = positionSizeSeries)]
    pub fn position_size_series(&self, position_id: &str) -> Result<String, JsError> {
        self.0.position_size_series(position_id).map_err(js_error)
    }

    /// Appends events that continue the log (JSON Lines or a JSON array, e.g. from the live
    /// tail); events already loaded are skipped. Returns how many were appended; throws, and
    /// appends nothing, when they do not continue the log or do not decode.
    pub fn append(&mut self, text: &str) -> Result<usize, JsError> {
        self.0.append(text).map_err(js_error)
    }

    /// The global log as columns from index `from` on (see `LogRows`).
    pub fn rows(&self, from: usize) -> LogRows {
        let rows = self.0.rows(from);
        LogRows {
            positions: rows.positions,
            timestamps: rows.timestamps,
            versions: rows.versions,
            event_types: rows.event_types,
            streams: rows.streams,
            new_streams: rows.new_streams,
        }
    }

    /// The stored event at `index` (0-based, in log order) as JSON, or `null`.
    pub fn event(&self, index: usize) -> String {
        self.0.event(index)
    }

    /// The stored events at these indexes, as a JSON array.
    pub fn events(&self, indexes: &[u32]) -> String {
        self.0.events(indexes)
    }

    /// The indexes of a stream's events, in version order.
    #[wasm_bindgen(js_name = streamIndexes)]
    pub fn stream_indexes(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<u32>, JsError> {
        self.0.stream_indexes(aggregate_type, aggregate_id).map_err(js_error)
    }

    /// The indexes of every event with this correlation id.
    #[wasm_bindgen(js_name = byCorrelation)]
    pub fn by_correlation(&self, id: &str) -> Result<Vec<u32>, JsError> {
        self.0.by_correlation(id).map_err(js_error)
    }

    /// The indexes of every event produced by this command (causation id).
    #[wasm_bindgen(js_name = byCausation)]
    pub fn by_causation(&self, id: &str) -> Result<Vec<u32>, JsError> {
        self.0.by_causation(id).map_err(js_error)
    }

    /// The indexes of every event recorded on behalf of this user.
    #[wasm_bindgen(js_name = byUser)]
    pub fn by_user(&self, id: &str) -> Result<Vec<u32>, JsError> {
        self.0.by_user(id).map_err(js_error)
    }

    /// The ids of the accounts this user owns, as a JSON array.
    #[wasm_bindgen(js_name = accountsOfUser)]
    pub fn accounts_of_user(&self, id: &str) -> Result<String, JsError> {
        self.0.accounts_of_user(id).map_err(js_error)
    }

    /// `[{positionId, symbol}]`: the positions this account held.
    #[wasm_bindgen(js_name = positionsOfAccount)]
    pub fn positions_of_account(&self, account_id: &str) -> Result<String, JsError> {
        self.0.positions_of_account(account_id).map_err(js_error)
    }

    /// `[{aggregateType, aggregateId}]`: the order streams placed with the client's own id
    /// `clientOrderId`.
    #[wasm_bindgen(js_name = ordersWithClientOrderId)]
    pub fn orders_with_client_order_id(&self, client_order_id: &str) -> String {
        self.0.orders_with_client_order_id(client_order_id)
    }

    /// `[{aggregateType, aggregateId}]`: the loaded streams whose id is `id`.
    #[wasm_bindgen(js_name = streamsWithId)]
    pub fn streams_with_id(&self, id: &str) -> String {
        self.0.streams_with_id(id)
    }
}

/// The global log as columns: row `i` of each is the event at index `from + i` of the log.
#[wasm_bindgen(getter_with_clone)]
pub struct LogRows {
    /// Global positions.
    #[wasm_bindgen(readonly)]
    pub positions: Vec<f64>,
    /// Times, milliseconds since the epoch.
    #[wasm_bindgen(readonly)]
    pub timestamps: Vec<f64>,
    /// Versions within their streams.
    #[wasm_bindgen(readonly)]
    pub versions: Vec<u32>,
    /// Event types, as indexes into `eventTypeNames()`.
    #[wasm_bindgen(readonly, js_name = eventTypes)]
    pub event_types: Vec<u8>,
    /// Stream numbers: streams are numbered in the order of their first event.
    #[wasm_bindgen(readonly)]
    pub streams: Vec<u32>,
    /// `[{aggregateType, aggregateId}]` (JSON): the streams first seen in these rows, in
    /// number order, continuing the numbers of the rows before `from`.
    #[wasm_bindgen(readonly, js_name = newStreams)]
    pub new_streams: String,
}

/// The event type names (JSON array), in catalog order: `LogRows.eventTypes` indexes them.
#[wasm_bindgen(js_name = eventTypeNames)]
pub fn event_type_names() -> String {
    viewer::event_type_names()
}
