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
    // Every long job ends with a summary: how much, how long, how fast.
    assert!(
        verified.contains(&format!("verify: {events} events in ")) && verified.contains(" events/s)"),
        "{verified}"
    );
    let exported_to = dir.path().join("exported.jsonl");
    let exported = stdout(&perpetua(&["export", "--out", exported_to.to_str().unwrap(), "--database-url", &url]));
    assert!(
        exported.contains(&format!("export: {events} events written to")) && exported.contains(" events/s)"),
        "{exported}"
    );
    // Written a page at a time, the file is the log as imported, byte for byte.
    assert_eq!(std::fs::read_to_string(&exported_to).unwrap(), std::fs::read_to_string(log).unwrap());
    let rebuilt = stdout(&perpetua(&["rebuild", "--database-url", &url]));
    assert!(rebuilt.contains(&format!("from {events} events in ")) && rebuilt.contains(" events/s"), "{rebuilt}");
    let snapshot = stdout(&perpetua(&["snapshot", "--database-url", &url]));
    assert!(snapshot.contains(&format!("snapshot: engine saved at position {events} in ")), "{snapshot}");

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

/// A failed `perpetua` run: its exit code and its error line (stderr's last line).
fn failure(args: &[&str]) -> (i32, String) {
    let output = perpetua(args);
    assert!(!output.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let line = stderr.lines().last().unwrap_or_default().to_owned();
    (output.status.code().unwrap_or(-1), line)
}

/// Start-up failures are one line each, with what to look at, and a non-zero exit code.
#[test]
fn start_up_failures_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();

    // A PostgreSQL or MariaDB that refuses connections: within the connect timeout (not the
    // pool's 30 s of retries), with the address and the driver's reason.
    for url in ["postgres://perpetua@127.0.0.1:1/perpetua", "mysql://perpetua@127.0.0.1:1/perpetua"] {
        let started = std::time::Instant::now();
        let (code, line) = failure(&["serve", "--database-url", url]);
        assert_eq!(code, 1, "{line}");
        assert!(line.contains("cannot reach the database at 127.0.0.1:1"), "{line}");
        assert!(line.to_lowercase().contains("refused"), "the driver's reason: {line}");
        let bound = perpetua_server::store::CONNECT_TIMEOUT + std::time::Duration::from_secs(5);
        assert!(started.elapsed() < bound, "reported in {:?}", started.elapsed());
    }

    // A store directory the server may not write to.
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    let probe = read_only.join("probe");
    // (root may write anyway; then there is nothing to refuse.)
    if std::fs::write(&probe, b"").is_err() {
        let url = format!("sqlite://{}", read_only.join("perpetua.db").display());
        let (code, line) = failure(&["serve", "--database-url", &url]);
        assert_eq!(code, 1, "{line}");
        assert!(line.contains(&read_only.display().to_string()) && line.contains("read-only"), "{line}");
    }

    // A store in a directory that does not exist.
    let missing = dir.path().join("no-such-directory").join("perpetua.db");
    let (code, line) = failure(&["serve", "--database-url", &format!("sqlite://{}", missing.display())]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains(&format!("cannot open the SQLite store {}", missing.display())), "{line}");
    assert!(line.contains("does its directory exist"), "{line}");

    // A file that is not an SQLite database.
    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, vec![0x5a; 8192]).unwrap();
    let url = format!("sqlite://{}", corrupt.display());
    let (code, line) = failure(&["serve", "--database-url", &url]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(&format!("cannot open the SQLite store {}: it is not an SQLite database", corrupt.display())),
        "{line}"
    );

    // A store written by a later version (a migration this build does not have).
    let newer = dir.path().join("newer.db");
    let url = format!("sqlite://{}", newer.display());
    stdout(&perpetua(&["verify", "--database-url", &url]));
    insert_future_migration(&newer);
    let (code, line) = failure(&["serve", "--database-url", &url]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("the store's schema has migration 999999, newer than this build knows"), "{line}");
    assert!(line.contains("SCHEMA_TOO_NEW"), "{line}");

    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let url = format!("sqlite://{}", dir.path().join("ok.db").display());
    let (code, line) = failure(&["serve", "--listen", &listen, "--database-url", &url]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains(&format!("cannot listen on {listen}: the address is in use")), "{line}");

    // A host name that does not resolve.
    let (_, line) = failure(&["serve", "--listen", "no-such-host.invalid:8080", "--database-url", &url]);
    assert!(line.contains("cannot listen on no-such-host.invalid:8080"), "{line}");
}

/// A chain error in plain words: the position, what is wrong, the event's stream and version.
#[test]
fn a_broken_chain_is_reported_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.jsonl");
    stdout(&perpetua(&["demo", "--out", log.to_str().unwrap()]));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut events = perpetua_core::event::parse_stored_events(&text).unwrap();
    let forged = &mut events[99];
    let payload = forged.payload.get().replacen("\"", "\" ", 1);
    forged.payload = serde_json::value::RawValue::from_string(payload).unwrap();
    let (stream, version) = (forged.aggregate_type.as_str(), forged.version);
    let forged_log = dir.path().join("forged.jsonl");
    std::fs::write(&forged_log, perpetua_core::event::to_json_lines(&events)).unwrap();
    let (code, line) = failure(&["verify", forged_log.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(line.starts_with("perpetua: chain broken at position 100: the hash does not match its bytes ("), "{line}");
    assert!(line.contains(&format!("{stream} ")) && line.contains(&format!("version {version})")), "{line}");
    assert!(line.contains("99 events verified before it"), "{line}");
    assert!(!line.contains("HashMismatch"), "no Rust names: {line}");
}

/// Records a migration no build has in an SQLite store, as a later version would.
fn insert_future_migration(file: &std::path::Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection as _, Executor as _};
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999999, 'from the future', 1, x'00', 0)",
        )
        .await
        .unwrap();
        conn.close().await.unwrap();
    });
}

/// A store with an event missing in the middle: `verify` reports the gap as a broken chain
/// (exit 1, the position named), not as a failure to read the store.
#[test]
fn a_gap_in_the_store_is_reported_as_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.jsonl");
    let file = dir.path().join("perpetua.db");
    let url = format!("sqlite://{}", file.display());
    stdout(&perpetua(&["demo", "--out", log.to_str().unwrap()]));
    stdout(&perpetua(&["import", log.to_str().unwrap(), "--database-url", &url]));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection as _, Executor as _};
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        // What an operator's mistake or an attacker with the file would do: the guard first.
        conn.execute("PRAGMA foreign_keys = OFF").await.unwrap();
        conn.execute("DROP TRIGGER events_no_delete").await.unwrap();
        conn.execute("DELETE FROM events WHERE position = 50").await.unwrap();
        conn.close().await.unwrap();
    });
    let (code, line) = failure(&["verify", "--database-url", &url]);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("perpetua: chain broken at position 50"), "{line}");
    assert!(line.contains("49 events verified before it"), "{line}");

    // An export of that store fails where the gap is and leaves no file under its name.
    let out = dir.path().join("export.jsonl");
    let (code, line) = failure(&["export", "--out", out.to_str().unwrap(), "--database-url", &url]);
    assert_eq!(code, 1, "{line}");
    assert!(!out.exists(), "no partial export: {line}");
    assert!(!dir.path().join("export.jsonl.partial").exists(), "the partial file is removed");
}
