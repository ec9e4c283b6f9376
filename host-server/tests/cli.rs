//! The `perpetua` binary end to end on SQLite: the demo's log goes into a fresh store, a
//! second import adds nothing, the store's chain verifies, and a log that is not the store's
//! is refused.

use std::process::{Command, Output};

fn perpetua(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perpetua")).args(args).output().expect("run perpetua")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn demo_log_into_the_store_and_verified_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.jsonl");
    let url = format!("sqlite://{}", dir.path().join("perpetua.db").display());
    let log = log.to_str().unwrap();
    let demo = stdout(&perpetua(&["demo", "--out", log]));
    let events: u64 = demo.split_whitespace().nth(1).unwrap().parse().unwrap();

    let first = stdout(&perpetua(&["import", log, "--database-url", &url]));
    assert!(first.contains(&format!("import: {events} events appended")), "{first}");
    let again = stdout(&perpetua(&["import", log, "--database-url", &url]));
    assert!(again.contains("import: 0 events appended"), "{again}");
    let verified = stdout(&perpetua(&["verify", "--database-url", &url]));
    let head =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/demo-chain-head.txt")).unwrap();
    assert!(
        verified.contains(&format!("verified: {events} events in the store, chain head {}", head.trim())),
        "{verified}"
    );

    // Another log (the demo's, its last hash changed) is not this store's.
    let text = std::fs::read_to_string(log).unwrap();
    let mut stored = perpetua_core::event::parse_stored_events(&text).unwrap();
    let last = stored.last_mut().unwrap();
    last.hash = perpetua_core::audit::Hash([7; 32]);
    let other = dir.path().join("other.jsonl");
    let jsonl: String = stored.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    std::fs::write(&other, jsonl).unwrap();
    let refused = perpetua(&["import", other.to_str().unwrap(), "--database-url", &url]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("the store holds a different log"));
}

#[tokio::test]
async fn import_is_refused_while_another_writer_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.jsonl");
    let url = format!("sqlite://{}", dir.path().join("perpetua.db").display());
    stdout(&perpetua(&["demo", "--out", log.to_str().unwrap()]));
    let store = perpetua_server::store::Store::open(&perpetua_server::store::StoreOptions::new(&url)).await.unwrap();
    let lease = store.acquire_writer_lease().await.unwrap();
    let refused = perpetua(&["import", log.to_str().unwrap(), "--database-url", &url]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("WRITER_LEASE_HELD"));
    assert_eq!(store.head().await.unwrap().last_position, 0, "nothing was imported");
    lease.release().await;
    stdout(&perpetua(&["import", log.to_str().unwrap(), "--database-url", &url]));
}
