//! The audit viewer's build (`web/dist`, made by scripts/web-build.sh) is embedded in the
//! binary (src/http/viewer.rs). Cargo is told to rebuild when it changes, appears or goes.
fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
