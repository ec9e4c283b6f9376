//! Cross-platform determinism: the demo's sealed log has the chain head recorded in
//! `tests/golden/demo-chain-head.txt`; the wasm tests check the same file.

const GOLDEN_HEAD: &str = include_str!("../../tests/golden/demo-chain-head.txt");

#[test]
fn demo_log_is_byte_identical_to_the_golden_chain_head() {
    let (_, stored) = perpetua_core::demo::sealed_log();
    let head = stored.last().expect("the demo writes events").hash.to_string();
    assert_eq!(
        head,
        GOLDEN_HEAD.trim(),
        "the demo log changed; if on purpose, update tests/golden/demo-chain-head.txt (see its README)"
    );
}
