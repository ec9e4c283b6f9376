//! The projector against a real database failing under it: a page whose transaction fails
//! (here, a read-model table taken away for a while) is retried until it commits, and the
//! tables then hold exactly one application of every event — equal to a rebuild from zero.

use crate::support::TestDb;
use perpetua_server::db::{self, Db};
use perpetua_server::feed::Source;
use perpetua_server::metrics::Metrics;
use perpetua_server::projector::{take_lease, Projector, ProjectorError, READ_MODELS};
use perpetua_server::store::CommandAppend;
use std::sync::Arc;

/// Every served table: read model, table, key column.
const TABLES: [(&str, &str, &str); 6] = [
    ("orders", "orders", "order_id"),
    ("orders", "active_orders", "order_id"),
    ("accounts", "accounts", "account_id"),
    ("positions", "positions", "position_id"),
    ("trades", "trades", "trade_id"),
    ("markets", "markets", "symbol"),
];

/// Every row of every served table, as (table, key, document), in key order.
async fn served_rows(db: &Db, projector: &Projector) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for (read_model, table, key) in TABLES {
        let name = projector.state().table(read_model, table);
        for row in db.fetch(&format!("SELECT {key}, doc FROM {name} ORDER BY {key}"), &[]).await.unwrap() {
            rows.push((table.to_owned(), db::text(&row, 0), db::text(&row, 1)));
        }
    }
    rows
}

/// A fresh store holding the demo log, and its head.
async fn demo_store(db: &TestDb) -> (perpetua_server::store::Store, u64) {
    let store = db.open().await;
    let (_, events) = perpetua_core::demo::sealed_log();
    for chunk in CommandAppend::per_command(events.iter().cloned()).chunks(200) {
        store.append(chunk).await.unwrap();
    }
    let head = store.head().await.unwrap().last_position;
    (store, head)
}

/// The demo log in a fresh store, and a projector over it that has applied nothing yet.
async fn demo_projector(db: &TestDb) -> (u64, Db, Projector) {
    let (store, head) = demo_store(db).await;
    let tables = Db::open(&db.url, 4).await.unwrap();
    let projector =
        Projector::open(Source::Store(store), tables.clone(), Arc::new(Metrics::default()), None).await.unwrap();
    (head, tables, projector)
}

pub async fn a_failed_page_is_applied_exactly_once(db: TestDb) {
    let (head, tables, mut projector) = demo_projector(&db).await;
    projector.catch_up(head / 2).await.unwrap();

    // The accounts table is gone for a while: each try of the next page fails in its
    // transaction, after the page was folded.
    let accounts = projector.state().table("accounts", "accounts");
    // The read models live in their own file on SQLite: altered through their pool.
    tables.execute(&format!("ALTER TABLE {accounts} RENAME TO hidden_accounts"), &[]).await.unwrap();
    for _ in 0..3 {
        let error = projector.catch_up(head).await.unwrap_err();
        assert!(matches!(error, ProjectorError::Store(_)), "a failed write is the store's: {error}");
        assert_eq!(projector.state().position, head / 2, "the checkpoint did not move");
    }
    // The read models live in their own file on SQLite: altered through their pool.
    tables.execute(&format!("ALTER TABLE hidden_accounts RENAME TO {accounts}"), &[]).await.unwrap();
    projector.catch_up(head).await.unwrap();
    assert_eq!(projector.state().position, head);
    let live = served_rows(&tables, &projector).await;
    assert!(live.iter().any(|(table, ..)| table == "accounts"));

    projector.start_rebuild(&READ_MODELS).await.unwrap();
    while !projector.step_rebuild(1_000).await.unwrap() {}
    let rebuilt = served_rows(&tables, &projector).await;
    assert_eq!(live.len(), rebuilt.len());
    for (live, rebuilt) in live.iter().zip(&rebuilt) {
        assert_eq!(live, rebuilt, "the row after three failed tries equals the rebuilt one");
    }
}

/// The same for a rebuild: a page of the rebuild whose transaction fails is folded again up
/// to what the rebuild wrote, and the swapped-in tables equal the live ones.
pub async fn a_failed_rebuild_page_is_applied_exactly_once(db: TestDb) {
    let (head, tables, mut projector) = demo_projector(&db).await;
    projector.catch_up(head).await.unwrap();
    let live = served_rows(&tables, &projector).await;

    projector.start_rebuild(&READ_MODELS).await.unwrap();
    assert!(!projector.step_rebuild(head / 3).await.unwrap(), "a third of the log rebuilt");
    let generation = projector.state().rebuilding["accounts"].0;
    let accounts = format!("rm_accounts_{generation}");
    // The read models live in their own file on SQLite: altered through their pool.
    tables.execute(&format!("ALTER TABLE {accounts} RENAME TO hidden_accounts"), &[]).await.unwrap();
    for _ in 0..3 {
        assert!(projector.step_rebuild(head / 3).await.is_err(), "the page's transaction fails");
    }
    // The read models live in their own file on SQLite: altered through their pool.
    tables.execute(&format!("ALTER TABLE hidden_accounts RENAME TO {accounts}"), &[]).await.unwrap();
    while !projector.step_rebuild(1_000).await.unwrap() {}
    assert_eq!(projector.state().generations["accounts"], generation, "swapped in");
    assert_eq!(served_rows(&tables, &projector).await, live, "the rebuilt tables equal the live ones");
}

/// The projector of a writer that lost its lease (another took it over) writes no page: its
/// checkpoint stays where it was, in memory and in the table.
pub async fn a_fenced_projector_writes_nothing(db: TestDb) {
    let old = db.open().await;
    let lease = old.acquire_writer_lease().await.unwrap();
    let (_, events) = perpetua_core::demo::sealed_log();
    for chunk in CommandAppend::per_command(events.iter().cloned()).chunks(200) {
        old.append(chunk).await.unwrap();
    }
    let head = old.head().await.unwrap().last_position;
    let tables = Db::open(&db.url, 4).await.unwrap();
    let mut projector =
        Projector::open(Source::Store(old.clone()), tables.clone(), Arc::new(Metrics::default()), None).await.unwrap();
    projector.catch_up(head / 2).await.unwrap();
    drop(lease);
    let new = db.open().await;
    let _new_lease = crate::conformance::lease_when_free(&new).await;
    let error = projector.catch_up(head).await.unwrap_err();
    assert_eq!(error.code(), "WRITER_LEASE_LOST", "{error}");
    assert_eq!(projector.state().position, head / 2);
    let rows = tables.fetch("SELECT MIN(position), MAX(position) FROM read_models", &[]).await.unwrap();
    assert_eq!((db::int(&rows[0], 0), db::int(&rows[0], 1)), ((head / 2) as i64, (head / 2) as i64));
}

/// The projector lease fences a projector process as the writer lease fences a writer: once
/// another projector has taken the lease (its lock freed, the epoch beside the read models
/// bumped), the first one's next page is refused with `WRITER_LEASE_LOST` and its checkpoint
/// stays; while the first holds the lock, a second is refused `PROJECTOR_LEASE_HELD`.
pub async fn a_projector_that_lost_its_lease_writes_nothing(db: TestDb) {
    let (store, head) = demo_store(&db).await;
    let tables = Db::open(&db.url, 4).await.unwrap();
    let first = take_lease(&store, &tables).await.unwrap();
    let refused = take_lease(&store, &tables).await.unwrap_err();
    assert_eq!(refused.code(), "PROJECTOR_LEASE_HELD", "{refused}");
    let source = Source::Store(store.clone());
    let mut projector =
        Projector::open(source, tables.clone(), Arc::new(Metrics::default()), Some(&first)).await.unwrap();
    projector.catch_up(head / 2).await.unwrap();
    // The first projector's lock goes (its session died, say); another takes the lease.
    first.lock.release().await;
    let second = take_lease(&store, &tables).await.unwrap();
    assert_eq!(second.epoch, first.epoch + 1);
    let error = projector.catch_up(head).await.unwrap_err();
    assert_eq!(error.code(), "WRITER_LEASE_LOST", "{error}");
    assert_eq!(projector.state().position, head / 2);
    let rows = tables.fetch("SELECT MIN(position), MAX(position) FROM read_models", &[]).await.unwrap();
    assert_eq!((db::int(&rows[0], 0), db::int(&rows[0], 1)), ((head / 2) as i64, (head / 2) as i64));
    // A rebuild of the fenced projector changes nothing either.
    assert_eq!(projector.start_rebuild(&READ_MODELS).await.unwrap_err().code(), "WRITER_LEASE_LOST");
    // The new holder goes on from the checkpoint.
    let source = Source::Store(store.clone());
    let mut next = Projector::open(source, tables.clone(), Arc::new(Metrics::default()), Some(&second)).await.unwrap();
    next.catch_up(head).await.unwrap();
    assert_eq!(next.state().position, head);
}
