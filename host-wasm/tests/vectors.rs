//! The shared domain vectors, run in wasm32 (under Node with wasm-bindgen-test): the very
//! files `core/tests/vectors.rs` runs natively, through the same runner.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test;

include!(concat!(env!("OUT_DIR"), "/vector_files.rs"));

#[wasm_bindgen_test]
fn shared_vectors_pass_in_wasm() {
    assert!(VECTOR_FILES.len() >= 10, "the build script embeds the vector files");
    let cases = perpetua_core::vectors::run_all(VECTOR_FILES.iter().copied()).unwrap_or_else(|e| panic!("{e}"));
    assert!(cases > 0);
}

const GOLDEN_HEAD: &str = include_str!("../../tests/golden/demo-chain-head.txt");

/// The demo run in wasm gives the same bytes as natively: same chain head.
#[wasm_bindgen_test]
fn demo_log_in_wasm_matches_the_native_chain_head() {
    let (_, stored) = perpetua_core::demo::sealed_log();
    let head = stored.last().expect("the demo writes events").hash.to_string();
    assert_eq!(head, GOLDEN_HEAD.trim());
}

/// The viewer's questions answered in wasm32, through the JavaScript-facing `AuditLog`, the
/// same as natively.
#[wasm_bindgen_test]
fn the_audit_log_answers_in_wasm_as_natively() {
    let (_, stored) = perpetua_core::demo::sealed_log();
    let jsonl = perpetua_core::event::to_json_lines(&stored);
    let log = perpetua_wasm::AuditLog::new(&jsonl).unwrap_or_else(|_| panic!("the demo log loads"));
    let native = perpetua_wasm::viewer::Log::parse(&jsonl).unwrap();
    assert_eq!(log.length(), stored.len());
    let from_bytes = perpetua_wasm::AuditLog::from_bytes(jsonl.as_bytes()).unwrap_or_else(|_| panic!("bytes load"));
    assert_eq!(from_bytes.verify(), log.verify());
    assert_eq!(log.verify(), native.verify());
    let position = stored.iter().find(|e| e.aggregate_type == perpetua_core::event::AggregateType::Position).unwrap();
    let id = position.aggregate_id.to_string();
    for version in [1, 2, 3] {
        let state = log.state_at_version("Position", &id, version).unwrap_or_else(|_| panic!("state"));
        assert_eq!(state, native.state_at_version("Position", &id, u64::from(version)).unwrap());
    }
    let diff = log.diff("Position", &id, 1, 2).unwrap_or_else(|_| panic!("diff"));
    assert_eq!(diff, native.diff("Position", &id, 1, 2).unwrap());
    assert_eq!(
        log.position_size_series(&id).unwrap_or_else(|_| panic!("series")),
        native.position_size_series(&id).unwrap()
    );
    let view = log.version_view("Position", &id, 2).unwrap_or_else(|_| panic!("version view"));
    assert_eq!(view, native.version_view("Position", &id, 2).unwrap());
    let rows = log.rows(0);
    let native_rows = native.rows(0);
    assert_eq!((rows.positions, rows.streams), (native_rows.positions, native_rows.streams));
    assert_eq!(rows.new_streams, native_rows.new_streams);
    let account = stored.iter().find(|e| e.aggregate_type == perpetua_core::event::AggregateType::Account).unwrap();
    let account_id = account.aggregate_id.to_string();
    assert_eq!(
        log.account_read_model(&account_id, 2_000.0).unwrap_or_else(|_| panic!("read model")),
        native.account_read_model(&account_id, 2_000).unwrap()
    );
    let command = position.metadata.causation_id.expect("commands are recorded").to_string();
    assert_eq!(
        log.by_causation(&command).unwrap_or_else(|_| panic!("by causation")),
        native.by_causation(&command).unwrap()
    );
}

/// The live tail's appends in wasm32: a log loaded in two parts is the log loaded at once.
#[wasm_bindgen_test]
fn an_audit_log_grows_by_appends_in_wasm() {
    let (_, stored) = perpetua_core::demo::sealed_log();
    let lines: Vec<String> = stored.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    let whole = perpetua_wasm::AuditLog::new(&lines.concat()).unwrap_or_else(|_| panic!("the demo log loads"));
    let mut grown = perpetua_wasm::AuditLog::new(&lines[..500].concat()).unwrap_or_else(|_| panic!("a prefix loads"));
    let appended = grown.append(&lines[500..].concat()).unwrap_or_else(|_| panic!("the rest appends"));
    assert_eq!(appended, lines.len() - 500);
    assert_eq!(grown.verify(), whole.verify());
    assert_eq!(grown.rows(0).positions, whole.rows(0).positions);
}

/// The Merkle proofs' verifiers in wasm32: a proof of the demo's log, in the API's JSON, holds;
/// the same proof under another root does not.
#[wasm_bindgen_test]
fn merkle_proofs_verify_in_wasm() {
    use perpetua_core::merkle::{leaf_hash, MerkleTree};
    let (_, stored) = perpetua_core::demo::sealed_log();
    let tree = MerkleTree::of_events(stored.iter().map(|e| &e.hash));
    let size = tree.size();
    let position = size / 3;
    let event_hash = stored[position as usize - 1].hash;
    let mut proof = serde_json::json!({
        "position": position, "leafIndex": position - 1, "treeSize": size,
        "eventHash": event_hash, "leafHash": leaf_hash(&event_hash.0),
        "rootHash": tree.root(size).unwrap(), "proof": tree.inclusion_proof(position - 1, size).unwrap(),
    });
    assert!(perpetua_wasm::verify_inclusion_proof(&proof.to_string()).unwrap_or(false));
    proof["rootHash"] = serde_json::json!(tree.root(size - 1).unwrap());
    assert!(!perpetua_wasm::verify_inclusion_proof(&proof.to_string()).unwrap_or(true));
    let consistency = serde_json::json!({
        "first": 100, "second": size, "firstRoot": tree.root(100).unwrap(),
        "secondRoot": tree.root(size).unwrap(), "proof": tree.consistency_proof(100, size).unwrap(),
    });
    assert!(perpetua_wasm::verify_consistency_proof(&consistency.to_string()).unwrap_or(false));
}
