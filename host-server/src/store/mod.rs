//! The event store: the append-only log of sealed events on SQL, behind one interface for
//! SQLite (the embedded default), PostgreSQL (production) and MySQL/MariaDB.
//!
//! What every backend guarantees, and how:
//!
//! - **Atomic batches with optimistic concurrency.** [`Store::append`] writes the events of one
//!   or several commands (group commit) in one transaction. Every stream a batch touches must
//!   be at the version just before the batch's first event of that stream; otherwise the
//!   append fails with [`StoreError::VersionConflict`] and writes nothing. The unique
//!   `(aggregate_type, aggregate_id, version)` constraint backs the check up.
//! - **A contiguous, serialized log.** Appends take the lock on the one-row `log_head` table
//!   first (`SELECT … FOR UPDATE`; `BEGIN IMMEDIATE` on SQLite), so commits happen in
//!   position order and a reader can never see position N+1 before N. The schema makes gaps
//!   impossible too: each event references the event before it (a foreign key from
//!   `position - 1`), and a reader that still finds a gap fails with [`StoreError::LogGap`]
//!   naming the missing position instead of skipping it.
//! - **The hash chain.** The caller seals events ([`perpetua_core::audit::HashChain::seal`]);
//!   the store refuses a batch that does not continue the stored head or whose hashes do not
//!   match their bytes, and [`Store::verify`] re-checks any range.
//! - **Idempotency.** A command may carry an idempotency record (key, request fingerprint,
//!   stored outcome), written in the same transaction as its events. A retry finds it and
//!   gets [`Appended::Replayed`] with the original outcome; the same key with another request
//!   is [`StoreError::IdempotencyKeyReused`].
//! - **Durability and a single writer.** A commit returns only once the database made it
//!   durable: SQLite runs in WAL mode with `synchronous=FULL`; PostgreSQL and MariaDB are
//!   checked at connect time and refused when they would acknowledge commits before they are
//!   on disk (unless [`StoreOptions::allow_unsafe_durability`] is set). The writer holds a
//!   [`WriterLease`]: an advisory lock on PostgreSQL, `GET_LOCK` on MariaDB, an exclusive
//!   lock on a file beside the database on SQLite.
//! - **Commits fenced by the lease.** Taking the lease bumps `log_head.writer_epoch` under
//!   the head's lock; every append through that store reads the epoch under the same lock and
//!   moves the head only while it is still its own ([`StoreError::LeaseLost`] otherwise). A
//!   writer whose lock died with its session therefore either committed before the next
//!   writer read the head, or cannot commit at all.

mod backend;
mod mysql;
mod postgres;
mod sqlite;

use perpetua_core::audit::{self, Hash, HashChain, VerifyReport};
use perpetua_core::checkpoint::Checkpoint;
use perpetua_core::event::{AggregateId, AggregateType, Metadata, StoredEvent, StreamId};
use perpetua_core::ids::EventId;
use perpetua_core::time::Timestamp;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use backend::{LeaseKind, WriterLease};

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file (`sqlite://path`).
    Sqlite,
    /// PostgreSQL (`postgres://…`).
    Postgres,
    /// MySQL or MariaDB (`mysql://…`).
    MySql,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
        }
    }

    /// A name for messages: `SQLite`, `PostgreSQL`, `MariaDB/MySQL`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MariaDB/MySQL",
        }
    }
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db`, `postgres://user@host/db` or `mysql://user@host/db`.
    pub url: String,
    /// Open even when the database would acknowledge commits that are not yet durable
    /// (PostgreSQL with `fsync` or `synchronous_commit` off, MariaDB with
    /// `innodb_flush_log_at_trx_commit` ≠ 1). Acknowledged events can then be lost in a crash.
    pub allow_unsafe_durability: bool,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// SQLite: the WAL is started over once it holds more than this many bytes (see
    /// `sqlite::Checkpointer`), and its file cut back to this size when it is.
    pub sqlite_wal_limit: u64,
}

/// The default [`StoreOptions::sqlite_wal_limit`]: 64 MiB.
pub const SQLITE_WAL_LIMIT: u64 = 64 << 20;

impl StoreOptions {
    /// Options for `url` with the defaults: durability enforced, a pool of 16 connections,
    /// the SQLite WAL kept to [`SQLITE_WAL_LIMIT`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            allow_unsafe_durability: false,
            max_connections: 16,
            sqlite_wal_limit: SQLITE_WAL_LIMIT,
        }
    }
}

/// What a stream must be at for an append to it to succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// What a stream must be at for an event of `version` to be appended to it.
    pub fn before(version: u64) -> Self {
        match version {
            0 | 1 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v - 1),
        }
    }

    fn as_version(self) -> u64 {
        match self {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// An idempotency record to write with a command's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key (the `Idempotency-Key` header).
    pub key: String,
    /// A digest of the request, so that a key reused for another request is refused.
    pub fingerprint: Hash,
    /// The outcome to answer retries with (JSON).
    pub outcome: String,
}

/// A stored idempotency record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's key.
    pub key: String,
    /// Digest of the request that first used the key.
    pub fingerprint: Hash,
    /// The outcome stored with it (JSON).
    pub outcome: String,
    /// Global position of the command's last event (the head at the time if it had none).
    pub position: u64,
}

/// An idempotency record without its outcome: what the writer keeps in memory of each key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The client's key.
    pub key: String,
    /// Digest of the request that first used the key.
    pub fingerprint: Hash,
    /// Global position of the command's last event.
    pub position: u64,
}

/// The events of one command, with its idempotency record if it carries a key.
#[derive(Clone, Debug)]
pub struct CommandAppend {
    /// Sealed events, in global order.
    pub events: Vec<StoredEvent>,
    /// Written in the same transaction as the events.
    pub idempotency: Option<Idempotency>,
}

impl CommandAppend {
    /// A command without an idempotency key.
    pub fn new(events: Vec<StoredEvent>) -> Self {
        Self { events, idempotency: None }
    }

    /// Splits a sealed log into its commands (runs of events with one causation id), for
    /// appending an exported log as it was written.
    pub fn per_command(events: impl IntoIterator<Item = StoredEvent>) -> Vec<CommandAppend> {
        let mut commands: Vec<CommandAppend> = Vec::new();
        for event in events {
            match commands.last_mut() {
                Some(last)
                    if last.events.last().map(|e| e.metadata.causation_id) == Some(event.metadata.causation_id) =>
                {
                    last.events.push(event)
                }
                _ => commands.push(CommandAppend::new(vec![event])),
            }
        }
        commands
    }
}

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Every command's events were committed; the log's head is now `head`.
    Committed {
        /// The new head of the log.
        head: HashChain,
    },
    /// Nothing was written: command `command` of the batch had already been committed under
    /// its idempotency key, with the same request; its original record is returned.
    Replayed {
        /// Index of the command in the batch.
        command: usize,
        /// The record stored when it was first committed.
        record: IdempotencyRecord,
    },
}

/// Which events of a stream to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRange {
    /// First version to return (from 1).
    pub from_version: u64,
    /// Last version to return.
    pub to_version: Option<u64>,
    /// Only events at or before this time.
    pub until: Option<Timestamp>,
}

impl Default for StreamRange {
    fn default() -> Self {
        Self { from_version: 1, to_version: None, until: None }
    }
}

/// A snapshot of an aggregate (or of the whole engine) at a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// `Order`, `Account`, `Position`, `Market`, or [`ENGINE_SNAPSHOT_TYPE`].
    pub aggregate_type: String,
    /// The aggregate's id ([`ENGINE_SNAPSHOT_ID`] for the engine).
    pub aggregate_id: String,
    /// The stream version the state is at (for the engine: the global position).
    pub version: u64,
    /// The global position of the last event folded into the state.
    pub position: u64,
    /// The snapshot format version (`perpetua_core::snapshot`).
    pub format_version: u32,
    /// The state, as JSON.
    pub state: String,
    /// When it was taken.
    pub taken_at: Timestamp,
}

/// Longest the writer lease's session may take to answer a check before the lease counts as
/// lost.
pub const LEASE_SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `aggregate_type` of engine snapshots.
pub const ENGINE_SNAPSHOT_TYPE: &str = "Engine";
/// `aggregate_id` of engine snapshots.
pub const ENGINE_SNAPSHOT_ID: &str = "exchange";

/// What the store checked about durability when it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durability {
    /// Each setting that decides whether a commit is durable, with its value.
    pub settings: Vec<(String, String)>,
    /// False when the store was opened with `allow_unsafe_durability` over an unsafe setting.
    pub durable: bool,
}

/// Everything that can go wrong in the store. Each error has a stable [`code`](Self::code).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stream was not at the version the batch expected: another writer got there first.
    #[error("version conflict on {stream}: expected {expected}, found version {actual}")]
    VersionConflict {
        /// The stream.
        stream: StreamId,
        /// What the batch expected.
        expected: ExpectedVersion,
        /// The stream's version in the store.
        actual: u64,
    },
    /// The batch does not continue the log's head: another writer appended.
    #[error("the log's head moved: the batch starts after position {expected_head}, the log is at {actual_head}")]
    HeadMoved {
        /// The head the batch was sealed against.
        expected_head: u64,
        /// The head in the store.
        actual_head: u64,
    },
    /// The batch itself is malformed (positions, versions, seal); nothing was written.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// An idempotency key was used again for a different request.
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// An earlier call in this append transaction failed and could not be undone; it can only
    /// be rolled back.
    #[error("the append transaction was aborted by an earlier error; roll it back and start again")]
    TransactionAborted,
    /// A reader found a hole in the global log.
    #[error("the log has a gap: position {missing} is missing")]
    LogGap {
        /// The first missing position.
        missing: u64,
    },
    /// A reader found a hole in a stream.
    #[error("stream {stream} has a gap: version {missing} is missing")]
    StreamGap {
        /// The stream.
        stream: StreamId,
        /// The first missing version.
        missing: u64,
    },
    /// A stored row cannot be read back as an event.
    #[error("corrupt event row at position {position}: {detail}")]
    CorruptRow {
        /// Its position.
        position: i64,
        /// What is wrong with it.
        detail: String,
    },
    /// Another process holds the writer lease.
    #[error("another writer holds the writer lease on this store ({0}); only one writer may run at a time")]
    WriterLeaseHeld(String),
    /// Another process holds the projector lease: it writes these read models.
    #[error(
        "another projector holds the projector lease on this store ({0}); only one projector may write the read models"
    )]
    ProjectorLeaseHeld(String),
    /// This writer no longer holds the writer lease: its session died, or another writer took
    /// the lease since. Nothing was written; this writer must stop.
    #[error("the writer lease was lost ({0}); this writer can no longer append")]
    LeaseLost(String),
    /// The database would acknowledge commits before they are durable.
    #[error(
        "refusing to open: {setting} is {value:?}, so committed events could be lost in a crash; \
         fix the database setting, or pass the unsafe flag to accept the risk"
    )]
    UnsafeDurability {
        /// The setting.
        setting: String,
        /// Its value.
        value: String,
    },
    /// The URL names no supported database.
    #[error("unsupported database URL scheme {0:?}: use sqlite://, postgres:// or mysql://")]
    UnsupportedUrl(String),
    /// The store's schema is newer than this build knows: it was written by a later version.
    #[error(
        "the store's schema has migration {found}, newer than this build knows (up to {known}): run the perpetua \
         version that wrote it, or a later one"
    )]
    SchemaTooNew {
        /// The unknown migration found applied.
        found: i64,
        /// The newest migration this build has.
        known: i64,
    },
    /// A read replica (PostgreSQL in recovery) cannot be migrated, and its schema is not the
    /// one this build writes: the primary must be migrated first (by a writer of this version).
    #[error(
        "the store is a read-only replica whose schema is at migration {found}, not {known} as this build needs: \
         start a writer of this version on the primary first, or run the version that matches"
    )]
    ReplicaSchema {
        /// The newest migration applied on the replica (0: none).
        found: i64,
        /// The newest migration this build has.
        known: i64,
    },
    /// Applying the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// An SQLite file could not be opened as a store.
    #[error("cannot open the SQLite store {path}: {reason}")]
    CannotOpen {
        /// The file.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// The database could not be reached when the store was opened: where, and the driver's
    /// reason (or that it did not answer within [`CONNECT_TIMEOUT`]).
    #[error("cannot reach the database at {address}: {reason}")]
    Unreachable {
        /// `host:port`.
        address: String,
        /// Why.
        reason: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// SQLite refused or failed a statement run through `rusqlite` (the log's readers and
    /// the appender).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// A blocking thread of the SQLite store (a log reader, the appender) failed.
    #[error("database error: {0}")]
    Reader(String),
    /// A file beside the database (the SQLite writer lease) could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Applies the schema's migrations; a store whose schema is newer than this build's (a
/// migration it does not know was applied) is refused in words.
async fn migrate<'a, A>(migrator: &sqlx::migrate::Migrator, pool: A) -> Result<(), StoreError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    match migrator.run(pool).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(found)) => {
            Err(StoreError::SchemaTooNew { found, known: newest_migration(migrator) })
        }
        other => Ok(other?),
    }
}

/// The newest migration a build has.
fn newest_migration(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// How long opening a PostgreSQL or MariaDB store waits for its first connection.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One connection made before the pool is: a database that cannot be reached is reported
/// within [`CONNECT_TIMEOUT`] with its address and the driver's own reason (the pool would
/// retry in silence until its own timeout, then say only that it timed out).
async fn reach<C: sqlx::Connection>(
    address: String,
    connecting: impl std::future::Future<Output = Result<C, sqlx::Error>>,
) -> Result<(), StoreError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(StoreError::Unreachable { address, reason: format!("no answer within {CONNECT_TIMEOUT:?}") }),
        Ok(Err(e)) => Err(StoreError::Unreachable { address, reason: e.to_string() }),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(e)
            }
            e => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// A unique or foreign-key constraint refused the write.
    fn is_constraint_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(
                    e.kind(),
                    sqlx::error::ErrorKind::UniqueViolation | sqlx::error::ErrorKind::ForeignKeyViolation
                )
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
            ),
            _ => false,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::VersionConflict { .. } => "VERSION_CONFLICT",
            StoreError::HeadMoved { .. } => "LOG_HEAD_MOVED",
            StoreError::InvalidBatch(_) => "INVALID_BATCH",
            StoreError::TransactionAborted => "TRANSACTION_ABORTED",
            StoreError::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            StoreError::LogGap { .. } => "LOG_GAP",
            StoreError::StreamGap { .. } => "STREAM_GAP",
            StoreError::CorruptRow { .. } => "CORRUPT_ROW",
            StoreError::WriterLeaseHeld(_) => "WRITER_LEASE_HELD",
            StoreError::ProjectorLeaseHeld(_) => "PROJECTOR_LEASE_HELD",
            StoreError::LeaseLost(_) => "WRITER_LEASE_LOST",
            StoreError::UnsafeDurability { .. } => "UNSAFE_DURABILITY",
            StoreError::UnsupportedUrl(_) => "UNSUPPORTED_DATABASE_URL",
            StoreError::Migration(_) => "MIGRATION_FAILED",
            StoreError::SchemaTooNew { .. } => "SCHEMA_TOO_NEW",
            StoreError::ReplicaSchema { .. } => "REPLICA_SCHEMA_MISMATCH",
            StoreError::Unavailable(_) | StoreError::Unreachable { .. } | StoreError::CannotOpen { .. } => {
                "DATABASE_UNAVAILABLE"
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                "DATABASE_UNAVAILABLE"
            }
            StoreError::Database(_) | StoreError::Sqlite(_) | StoreError::Reader(_) => "DATABASE_ERROR",
            StoreError::Io(_) => "IO_ERROR",
        }
    }
}

/// The event store. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Inner,
    url: String,
    /// The writer epoch of the lease taken through this store (shared by its clones); 0 when
    /// none was taken, and then appends are not fenced (tools and tests that write a store
    /// nobody serves).
    fence: Arc<AtomicU64>,
    /// SQLite: every write to the file through this store (appends, snapshots, checkpoints)
    /// takes this gate first, so they queue here and are woken the moment the one before
    /// ends, instead of meeting SQLite's lock, whose busy handler sleeps 1, 2, 5, 10… ms
    /// between tries (measured: most group commits slept in it while a snapshot was saved).
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone, Debug)]
enum Inner {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
    MySql(mysql::MySqlStore),
}

/// Calls the same method on whichever backend the store runs on.
macro_rules! dispatch {
    ($self:expr, $s:ident => $call:expr) => {
        match &$self.inner {
            Inner::Sqlite($s) => $call,
            Inner::Postgres($s) => $call,
            Inner::MySql($s) => $call,
        }
    };
}

impl Store {
    /// Opens the store at `options.url`, checks durability and applies the schema migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        let write_gate = Arc::new(tokio::sync::Mutex::new(()));
        let inner = match Backend::of_url(&options.url)? {
            Backend::Sqlite => Inner::Sqlite(sqlite::SqliteStore::open(options, write_gate.clone()).await?),
            Backend::Postgres => Inner::Postgres(postgres::PgStore::open(options).await?),
            Backend::MySql => Inner::MySql(mysql::MySqlStore::open(options).await?),
        };
        Ok(Store { inner, url: options.url.clone(), fence: Arc::new(AtomicU64::new(0)), write_gate })
    }

    /// The writer epoch of the lease taken through this store (or a clone), if one was: what
    /// the projector's writes to the same database are fenced by too.
    pub fn fence(&self) -> Option<u64> {
        Some(self.fence.load(Ordering::SeqCst)).filter(|&epoch| epoch != 0)
    }

    /// On SQLite, waits for this store's write gate (see [`Store::write_gate`]).
    async fn gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.inner {
            Inner::Sqlite(_) => Some(self.write_gate.clone().lock_owned().await),
            _ => None,
        }
    }

    /// The database URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
            Inner::MySql(_) => Backend::MySql,
        }
    }

    /// The durability settings checked at open.
    pub fn durability(&self) -> &Durability {
        dispatch!(self, s => &s.durability)
    }

    /// Takes the projector lease, the lock only: while it is held, no other process writes the
    /// read models of this store. Fails with [`StoreError::ProjectorLeaseHeld`] while another
    /// holds it. The projector's epoch, which fences a projector that lost its lock, is kept
    /// with the read models (`projector::take_lease`). Checked with [`Store::check_lease`]'s
    /// session half ([`WriterLease::check_session`]).
    pub async fn acquire_projector_lock(&self) -> Result<WriterLease, StoreError> {
        dispatch!(self, s => s.acquire_lease(LeaseKind::Projector).await).map_err(|e| match e {
            StoreError::WriterLeaseHeld(holder) => StoreError::ProjectorLeaseHeld(holder),
            other => other,
        })
    }

    /// Takes the writer lease; fails with [`StoreError::WriterLeaseHeld`] while another
    /// writer holds it. The lease lasts until the returned value is dropped (or the process
    /// dies).
    ///
    /// Taking it bumps the writer epoch under the head's lock, so it waits for an append in
    /// flight (of a writer that lost its lock a moment ago) to commit or fail; from then on
    /// only appends through this store (and its clones) can move the head.
    pub async fn acquire_writer_lease(&self) -> Result<WriterLease, StoreError> {
        let lease = dispatch!(self, s => s.acquire_lease(LeaseKind::Writer).await)?;
        let (tx, _, _) = dispatch!(self, s => s.begin_append().await?);
        let epoch = tx.bump_epoch().await?;
        self.fence.store(epoch, Ordering::SeqCst);
        Ok(lease.with_epoch(epoch))
    }

    /// Checks that `lease` still holds: its lock (see [`check_lock`]), and the
    /// store's writer epoch is still the lease's. [`StoreError::LeaseLost`] when not; other
    /// errors when the database could not be asked.
    ///
    /// The lock's session must answer within [`LEASE_SESSION_TIMEOUT`] (a session that hangs,
    /// on a half-open connection, cannot prove the lease); the epoch is read through the pool,
    /// whose slowness is not a lost lease.
    pub async fn check_lease(&self, lease: &mut WriterLease) -> Result<(), StoreError> {
        check_lock(lease).await?;
        let current = dispatch!(self, s => s.writer_epoch().await)?;
        if current != lease.epoch() {
            return Err(StoreError::LeaseLost(format!(
                "this writer's epoch is {}, the store's is {current}: another writer took over",
                lease.epoch()
            )));
        }
        Ok(())
    }

    /// Opens an append transaction: takes the log's write lock and reads its head. Until the
    /// transaction commits or is dropped, other appends wait. Through a store that took the
    /// writer lease, fails with [`StoreError::LeaseLost`] once another writer has taken it.
    pub async fn begin_append(&self) -> Result<AppendTx, StoreError> {
        let gate = self.gate().await;
        let (inner, head, epoch) = dispatch!(self, s => s.begin_append().await?);
        let fence = self.fence.load(Ordering::SeqCst);
        if let Err(lost) = check_fence(fence, epoch) {
            inner.rollback().await?;
            return Err(lost);
        }
        Ok(AppendTx { inner, head, start: head, epoch, poisoned: false, _gate: gate })
    }

    /// Appends the events of several commands in one transaction (group commit): all of them,
    /// or — on any error — none.
    pub async fn append(&self, commands: &[CommandAppend]) -> Result<Appended, StoreError> {
        if let Inner::Sqlite(store) = &self.inner {
            if let Some(appender) = store.appender() {
                return appender.append(commands.to_vec(), self.write_gate.clone(), self.fence.clone()).await;
            }
        }
        let plan = Plan::of(commands)?;
        let mut tx = self.begin_append().await?;
        // One call per transaction: no savepoint is needed, a failure rolls everything back.
        match tx.append_unguarded(&plan, commands).await {
            Ok(appended @ Appended::Committed { .. }) => {
                tx.commit().await?;
                Ok(appended)
            }
            Ok(appended @ Appended::Replayed { .. }) => {
                tx.rollback().await?;
                Ok(appended)
            }
            Err(error) => {
                tx.rollback().await?;
                if error.is_constraint_violation() {
                    // Released the lock first; now name the stream that was not where the
                    // batch expected it.
                    let mut actual = HashMap::new();
                    for stream in plan.expected.keys() {
                        actual.insert(*stream, self.stream_version(*stream).await?);
                    }
                    plan.check_versions(&actual)?;
                }
                Err(error)
            }
        }
    }

    /// The head of the log: the last committed position and its hash.
    pub async fn head(&self) -> Result<HashChain, StoreError> {
        dispatch!(self, s => s.head().await)
    }

    /// Up to `limit` events of the global log from position `from`, in order. Fails with
    /// [`StoreError::LogGap`] if a position is missing, rather than skip it.
    pub async fn read_all(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let events = match &self.inner {
            Inner::Sqlite(s) => s.read_log(from, limit).await?,
            _ => dispatch!(self, s => s.read_all(from, limit).await?),
        };
        check_contiguous(from, &events)?;
        Ok(events)
    }

    /// The hashes of up to `limit` events from position `from`, in order (the Merkle tree's
    /// leaves); a missing position is a [`StoreError::LogGap`].
    pub async fn event_hashes(&self, from: u64, limit: u32) -> Result<Vec<Hash>, StoreError> {
        let rows = dispatch!(self, s => s.event_hashes(from, limit).await?);
        if let Some(missing) = first_missing(from, rows.iter().map(|(position, _)| *position)) {
            return Err(StoreError::LogGap { missing });
        }
        Ok(rows.into_iter().map(|(_, hash)| hash).collect())
    }

    /// Every event from position `from` to `to` (inclusive), read in pages of `read_all`
    /// (so a missing position is a [`StoreError::LogGap`], never skipped).
    pub async fn read_range(&self, from: u64, to: u64) -> Result<Vec<StoredEvent>, StoreError> {
        const PAGE: u32 = 10_000;
        let mut events = Vec::new();
        let mut next = from.max(1);
        while next <= to {
            let page = self.read_all(next, PAGE.min(u32::try_from(to - next + 1).unwrap_or(PAGE))).await?;
            let Some(last) = page.last() else { break };
            next = last.position + 1;
            events.extend(page);
        }
        Ok(events)
    }

    /// The events of one stream in `range`, in version order.
    pub async fn read_stream(&self, stream: StreamId, range: StreamRange) -> Result<Vec<StoredEvent>, StoreError> {
        let events = dispatch!(self, s => s.read_stream(stream, range).await?);
        match first_missing(range.from_version, events.iter().map(|e| e.version)) {
            Some(missing) => Err(StoreError::StreamGap { stream, missing }),
            None => Ok(events),
        }
    }

    /// The current version of a stream (0 when it does not exist).
    pub async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        dispatch!(self, s => s.stream_version(stream).await)
    }

    /// Up to `limit` events of one type from position `from`, in global order.
    pub async fn read_by_type(&self, event_type: &str, from: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        dispatch!(self, s => s.read_by_type(event_type, from, limit).await)
    }

    /// Every event with this correlation id, in global order.
    pub async fn read_by_correlation(&self, correlation_id: uuid::Uuid) -> Result<Vec<StoredEvent>, StoreError> {
        let events = dispatch!(self, s => s.read_by_correlation(correlation_id).await?);
        // The indexed column is a copy of the metadata's field, which is what the chain covers:
        // a row whose copy disagrees with it is not returned as belonging to the correlation.
        Ok(events.into_iter().filter(|e| e.metadata.correlation_id == Some(correlation_id)).collect())
    }

    /// The idempotency record stored under `key`, if any.
    pub async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        dispatch!(self, s => s.idempotency_record(key).await)
    }

    /// The key, digest and position of every idempotency record after `position` (the
    /// writer holds them in memory, so that it answers a retry without asking the database).
    pub async fn idempotency_keys(&self, after: u64) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self, s => s.idempotency_keys(after).await)
    }

    /// Saves a snapshot (replacing one of the same aggregate and version).
    pub async fn save_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        self.save_snapshots(std::slice::from_ref(snapshot)).await
    }

    /// Saves snapshots in one transaction, all or none (each replacing one of the same
    /// aggregate and version): one commit for many, so that saving them costs the log's
    /// writer one wait at the write gate rather than one per snapshot.
    pub async fn save_snapshots(&self, snapshots: &[SnapshotRecord]) -> Result<(), StoreError> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let _gate = self.gate().await;
        dispatch!(self, s => s.save_snapshots(snapshots).await)
    }

    /// The newest snapshot of an aggregate at or below `version` (any version when `None`).
    pub async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: Option<u64>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        dispatch!(self, s => s.load_snapshot(aggregate_type, aggregate_id, version).await)
    }

    /// A projection's checkpoint: the last global position it has applied (0 if none).
    pub async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        dispatch!(self, s => s.checkpoint(projection).await)
    }

    /// Records a projection's checkpoint.
    pub async fn save_checkpoint(&self, projection: &str, position: u64) -> Result<(), StoreError> {
        let _gate = self.gate().await;
        dispatch!(self, s => s.save_checkpoint(projection, position).await)
    }

    /// Stores a signed checkpoint (one per tree size: a second one of the same size fails).
    pub async fn save_signed_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let _gate = self.gate().await;
        dispatch!(self, s => s.save_signed_checkpoint(checkpoint).await)
    }

    /// Up to `limit` signed checkpoints from tree size `from` on, smallest first.
    pub async fn signed_checkpoints(&self, from: u64, limit: u32) -> Result<Vec<Checkpoint>, StoreError> {
        dispatch!(self, s => s.signed_checkpoints(from, limit).await)
    }

    /// The signed checkpoint of the largest tree size at most `at_most`.
    pub async fn latest_signed_checkpoint(&self, at_most: u64) -> Result<Option<Checkpoint>, StoreError> {
        dispatch!(self, s => s.latest_signed_checkpoint(at_most).await)
    }

    /// Verifies the hash chain from position `from` to `to` (inclusive) against the stored hash
    /// of the event before `from`. When `to` is `None` it reads to the last event in the table
    /// (including any written around the store) and checks that the chain ends exactly at the
    /// head the store recorded: a cut-off tail is a gap, events past the head or a re-chained
    /// log a [`audit::ChainFault::HeadMismatch`]. Reads in pages.
    pub async fn verify(&self, from: u64, to: Option<u64>) -> Result<VerifyReport, StoreError> {
        const PAGE: u32 = 10_000;
        let from = from.max(1);
        let mut head = HashChain::default();
        if from > 1 {
            let before = self.read_all(from - 1, 1).await?;
            let event = before.first().ok_or(StoreError::LogGap { missing: from - 1 })?;
            head = HashChain { last_position: event.position, last_hash: event.hash };
        }
        let gap = |verified, missing, head: HashChain| VerifyReport {
            verified,
            first_bad_position: Some(missing),
            fault: Some(audit::ChainFault::PositionGap { expected: missing }),
            last_hash: head.last_hash,
        };
        let mut verified = 0;
        let mut next = from;
        while to.is_none_or(|to| next <= to) {
            let limit = to.map_or(PAGE, |to| PAGE.min(u32::try_from(to - next + 1).unwrap_or(PAGE)));
            let page = match self.read_all(next, limit).await {
                Ok(page) => page,
                // The events of the page before the gap are verified first, so the report
                // counts them and a fault among them comes first.
                Err(StoreError::LogGap { missing }) if missing > next => {
                    let before = u32::try_from(missing - next).unwrap_or(limit);
                    let page = self.read_all(next, before).await?;
                    let mut report = audit::verify(&page, head);
                    report.verified += verified;
                    if !report.is_ok() {
                        return Ok(report);
                    }
                    let head = page.last().map_or(head, |e| HashChain { last_position: e.position, last_hash: e.hash });
                    return Ok(gap(report.verified, missing, head));
                }
                Err(StoreError::LogGap { missing }) => return Ok(gap(verified, missing, head)),
                Err(e) => return Err(e),
            };
            let Some(last) = page.last() else { break };
            let mut report = audit::verify(&page, head);
            report.verified += verified;
            if !report.is_ok() {
                return Ok(report);
            }
            verified = report.verified;
            head = HashChain { last_position: last.position, last_hash: last.hash };
            next = last.position + 1;
        }
        if to.is_some_and(|to| next <= to) {
            return Ok(gap(verified, next, head));
        }
        if to.is_none() {
            // The whole log: it must end exactly at the head the store recorded, so a tail cut
            // off, or events added or re-chained around the store, do not pass.
            let recorded = self.head().await?;
            if head.last_position < recorded.last_position {
                return Ok(gap(verified, head.last_position + 1, head));
            }
            if head != recorded {
                // Past the head: the first event after it; at the head: the head itself.
                let first_bad = match head.last_position > recorded.last_position {
                    true => recorded.last_position + 1,
                    false => recorded.last_position,
                };
                return Ok(VerifyReport {
                    verified: verified.saturating_sub(head.last_position + 1 - first_bad),
                    first_bad_position: Some(first_bad),
                    fault: Some(audit::ChainFault::HeadMismatch),
                    last_hash: recorded.last_hash,
                });
            }
        }
        Ok(VerifyReport { verified, first_bad_position: None, fault: None, last_hash: head.last_hash })
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        if let Inner::Sqlite(store) = &self.inner {
            if let Some(appender) = store.appender() {
                appender.close();
            }
        }
        dispatch!(self, s => s.pool.close().await)
    }
}

/// An open append transaction, holding the log's write lock.
#[derive(Debug)]
pub struct AppendTx {
    inner: backend::Tx,
    head: HashChain,
    start: HashChain,
    /// The writer epoch found under the lock; the head moves only while it is unchanged.
    epoch: u64,
    /// Set when a failed call could not be undone: the transaction can then only roll back.
    poisoned: bool,
    /// SQLite: the store's write gate, held until the transaction ends.
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl AppendTx {
    /// The head of the log as this transaction sees it (including its own appends).
    pub fn head(&self) -> HashChain {
        self.head
    }

    /// Checks and writes the events of `commands`, continuing the head; see [`Store::append`].
    /// Each call runs under a savepoint: on [`Appended::Replayed`] or an error, nothing of
    /// `commands` stays in the transaction, which can go on with other calls and commit.
    ///
    /// Stream versions are checked by the schema itself: `(aggregate_type, aggregate_id,
    /// version)` is unique and every version but the first follows the one before it. So
    /// when the batch continues the head, its events are simply inserted, and only a violated
    /// constraint makes the store read the streams' versions, to name the conflict. A batch
    /// sealed against an older head reads them first: a stream that moved is a
    /// [`StoreError::VersionConflict`], otherwise the head moved under unrelated streams.
    pub async fn append(&mut self, commands: &[CommandAppend]) -> Result<Appended, StoreError> {
        if self.poisoned {
            return Err(StoreError::TransactionAborted);
        }
        let plan = Plan::of(commands)?;
        self.inner.savepoint().await?;
        let head = self.head;
        let result = self.append_unguarded(&plan, commands).await;
        let keep = matches!(result, Ok(Appended::Committed { .. }));
        let undone = if keep { self.inner.release_savepoint().await } else { self.inner.rollback_to_savepoint().await };
        if let Err(e) = undone {
            self.poisoned = true;
            return Err(e);
        }
        if !keep {
            self.head = head;
        }
        match result {
            Err(error) if error.is_constraint_violation() => {
                let streams: Vec<StreamId> = plan.expected.keys().copied().collect();
                plan.check_versions(&self.inner.stream_versions(&streams).await?)?;
                Err(error)
            }
            other => other,
        }
    }

    /// The steps of an append, without a savepoint; on an error the caller must undo them.
    async fn append_unguarded(&mut self, plan: &Plan<'_>, commands: &[CommandAppend]) -> Result<Appended, StoreError> {
        let keys = keys_of(commands);
        if !keys.is_empty() {
            let found = self.inner.idempotency_records(&keys).await?;
            if let Some(replayed) = replayed(commands, found)? {
                return Ok(replayed);
            }
        }
        if let Continues::No(streams) = plan.continues(self.head)? {
            plan.check_versions(&self.inner.stream_versions(&streams).await?)?;
            return Err(plan.head_moved(self.head));
        }
        let events: Vec<&StoredEvent> = commands.iter().flat_map(|c| &c.events).collect();
        self.inner.insert_events(&events).await?;
        self.inner.insert_idempotency(&records_of(commands, self.head.last_position)).await?;
        if let Some(last) = events.last() {
            self.head = HashChain { last_position: last.position, last_hash: last.hash };
        }
        Ok(Appended::Committed { head: self.head })
    }

    /// Commits: moves the stored head and makes everything appended durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        if self.poisoned {
            self.inner.rollback().await?;
            return Err(StoreError::TransactionAborted);
        }
        self.inner.commit(self.start, self.head, self.epoch).await
    }

    /// Rolls back everything appended in this transaction.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.inner.rollback().await
    }
}

/// A batch checked on its own, before the database is asked anything: positions contiguous,
/// hashes linked and matching their bytes, stream versions contiguous, keys distinct.
struct Plan<'a> {
    first: Option<&'a StoredEvent>,
    expected: BTreeMap<StreamId, ExpectedVersion>,
}

impl<'a> Plan<'a> {
    fn of(commands: &'a [CommandAppend]) -> Result<Plan<'a>, StoreError> {
        let invalid = |what: String| Err(StoreError::InvalidBatch(what));
        let mut keys = BTreeSet::new();
        for command in commands {
            if let Some(idempotency) = &command.idempotency {
                if !keys.insert(idempotency.key.as_str()) {
                    return invalid(format!("idempotency key {:?} appears twice in one batch", idempotency.key));
                }
            }
        }
        let mut plan = Plan { first: None, expected: BTreeMap::new() };
        let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
        let mut previous: Option<&StoredEvent> = None;
        for event in commands.iter().flat_map(|c| &c.events) {
            if let Some(prev) = previous {
                if event.position != prev.position + 1 {
                    return invalid(format!("position {} follows position {}", event.position, prev.position));
                }
                if event.prev_hash != prev.hash {
                    return invalid(format!(
                        "prevHash of position {} is not the hash of the event before",
                        event.position
                    ));
                }
            } else if event.position == 0 {
                return invalid("positions start at 1".into());
            }
            if i64::try_from(event.position).is_err() || i64::try_from(event.version).is_err() {
                return invalid(format!("position {} or its version is out of range", event.position));
            }
            if audit::chain_hash(&event.prev_hash, event) != event.hash {
                return invalid(format!("the hash of position {} does not match its bytes", event.position));
            }
            let stream = StreamId { aggregate_type: event.aggregate_type, aggregate_id: event.aggregate_id };
            match versions.get_mut(&stream) {
                Some(last) if event.version == *last + 1 => *last = event.version,
                Some(last) => {
                    return invalid(format!("{stream}: version {} follows version {last}", event.version));
                }
                None if event.version == 0 => return invalid(format!("{stream}: versions start at 1")),
                None => {
                    versions.insert(stream, event.version);
                    plan.expected.insert(stream, ExpectedVersion::before(event.version));
                }
            }
            plan.first.get_or_insert(event);
            previous = Some(event);
        }
        Ok(plan)
    }
}

/// [`StoreError::LeaseLost`] when a store fenced by `fence` (0: not fenced) finds the writer
/// epoch at `epoch` under the head's lock: another writer took over.
fn check_fence(fence: u64, epoch: u64) -> Result<(), StoreError> {
    if fence != 0 && epoch != fence {
        return Err(StoreError::LeaseLost(format!(
            "this writer's epoch is {fence}, the store's is {epoch}: another writer took over"
        )));
    }
    Ok(())
}

/// Why the head's compare-and-set from `start` under `epoch` moved no row, from the head and
/// epoch found after it: another writer's epoch, or a head that moved.
fn head_not_moved(start: HashChain, epoch: u64, actual: HashChain, actual_epoch: u64) -> StoreError {
    if actual_epoch != epoch {
        return StoreError::LeaseLost(format!("this writer's epoch is {epoch}, the store's is {actual_epoch}"));
    }
    StoreError::HeadMoved { expected_head: start.last_position, actual_head: actual.last_position }
}

/// The idempotency keys a batch carries.
fn keys_of(commands: &[CommandAppend]) -> Vec<&str> {
    commands.iter().filter_map(|c| c.idempotency.as_ref()).map(|i| i.key.as_str()).collect()
}

/// What the stored records of a batch's keys say: the first command committed before under
/// its key (the batch is then [`Appended::Replayed`], nothing written), a key reused for
/// another request, or nothing (every key is new).
fn replayed(
    commands: &[CommandAppend],
    mut found: HashMap<String, IdempotencyRecord>,
) -> Result<Option<Appended>, StoreError> {
    for (index, command) in commands.iter().enumerate() {
        let Some(idempotency) = &command.idempotency else { continue };
        if let Some(record) = found.remove(&idempotency.key) {
            if record.fingerprint != idempotency.fingerprint {
                return Err(StoreError::IdempotencyKeyReused { key: idempotency.key.clone() });
            }
            return Ok(Some(Appended::Replayed { command: index, record }));
        }
    }
    Ok(None)
}

/// The idempotency records a batch writes after `head_position`: each key with the position
/// of its command's last event (the position before it, for a command without events).
fn records_of(commands: &[CommandAppend], head_position: u64) -> Vec<IdempotencyRecord> {
    let mut position = head_position;
    let mut records = Vec::new();
    for command in commands {
        position = command.events.last().map_or(position, |e| e.position);
        if let Some(idempotency) = &command.idempotency {
            records.push(IdempotencyRecord {
                key: idempotency.key.clone(),
                fingerprint: idempotency.fingerprint,
                outcome: idempotency.outcome.clone(),
                position,
            });
        }
    }
    records
}

/// Whether a batch continues the head it is appended after.
enum Continues {
    Yes,
    /// It was sealed after another head: these streams' versions say whether one of them
    /// moved (a [`StoreError::VersionConflict`]) or only the head did.
    No(Vec<StreamId>),
}

impl Plan<'_> {
    /// Whether the batch continues `head`; a batch whose first event says it follows
    /// `head`'s position but not its hash forks the chain, and is refused.
    fn continues(&self, head: HashChain) -> Result<Continues, StoreError> {
        let Some(first) = self.first else { return Ok(Continues::Yes) };
        if first.position != head.last_position + 1 {
            return Ok(Continues::No(self.expected.keys().copied().collect()));
        }
        if first.prev_hash != head.last_hash {
            return Err(StoreError::InvalidBatch(format!(
                "position {} does not continue the stored chain: its prevHash is not the hash of position {}",
                first.position, head.last_position
            )));
        }
        Ok(Continues::Yes)
    }

    /// The error of a batch sealed after another head than `head`, no stream of it having
    /// moved.
    fn head_moved(&self, head: HashChain) -> StoreError {
        let expected_head = self.first.map_or(head.last_position, |first| first.position - 1);
        StoreError::HeadMoved { expected_head, actual_head: head.last_position }
    }

    /// A [`StoreError::VersionConflict`] for the first stream not at its expected version.
    fn check_versions(&self, actual: &HashMap<StreamId, u64>) -> Result<(), StoreError> {
        for (stream, expected) in &self.expected {
            let found = actual.get(stream).copied().unwrap_or(0);
            if found != expected.as_version() {
                return Err(StoreError::VersionConflict { stream: *stream, expected: *expected, actual: found });
            }
        }
        Ok(())
    }
}

fn check_contiguous(from: u64, events: &[StoredEvent]) -> Result<(), StoreError> {
    match first_missing(from, events.iter().map(|e| e.position)) {
        Some(missing) => Err(StoreError::LogGap { missing }),
        None => Ok(()),
    }
}

/// The first number missing from a sequence that should count up by one from `from` (or 1).
fn first_missing(from: u64, numbers: impl Iterator<Item = u64>) -> Option<u64> {
    (from.max(1)..).zip(numbers).find(|(expected, found)| expected != found).map(|(expected, _)| expected)
}

/// One event row as it comes out of any backend, before it is checked and typed: its text
/// and bytes owned (sqlx) or borrowed from the row in place (the SQLite log reader).
pub(crate) struct EventRow<'a> {
    position: i64,
    event_id: uuid::Uuid,
    event_type: Cow<'a, str>,
    schema_version: i32,
    aggregate_type: Cow<'a, str>,
    aggregate_id: Cow<'a, str>,
    version: i64,
    timestamp_ms: i64,
    payload: Cow<'a, str>,
    metadata: Cow<'a, str>,
    prev_hash: Cow<'a, [u8]>,
    hash: Cow<'a, [u8]>,
}

impl EventRow<'_> {
    fn into_event(self) -> Result<StoredEvent, StoreError> {
        let position = self.position;
        let corrupt = |detail: String| StoreError::CorruptRow { position, detail };
        let hash_of = |bytes: &[u8], column: &str| {
            <[u8; 32]>::try_from(bytes).map(Hash).map_err(|_| corrupt(format!("{column} has {} bytes", bytes.len())))
        };
        Ok(StoredEvent {
            position: u64::try_from(position).map_err(|_| corrupt("negative position".into()))?,
            event_id: EventId(self.event_id),
            aggregate_type: AggregateType::parse(&self.aggregate_type)
                .ok_or_else(|| corrupt(format!("unknown aggregate type {:?}", self.aggregate_type)))?,
            aggregate_id: self
                .aggregate_id
                .parse::<AggregateId>()
                .map_err(|e| corrupt(format!("aggregate id {:?}: {e}", self.aggregate_id)))?,
            event_type: self.event_type.into_owned(),
            schema_version: u32::try_from(self.schema_version)
                .map_err(|_| corrupt("negative schema version".into()))?,
            version: u64::try_from(self.version).map_err(|_| corrupt("negative version".into()))?,
            timestamp: Timestamp(self.timestamp_ms),
            payload: RawValue::from_string(self.payload.into_owned()).map_err(|e| corrupt(format!("payload: {e}")))?,
            metadata: serde_json::from_str::<Metadata>(&self.metadata)
                .map_err(|e| corrupt(format!("metadata: {e}")))?,
            prev_hash: hash_of(&self.prev_hash, "prev_hash")?,
            hash: hash_of(&self.hash, "hash")?,
            metadata_redacted: false,
        })
    }
}

/// The values of one event as bound into an insert.
pub(crate) struct EventValues<'a> {
    position: i64,
    event_id: uuid::Uuid,
    event_type: &'a str,
    schema_version: i32,
    aggregate_type: &'static str,
    aggregate_id: String,
    version: i64,
    timestamp_ms: i64,
    payload: &'a str,
    metadata: String,
    correlation_id: Option<uuid::Uuid>,
    prev_hash: &'a [u8],
    hash: &'a [u8],
}

impl<'a> EventValues<'a> {
    fn of(event: &'a StoredEvent) -> Result<Self, StoreError> {
        let too_big =
            |what: &str| StoreError::InvalidBatch(format!("{what} of position {} is out of range", event.position));
        Ok(EventValues {
            position: i64::try_from(event.position).map_err(|_| too_big("position"))?,
            event_id: event.event_id.0,
            event_type: &event.event_type,
            schema_version: i32::try_from(event.schema_version).map_err(|_| too_big("schema version"))?,
            aggregate_type: event.aggregate_type.as_str(),
            aggregate_id: event.aggregate_id.to_string(),
            version: i64::try_from(event.version).map_err(|_| too_big("version"))?,
            timestamp_ms: event.timestamp.millis(),
            payload: event.payload.get(),
            metadata: serde_json::to_string(&event.metadata).expect("metadata serializes"),
            correlation_id: event.metadata.correlation_id,
            prev_hash: &event.prev_hash.0,
            hash: &event.hash.0,
        })
    }
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidBatch(format!("{what} {value} is out of range")))
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::CorruptRow { position: value, detail: format!("negative {what}") })
}

/// Checks that a lease's lock is still held: its session is alive, holds the lock, and
/// answers within [`LEASE_SESSION_TIMEOUT`] (a session that hangs, on a half-open connection,
/// cannot prove the lease). [`StoreError::LeaseLost`] when not.
pub async fn check_lock(lease: &mut WriterLease) -> Result<(), StoreError> {
    match tokio::time::timeout(LEASE_SESSION_TIMEOUT, lease.check_session()).await {
        Ok(checked) => checked,
        Err(_) => Err(StoreError::LeaseLost(format!(
            "the session holding the lock did not answer within {LEASE_SESSION_TIMEOUT:?}"
        ))),
    }
}
