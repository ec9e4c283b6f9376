//! The projector: tails the log by global position and keeps the read-model tables, with
//! their checkpoint in the same transaction (exactly-once effect).
//!
//! The rows are computed by the core's read-model folds (`perpetua_core::projection`), held
//! in memory; after each batch of events the rows those events touched are rewritten. The
//! tables of each read model live in a *generation* (`rm_orders_3`, …); `read_models` names
//! the generation serving queries. A rebuild writes the next generation from position 0 while
//! the current one keeps serving, and swaps the pointer, in one transaction, once it has
//! caught up with the live position.
//!
//! Read models: `orders` (every order, which is also each user's order history, and the
//! active orders), `accounts`, `positions` (open ones), `trades`, `markets`, `candles`
//! (each market's trades in OHLCV buckets, see `candles.rs`).

use crate::db::{Db, DbTx, Value};
use crate::feed::Source;
use crate::market_data::{Levels, MarketBatch, Touched};
use crate::metrics::{Metrics, ObserveDuration as _, SetPosition as _};
use crate::processor::Head;
use crate::read_models::candles::Candles;
use crate::read_models::{self, table_def, tables, Rows};
use crate::store::{Backend, Store, StoreError, WriterLease};
use perpetua_core::event::{AggregateId, AggregateType, DecodeError, Event, EventEnvelope};
use perpetua_core::ids::{AccountId, OrderId, PositionId};
use perpetua_core::projection::ReadModels;
use perpetua_core::symbol::Symbol;
use rusqlite::OptionalExtension as _;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::Instrument as _;

/// Every read model, by name.
pub const READ_MODELS: [&str; 6] = ["orders", "accounts", "positions", "trades", "markets", "candles"];

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 400;

/// Why the projector could not advance. Nothing half-written stays behind any of them: a page
/// is written with its checkpoint in one transaction, or not at all.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// Reading the log or writing the tables failed.
    #[error("{0} ({code})", code = .0.code())]
    Store(#[from] StoreError),
    /// A stored event does not decode.
    #[error("position {position}: {source} ({code})", code = .source.code())]
    Decode {
        /// Its position.
        position: u64,
        /// Why.
        source: DecodeError,
    },
    /// The registry's checkpoint is past the end of the log (the read models belong to
    /// another log, or the log was cut).
    #[error("the read models are at position {checkpoint} but the log ends at {log_end}")]
    AheadOfLog {
        /// The read models' checkpoint.
        checkpoint: u64,
        /// The last position in the log.
        log_end: u64,
    },
    /// The projector's task, or its decoder, has stopped.
    #[error("the projector has stopped")]
    Stopped,
    /// The log's feed (the relay's NATS stream) could not be read.
    #[error("the log's feed: {0}")]
    Feed(String),
    /// The feed skipped or repeated a position.
    #[error("the log's feed has a gap: position {expected} expected, position {found} delivered")]
    FeedGap {
        /// The position that should have come next.
        expected: u64,
        /// The one that came.
        found: u64,
    },
    /// The feed's events do not continue the hash chain.
    #[error("the log's feed does not verify at position {position}: {fault}")]
    ChainBroken {
        /// The first position that does not verify.
        position: u64,
        /// What is wrong there.
        fault: String,
    },
}

impl ProjectorError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProjectorError::Store(e) => e.code(),
            ProjectorError::Decode { source, .. } => source.code(),
            ProjectorError::AheadOfLog { .. } => "READ_MODELS_AHEAD_OF_LOG",
            ProjectorError::Stopped => "PROJECTOR_STOPPED",
            ProjectorError::Feed(_) => "FEED_UNAVAILABLE",
            ProjectorError::FeedGap { .. } => "LOG_GAP",
            ProjectorError::ChainBroken { .. } => "CHAIN_BROKEN",
        }
    }
}

/// Where the read models are: served generation and position of each, and any rebuild.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectionState {
    /// Global position every served generation reflects (they move together).
    pub position: u64,
    /// Served generation of each read model.
    pub generations: BTreeMap<String, u64>,
    /// Read models being rebuilt: target generation and position reached.
    pub rebuilding: BTreeMap<String, (u64, u64)>,
    /// Why the last page could not be written, while the projector retries it (`None` once a
    /// page committed again): the tables are then behind the log, whatever the position says.
    pub failing: Option<String>,
}

impl ProjectionState {
    /// The served table of a read model (`rm_orders_1`).
    pub fn table(&self, read_model: &str, table: &str) -> String {
        format!("rm_{table}_{}", self.generations.get(read_model).copied().unwrap_or(1))
    }
}

/// What a run of events touched, collected before the rows are computed.
#[derive(Default)]
struct Dirty {
    orders: BTreeSet<OrderId>,
    accounts: BTreeSet<AccountId>,
    positions: BTreeSet<PositionId>,
    markets: BTreeSet<Symbol>,
    /// Per market, how many trades its tape had before these events.
    trades_from: BTreeMap<Symbol, usize>,
    /// A mark price moved: every account and open position is revalued.
    revalue: bool,
}

impl Dirty {
    /// Notes what `envelope` touches; called before the fold applies it.
    fn note(&mut self, models: &ReadModels, envelope: &EventEnvelope) {
        let AggregateId::Uuid(id) = envelope.stream.aggregate_id else {
            if let AggregateId::Symbol(symbol) = envelope.stream.aggregate_id {
                self.markets.insert(symbol);
            }
            self.revalue |= matches!(envelope.event, Event::MarkPriceSet(_));
            return;
        };
        match envelope.stream.aggregate_type {
            AggregateType::Order => {
                self.orders.insert(OrderId(id));
                if let Event::OrderMatched(e) = &envelope.event {
                    if !e.is_maker {
                        if let Some(order) = models.orders().get(e.order_id) {
                            self.trades_from
                                .entry(order.symbol)
                                .or_insert_with(|| models.trades().tape(order.symbol).len());
                        }
                    }
                }
            }
            AggregateType::Account => {
                self.accounts.insert(AccountId(id));
            }
            AggregateType::Position => {
                self.positions.insert(PositionId(id));
            }
            AggregateType::Market => {}
        }
    }

    /// The rows of every touched entity, as the fold now has them.
    fn rows(mut self, models: &ReadModels, only: &BTreeSet<&str>) -> Rows {
        let mut rows = Rows::default();
        let wants = |name: &str| only.contains(name);
        for id in &self.positions {
            if let Some(account) = models.positions().account_of(*id) {
                self.accounts.insert(account);
            }
        }
        // A cross position's liquidation price depends on its account's wallet.
        for account in &self.accounts {
            self.positions.extend(models.positions_for_account(*account).iter().map(|p| p.position_id));
        }
        if self.revalue {
            self.accounts.extend(models.accounts().summaries().iter().map(|a| a.account_id));
            self.positions.extend(models.open_positions().iter().map(|p| p.position_id));
        }
        if wants("orders") {
            read_models::orders::rows(models, &self.orders, &mut rows);
        }
        if wants("accounts") {
            read_models::accounts::rows(models, &self.accounts, &mut rows);
        }
        if wants("positions") {
            read_models::positions::rows(models, &self.positions, &mut rows);
        }
        if wants("trades") {
            read_models::trades::rows(models, &self.trades_from, &mut rows);
        }
        if wants("markets") {
            read_models::markets::rows(models, &self.markets, &mut rows);
        }
        rows
    }
}

/// Folds a page of events and returns the rows of `read_models` it touched, and what it
/// touched in the markets.
fn fold_page(models: &mut ReadModels, page: &[EventEnvelope], read_models: &BTreeSet<&str>) -> (Rows, Touched) {
    let mut dirty = Dirty::default();
    for envelope in page {
        dirty.note(models, envelope);
        models.apply(envelope);
    }
    let touched = Touched {
        orders: dirty.orders.clone(),
        trades_from: dirty.trades_from.clone(),
        markets: dirty.markets.clone(),
    };
    (dirty.rows(models, read_models), touched)
}

/// Creates the tables of `read_model` in `generation` (dropping any leftovers of it first).
async fn create_tables(tx: &mut DbTx, backend: Backend, read_model: &str, generation: u64) -> Result<(), StoreError> {
    for def in tables().filter(|t| t.read_model == read_model) {
        let table = format!("rm_{}_{generation}", def.name);
        tx.ddl(&format!("DROP TABLE IF EXISTS {table}")).await?;
        let columns: Vec<String> = def.columns.iter().map(|(name, ty)| format!("{name} {ty}")).collect();
        let doc_type = if backend == Backend::MySql { "MEDIUMTEXT" } else { "TEXT" };
        let ddl = format!("CREATE TABLE {table} ({}, PRIMARY KEY ({}))", columns.join(", "), def.key)
            .replace("TEXT NOT NULL", &format!("{doc_type} NOT NULL"));
        tx.ddl(&ddl).await?;
        for (i, columns) in def.indexes.iter().enumerate() {
            tx.ddl(&format!("CREATE INDEX ix_{table}_{i} ON {table} ({columns})")).await?;
        }
    }
    Ok(())
}

async fn drop_tables(db: &Db, read_model: &str, generation: u64, fence: Fence) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    check_fence(&mut tx, db.backend(), fence).await?;
    for def in tables().filter(|t| t.read_model == read_model) {
        tx.ddl(&format!("DROP TABLE IF EXISTS rm_{}_{generation}", def.name)).await?;
    }
    tx.commit().await
}

/// Writes `rows` into the tables of `generations` (read model → generation).
async fn write_rows(tx: &mut DbTx, rows: &Rows, generations: &BTreeMap<String, u64>) -> Result<(), StoreError> {
    let table_of = |name: &str| table_name(name, generations);
    for (&name, keys) in &rows.delete {
        let def = table_def(name);
        let table = table_of(name);
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            tx.execute(&format!("DELETE FROM {table} WHERE {} IN ({marks})", def.key), chunk).await?;
        }
    }
    for (&name, list) in &rows.put {
        let def = table_def(name);
        let table = table_of(name);
        let columns: Vec<&str> = def.columns.iter().map(|(c, _)| *c).collect();
        let row_marks = format!("({})", vec!["?"; columns.len()].join(", "));
        for chunk in list.chunks(ROWS_PER_STATEMENT) {
            let keys: Vec<Value> = chunk.iter().map(|row| row[0].clone()).collect();
            let marks = vec!["?"; keys.len()].join(", ");
            tx.execute(&format!("DELETE FROM {table} WHERE {} IN ({marks})", def.key), &keys).await?;
            let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
            let all_marks = vec![row_marks.as_str(); chunk.len()].join(", ");
            let sql = format!("INSERT INTO {table} ({}) VALUES {all_marks}", columns.join(", "));
            tx.execute(&sql, &values).await?;
        }
    }
    Ok(())
}

/// What a projector's writes are fenced on: each page's checkpoint moves only while the
/// store's writer epoch (an all-in-one server's projector) and the projector lease's epoch
/// are still the ones it started with, so a process that lost its lease cannot move a
/// checkpoint or swap tables under the one that took over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fence {
    /// The writer epoch, for a projector inside the writer's process.
    pub writer: Option<u64>,
    /// The projector lease's epoch.
    pub projector: Option<u64>,
}

/// The projector lease's epoch, kept with the read models (their database may not be the
/// log's). Bumped by each projector that takes the lease.
const PROJECTOR_EPOCH: &str =
    "CREATE TABLE IF NOT EXISTS projector_epoch (id INTEGER NOT NULL PRIMARY KEY, epoch BIGINT NOT NULL)";

/// The right to write the read models: the store's projector lock (one holder at a time)
/// and the epoch its holder set beside the read models when it took the lock.
#[derive(Debug)]
pub struct ProjectorLease {
    /// The lock; the lease lasts as long as it does.
    pub lock: WriterLease,
    /// The epoch this holder set.
    pub epoch: u64,
}

/// Takes the projector lease of `store` for the read models in `db`: the lock (fails with
/// `PROJECTOR_LEASE_HELD` while another process holds it), then the next epoch, bumped in
/// one statement (two takers, should a lock ever be shared by mistake, get two epochs). The
/// bump waits for a page in flight of the previous holder, which locked the epoch's row
/// ([`check_fence`]): that page commits first, or fails on the new epoch.
pub async fn take_lease(store: &Store, db: &Db) -> Result<ProjectorLease, StoreError> {
    let lock = store.acquire_projector_lock().await?;
    // DDL outside the transaction (MariaDB commits a transaction at DDL).
    db.execute(PROJECTOR_EPOCH, &[]).await?;
    let insert = match db.backend() {
        Backend::MySql => "INSERT IGNORE INTO projector_epoch (id, epoch) VALUES (1, 0)",
        _ => "INSERT INTO projector_epoch (id, epoch) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    };
    db.execute(insert, &[]).await?;
    let mut tx = db.begin().await?;
    tx.execute("UPDATE projector_epoch SET epoch = epoch + 1 WHERE id = 1", &[]).await?;
    let rows = tx.fetch("SELECT epoch FROM projector_epoch WHERE id = 1", &[]).await?;
    let epoch = rows
        .first()
        .map(|row| crate::db::int(row, 0) as u64)
        .ok_or_else(|| StoreError::InvalidBatch("the projector epoch's row is missing".into()))?;
    tx.commit().await?;
    Ok(ProjectorLease { lock, epoch })
}

/// The first statement of every transaction that writes the read models under a projector
/// lease: reads the projector epoch, locking its row until the transaction ends (PostgreSQL
/// and MariaDB; SQLite's write lock serializes the whole file anyway), and fails with
/// `WRITER_LEASE_LOST` if another projector has taken the lease since. A new holder's bump
/// waits for the lock, so no page of the old holder commits after it.
async fn check_fence(tx: &mut DbTx, backend: Backend, fence: Fence) -> Result<(), StoreError> {
    let Some(epoch) = fence.projector else { return Ok(()) };
    let sql = match backend {
        Backend::Sqlite => "SELECT epoch FROM projector_epoch WHERE id = 1",
        _ => "SELECT epoch FROM projector_epoch WHERE id = 1 FOR UPDATE",
    };
    let rows = tx.fetch(sql, &[]).await?;
    fence_holds(rows.first().map(|row| crate::db::int(row, 0) as u64), epoch)
}

/// `WRITER_LEASE_LOST` unless the stored projector epoch is still `epoch`.
fn fence_holds(current: Option<u64>, epoch: u64) -> Result<(), StoreError> {
    if current != Some(epoch) {
        return Err(StoreError::LeaseLost(format!(
            "the read models are another projector's: the projector epoch is {current:?}, this projector's {epoch}"
        )));
    }
    Ok(())
}

/// Updates the registry of read models (`UPDATE read_models SET {set}`, of the read model
/// `name` or of all), and with a writer epoch (`fence`: the lease of the server this projector
/// belongs to) only while the epoch in `log_head` is still that one: a server that lost its
/// lease cannot move checkpoints or swap tables under the writer that took over.
async fn update_registry(
    tx: &mut DbTx,
    set: &str,
    values: Vec<Value>,
    name: Option<&str>,
    fence: Fence,
) -> Result<(), StoreError> {
    let (sql, values) = registry_update(set, values, name, fence);
    if tx.execute(&sql, &values).await? == 0 {
        // Dropping the transaction rolls back whatever it wrote.
        return Err(registry_missed(name, fence));
    }
    Ok(())
}

/// The statement of [`update_registry`] and its values.
fn registry_update(set: &str, mut values: Vec<Value>, name: Option<&str>, fence: Fence) -> (String, Vec<Value>) {
    let mut filters = Vec::new();
    if let Some(name) = name {
        filters.push("name = ?");
        values.push(name.into());
    }
    if let Some(epoch) = fence.writer {
        filters.push("(SELECT writer_epoch FROM log_head WHERE id = 1) = ?");
        values.push(epoch.into());
    }
    let filter = if filters.is_empty() { String::new() } else { format!(" WHERE {}", filters.join(" AND ")) };
    (format!("UPDATE read_models SET {set}{filter}"), values)
}

/// Why a registry update changed no row. (Every such update changes a value, so no row
/// changed means none matched.)
fn registry_missed(name: Option<&str>, fence: Fence) -> StoreError {
    match fence.writer {
        Some(epoch) => StoreError::LeaseLost(format!("the read models are another writer's, not epoch {epoch}'s")),
        None => StoreError::InvalidBatch(format!("no read model {name:?} in the registry")),
    }
}

/// A page folded but not yet written: its rows (whole rows, computed from the fold after the
/// page, so writing them again is exact), the position it reaches and its size.
struct Unwritten {
    rows: Arc<Rows>,
    position: u64,
    events: u64,
    /// What the page changed in the markets, sent to the market streams once it is written
    /// (live pages only).
    market: Option<Arc<MarketBatch>>,
}

/// Writes one page's rows and moves the checkpoint to `position` in one transaction: the live
/// checkpoint, or with `rebuilding` the rebuild's position of those read models. With a writer
/// epoch (`fence`), only while it is still the store's (see [`update_registry`]).
async fn write_page(
    db: &Db,
    page: &Unwritten,
    generations: &BTreeMap<String, u64>,
    rebuilding: Option<&BTreeSet<&'static str>>,
    fence: Fence,
) -> Result<(), StoreError> {
    let position = vec![Value::from(page.position)];
    if let Some(pages) = db.pages() {
        let (rows, generations) = (Arc::clone(&page.rows), generations.clone());
        let rebuilding: Option<Vec<&'static str>> = rebuilding.map(|names| names.iter().copied().collect());
        return pages
            .run(move |connection| {
                write_sqlite_page(connection, &rows, &generations, rebuilding.as_deref(), position, fence)
            })
            .await;
    }
    let mut tx = db.begin().await?;
    check_fence(&mut tx, db.backend(), fence).await?;
    write_rows(&mut tx, &page.rows, generations).await?;
    match rebuilding {
        None => update_registry(&mut tx, "position = ?", position, None, fence).await?,
        Some(names) => {
            for name in names {
                update_registry(&mut tx, "rebuild_position = ?", position.clone(), Some(name), fence).await?;
            }
        }
    }
    tx.commit().await
}

/// [`write_page`] on SQLite's page connection: the same transaction (the read-model file's
/// write lock first, the fence, the rows, the checkpoint), each row one cached statement.
fn write_sqlite_page(
    connection: &mut rusqlite::Connection,
    rows: &Rows,
    generations: &BTreeMap<String, u64>,
    rebuilding: Option<&[&'static str]>,
    position: Vec<Value>,
    fence: Fence,
) -> Result<(), StoreError> {
    let tx = connection.transaction()?;
    // A deferred transaction, then at once a write to the read-model file: its write lock
    // only, never the store's (as `Db::begin`).
    tx.execute("UPDATE main.read_models SET name = name WHERE 0", [])?;
    if let Some(epoch) = fence.projector {
        let mut statement = tx.prepare_cached("SELECT epoch FROM projector_epoch WHERE id = 1")?;
        let current: Option<i64> = statement.query_row([], |row| row.get(0)).optional()?;
        fence_holds(current.map(|epoch| epoch as u64), epoch)?;
    }
    for (&name, keys) in &rows.delete {
        let def = table_def(name);
        let mut statement =
            tx.prepare_cached(&format!("DELETE FROM {} WHERE {} = ?", table_name(name, generations), def.key))?;
        for key in keys {
            statement.execute([key])?;
        }
    }
    for (&name, list) in &rows.put {
        let def = table_def(name);
        let columns: Vec<&str> = def.columns.iter().map(|(c, _)| *c).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        // Keyed by the table's primary key, its only unique constraint: a replace is the
        // delete and insert of the other backends.
        let sql = format!(
            "INSERT OR REPLACE INTO {} ({}) VALUES ({marks})",
            table_name(name, generations),
            columns.join(", ")
        );
        let mut statement = tx.prepare_cached(&sql)?;
        for row in list {
            statement.execute(rusqlite::params_from_iter(row))?;
        }
    }
    let updates: Vec<Option<&str>> = match rebuilding {
        None => vec![None],
        Some(names) => names.iter().map(|name| Some(*name)).collect(),
    };
    for name in updates {
        let set = if name.is_none() { "position = ?" } else { "rebuild_position = ?" };
        let (sql, values) = registry_update(set, position.clone(), name, fence);
        if tx.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(&values))? == 0 {
            return Err(registry_missed(name, fence));
        }
    }
    tx.commit()?;
    Ok(())
}

/// The table `name` of the read models' `generations` (`rm_orders_3`).
fn table_name(name: &str, generations: &BTreeMap<String, u64>) -> String {
    let def = table_def(name);
    format!("rm_{name}_{}", generations.get(def.read_model).copied().unwrap_or(1))
}

/// The read-model folds of the log from its start up to `position` (in memory only).
async fn fold_log(source: &Source, position: u64) -> Result<ReadModels, ProjectorError> {
    let mut models = ReadModels::new();
    if position > 0 {
        let mut pages = source.pages(1, position);
        while let Some(page) = pages.recv().await {
            for envelope in &page? {
                models.apply(envelope);
            }
        }
    }
    if models.last_position() != position {
        return Err(ProjectorError::AheadOfLog { checkpoint: position, log_end: models.last_position() });
    }
    Ok(models)
}

/// Loads the registry of read models, creating generation 1 of any that is missing.
pub async fn load_state(db: &Db) -> Result<ProjectionState, StoreError> {
    let (mut state, mut positions) = read_state(db).await?;
    let missing: Vec<&str> = READ_MODELS.iter().copied().filter(|m| !state.generations.contains_key(*m)).collect();
    if !missing.is_empty() {
        let mut tx = db.begin().await?;
        for name in &missing {
            create_tables(&mut tx, db.backend(), name, 1).await?;
            tx.execute("INSERT INTO read_models (name, generation, position) VALUES (?, 1, 0)", &[Value::from(*name)])
                .await?;
            state.generations.insert((*name).to_owned(), 1);
            positions.push(0);
        }
        tx.commit().await?;
    }
    state.position = positions.into_iter().min().unwrap_or(0);
    Ok(state)
}

/// The registry as it is, writing nothing: what a follower (a query server) reads. A read
/// model the writer has not registered yet counts as at position 0 (its queries wait).
pub async fn follow_state(db: &Db) -> Result<ProjectionState, StoreError> {
    let (mut state, positions) = read_state(db).await?;
    let registered = READ_MODELS.iter().all(|m| state.generations.contains_key(*m));
    state.position = if registered { positions.into_iter().min().unwrap_or(0) } else { 0 };
    Ok(state)
}

/// The registry's rows: the state without its position, and each read model's position.
async fn read_state(db: &Db) -> Result<(ProjectionState, Vec<u64>), StoreError> {
    let rows = db
        .fetch("SELECT name, generation, position, rebuild_generation, rebuild_position FROM read_models", &[])
        .await?;
    let mut state = ProjectionState::default();
    let mut positions = Vec::new();
    for row in &rows {
        let name = crate::db::text(row, 0);
        state.generations.insert(name.clone(), crate::db::int(row, 1) as u64);
        positions.push(crate::db::int(row, 2) as u64);
        use sqlx::Row as _;
        if let Ok(Some(generation)) = row.try_get::<Option<i64>, _>(3) {
            let reached = row.try_get::<Option<i64>, _>(4).ok().flatten().unwrap_or(0);
            state.rebuilding.insert(name, (generation as u64, reached as u64));
        }
    }
    Ok((state, positions))
}

/// A rebuild in progress: its own fold, its target generation per read model.
struct Rebuild {
    models: ReadModels,
    /// The candles' fold of the rebuild.
    candles: Candles,
    /// A page of the rebuild whose transaction failed, written before anything else.
    unwritten: Option<Unwritten>,
    read_models: BTreeSet<&'static str>,
    generations: BTreeMap<String, u64>,
}

/// The projector: the live fold and the tables it keeps.
pub struct Projector {
    source: Source,
    /// The projector lease's epoch its pages are fenced on (none in a one-off rebuild that
    /// holds the writer lease only).
    projector_epoch: Option<u64>,
    db: Db,
    metrics: Arc<Metrics>,
    /// The live fold. Pages are folded into it before their rows are written, so when a
    /// page's transaction fails the fold is ahead of the tables by that page: the page is kept
    /// in `unwritten` and written before anything else, never folded twice.
    models: ReadModels,
    unwritten: Option<Unwritten>,
    state: ProjectionState,
    rebuild: Option<Rebuild>,
    published: watch::Sender<ProjectionState>,
    /// The book by level, as the live fold has it (for the market streams' diffs).
    levels: Levels,
    /// The newest candle of each market and interval, as the live fold has them.
    candles: Candles,
    market: broadcast::Sender<Arc<MarketBatch>>,
}

/// Pages of market changes the market streams' feed holds for a stream that is not keeping
/// up; one further behind is dropped with `SLOW_CONSUMER`.
pub const MARKET_FEED: usize = 1024;

/// Requests to a running projector.
pub enum Control {
    /// Rebuild these read models into fresh tables.
    Rebuild(Vec<&'static str>),
}

/// A running projector's handle.
#[derive(Clone)]
pub struct ProjectorHandle {
    /// The state queries use: served generations and the position they reflect.
    pub state: watch::Receiver<ProjectionState>,
    control: mpsc::Sender<Control>,
    /// True once the projector's task has ended.
    finished: watch::Receiver<bool>,
    market: broadcast::Sender<Arc<MarketBatch>>,
}

/// How long a follower waits after a failed read of the database.
const FOLLOW_RETRY: Duration = Duration::from_millis(500);

impl ProjectorHandle {
    /// A handle over read models that another process projects (`serve --role query`):
    /// their state, read once now (an error fails the start) and then from the database
    /// every `poll` ([`follow_state`]: it writes nothing, creates nothing, rebuilds nothing);
    /// its market feed stays empty.
    pub async fn follow(db: Db, poll: Duration) -> Result<ProjectorHandle, StoreError> {
        let (published, state) = watch::channel(follow_state(&db).await?);
        let (control, _) = mpsc::channel(1);
        let (_, finished) = watch::channel(true);
        let (market, _) = broadcast::channel(1);
        tokio::spawn(async move {
            let mut failing = false;
            while !published.is_closed() {
                match follow_state(&db).await {
                    Ok(state) => {
                        failing = false;
                        published.send_if_modified(|current| {
                            let changed = *current != state;
                            *current = state;
                            changed
                        });
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, code = e.code(), "the read models' state cannot be read");
                        }
                        failing = true;
                    }
                }
                tokio::time::sleep(if failing { FOLLOW_RETRY } else { poll }).await;
            }
        });
        Ok(ProjectorHandle { state, control, finished, market })
    }

    /// What each page written changes in the markets, from now on.
    pub fn market_feed(&self) -> broadcast::Receiver<Arc<MarketBatch>> {
        self.market.subscribe()
    }

    /// Asks for a rebuild of `read_models`.
    pub async fn rebuild(&self, read_models: Vec<&'static str>) -> Result<(), ProjectorError> {
        self.control.send(Control::Rebuild(read_models)).await.map_err(|_| ProjectorError::Stopped)
    }

    /// Waits until the projector has stopped: after the processor ended (its head channel
    /// closed) and the last page up to that head was written with its checkpoint.
    pub async fn stopped(&self) {
        let mut finished = self.finished.clone();
        let _ = finished.wait_for(|finished| *finished).await;
    }

    /// Waits until the read models reflect `position`, at most `timeout`; true if they do.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut state = self.state.clone();
        let reached = tokio::time::timeout(timeout, state.wait_for(|s| s.position >= position)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

/// The name of a read model as a `&'static str`, if it is one.
pub fn read_model_name(name: &str) -> Option<&'static str> {
    READ_MODELS.iter().copied().find(|m| *m == name)
}

impl Projector {
    /// Opens the read models: loads the registry, and folds the log in memory up to their
    /// checkpoint (without writing) so the fold continues from there. A rebuild that was in
    /// progress is started again from position 0.
    pub async fn open(
        source: Source,
        db: Db,
        metrics: Arc<Metrics>,
        lease: Option<&ProjectorLease>,
    ) -> Result<Projector, ProjectorError> {
        let state = load_state(&db).await?;
        let models = fold_log(&source, state.position).await?;
        let (published, _) = watch::channel(state.clone());
        let levels = Levels::of(&models);
        let (market, _) = broadcast::channel(MARKET_FEED);
        let mut projector = Projector {
            source,
            projector_epoch: lease.map(|l| l.epoch),
            db,
            metrics,
            models,
            unwritten: None,
            state,
            rebuild: None,
            published,
            levels,
            candles: Candles::default(),
            market,
        };
        let interrupted: Vec<&'static str> =
            projector.state.rebuilding.keys().filter_map(|name| read_model_name(name)).collect();
        if !interrupted.is_empty() {
            projector.start_rebuild(&interrupted).await?;
        }
        projector.metrics.projection_position.set_position(projector.state.position);
        Ok(projector)
    }

    /// What its pages are fenced on.
    fn fence(&self) -> Fence {
        Fence { writer: self.source.writer_fence(), projector: self.projector_epoch }
    }

    /// Where the read models are.
    pub fn state(&self) -> &ProjectionState {
        &self.state
    }

    /// The live fold (what the tables hold, at [`ProjectionState::position`]).
    pub fn models(&self) -> &ReadModels {
        &self.models
    }

    /// Applies every committed event up to the log's head, in pages, each page's rows and
    /// checkpoint in one transaction. Returns the number of events applied. A page whose
    /// transaction fails leaves the tables and the checkpoint as they were; its rows are
    /// written by the next call, before anything else: a page retried any number of times is
    /// applied exactly once.
    pub async fn catch_up(&mut self, head: u64) -> Result<u64, ProjectorError> {
        let start = self.state.position;
        if let Some(page) = self.unwritten.take() {
            if let Err(e) = write_page(&self.db, &page, &self.state.generations, None, self.fence()).await {
                self.unwritten = Some(page);
                return Err(e.into());
            }
            self.written(page);
        }
        if self.state.position >= head {
            return Ok(self.state.position - start);
        }
        let mut pages = self.source.pages(self.state.position + 1, head);
        while let Some(page) = pages.recv().await {
            let page = page?;
            let all: BTreeSet<&str> = READ_MODELS.iter().copied().collect();
            let (mut rows, touched) = fold_page(&mut self.models, &page, &all);
            read_models::candles::rows(&mut self.candles, &self.models, &touched.trades_from, &mut rows);
            let position = self.models.last_position();
            let market = Some(self.levels.page(&self.models, &touched, position));
            let page = Unwritten { rows: Arc::new(rows), position, events: page.len() as u64, market };
            let span = tracing::debug_span!("projector_page", position = page.position, events = page.events);
            let written = write_page(&self.db, &page, &self.state.generations, None, self.fence());
            if let Err(e) = written.instrument(span).await {
                self.unwritten = Some(page);
                return Err(e.into());
            }
            self.written(page);
        }
        Ok(self.state.position - start)
    }

    /// Records that the tables reached the page's position, then tells the market streams
    /// what it changed (after: a stream's snapshot, read at the published position or later,
    /// never misses a diff).
    fn written(&mut self, page: Unwritten) {
        self.state.position = page.position;
        self.state.failing = None;
        self.metrics.projected_events.inc_by(page.events);
        self.metrics.projection_position.set_position(page.position);
        self.published.send_replace(self.state.clone());
        if let Some(batch) = page.market {
            // No stream listening is not an error.
            let _ = self.market.send(batch);
        }
    }

    /// Starts rebuilding `read_models` into a fresh generation each. A rebuild already under
    /// way starts again, with the union of both sets.
    pub async fn start_rebuild(&mut self, read_models: &[&'static str]) -> Result<(), StoreError> {
        let mut names: BTreeSet<&'static str> = read_models.iter().copied().collect();
        if let Some(previous) = self.rebuild.take() {
            for name in &previous.read_models {
                drop_tables(&self.db, name, previous.generations[*name], self.fence()).await?;
            }
            names.extend(previous.read_models);
        }
        let mut generations = BTreeMap::new();
        let mut tx = self.db.begin().await?;
        check_fence(&mut tx, self.db.backend(), self.fence()).await?;
        for name in &names {
            let generation = self.state.generations.get(*name).copied().unwrap_or(1) + 1;
            create_tables(&mut tx, self.db.backend(), name, generation).await?;
            tx.execute(
                "UPDATE read_models SET rebuild_generation = ?, rebuild_position = 0 WHERE name = ?",
                &[generation.into(), (*name).into()],
            )
            .await?;
            generations.insert((*name).to_owned(), generation);
            self.state.rebuilding.insert((*name).to_owned(), (generation, 0));
        }
        tx.commit().await?;
        self.rebuild = Some(Rebuild {
            models: ReadModels::new(),
            candles: Candles::default(),
            unwritten: None,
            read_models: names,
            generations,
        });
        self.published.send_replace(self.state.clone());
        Ok(())
    }

    /// Advances the rebuild by up to `max_events`; swaps the new tables in once it has caught
    /// up with the live position. Returns true when there is nothing left to do.
    pub async fn step_rebuild(&mut self, max_events: u64) -> Result<bool, ProjectorError> {
        let fence = self.fence();
        let Some(rebuild) = self.rebuild.as_mut() else { return Ok(true) };
        let mut pending = rebuild.unwritten.take();
        let from = pending.as_ref().map_or(rebuild.models.last_position(), |p| p.position) + 1;
        let to = self.state.position.min(from + max_events - 1);
        let mut pages = (from <= to).then(|| self.source.pages(from, to));
        loop {
            // The page that failed last time first, then the next ones.
            let page = match pending.take() {
                Some(page) => page,
                None => {
                    let Some(next) = pages.as_mut() else { break };
                    let Some(events) = next.recv().await else { break };
                    let events = events?;
                    let (mut rows, touched) = fold_page(&mut rebuild.models, &events, &rebuild.read_models);
                    if rebuild.read_models.contains("candles") {
                        read_models::candles::rows(
                            &mut rebuild.candles,
                            &rebuild.models,
                            &touched.trades_from,
                            &mut rows,
                        );
                    }
                    let position = rebuild.models.last_position();
                    Unwritten { rows: Arc::new(rows), position, events: events.len() as u64, market: None }
                }
            };
            if let Err(e) = write_page(&self.db, &page, &rebuild.generations, Some(&rebuild.read_models), fence).await {
                rebuild.unwritten = Some(page);
                return Err(e.into());
            }
            for name in &rebuild.read_models {
                self.state.rebuilding.insert((*name).to_owned(), (rebuild.generations[*name], page.position));
            }
            self.published.send_replace(self.state.clone());
        }
        if rebuild.models.last_position() < self.state.position {
            return Ok(false);
        }
        // Caught up: the new generation replaces the old one in one transaction; the served
        // generations change in memory only once it has committed.
        let mut tx = self.db.begin().await?;
        check_fence(&mut tx, self.db.backend(), fence).await?;
        for name in &rebuild.read_models {
            let set = "generation = ?, rebuild_generation = NULL, rebuild_position = NULL";
            update_registry(&mut tx, set, vec![rebuild.generations[*name].into()], Some(name), fence).await?;
        }
        tx.commit().await?;
        let rebuild = self.rebuild.take().expect("a rebuild is under way");
        let mut retired = Vec::new();
        for name in &rebuild.read_models {
            let generation = rebuild.generations[*name];
            retired.push((*name, self.state.generations.insert((*name).to_owned(), generation).unwrap_or(1)));
            self.state.rebuilding.remove(*name);
        }
        self.published.send_replace(self.state.clone());
        for (name, generation) in retired {
            drop_tables(&self.db, name, generation, fence).await?;
        }
        Ok(true)
    }

    /// Runs the projector until the head channel closes: catches up after every commit, and
    /// advances any rebuild between live batches.
    pub async fn run(mut self, mut head: watch::Receiver<Head>, mut control: mpsc::Receiver<Control>) {
        loop {
            let target = *head.borrow_and_update();
            match self.catch_up(target.position).await {
                Ok(n) if n > 0 => self.metrics.projection_lag_seconds.observe_duration(target.committed_at.elapsed()),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(code = e.code(), error = %e, "projector: a page was not written; retrying in 1 s");
                    self.state.failing = Some(e.to_string());
                    self.published.send_replace(self.state.clone());
                    // A drain does not wait for a page that cannot be written: the next start
                    // goes on from the checkpoint.
                    if head.has_changed().is_err() {
                        return;
                    }
                    let retry = tokio::time::sleep(Duration::from_secs(1));
                    tokio::pin!(retry);
                    loop {
                        tokio::select! {
                            () = &mut retry => break,
                            changed = head.changed() => if changed.is_err() { return },
                        }
                    }
                    continue;
                }
            }
            while let Ok(Control::Rebuild(names)) = control.try_recv() {
                if let Err(e) = self.start_rebuild(&names).await {
                    tracing::error!(code = e.code(), error = %e, "projector: the rebuild could not start");
                }
            }
            if self.rebuild.is_some() {
                if head.has_changed().is_err() && self.state.position >= head.borrow().position {
                    // The processor has stopped and the live tables are caught up: stop here,
                    // at the rebuild's last checkpoint (it goes on at the next start).
                    return;
                }
                match self.step_rebuild(50_000).await {
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::error!(code = e.code(), error = %e, "projector: a rebuild page was not written; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                Some(Control::Rebuild(names)) = control.recv() => {
                    if let Err(e) = self.start_rebuild(&names).await {
                        tracing::error!(code = e.code(), error = %e, "projector: the rebuild could not start");
                    }
                }
            }
        }
    }

    /// Starts the projector task, following the processor's head.
    pub fn spawn(self, head: watch::Receiver<Head>) -> ProjectorHandle {
        let (control, inbox) = mpsc::channel(16);
        let state = self.published.subscribe();
        let market = self.market.clone();
        let (finished_tx, finished) = watch::channel(false);
        tokio::spawn(async move {
            self.run(head, inbox).await;
            finished_tx.send_replace(true);
        });
        ProjectorHandle { state, control, finished, market }
    }
}
