//! What the store's and the server's test suites do with a database they cannot reach
//! (included into both with `#[path]`).

/// Whether the user asked to skip `backend` (`postgres`, `mysql`) when it cannot be
/// reached: `PERPETUA_SKIP_BACKENDS=postgres,mysql`. Otherwise an unreachable database fails
/// the test: a test that did not run never reports itself as passed.
pub fn skip_unreachable(backend: &str) -> bool {
    std::env::var("PERPETUA_SKIP_BACKENDS").is_ok_and(|list| list.split(',').any(|b| b.trim() == backend))
}

/// Says that a test was skipped: on the output, and as a line in the file
/// `PERPETUA_SKIP_LOG` names (where `scripts/test.sh` counts them, since the test harness
/// hides what a passing test prints).
pub fn record_skip(message: &str) {
    use std::io::Write as _;
    println!("SKIPPED: {message}");
    if let Ok(path) = std::env::var("PERPETUA_SKIP_LOG") {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "SKIPPED: {message}");
        }
    }
}
