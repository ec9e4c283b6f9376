//! Runs every shared vector file under `tests/vectors/` natively (host-wasm runs the same
//! files in wasm) and checks that, together, they cover the catalog.

use std::path::PathBuf;

#[test]
fn shared_vectors_pass_and_cover_the_catalog() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).expect("vector file is readable"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "expected the vector files in {}", dir.display());
    let cases = perpetua_core::vectors::run_all(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{cases} vector cases passed natively");
}
