//! Runs every shared vector file under `tests/vectors/` (the same files run in wasm) and checks
//! that, together, they produce every event type of the catalog, every cancel reason and
//! every rejection code.

use perpetua_core::event::EVENT_TYPES;
use perpetua_core::types::{CancelReason, RejectCode};
use perpetua_core::vectors::run_file;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn vector_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn shared_vectors_pass_and_cover_the_catalog() {
    let (mut cases, mut failures) = (0, Vec::new());
    let (mut event_types, mut reasons) = (BTreeSet::new(), BTreeSet::new());
    for path in vector_files() {
        let text = std::fs::read_to_string(&path).expect("vector file is readable");
        let report = run_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cases += report.cases;
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        failures.extend(report.failures.into_iter().map(|f| format!("{name}: {f}")));
        event_types.extend(report.event_types);
        reasons.extend(report.reasons);
    }
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    let missing: Vec<&str> = EVENT_TYPES.iter().copied().filter(|t| !event_types.contains(*t)).collect();
    assert!(missing.is_empty(), "no vector produces {missing:?}");
    for reason in CancelReason::ALL {
        let key = format!("OrderCancelled.{reason}");
        assert!(reasons.contains(&key), "no vector cancels with {reason}");
    }
    for code in RejectCode::ALL {
        let key = format!("OrderRejected.{code}");
        assert!(reasons.contains(&key), "no vector rejects with {code}");
    }
    println!("{cases} vector cases passed, covering {} event types", event_types.len());
}
