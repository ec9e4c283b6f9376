//! The tests themselves, each written once against the `Store` interface.

use crate::support::{account, deposit, events_of_every_type, metadata, Sealer, Target, TestDb, CRASH_CHILD_URL};
use perpetua_core::audit::{ChainFault, Hash, HashChain};
use perpetua_core::event::{Metadata, StoredEvent, StreamId, EVENT_TYPES};
use perpetua_core::time::Timestamp;
use perpetua_core::Decimal;
use perpetua_server::store::{
    Appended, CommandAppend, ExpectedVersion, Idempotency, SnapshotRecord, Store, StoreError, StoreOptions,
    StreamRange, ENGINE_SNAPSHOT_ID, ENGINE_SNAPSHOT_TYPE,
};
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Barrier;

fn json(event: &StoredEvent) -> String {
    serde_json::to_string(event).expect("stored events serialize")
}

fn jsons(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(json).collect()
}

fn stream_of(n: u64) -> StreamId {
    StreamId::account(account(n))
}

/// Appends `commands` single-event deposits into account `n`, one command each.
async fn seed(store: &Store, sealer: &mut Sealer, n: u64, commands: usize) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    for i in 0..commands {
        let events = sealer.seal(vec![deposit(n, 100 + i as i64)], metadata(n as u128 * 1_000_000 + i as u128 * 2));
        all.extend(events.clone());
        assert!(matches!(store.append(&[CommandAppend::new(events)]).await, Ok(Appended::Committed { .. })));
    }
    all
}

pub async fn round_trip_of_every_event_type(db: TestDb) {
    let store = db.open().await;
    let mut originals = events_of_every_type();
    // Decimals as written, with trailing zeros and all eight places.
    originals.push(deposit(1, 10010));
    originals.push(perpetua_core::Event::BalanceDeposited(perpetua_core::account::events::BalanceDeposited {
        account_id: account(1),
        amount: Decimal::new(12_345_678_901_234_567, 8),
    }));
    let mut sealer = Sealer::new(HashChain::default());
    let mut written = Vec::new();
    for (i, chunk) in originals.chunks(7).enumerate() {
        let events = sealer.seal(chunk.to_vec(), metadata(1000 + 2 * i as u128));
        written.extend(events.clone());
        let appended = store.append(&[CommandAppend::new(events)]).await.expect("append");
        assert_eq!(appended, Appended::Committed { head: sealer.head });
    }
    let read = store.read_all(1, 100_000).await.expect("read all");
    assert_eq!(jsons(&read), jsons(&written), "every field, payload bytes and decimals as written");
    assert!(read.iter().any(|e| e.payload.get().contains("\"100.10\"")));
    assert!(read.iter().any(|e| e.payload.get().contains("\"123456789.01234567\"")));
    for (original, event) in originals.iter().zip(&read) {
        assert_eq!(&event.decode().expect("decodes").event, original);
    }
    let types: BTreeSet<&str> = read.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, EVENT_TYPES.iter().copied().collect::<BTreeSet<_>>(), "every event type went through");

    let mut paged = Vec::new();
    while let Ok(page) = store.read_all(paged.len() as u64 + 1, 13).await {
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(jsons(&paged), jsons(&written), "reading in pages gives the same log");

    let stream = StreamId { aggregate_type: read[0].aggregate_type, aggregate_id: read[0].aggregate_id };
    let of_stream: Vec<StoredEvent> = written
        .iter()
        .filter(|e| e.aggregate_type == stream.aggregate_type && e.aggregate_id == stream.aggregate_id)
        .cloned()
        .collect();
    assert_eq!(jsons(&store.read_stream(stream, StreamRange::default()).await.unwrap()), jsons(&of_stream));
    assert_eq!(store.stream_version(stream).await.unwrap(), of_stream.len() as u64);
    let placed: Vec<StoredEvent> = written.iter().filter(|e| e.event_type == "OrderPlaced").cloned().collect();
    assert_eq!(jsons(&store.read_by_type("OrderPlaced", 1, 1000).await.unwrap()), jsons(&placed));
    let correlated = store.read_by_correlation(uuid::Uuid::from_u128(1002)).await.unwrap();
    assert_eq!(jsons(&correlated), jsons(&written[7..14]));
    assert_eq!(store.head().await.unwrap(), sealer.head);
    assert!(store.verify(1, None).await.unwrap().is_ok());
}

pub async fn racing_appenders_get_one_winner_per_version(db: TestDb) {
    const TASKS: usize = 16;
    const ROUNDS: u64 = 8;
    let store = db.open().await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..ROUNDS {
                barrier.wait().await; // the previous round is over for everyone
                let mut sealer = Sealer::new(store.head().await.unwrap());
                sealer.versions.insert(stream_of(1), store.stream_version(stream_of(1)).await.unwrap());
                let events = sealer.seal(vec![deposit(1, 100 * (task as i64 + 1))], metadata(task as u128 * 2));
                let version = events[0].version;
                barrier.wait().await; // everyone holds an event for the same version: go
                let result = store.append(&[CommandAppend::new(events)]).await;
                results.push((version, result));
            }
            results
        }));
    }
    let mut by_version = std::collections::BTreeMap::<u64, (usize, usize)>::new();
    for task in tasks {
        for (version, result) in task.await.unwrap() {
            let (wins, conflicts) = by_version.entry(version).or_default();
            match result {
                Ok(Appended::Committed { .. }) => *wins += 1,
                Err(StoreError::VersionConflict { stream, expected, actual }) => {
                    assert_eq!((stream, expected, actual), (stream_of(1), ExpectedVersion::before(version), version));
                    *conflicts += 1;
                }
                other => panic!("unexpected result for version {version}: {other:?}"),
            }
        }
    }
    let expected: std::collections::BTreeMap<u64, (usize, usize)> = (1..=ROUNDS).map(|v| (v, (1, TASKS - 1))).collect();
    assert_eq!(by_version, expected, "per version: exactly one winner, every other task a conflict");
    let stream = store.read_stream(stream_of(1), StreamRange::default()).await.unwrap();
    assert_eq!(stream.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=ROUNDS).collect::<Vec<_>>());
    assert_eq!(store.head().await.unwrap().last_position, ROUNDS);
    assert!(store.verify(1, None).await.unwrap().is_ok());
}

pub async fn a_conflict_in_a_batch_writes_nothing(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 2, 2).await;
    let head = store.head().await.unwrap();

    // One command: a new stream, then a stream written against a stale version.
    let mut stale = Sealer::new(head);
    stale.versions.insert(stream_of(2), 1);
    let events = stale.seal(vec![deposit(1, 500), deposit(2, 600)], metadata(1));
    let error = store.append(&[CommandAppend::new(events)]).await.unwrap_err();
    assert_eq!(error.code(), "VERSION_CONFLICT");
    assert!(matches!(
        error,
        StoreError::VersionConflict { stream, expected: ExpectedVersion::Exact(1), actual: 2 } if stream == stream_of(2)
    ));

    // Group commit: the first command is fine, the second conflicts.
    let mut stale = Sealer::new(head);
    stale.versions.insert(stream_of(2), 1);
    let first = stale.seal(vec![deposit(1, 500), deposit(3, 700)], metadata(3));
    let second = stale.seal(vec![deposit(2, 600)], metadata(5));
    let error = store.append(&[CommandAppend::new(first), CommandAppend::new(second)]).await.unwrap_err();
    assert_eq!(error.code(), "VERSION_CONFLICT");

    assert_eq!(store.head().await.unwrap(), head, "the head did not move");
    assert_eq!(store.stream_version(stream_of(1)).await.unwrap(), 0, "nothing of the first stream was written");
    assert_eq!(store.stream_version(stream_of(3)).await.unwrap(), 0);
    assert_eq!(store.read_all(1, 100).await.unwrap().len(), 2);
    assert!(store.verify(1, None).await.unwrap().is_ok());
}

fn idempotent(events: Vec<StoredEvent>, key: &str, request: u8) -> CommandAppend {
    CommandAppend {
        events,
        idempotency: Some(Idempotency {
            key: key.to_owned(),
            fingerprint: Hash([request; 32]),
            outcome: format!(r#"{{"request":{request},"orderId":"o-{key}"}}"#),
        }),
    }
}

pub async fn idempotent_retries_write_once(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 1).await;

    // Three times in a row.
    let mut outcomes = Vec::new();
    for attempt in 0..3 {
        let mut retry = Sealer::new(store.head().await.unwrap());
        retry.versions.insert(stream_of(2), store.stream_version(stream_of(2)).await.unwrap());
        let command = idempotent(retry.seal(vec![deposit(2, 100), deposit(3, 100)], metadata(10)), "k-seq", 1);
        match store.append(std::slice::from_ref(&command)).await.unwrap() {
            Appended::Committed { head } => {
                assert_eq!(attempt, 0, "only the first attempt writes");
                assert_eq!(head.last_position, 3);
                outcomes.push(command.idempotency.unwrap().outcome);
            }
            Appended::Replayed { command: 0, record } => {
                assert_eq!(record.position, 3, "the record points at the first attempt's last event");
                outcomes.push(record.outcome);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| *o == outcomes[0]), "identical outcomes: {outcomes:?}");
    assert_eq!(store.head().await.unwrap().last_position, 3, "one write");
    assert_eq!(store.stream_version(stream_of(2)).await.unwrap(), 1);

    // A key that differs only by a trailing space is another key.
    let mut spaced = Sealer::new(store.head().await.unwrap());
    spaced.versions.insert(stream_of(2), 1);
    let command = idempotent(spaced.seal(vec![deposit(9, 100)], metadata(11)), "k-seq ", 1);
    assert!(matches!(store.append(&[command]).await.unwrap(), Appended::Committed { .. }));
    assert_eq!(store.head().await.unwrap().last_position, 4);

    // The same key for another request is refused, and writes nothing.
    let mut other = Sealer::new(store.head().await.unwrap());
    other.versions.insert(stream_of(2), 1);
    let command = idempotent(other.seal(vec![deposit(2, 999)], metadata(12)), "k-seq", 2);
    let error = store.append(&[command]).await.unwrap_err();
    assert_eq!(error.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(store.head().await.unwrap().last_position, 4);

    // Three times at once.
    let head = store.head().await.unwrap();
    let barrier = Arc::new(Barrier::new(3));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (store, barrier) = (store.clone(), barrier.clone());
        let mut sealer = Sealer::new(head);
        sealer.versions.insert(stream_of(2), 1);
        let command = idempotent(sealer.seal(vec![deposit(2, 100), deposit(4, 100)], metadata(14)), "k-par", 3);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let outcome = command.idempotency.clone().unwrap().outcome;
            match store.append(&[command]).await.unwrap() {
                Appended::Committed { .. } => (true, outcome),
                Appended::Replayed { record, .. } => (false, record.outcome),
            }
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|(wrote, _)| *wrote).count(), 1, "exactly one write: {results:?}");
    assert!(results.iter().all(|(_, o)| *o == results[0].1), "identical outcomes: {results:?}");
    assert_eq!(store.head().await.unwrap().last_position, head.last_position + 2);
    let record = store.idempotency_record("k-par").await.unwrap().expect("stored");
    assert_eq!((record.fingerprint, record.position), (Hash([3; 32]), head.last_position + 2));
    assert!(store.verify(1, None).await.unwrap().is_ok());
}

pub async fn readers_never_pass_an_uncommitted_position(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 3).await;

    // Writer A appends position 4 and holds its transaction open.
    let mut a = store.begin_append().await.unwrap();
    let a_events = sealer.seal(vec![deposit(5, 100)], metadata(20));
    assert!(matches!(a.append(&[CommandAppend::new(a_events)]).await.unwrap(), Appended::Committed { .. }));
    // Writer B has position 5 ready and tries to commit it meanwhile.
    let b_events = sealer.seal(vec![deposit(6, 100)], metadata(22));
    let b = tokio::spawn({
        let store = store.clone();
        async move { store.append(&[CommandAppend::new(b_events)]).await }
    });
    for _ in 0..10 {
        let seen = store.read_all(1, 100).await.unwrap();
        assert_eq!(seen.last().map(|e| e.position), Some(3), "the reader stops before the uncommitted position 4");
        assert!(store.read_all(4, 100).await.unwrap().is_empty(), "position 5 is never visible before 4");
        assert_eq!(store.head().await.unwrap().last_position, 3);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!b.is_finished(), "B waits for A: commits happen in position order");
    a.commit().await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(60), b).await.expect("B finishes once A committed").unwrap();
    assert!(matches!(b, Ok(Appended::Committed { head }) if head.last_position == 5));
    let seen = store.read_all(1, 100).await.unwrap();
    assert_eq!(seen.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
}

const CRASH_BATCH: u64 = 100;
const CRASH_STREAMS: u64 = 5;

/// The child of the crash test: appends batches of `CRASH_BATCH` events over
/// `CRASH_STREAMS` streams until it is killed, saying before and after each append.
async fn crash_child(db: TestDb) {
    let store = db.open().await;
    let _lease = store.acquire_writer_lease().await.expect("the child is the writer");
    let mut sealer = Sealer::new(store.head().await.unwrap());
    for n in 1..=CRASH_STREAMS {
        sealer.versions.insert(stream_of(n), store.stream_version(stream_of(n)).await.unwrap());
    }
    loop {
        let events: Vec<_> = (0..CRASH_BATCH).map(|i| deposit(1 + i % CRASH_STREAMS, 100 + i as i64)).collect();
        let events = sealer.seal(events, metadata(30));
        println!("appending {}", sealer.head.last_position);
        store.append(&[CommandAppend::new(events)]).await.expect("append");
        println!("committed {}", sealer.head.last_position);
    }
}

pub async fn a_killed_writer_leaves_no_partial_batch(db: TestDb) {
    if std::env::var(CRASH_CHILD_URL).is_ok() {
        return crash_child(db).await;
    }
    let store = db.open().await;
    let test = format!("{}::a_killed_writer_leaves_no_partial_batch", db.target.module());
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_URL, &db.url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the child writer");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut acknowledged, mut started) = (0u64, 0);
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // (libtest may print its own words before the child's on the same line)
            if let Some((_, n)) = line.split_once("committed ") {
                acknowledged = n.parse().unwrap();
            } else if line.contains("appending ") {
                started += 1;
                if started == 6 {
                    // Kill it while its sixth batch is on its way into the database.
                    child.start_kill().unwrap();
                    return;
                }
            }
        }
        panic!("the child writer stopped by itself");
    };
    tokio::time::timeout(Duration::from_secs(120), read).await.expect("the child writer makes progress");
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "the child was killed");

    // The lease died with the child.
    let mut lease = None;
    for _ in 0..100 {
        match store.acquire_writer_lease().await {
            Ok(l) => {
                lease = Some(l);
                break;
            }
            Err(StoreError::WriterLeaseHeld(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lease.is_some(), "the writer lease is free once its holder died");

    let head = store.head().await.unwrap();
    println!("{}: killed after {acknowledged} acknowledged events; head {}", db.target.module(), head.last_position);
    assert!(acknowledged >= 5 * CRASH_BATCH);
    assert!(head.last_position >= acknowledged, "no acknowledged event is lost");
    assert_eq!(head.last_position % CRASH_BATCH, 0, "no partial batch");
    let events = store.read_all(1, 1_000_000).await.unwrap();
    assert_eq!(events.len() as u64, head.last_position);
    let mut in_streams = 0;
    for n in 1..=CRASH_STREAMS {
        in_streams += store.read_stream(stream_of(n), StreamRange::default()).await.unwrap().len() as u64;
    }
    assert_eq!(in_streams, head.last_position, "every stream is whole");
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.verified, head.last_position);

    // And the log goes on from there.
    let mut sealer = Sealer::new(head);
    sealer.versions.insert(stream_of(1), store.stream_version(stream_of(1)).await.unwrap());
    let events = sealer.seal(vec![deposit(1, 1)], metadata(32));
    assert!(matches!(store.append(&[CommandAppend::new(events)]).await, Ok(Appended::Committed { .. })));
}

pub async fn a_tampered_payload_is_named_by_the_verifier(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    for i in 0..10u64 {
        let events = sealer.seal(vec![deposit(1, 100), deposit(2, 200), deposit(3, 300 + i as i64)], metadata(40));
        store.append(&[CommandAppend::new(events)]).await.unwrap();
    }
    assert!(store.verify(1, None).await.unwrap().is_ok());
    let tamper = r#"UPDATE events SET payload = replace(payload, '"amount":"', '"amount":"9') WHERE position = 17"#;
    let error = db.execute(&[tamper]).await.unwrap_err();
    assert!(error.to_string().contains("append-only"), "the schema refuses edits: {error}");
    db.execute(&[bypass_append_only(db.target), tamper]).await.unwrap();
    let edited = store.read_all(17, 1).await.unwrap();
    assert!(edited[0].payload.get().contains("\"amount\":\"9"), "the edit is in the database");

    let report = store.verify(1, None).await.unwrap();
    assert_eq!(report.first_bad_position, Some(17));
    assert_eq!(report.fault, Some(ChainFault::HashMismatch));
    assert_eq!(report.verified, 16);
    let report = store.verify(10, Some(20)).await.unwrap();
    assert_eq!((report.first_bad_position, report.verified), (Some(17), 7));
    assert!(store.verify(18, None).await.unwrap().is_ok(), "the range after the edit still chains");
}

/// What an intruder with the database's admin rights does first: switch the append-only
/// guard off.
fn bypass_append_only(target: Target) -> &'static str {
    match target {
        Target::Sqlite | Target::MySql => "DROP TRIGGER events_no_update",
        Target::Postgres => "SET session_replication_role = replica",
    }
}

pub async fn a_deleted_event_is_a_gap_never_skipped(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 10).await;
    let delete = "DELETE FROM events WHERE position = 5";
    let error = db.execute(&[delete]).await.unwrap_err();
    assert!(error.to_string().contains("append-only"), "the schema refuses deletes: {error}");
    let around_the_schema: &[&str] = match db.target {
        Target::Sqlite => &["PRAGMA foreign_keys = OFF", "DROP TRIGGER events_no_delete", delete],
        Target::Postgres => &["SET session_replication_role = replica", delete],
        Target::MySql => &["SET foreign_key_checks = 0", "DROP TRIGGER events_no_delete", delete],
    };
    db.execute(around_the_schema).await.unwrap();

    for from in [1, 3, 5] {
        let error = store.read_all(from, 100).await.unwrap_err();
        assert!(matches!(error, StoreError::LogGap { missing: 5 }), "{error}");
        assert_eq!(error.code(), "LOG_GAP");
    }
    assert_eq!(store.read_all(6, 100).await.unwrap().len(), 5);
    let report = store.verify(1, None).await.unwrap();
    assert_eq!(report.first_bad_position, Some(5));
    assert_eq!(report.fault, Some(ChainFault::PositionGap { expected: 5 }));
    let error = store.read_stream(stream_of(1), StreamRange::default()).await.unwrap_err();
    assert!(matches!(error, StoreError::StreamGap { missing: 5, .. }), "{error}");
}

pub async fn one_writer_lease_at_a_time(db: TestDb) {
    let store = db.open().await;
    let elsewhere = db.open().await;
    let lease = store.acquire_writer_lease().await.expect("the first writer gets the lease");
    let error = elsewhere.acquire_writer_lease().await.unwrap_err();
    assert_eq!(error.code(), "WRITER_LEASE_HELD");
    assert!(error.to_string().contains("only one writer"), "{error}");
    let error = store.acquire_writer_lease().await.unwrap_err();
    assert_eq!(error.code(), "WRITER_LEASE_HELD", "not even the same store twice");
    lease.release().await;
    let again = elsewhere.acquire_writer_lease().await.expect("free once released");
    drop(again);
}

pub async fn stream_reads_by_version_and_time(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    let mut times = Vec::new();
    for i in 0..6 {
        let events = sealer.seal(vec![deposit(1, 100 + i), deposit(2, 100)], metadata(50));
        times.push(events[0].timestamp);
        store.append(&[CommandAppend::new(events)]).await.unwrap();
    }
    let versions = |events: Vec<StoredEvent>| events.iter().map(|e| e.version).collect::<Vec<_>>();
    let read = |range: StreamRange| store.read_stream(stream_of(1), range);
    assert_eq!(versions(read(StreamRange::default()).await.unwrap()), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(versions(read(StreamRange { from_version: 3, ..Default::default() }).await.unwrap()), vec![3, 4, 5, 6]);
    assert_eq!(
        versions(read(StreamRange { to_version: Some(4), ..Default::default() }).await.unwrap()),
        vec![1, 2, 3, 4]
    );
    let two_three = StreamRange { from_version: 2, to_version: Some(3), until: None };
    assert_eq!(versions(read(two_three).await.unwrap()), vec![2, 3]);
    let until = StreamRange { until: Some(times[3]), ..Default::default() };
    assert_eq!(versions(read(until).await.unwrap()), vec![1, 2, 3, 4]);
    let before = StreamRange { until: Some(Timestamp(times[0].millis() - 1)), ..Default::default() };
    assert!(read(before).await.unwrap().is_empty());
    assert_eq!(store.stream_version(stream_of(1)).await.unwrap(), 6);
    assert_eq!(store.stream_version(stream_of(9)).await.unwrap(), 0);
    assert!(store.read_stream(stream_of(9), StreamRange::default()).await.unwrap().is_empty());
    let by_type = store.read_by_type("BalanceDeposited", 4, 3).await.unwrap();
    assert_eq!(by_type.iter().map(|e| e.position).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert!(store.read_by_type("OrderPlaced", 1, 100).await.unwrap().is_empty());
}

pub async fn snapshots_and_checkpoints(db: TestDb) {
    let store = db.open().await;
    let snapshot = |version: u64| SnapshotRecord {
        aggregate_type: "Account".into(),
        aggregate_id: account(1).to_string(),
        version,
        position: version * 3,
        format_version: 1,
        state: format!(r#"{{"balance":"{version}.00"}}"#),
        taken_at: Timestamp(1_767_225_600_000 + version as i64),
    };
    for version in [100, 200, 300] {
        store.save_snapshot(&snapshot(version)).await.unwrap();
    }
    let id = account(1).to_string();
    let load = |version| store.load_snapshot("Account", &id, version);
    assert_eq!(load(Some(250)).await.unwrap(), Some(snapshot(200)));
    assert_eq!(load(Some(200)).await.unwrap(), Some(snapshot(200)));
    assert_eq!(load(None).await.unwrap(), Some(snapshot(300)));
    assert_eq!(load(Some(99)).await.unwrap(), None);
    assert_eq!(store.load_snapshot("Account", &account(2).to_string(), None).await.unwrap(), None);
    let mut replaced = snapshot(300);
    replaced.state = r#"{"balance":"3.00"}"#.into();
    store.save_snapshot(&replaced).await.unwrap();
    assert_eq!(load(None).await.unwrap(), Some(replaced));
    let engine = SnapshotRecord {
        aggregate_type: ENGINE_SNAPSHOT_TYPE.into(),
        aggregate_id: ENGINE_SNAPSHOT_ID.into(),
        version: 42,
        position: 42,
        format_version: 1,
        state: "{}".into(),
        taken_at: Timestamp(0),
    };
    store.save_snapshot(&engine).await.unwrap();
    assert_eq!(store.load_snapshot(ENGINE_SNAPSHOT_TYPE, ENGINE_SNAPSHOT_ID, None).await.unwrap(), Some(engine));

    // Many in one transaction, all or none: a batch with one snapshot the store refuses (its
    // format version out of range) leaves nothing of the batch behind.
    let other = |n: u64, version: u64| SnapshotRecord { aggregate_id: account(n).to_string(), ..snapshot(version) };
    let refused = SnapshotRecord { format_version: u32::MAX, ..other(3, 500) };
    assert!(store.save_snapshots(&[other(2, 100), other(3, 100), refused]).await.is_err());
    for n in [2, 3] {
        assert_eq!(store.load_snapshot("Account", &account(n).to_string(), None).await.unwrap(), None);
    }
    store.save_snapshots(&[other(2, 100), other(3, 100), other(3, 200), snapshot(400)]).await.unwrap();
    assert_eq!(store.load_snapshot("Account", &account(2).to_string(), None).await.unwrap(), Some(other(2, 100)));
    assert_eq!(store.load_snapshot("Account", &account(3).to_string(), None).await.unwrap(), Some(other(3, 200)));
    assert_eq!(load(None).await.unwrap(), Some(snapshot(400)));
    store.save_snapshots(&[]).await.unwrap();

    assert_eq!(store.checkpoint("orders").await.unwrap(), 0);
    store.save_checkpoint("orders", 42).await.unwrap();
    store.save_checkpoint("orders", 43).await.unwrap();
    store.save_checkpoint("accounts", 7).await.unwrap();
    assert_eq!(store.checkpoint("orders").await.unwrap(), 43);
    assert_eq!(store.checkpoint("accounts").await.unwrap(), 7);
}

pub async fn malformed_batches_are_refused(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 2).await;
    let head = store.head().await.unwrap();
    let fresh = || {
        let mut s = Sealer::new(head);
        s.versions.insert(stream_of(1), 2);
        s
    };
    let refused = |result: Result<Appended, StoreError>| result.unwrap_err().code();

    let mut events = fresh().seal(vec![deposit(1, 100)], metadata(60));
    events[0].payload = RawValue::from_string(events[0].payload.get().replace("1.00", "2.00")).unwrap();
    assert_eq!(
        refused(store.append(&[CommandAppend::new(events)]).await),
        "INVALID_BATCH",
        "a hash that does not match"
    );

    let mut s = fresh();
    let first = s.seal(vec![deposit(1, 100)], metadata(62));
    s.head.last_position += 1;
    let second = s.seal(vec![deposit(2, 100)], metadata(64));
    let batch = [CommandAppend::new(first), CommandAppend::new(second)];
    assert_eq!(refused(store.append(&batch).await), "INVALID_BATCH", "a gap between commands");

    let mut s = fresh();
    let first = s.seal(vec![deposit(3, 100)], metadata(66));
    s.versions.insert(stream_of(3), 2);
    let second = s.seal(vec![deposit(3, 100)], metadata(68));
    let batch = [CommandAppend::new(first), CommandAppend::new(second)];
    assert_eq!(refused(store.append(&batch).await), "INVALID_BATCH", "a stream skipping a version");

    let mut s = fresh();
    let first = idempotent(s.seal(vec![deposit(4, 100)], metadata(70)), "twice", 1);
    let second = idempotent(s.seal(vec![deposit(5, 100)], metadata(72)), "twice", 1);
    assert_eq!(refused(store.append(&[first, second]).await), "INVALID_BATCH", "one key twice in a batch");

    // Batches that continue the head but not their stream: the schema refuses them (the
    // version is unique per stream and follows the one before), and the error names the stream.
    for (claimed_before, expected) in [(3, ExpectedVersion::Exact(3)), (1, ExpectedVersion::Exact(1))] {
        let mut s = Sealer::new(head);
        s.versions.insert(stream_of(1), claimed_before);
        let events = s.seal(vec![deposit(1, 100)], metadata(76));
        let error = store.append(&[CommandAppend::new(events)]).await.unwrap_err();
        assert!(
            matches!(&error, StoreError::VersionConflict { stream, expected: e, actual: 2 } if *stream == stream_of(1) && *e == expected),
            "{error}"
        );
    }

    let mut stale = Sealer::new(HashChain::default());
    let events = stale.seal(vec![deposit(6, 100)], metadata(74));
    let error = store.append(&[CommandAppend::new(events)]).await.unwrap_err();
    assert!(matches!(error, StoreError::HeadMoved { expected_head: 0, actual_head: 2 }), "{error}");

    assert_eq!(store.head().await.unwrap(), head, "nothing was written");
    assert_eq!(store.read_all(1, 100).await.unwrap().len(), 2);
}

pub async fn durability_is_checked_at_open(db: TestDb) {
    let store = db.open().await;
    let durability = store.durability().clone();
    assert!(durability.durable);
    let setting = |name: &str| durability.settings.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    match db.target {
        Target::Sqlite => {
            assert_eq!(setting("journal_mode"), Some("wal"));
            assert_eq!(setting("synchronous"), Some("2"), "FULL");
        }
        Target::MySql => assert_eq!(setting("innodb_flush_log_at_trx_commit"), Some("1")),
        Target::Postgres => {
            assert_eq!(setting("fsync"), Some("on"));
            assert_ne!(setting("synchronous_commit"), Some("off"));
            // A database whose commits return before they are flushed is refused…
            let name = db.url.rsplit('/').next().unwrap();
            db.execute(&[&format!("ALTER DATABASE {name} SET synchronous_commit = off")]).await.unwrap();
            store.close().await;
            let error = Store::open(&StoreOptions::new(&db.url)).await.unwrap_err();
            assert!(
                matches!(&error, StoreError::UnsafeDurability { setting, value } if setting == "synchronous_commit" && value == "off")
            );
            assert_eq!(error.code(), "UNSAFE_DURABILITY");
            // …unless the operator says so, loudly.
            let unsafe_options = StoreOptions { allow_unsafe_durability: true, ..StoreOptions::new(&db.url) };
            let opened = Store::open(&unsafe_options).await.unwrap();
            assert!(!opened.durability().durable);
        }
    }
}

pub async fn the_schema_refuses_gaps(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 3).await;
    let new_id = match db.target {
        Target::Sqlite => "randomblob(16)",
        Target::Postgres => "gen_random_uuid()",
        Target::MySql => "UNHEX(REPLACE(UUID(), '-', ''))",
    };
    // A copy of the last event, written by hand around the store, `skip` positions and
    // `skip_version` versions further on.
    let copy = |skip: u64, skip_version: u64| {
        format!(
            "INSERT INTO events (position, event_id, event_type, schema_version, aggregate_type, aggregate_id, \
             version, timestamp_ms, payload, metadata, correlation_id, prev_hash, hash) \
             SELECT position + {skip}, {new_id}, event_type, schema_version, aggregate_type, aggregate_id, \
             version + {skip_version}, timestamp_ms, payload, metadata, correlation_id, prev_hash, hash \
             FROM events WHERE position = 3"
        )
    };
    assert!(db.execute(&[&copy(2, 1)]).await.is_err(), "position 5 without 4");
    assert!(db.execute(&[&copy(1, 2)]).await.is_err(), "stream version 5 without 4");
    assert!(db.execute(&[&copy(1, 0)]).await.is_err(), "stream version 3 twice");
    assert!(db.execute(&[&copy(0, 1)]).await.is_err(), "position 3 twice");
    db.execute(&[&copy(1, 1)]).await.expect("position 4, version 4 follows");
    assert_eq!(store.read_all(1, 10).await.unwrap().len(), 4);
    assert_eq!(store.verify(1, None).await.unwrap().first_bad_position, Some(4), "but not the chain");
}

pub async fn a_failed_call_leaves_the_transaction_usable(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 2).await;
    let mut tx = store.begin_append().await.unwrap();
    let mut good = Sealer::new(tx.head());
    let first = good.seal(vec![deposit(2, 100), deposit(3, 100)], metadata(80));
    assert!(matches!(tx.append(&[CommandAppend::new(first)]).await.unwrap(), Appended::Committed { .. }));
    // A batch that continues the transaction's head but not stream 1: the schema refuses it,
    // the conflict is named inside the transaction, and nothing of it stays.
    let mut stale = Sealer::new(tx.head());
    stale.versions.insert(stream_of(1), 1);
    let error =
        tx.append(&[CommandAppend::new(stale.seal(vec![deposit(4, 100), deposit(1, 100)], metadata(82)))]).await;
    let error = error.unwrap_err();
    assert!(
        matches!(&error, StoreError::VersionConflict { stream, expected: ExpectedVersion::Exact(1), actual: 2 } if *stream == stream_of(1)),
        "{error}"
    );
    let second = good.seal(vec![deposit(4, 100)], metadata(84));
    assert!(matches!(tx.append(&[CommandAppend::new(second)]).await.unwrap(), Appended::Committed { .. }));
    tx.commit().await.unwrap();
    let log = store.read_all(1, 100).await.unwrap();
    assert_eq!(log.len(), 5, "the seed, the first and the last call; nothing of the failed one");
    assert_eq!(store.stream_version(stream_of(4)).await.unwrap(), 1);
    assert!(store.verify(1, None).await.unwrap().is_ok());
}

pub async fn a_cut_off_tail_is_caught_by_the_verifier(db: TestDb) {
    let store = db.open().await;
    let mut sealer = Sealer::new(HashChain::default());
    seed(&store, &mut sealer, 1, 5).await;
    let around_the_schema: &[&str] = match db.target {
        Target::Sqlite => &["DROP TRIGGER events_no_delete", "DELETE FROM events WHERE position = 5"],
        Target::Postgres => &["SET session_replication_role = replica", "DELETE FROM events WHERE position = 5"],
        Target::MySql => &["DROP TRIGGER events_no_delete", "DELETE FROM events WHERE position = 5"],
    };
    db.execute(around_the_schema).await.unwrap();
    assert_eq!(store.read_all(1, 100).await.unwrap().len(), 4, "a reader sees no hole");
    let report = store.verify(1, None).await.unwrap();
    assert_eq!((report.first_bad_position, report.fault), (Some(5), Some(ChainFault::PositionGap { expected: 5 })));
    assert_eq!(report.verified, 4);
}

/// Takes the writer lease through `store`, waiting (up to 10 s) for a holder that died to be
/// noticed by the database.
pub async fn lease_when_free(store: &Store) -> perpetua_server::store::WriterLease {
    for _ in 0..100 {
        match store.acquire_writer_lease().await {
            Ok(lease) => return lease,
            Err(StoreError::WriterLeaseHeld(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the writer lease did not become free");
}

/// Ends the session that holds the writer lock, from outside, as a lost connection would.
async fn kill_lease_session(db: &TestDb) {
    let statements: &[&str] = match db.target {
        Target::Sqlite => return,
        Target::Postgres => &["SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"],
        Target::MySql => &[
            "SET @kill = CONCAT('KILL ', IS_USED_LOCK(CONCAT('perpetua.writer.', DATABASE())))",
            "PREPARE kill_lease FROM @kill",
            "EXECUTE kill_lease",
        ],
    };
    db.execute(statements).await.expect("end the lease's session");
}

/// Issue 14, items 2 and 6: a writer whose lock died (its session was ended) cannot commit
/// once another writer took the lease, and it learns so from `check_lease` and from the
/// append itself. Nothing of its refused batch is written; the new writer continues the chain.
pub async fn a_writer_that_lost_its_lease_cannot_commit(db: TestDb) {
    let old = db.open().await;
    let mut old_lease = old.acquire_writer_lease().await.expect("the first writer");
    let mut sealer = Sealer::new(old.head().await.unwrap());
    seed(&old, &mut sealer, 1, 2).await;
    old.check_lease(&mut old_lease).await.expect("the lease holds");

    // The lock dies with its session (on SQLite: the file lock is given up).
    match db.target {
        Target::Sqlite => drop(old_lease),
        _ => {
            kill_lease_session(&db).await;
            let error = old.check_lease(&mut old_lease).await.unwrap_err();
            assert_eq!(error.code(), "WRITER_LEASE_LOST", "{error}");
        }
    }
    let new = db.open().await;
    let mut new_lease = lease_when_free(&new).await;
    let head = new.head().await.unwrap();
    assert_eq!(head, sealer.head, "the new writer reads the head the old one committed");

    let late = sealer.seal(vec![deposit(1, 7)], metadata(40));
    let error = old.append(&[CommandAppend::new(late)]).await.unwrap_err();
    assert_eq!(error.code(), "WRITER_LEASE_LOST", "{error}");
    assert_eq!(new.head().await.unwrap(), head, "nothing of the fenced batch was written");
    new.check_lease(&mut new_lease).await.expect("the new lease holds");

    let mut sealer = Sealer::new(head);
    sealer.versions.insert(stream_of(1), 2);
    let events = sealer.seal(vec![deposit(1, 8)], metadata(42));
    assert!(matches!(new.append(&[CommandAppend::new(events)]).await, Ok(Appended::Committed { .. })));
    assert!(new.verify(1, None).await.unwrap().is_ok());
}

/// Issue 14, item 6, made deterministic on PostgreSQL: a deferred trigger makes the old
/// writer's COMMIT take 2 s; its lease session is ended while that COMMIT runs. The new writer
/// takes the lease at once (the advisory lock is free), but reads the head only after the late
/// commit landed, so its engine can never reuse the late batch's positions or ids. (Before
/// the fence, the new writer read the head before the late commit.)
///
/// On MariaDB, which has no deferred triggers, an insert trigger sleeps instead: the old
/// writer's append is in flight (holding the head's lock) when its lease session is killed.
pub async fn a_commit_in_flight_lands_before_the_next_writer_reads_the_head(db: TestDb) {
    assert_ne!(db.target, Target::Sqlite, "needs a database server");
    let old = db.open().await;
    let _old_lease = old.acquire_writer_lease().await.expect("the first writer");
    let mut sealer = Sealer::new(old.head().await.unwrap());
    seed(&old, &mut sealer, 1, 1).await;
    let slow: &[&str] = match db.target {
        Target::Postgres => &[
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED \
             FOR EACH ROW EXECUTE FUNCTION slow_commit()",
        ],
        _ => &["CREATE TRIGGER slow_append AFTER INSERT ON events FOR EACH ROW DO SLEEP(2)"],
    };
    db.execute(slow).await.unwrap();
    let late = sealer.seal(vec![deposit(1, 9)], metadata(50));
    let appending = tokio::spawn({
        let old = old.clone();
        async move { old.append(&[CommandAppend::new(late)]).await }
    });
    // Wait until the append is inside the trigger's sleep (on PostgreSQL, inside its COMMIT).
    let sleeping = |target: Target| match target {
        Target::Postgres => {
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query ILIKE 'COMMIT%' AND wait_event = 'PgSleep'"
        }
        _ => "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() AND state = 'User sleep'",
    };
    let mut seen = false;
    for _ in 0..200 {
        let committing: i64 = match db.target {
            Target::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
                sqlx::query_scalar(sleeping(db.target)).fetch_one(&mut c).await.unwrap()
            }
            _ => {
                let mut c = <sqlx::MySqlConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
                sqlx::query_scalar(sleeping(db.target)).fetch_one(&mut c).await.unwrap()
            }
        };
        if committing > 0 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "the old writer's COMMIT was seen running");
    kill_lease_session(&db).await;
    let new = db.open().await;
    let _new_lease = lease_when_free(&new).await;
    let head = new.head().await.unwrap();
    assert!(matches!(appending.await.unwrap(), Ok(Appended::Committed { .. })), "the late commit landed");
    assert_eq!(head, sealer.head, "the new writer's head includes the commit that was in flight");
}

/// SQLite: under steady appends, with a reader always reading, the WAL is started over again
/// and again (its file cut back to the limit each time). A PASSIVE checkpoint alone never
/// found it copied whole while commits landed during the copy, and SQLite starts a WAL over
/// only then: its file grew by every page written and never shrank. With a second PASSIVE
/// checkpoint under the write gate, it was copied whole, but the next append found a reader
/// still reading from it (as the projector and live tails nearly always are under load) and
/// went on at its end.
pub async fn the_wal_is_started_over_under_steady_appends(db: TestDb) {
    const LIMIT: u64 = 256 << 10;
    let path = db.url.strip_prefix("sqlite://").expect("an SQLite file");
    let wal = format!("{path}-wal");
    let options = StoreOptions { sqlite_wal_limit: LIMIT, ..StoreOptions::new(&db.url) };
    let store = Store::open(&options).await.expect("open the store");
    let mut sealer = Sealer::new(store.head().await.expect("head"));
    let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = tokio::spawn({
        let (store, reading) = (store.clone(), reading.clone());
        async move {
            let mut reads = 0_u64;
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                store.read_all(1, 100).await.expect("read the log");
                reads += 1;
            }
            reads
        }
    });
    let started = std::time::Instant::now();
    let (mut size, mut largest, mut cut_back, mut batch) = (0_u64, 0_u64, 0, 0_u64);
    // Rows of about 2 KB (a long client address in the metadata), 50 to a commit, for six
    // checkpoints' worth of time.
    while started.elapsed() < Duration::from_secs(6) {
        let events = (0..50).map(|i| deposit((batch * 50 + i) % 500, 1)).collect();
        let metadata = Metadata { ip_address: Some("a".repeat(2_000)), ..metadata(u128::from(batch) * 2 + 1) };
        store.append(&[CommandAppend::new(sealer.seal(events, metadata))]).await.expect("append");
        let now = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if now < size {
            cut_back += 1;
        }
        (size, largest) = (now, largest.max(now));
        batch += 1;
    }
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.await.expect("the reader");
    assert!(reads > 0, "the log was read beside the appends");
    assert!(largest > LIMIT, "the WAL never grew past {LIMIT} bytes ({largest}): too little was written to say");
    assert!(
        cut_back >= 3,
        "the WAL was started over {cut_back} times in 6 s of appends and {reads} reads (it grew to {largest} bytes)"
    );
}
