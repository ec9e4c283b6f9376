//! wasm-bindgen bindings over `perpetua-core` for the browser audit viewer.
//!
//! What exists today: loading an exported log (JSON array or JSON Lines), verifying its hash
//! chain, and replaying it into the exchange state. The richer viewer API (state at a version,
//! diffs, chart folds) belongs to the wasm/viewer issue and is not built yet.

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
