//! The event-store conformance suite: every test runs against SQLite (a temporary file),
//! PostgreSQL and MariaDB (a database of its own on the machine's servers), through the one
//! `Store` interface. A server that cannot be reached fails its tests, unless the user named
//! it in `PERPETUA_SKIP_BACKENDS` (then each is reported with a `SKIPPED:` line, which
//! `scripts/test.sh` counts apart from the passed tests).

mod conformance;
mod projector;
mod support;

/// Instantiates each conformance test once per backend: `sqlite::name`, `postgres::name`,
/// `mysql::name`.
macro_rules! for_every_backend {
    ($($test:ident),+ $(,)?) => {
        for_every_backend!(@backend sqlite, Sqlite, $($test),+);
        for_every_backend!(@backend postgres, Postgres, $($test),+);
        for_every_backend!(@backend mysql, MySql, $($test),+);
    };
    (@backend $module:ident, $target:ident, $($test:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(db) = crate::support::provision(crate::support::Target::$target, stringify!($test)).await {
                        crate::$test(db).await;
                    }
                }
            )+
        }
    };
}

use conformance::*;
use projector::*;

for_every_backend!(
    a_failed_page_is_applied_exactly_once,
    a_failed_rebuild_page_is_applied_exactly_once,
    a_fenced_projector_writes_nothing,
    a_projector_that_lost_its_lease_writes_nothing,
    round_trip_of_every_event_type,
    racing_appenders_get_one_winner_per_version,
    a_conflict_in_a_batch_writes_nothing,
    idempotent_retries_write_once,
    readers_never_pass_an_uncommitted_position,
    a_killed_writer_leaves_no_partial_batch,
    a_tampered_payload_is_named_by_the_verifier,
    a_deleted_event_is_a_gap_never_skipped,
    one_writer_lease_at_a_time,
    stream_reads_by_version_and_time,
    snapshots_and_checkpoints,
    malformed_batches_are_refused,
    durability_is_checked_at_open,
    the_schema_refuses_gaps,
    a_failed_call_leaves_the_transaction_usable,
    a_cut_off_tail_is_caught_by_the_verifier,
    a_writer_that_lost_its_lease_cannot_commit,
);

/// Tests of SQLite's own machinery.
mod sqlite_only {
    use crate::support::{provision, Target};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_wal_is_started_over_under_steady_appends() {
        if let Some(db) = provision(Target::Sqlite, "wal_started_over").await {
            crate::conformance::the_wal_is_started_over_under_steady_appends(db).await;
        }
    }
}

/// Tests that need a database server (a trigger that sleeps inside an append or its COMMIT).
mod servers_only {
    use crate::support::{provision, Target};

    const TEST: &str = "commit_in_flight";

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_commit_in_flight_lands_before_the_next_writer_reads_the_head() {
        if let Some(db) = provision(Target::Postgres, TEST).await {
            crate::conformance::a_commit_in_flight_lands_before_the_next_writer_reads_the_head(db).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mysql_append_in_flight_lands_before_the_next_writer_reads_the_head() {
        if let Some(db) = provision(Target::MySql, TEST).await {
            crate::conformance::a_commit_in_flight_lands_before_the_next_writer_reads_the_head(db).await;
        }
    }
}
