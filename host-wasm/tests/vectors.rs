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
