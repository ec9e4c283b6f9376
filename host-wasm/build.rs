//! Lists the shared vector files so the wasm tests embed exactly the files the native tests
//! read (a wasm test has no file system).

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("../tests/vectors");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/vectors exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut out = String::from("/// The shared vector files, embedded: `(file name, contents)`.\npub const VECTOR_FILES: &[(&str, &str)] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        writeln!(out, "    ({name:?}, include_str!({:?})),", path.canonicalize().expect("path exists").display())
            .expect("write to string");
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("vector_files.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
