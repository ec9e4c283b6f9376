//! SQLite: one file in WAL mode with `synchronous=FULL` (a commit returns after the WAL is
//! synced). Appends are `BEGIN IMMEDIATE` transactions, which take the database's single
//! write lock up front. The writer lease is an exclusive lock on `<file>-writer.lock`.

use super::backend::{common_queries, values_insert, Held, LeaseKind, Queries, Tx, WriterLease};
use super::{
    keys_of, records_of, replayed, Appended, Backend, CommandAppend, Continues, Durability, EventValues, Plan,
    StoreOptions,
};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::fs::TryLockError;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static Q: LazyLock<Queries> = LazyLock::new(|| Queries::new(Backend::Sqlite));
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone, Debug)]
pub(super) struct SqliteStore {
    pub(super) pool: SqlitePool,
    pub(super) durability: Durability,
    /// The database file (its leases are locks on files beside it).
    file: PathBuf,
    /// Stops the WAL checkpointer when the last clone of the store is dropped.
    _checkpointer: Arc<Checkpointer>,
    /// Reads the log in pages off the async runtime (see [`LogReaders`]); none for a database
    /// in memory, which no other connection can open.
    readers: Option<Arc<LogReaders>>,
    /// Writes appends off the async runtime (see [`Appender`]); none for a database in memory.
    appender: Option<Arc<Appender>>,
}

/// The log read in pages with `rusqlite` on a blocking thread, each row's columns decoded in
/// place: reading through sqlx copied each of a row's thirteen columns out of SQLite on its
/// worker thread and handed them over (measured: half of `rebuild`'s samples, BENCHMARKS.md).
/// Read-only connections of their own, kept for the next read (a WAL reader sees every
/// committed transaction and never blocks the writer).
#[derive(Debug)]
struct LogReaders {
    file: PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

/// Readers kept open between reads (more run at once if asked, and are closed after).
const IDLE_READERS: usize = 4;

impl LogReaders {
    fn read(&self, from: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let page = read_page(&connection, from, limit)?;
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        Ok(page)
    }

    fn open(&self) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = rusqlite::Connection::open_with_flags(&self.file, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "cache_size", -16384)?;
        Ok(connection)
    }
}

/// Up to `limit` events from position `from`, each row decoded where it lies.
fn read_page(connection: &rusqlite::Connection, from: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = connection.prepare_cached(&Q.read_all)?;
    let mut rows = statement.query(rusqlite::params![from, i64::from(limit)])?;
    let mut events = Vec::with_capacity(usize::try_from(limit.min(10_000)).unwrap_or(0));
    while let Some(row) = rows.next()? {
        let text = |index: usize| -> rusqlite::Result<&str> { Ok(row.get_ref(index)?.as_str()?) };
        let bytes = |index: usize| -> rusqlite::Result<&[u8]> { Ok(row.get_ref(index)?.as_blob()?) };
        let id = bytes(1)?;
        let event_id = uuid::Uuid::from_slice(id).map_err(|_| StoreError::CorruptRow {
            position: row.get(0).unwrap_or(0),
            detail: format!("an event id of {} bytes", id.len()),
        })?;
        let event = super::EventRow {
            position: row.get(0)?,
            event_id,
            event_type: text(2)?.into(),
            schema_version: row.get(3)?,
            aggregate_type: text(4)?.into(),
            aggregate_id: text(5)?.into(),
            version: row.get(6)?,
            timestamp_ms: row.get(7)?,
            payload: text(8)?.into(),
            metadata: text(9)?.into(),
            prev_hash: bytes(10)?.into(),
            hash: bytes(11)?.into(),
        };
        events.push(event.into_event()?);
    }
    Ok(events)
}

/// Appends written with `rusqlite` on a blocking thread: a whole group commit is one
/// hand-off, its statements prepared once and kept, each event's values bound where they lie.
/// Through sqlx every statement of the transaction was a round trip to the driver's worker
/// thread, each multi-row insert was parsed anew (its text changes with the batch's size) and
/// its values were copied into the driver's arguments (BENCHMARKS.md, "The append through
/// `rusqlite`"). The same transaction as the other backends': the write lock taken up front
/// (`BEGIN IMMEDIATE`), the head and the writer's epoch read under it, the events and the
/// idempotency records inserted (the schema enforces contiguous positions and versions), the
/// head moved by compare-and-set on the epoch, then the commit (synced: `synchronous=FULL`).
#[derive(Debug)]
pub(super) struct Appender {
    file: PathBuf,
    /// `journal_size_limit`: the appender's commits start the WAL over (see [`Checkpointer`]).
    wal_limit: i64,
    /// Set by [`Appender::close`].
    closed: std::sync::atomic::AtomicBool,
    /// Set by the first append: this process writes the log (see [`Checkpointer`]).
    appending: Arc<std::sync::atomic::AtomicBool>,
    /// The connection, kept between appends; taken out while one runs, and closed after a
    /// failure that left it inside a transaction.
    connection: std::sync::Mutex<Option<rusqlite::Connection>>,
}

impl Appender {
    /// Appends `commands` in one transaction (see [`super::Store::append`]) under the store's
    /// write `gate`, fenced by the writer epoch in `fence` (0: not fenced). The batch is
    /// checked before the gate is taken; the gate is held on the blocking thread until the
    /// transaction has ended, so a caller that stops waiting never leaves a write running
    /// outside it.
    pub(super) async fn append(
        self: &Arc<Self>,
        commands: Vec<CommandAppend>,
        gate: Arc<tokio::sync::Mutex<()>>,
        fence: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Appended, StoreError> {
        self.appending.store(true, std::sync::atomic::Ordering::Relaxed);
        let appender = self.clone();
        let append = move || {
            let plan = Plan::of(&commands)?;
            let _gate = gate.blocking_lock_owned();
            appender.append_blocking(&commands, &plan, fence.load(std::sync::atomic::Ordering::SeqCst))
        };
        match tokio::task::spawn_blocking(append).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Reader(format!("the appender's thread failed: {e}"))),
        }
    }

    /// No append after this: they fail as the closed pool's would.
    pub(super) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        *self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn append_blocking(&self, commands: &[CommandAppend], plan: &Plan<'_>, fence: u64) -> Result<Appended, StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        }
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = append_with(&mut connection, plan, commands, fence);
        if connection.is_autocommit() {
            *slot = Some(connection);
        }
        result
    }

    fn open(&self) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = rusqlite::Connection::open_with_flags(&self.file, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // As the pool's connections (`SqliteStore::open`): synced commits, foreign keys
        // checked (they keep positions and versions contiguous), no checkpoint on commit.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.pragma_update(None, "cache_size", -65536)?;
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        connection.pragma_update(None, "journal_size_limit", self.wal_limit)?;
        let journal_mode: String = connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        let synchronous: i64 = connection.pragma_query_value(None, "synchronous", |row| row.get(0))?;
        let foreign_keys: i64 = connection.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
        if journal_mode != "wal" || synchronous < 2 || foreign_keys != 1 {
            return Err(StoreError::UnsafeDurability {
                setting: "the appender's journal_mode, synchronous, foreign_keys".into(),
                value: format!("{journal_mode}, {synchronous}, {foreign_keys}"),
            });
        }
        Ok(connection)
    }
}

const INSERT_EVENT: &str = "INSERT INTO events (position, event_id, event_type, schema_version, aggregate_type, \
     aggregate_id, version, timestamp_ms, payload, metadata, correlation_id, prev_hash, hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency_records (idempotency_key, fingerprint, outcome, position) VALUES (?, ?, ?, ?)";

/// One append transaction on `connection`; on any error it is rolled back (the transaction
/// is dropped) and nothing of `commands` is written.
fn append_with(
    connection: &mut rusqlite::Connection,
    plan: &Plan<'_>,
    commands: &[CommandAppend],
    fence: u64,
) -> Result<Appended, StoreError> {
    let inserted = {
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (start, epoch) = locked_head(&tx)?;
        super::check_fence(fence, epoch)?;
        let keys = keys_of(commands);
        if !keys.is_empty() {
            if let Some(replayed) = replayed(commands, idempotency_records(&tx, &keys)?)? {
                return Ok(replayed);
            }
        }
        if let Continues::No(streams) = plan.continues(start)? {
            plan.check_versions(&stream_versions(&tx, &streams)?)?;
            return Err(plan.head_moved(start));
        }
        match insert(&tx, commands, start.last_position) {
            Ok(()) => {
                let head = commands
                    .iter()
                    .flat_map(|c| c.events.last())
                    .last()
                    .map_or(start, |last| HashChain { last_position: last.position, last_hash: last.hash });
                move_head(&tx, start, head, epoch)?;
                tx.commit()?;
                return Ok(Appended::Committed { head });
            }
            Err(error) => error,
        }
    };
    // Rolled back; a violated constraint is named by the streams' versions.
    if inserted.is_constraint_violation() {
        let streams: Vec<StreamId> = plan.expected.keys().copied().collect();
        plan.check_versions(&stream_versions(connection, &streams)?)?;
    }
    Err(inserted)
}

fn locked_head(tx: &rusqlite::Connection) -> Result<(HashChain, u64), StoreError> {
    let mut statement = tx.prepare_cached(&Q.lock_head)?;
    let (position, hash, epoch): (i64, Vec<u8>, i64) =
        statement.query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let last_hash = Hash(<[u8; 32]>::try_from(hash.as_slice()).map_err(|_| StoreError::CorruptRow {
        position,
        detail: format!("the head's hash has {} bytes", hash.len()),
    })?);
    Ok((
        HashChain { last_position: super::to_u64(position, "position")?, last_hash },
        super::to_u64(epoch, "writer epoch")?,
    ))
}

fn idempotency_records(
    tx: &rusqlite::Connection,
    keys: &[&str],
) -> Result<HashMap<String, IdempotencyRecord>, StoreError> {
    let mut statement = tx.prepare_cached(&Q.idempotency_record)?;
    let mut found = HashMap::new();
    for key in keys {
        let mut rows = statement.query([key])?;
        if let Some(row) = rows.next()? {
            let fingerprint: Vec<u8> = row.get(1)?;
            let record = IdempotencyRecord {
                key: row.get(0)?,
                fingerprint: Hash(<[u8; 32]>::try_from(fingerprint.as_slice()).map_err(|_| {
                    StoreError::CorruptRow {
                        position: row.get(3).unwrap_or(0),
                        detail: format!("the fingerprint of key {key:?} has {} bytes", fingerprint.len()),
                    }
                })?),
                outcome: row.get(2)?,
                position: super::to_u64(row.get(3)?, "position")?,
            };
            found.insert(record.key.clone(), record);
        }
    }
    Ok(found)
}

fn stream_versions(
    connection: &rusqlite::Connection,
    streams: &[StreamId],
) -> Result<HashMap<StreamId, u64>, StoreError> {
    let mut statement = connection.prepare_cached(&Q.stream_version)?;
    let mut found = HashMap::with_capacity(streams.len());
    for stream in streams {
        let version: i64 = statement
            .query_row(rusqlite::params![stream.aggregate_type.as_str(), stream.aggregate_id.to_string()], |row| {
                row.get(0)
            })?;
        found.insert(*stream, super::to_u64(version, "version")?);
    }
    Ok(found)
}

/// Inserts the batch's events and idempotency records, each through its kept statement.
fn insert(tx: &rusqlite::Connection, commands: &[CommandAppend], head_position: u64) -> Result<(), StoreError> {
    let mut events = tx.prepare_cached(INSERT_EVENT)?;
    for event in commands.iter().flat_map(|c| &c.events) {
        let v = EventValues::of(event)?;
        events.execute(rusqlite::params![
            v.position,
            v.event_id.as_bytes().as_slice(),
            v.event_type,
            v.schema_version,
            v.aggregate_type,
            v.aggregate_id,
            v.version,
            v.timestamp_ms,
            v.payload,
            v.metadata,
            v.correlation_id.as_ref().map(|id| id.as_bytes().as_slice()),
            v.prev_hash,
            v.hash,
        ])?;
    }
    let mut records = tx.prepare_cached(INSERT_IDEMPOTENCY)?;
    for record in records_of(commands, head_position) {
        records.execute(rusqlite::params![
            record.key,
            record.fingerprint.0.as_slice(),
            record.outcome,
            super::to_i64(record.position, "position")?,
        ])?;
    }
    Ok(())
}

/// Moves the head from `start` to `head` while the writer's epoch is still `epoch`.
fn move_head(tx: &rusqlite::Connection, start: HashChain, head: HashChain, epoch: u64) -> Result<(), StoreError> {
    if head == start {
        return Ok(());
    }
    let moved = tx.prepare_cached(&Q.update_head)?.execute(rusqlite::params![
        super::to_i64(head.last_position, "position")?,
        head.last_hash.0.as_slice(),
        super::to_i64(start.last_position, "position")?,
        super::to_i64(epoch, "writer epoch")?,
    ])?;
    if moved != 1 {
        let (actual, actual_epoch) = locked_head(tx)?;
        return Err(super::head_not_moved(start, epoch, actual, actual_epoch));
    }
    Ok(())
}

/// How long a connection waits for SQLite's lock before it fails (the store's own writers
/// queue at the write gate instead, so this is only ever spent on another process's lock).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] on a connection of the pool, in PASSIVE
/// mode: it copies what no reader still needs and never blocks a writer, so a commit never
/// waits for a checkpoint (SQLite's own, run by the commit that crosses the threshold, made
/// that commit wait for the copy and the database file's fsync). Runs until the store is
/// dropped or closed.
///
/// Under steady appends a PASSIVE checkpoint never ends with the WAL copied whole (commits
/// land while it copies), and SQLite starts the WAL over only then: it grew without bound
/// (measured: 55 MB/s, 650 MB after 12 s of load, BENCHMARKS.md). So once the WAL holds more
/// than [`StoreOptions::sqlite_wal_limit`] bytes after a checkpoint, a second one runs at once
/// with the write gate held ([`restart`]): appends wait for the copy of what landed during the
/// first and for the WAL's readers to move to the database file, and the next append starts
/// the WAL over, its file cut back to the limit (`journal_size_limit`).
#[derive(Debug)]
struct Checkpointer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Checkpointer {
    /// Checkpoints through `pool`; past `limit_frames` frames, once `appending` says this
    /// process writes the log, again with `gate` held, waiting for the WAL's readers. (RESTART
    /// takes SQLite's own write lock while it waits: in a process that only reads, a projector,
    /// a query server, a tool, it would stall the writer's appends in SQLite's busy handler;
    /// and such a process has no appends of its own to hold.)
    fn start(
        pool: SqlitePool,
        gate: Arc<tokio::sync::Mutex<()>>,
        limit_frames: i64,
        appending: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                if pool.is_closed() {
                    break;
                }
                // The connection first: the appends are never held while the pool is busy.
                let Ok(mut connection) = pool.acquire().await else { continue };
                // The copy of most of the WAL, beside the appends; then, if it holds too much,
                // the copy of the rest with the appends held, and the wait for its readers.
                let frames = checkpoint(&mut connection, "PASSIVE").await;
                if frames.is_some_and(|frames| frames > limit_frames)
                    && appending.load(std::sync::atomic::Ordering::Relaxed)
                {
                    let _appends_held = gate.lock().await;
                    restart(&mut connection).await;
                }
            }
        });
        Checkpointer { stop: Some(stop) }
    }
}

/// How long the held checkpoint waits for the WAL's readers (see [`restart`]).
const RESTART_WAIT: Duration = Duration::from_millis(100);

/// A RESTART checkpoint, run with the appends held: it copies what is left of the WAL, then
/// waits for the readers still reading from the WAL to finish (those that begin after the copy
/// read the database file), so that the next append starts the WAL over. A PASSIVE checkpoint
/// copied the WAL whole just as well, but a reader was nearly always still in it under load
/// (the projector, the live tails), and the next append then went on at its end: the WAL grew
/// to 300–700 MB in 10 s with a 64 MiB limit (BENCHMARKS.md, "Snapshots saved together").
/// The wait is bounded by [`RESTART_WAIT`] (a long reader, an export, must not hold the
/// appends): past it the WAL is left as it is until the next tick.
async fn restart(connection: &mut PoolConnection<Sqlite>) {
    let bounded = format!("PRAGMA busy_timeout = {}", RESTART_WAIT.as_millis());
    if let Err(e) = sqlx::query(&bounded).execute(&mut **connection).await {
        tracing::warn!(error = %e, "WAL checkpoint not run (retried in {CHECKPOINT_EVERY:?})");
        return;
    }
    if let Some((true, frames)) = checkpoint_status(connection, "RESTART").await {
        tracing::warn!(
            frames,
            "the WAL was not started over: a reader was still in it after {RESTART_WAIT:?} (tried again in {CHECKPOINT_EVERY:?})"
        );
    }
    let usual = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
    if let Err(e) = sqlx::query(&usual).execute(&mut **connection).await {
        tracing::warn!(error = %e, "the checkpoint's connection is closed (its busy timeout was not set back)");
        connection.close_on_drop();
    }
}

/// A checkpoint in `mode`: the frames the WAL holds, or none if it failed (logged).
async fn checkpoint(connection: &mut sqlx::SqliteConnection, mode: &str) -> Option<i64> {
    checkpoint_status(connection, mode).await.map(|(_, frames)| frames)
}

/// A checkpoint in `mode`: whether it stopped short (a writer or, for RESTART, a reader held
/// it past the busy timeout) and the frames the WAL holds; none if it failed (logged).
async fn checkpoint_status(connection: &mut sqlx::SqliteConnection, mode: &str) -> Option<(bool, i64)> {
    let pragma = format!("PRAGMA wal_checkpoint({mode})");
    match sqlx::query_as::<_, (i64, i64, i64)>(&pragma).fetch_one(&mut *connection).await {
        Ok((busy, frames, _)) => Some((busy != 0, frames)),
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed (retried in {CHECKPOINT_EVERY:?})");
            None
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads a text column.
fn text(row: &<Sqlite as sqlx::Database>::Row, index: usize) -> Result<String, sqlx::Error> {
    sqlx::Row::try_get(row, index)
}

common_queries!(Sqlite, SqliteStore);
// 13 values per row; SQLite allows 32,766 bound values per statement.
values_insert!(Sqlite, 1000);

impl SqliteStore {
    pub(super) async fn open(options: &StoreOptions, gate: Arc<tokio::sync::Mutex<()>>) -> Result<Self, StoreError> {
        let wal_limit = i64::try_from(options.sqlite_wal_limit).unwrap_or(i64::MAX);
        let connect = SqliteConnectOptions::from_str(&options.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // 64 MiB of page cache per connection (SQLite's default is 2 MiB).
            .pragma("cache_size", "-65536")
            // Statement journals and sorts in memory, not in temporary files (measured: a
            // multi-row insert wrote its statement journal to /var/tmp on every commit).
            .pragma("temp_store", "MEMORY")
            // Rows cross from SQLite's worker thread in batches of this many (default 50):
            // fewer thread hand-offs when reading the log in pages.
            .row_buffer_size(4096)
            // No checkpoint on the committing connection: a commit that crossed the WAL's
            // threshold used to copy the whole WAL into the database file and fsync it
            // before it returned (measured: a 0.3–0.7 s stall every ~10 s under load). The
            // WAL is checkpointed by a task of its own instead (see `checkpointer`).
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", wal_limit.to_string());
        let file = connect.get_filename().to_path_buf();
        // A connection to a local file cannot go stale: no ping before each use.
        let path = connect.get_filename().display().to_string();
        let cannot_open = |e: sqlx::Error| StoreError::CannotOpen { path: path.clone(), reason: open_failure(&e) };
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(cannot_open)?;
        let journal_mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.map_err(cannot_open)?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&pool).await?;
        // `synchronous` 2 is FULL, 3 EXTRA; below that a commit may be lost on power failure.
        let durable = journal_mode == "wal" && synchronous >= 2;
        if !durable && !options.allow_unsafe_durability {
            let (setting, value) = match journal_mode.as_str() {
                "wal" => ("synchronous", synchronous.to_string()),
                _ => ("journal_mode", journal_mode.clone()),
            };
            return Err(StoreError::UnsafeDurability { setting: setting.into(), value });
        }
        super::migrate(&MIGRATOR, &pool).await?;
        let durability = Durability {
            settings: vec![("journal_mode".into(), journal_mode), ("synchronous".into(), synchronous.to_string())],
            durable,
        };
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&pool).await?;
        let limit_frames = wal_limit / page_size.max(512);
        let appending = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpointer = Arc::new(Checkpointer::start(pool.clone(), gate, limit_frames, appending.clone()));
        // sqlx names a database in memory `file:sqlx-in-memory-…`; SQLite reports its journal
        // as `memory`.
        let in_memory = file.as_os_str() == ":memory:"
            || file.to_string_lossy().starts_with("file:sqlx-in-memory")
            || options.url.contains("mode=memory")
            || durability.settings.iter().any(|(setting, value)| setting == "journal_mode" && value == "memory");
        let readers =
            (!in_memory).then(|| Arc::new(LogReaders { file: file.clone(), idle: std::sync::Mutex::default() }));
        // Appends leave the pool only on a WAL file (another journal, accepted as unsafe,
        // keeps the pool's path).
        let appender = (!in_memory && durability.durable).then(|| {
            Arc::new(Appender {
                file: file.clone(),
                wal_limit,
                closed: std::sync::atomic::AtomicBool::new(false),
                appending,
                connection: std::sync::Mutex::default(),
            })
        });
        Ok(SqliteStore { pool, durability, file, _checkpointer: checkpointer, readers, appender })
    }

    /// The appender, unless the database is in memory or not in WAL mode (then appends go
    /// through the pool).
    pub(super) fn appender(&self) -> Option<&Arc<Appender>> {
        self.appender.as_ref()
    }

    /// Up to `limit` events of the log from position `from`, read on a blocking thread.
    pub(super) async fn read_log(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let Some(readers) = self.readers.clone() else { return self.read_all(from, limit).await };
        let from = super::to_i64(from, "position")?;
        match tokio::task::spawn_blocking(move || readers.read(from, limit)).await {
            Ok(page) => page,
            Err(e) => Err(StoreError::Reader(format!("the log reader's thread failed: {e}"))),
        }
    }

    pub(super) async fn begin_append(&self) -> Result<(Tx, HashChain, u64), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (head, epoch) = tx::locked_head(&mut tx).await?;
        Ok((Tx::Sqlite(tx), head, epoch))
    }

    /// The file whose lock is a lease: `<file>-writer.lock`, `<file>-projector.lock`.
    fn lock_path(&self, kind: LeaseKind) -> PathBuf {
        let mut path = self.file.as_os_str().to_owned();
        path.push(match kind {
            LeaseKind::Writer => "-writer.lock",
            LeaseKind::Projector => "-projector.lock",
        });
        path.into()
    }

    pub(super) async fn acquire_lease(&self, kind: LeaseKind) -> Result<WriterLease, StoreError> {
        let path = self.lock_path(kind);
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLease::new(Held::File(file), kind)),
            Err(TryLockError::WouldBlock) => Err(StoreError::WriterLeaseHeld(format!("{} is locked", path.display()))),
            Err(TryLockError::Error(e)) => Err(e.into()),
        }
    }
}

/// Why an SQLite file could not be opened, in words (the driver's own when it is none of
/// these).
fn open_failure(error: &sqlx::Error) -> String {
    let message = error.as_database_error().map_or_else(|| error.to_string(), |e| e.message().to_owned());
    match message.as_str() {
        "file is not a database" => "it is not an SQLite database (or it is damaged)".to_owned(),
        "unable to open database file" => {
            "the file cannot be opened or created (does its directory exist, and may this user write there?)".to_owned()
        }
        m if m.contains("readonly") => "the file or its directory is read-only".to_owned(),
        _ => message,
    }
}
