//! wasm-bindgen bindings over `perpetua-core` for the browser audit viewer.
//!
//! What exists today: loading an exported log (JSON array or JSON Lines) into an `AuditLog`
//! and asking it what the viewer needs — the chain's verification, a stream's events, its
//! state at a version or a time, every state it went through, a structured diff between two
//! versions, balance and position-size series — plus the older one-shot `verifyChain` and
//! `replaySummary`. Answers are JSON text. The viewer itself (`web/`) is not built yet.

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
    let summary = serde_json::json!({
        "lastPosition": exchange.last_position(),
        "accounts": exchange.accounts().count(),
        "orders": exchange.orders().count(),
        "positions": exchange.positions().count(),
    });
    Ok(summary.to_string())
}

fn js_error(message: String) -> JsError {
    JsError::new(&message)
}

/// A loaded log, queried by the audit viewer. Every answer is JSON text.
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

    /// `{verified, firstBadPosition, fault, lastHash}`.
    pub fn verify(&self) -> String {
        self.0.verify()
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

    /// `[{path, old, new}]` between versions `from` and `to` (0 is before the first event).
    pub fn diff(&self, aggregate_type: &str, aggregate_id: &str, from: u32, to: u32) -> Result<String, JsError> {
        self.0.diff(aggregate_type, aggregate_id, u64::from(from), u64::from(to)).map_err(js_error)
    }

    /// `[{position, timestamp, value}]`: an account's balance after each of its events.
    #[wasm_bindgen(js_name = balanceSeries)]
    pub fn balance_series(&self, account_id: &str) -> Result<String, JsError> {
        self.0.balance_series(account_id).map_err(js_error)
    }

    /// `[{position, timestamp, value}]`: a position's size after each of its events.
    #[wasm_bindgen(js_name = positionSizeSeries)]
    pub fn position_size_series(&self, position_id: &str) -> Result<String, JsError> {
        self.0.position_size_series(position_id).map_err(js_error)
    }
}
