//! The server's SQL beyond the event store: users and the read-model tables, written once
//! over the three backends through sqlx's `Any` driver. Statements are written with `?`
//! placeholders and numbered for PostgreSQL here; only integers and text cross this layer.

use crate::store::{Backend, StoreError};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Executor, Row};
use std::borrow::Cow;
use std::sync::Arc;

/// A value bound to a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer column.
    Int(i64),
    /// A text column.
    Text(String),
    /// SQL NULL (a text column).
    Null,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}

/// The pool over the server's own tables: users, and the read models with their registry.
///
/// On PostgreSQL and MariaDB they live in the store's database. On SQLite the read models
/// live in a file of their own beside the store's (`<file>-read-models.db`), with the store's
/// file attached as `store`: SQLite has one write lock per file, and a projector writing its
/// pages into the store's file made the writer wait for it (SQLite's busy handler sleeps
/// 1 ms, 2 ms, 5 ms… between tries — measured, a wait in almost every group commit). The
/// read-model file is written with `synchronous=NORMAL`: a page and its checkpoint commit
/// together, so a power failure can only take the read models back to an earlier checkpoint,
/// from which they are folded again. Unqualified table names resolve to the read-model file
/// first, then to the store's, so `users` and `log_head` (the projector's fence) are the
/// store's tables and every statement is the same on all backends.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the store's file is attached, so a transaction must not be `BEGIN IMMEDIATE`
    /// (which would take the store's write lock too).
    attached: bool,
    /// SQLite: the connection the projector writes its pages on (see [`PageConnection`]).
    pages: Option<PageConnection>,
}

/// SQLite: the projector's pages written with `rusqlite` on a blocking thread, one
/// connection with its statements cached. Through sqlx's `Any` driver, writing the rows was
/// the largest cost of `rebuild` once the log was read with `rusqlite` (44 % of its samples,
/// BENCHMARKS.md): every value copied into the driver's arguments and over to its worker
/// thread, and each statement prepared again. The same pragmas and attached store file as
/// the pool's connections.
#[derive(Clone, Debug)]
pub struct PageConnection(Arc<std::sync::Mutex<rusqlite::Connection>>);

impl PageConnection {
    fn open(file: &std::path::Path, attach: &str) -> Result<PageConnection, StoreError> {
        let connection = rusqlite::Connection::open(file)?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        connection.execute_batch(&format!("{SQLITE_PRAGMAS}; {attach}"))?;
        // Two statements per table (a put and a delete) and the registry's few.
        connection.set_prepared_statement_cache_capacity(64);
        Ok(PageConnection(Arc::new(std::sync::Mutex::new(connection))))
    }

    /// Runs `work` on the connection, on a blocking thread.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            // A panic while it was held left no transaction open: rusqlite's rolls back on drop.
            let mut connection = connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Reader(format!("the read-model writer's thread failed: {e}")))?
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// The pragmas of every connection to a SQLite read-model file.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536";

/// The read-model table registry, created in the read-model file of a SQLite store.
const SQLITE_REGISTRY: &str = "CREATE TABLE IF NOT EXISTS main.read_models (
    name VARCHAR(32) NOT NULL PRIMARY KEY, generation BIGINT NOT NULL, position BIGINT NOT NULL,
    rebuild_generation BIGINT, rebuild_position BIGINT)";

/// The SQLite file of a `sqlite://` URL.
fn sqlite_file(url: &str) -> Result<std::path::PathBuf, StoreError> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(StoreError::from)?;
    Ok(options.get_filename().to_path_buf())
}

impl Db {
    /// Connects to the store's database (whose migrations created `users`); on SQLite opens
    /// the read-model file beside it (see [`Db`]).
    pub async fn open(url: &str, max_connections: u32) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        if backend != Backend::Sqlite {
            let pool = AnyPoolOptions::new().max_connections(max_connections).connect(url).await?;
            return Ok(Db { pool, backend, attached: false, pages: None });
        }
        let store_file = sqlite_file(url)?;
        let mut read_models = store_file.as_os_str().to_owned();
        read_models.push("-read-models.db");
        let read_models = std::path::PathBuf::from(read_models);
        // ATTACH takes a file name as a string literal.
        let attach = format!("ATTACH DATABASE '{}' AS store", store_file.display().to_string().replace('\'', "''"));
        let pages = PageConnection::open(&read_models, &attach)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    conn.execute(format!("PRAGMA busy_timeout = 30000; {SQLITE_PRAGMAS}").as_str()).await?;
                    conn.execute(attach.as_str()).await?;
                    Ok(())
                })
            })
            .connect(&format!("sqlite://{}?mode=rwc", read_models.display()))
            .await
            .map_err(StoreError::from)?;
        let db = Db { pool, backend, attached: true, pages: Some(pages) };
        db.execute(SQLITE_REGISTRY, &[]).await?;
        Ok(db)
    }

    /// SQLite: the connection the projector writes its pages on.
    pub fn pages(&self) -> Option<&PageConnection> {
        self.pages.as_ref()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `sql` with its `?` placeholders numbered (`$1`, `$2`, …) on PostgreSQL.
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        if self.backend != Backend::Postgres {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// Rows of a query.
    pub async fn fetch(&self, sql: &str, values: &[Value]) -> Result<Vec<AnyRow>, StoreError> {
        let sql = self.sql(sql);
        let rows = bind(sqlx::query(&sql), values).fetch_all(&self.pool).await?;
        Ok(rows)
    }

    /// Runs one statement outside a transaction; returns the rows affected.
    pub async fn execute(&self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let sql = self.sql(sql);
        Ok(bind(sqlx::query(&sql), values).execute(&self.pool).await?.rows_affected())
    }

    /// Starts a write transaction. On SQLite the read-model file's write lock is taken at
    /// once, so the transaction never has to upgrade a read snapshot (which fails at once
    /// when another connection wrote in between, without waiting).
    pub async fn begin(&self) -> Result<DbTx, StoreError> {
        let mut conn = self.pool.acquire().await?;
        conn.execute("BEGIN").await?;
        let mut tx = DbTx { conn: Some(conn), db: self.clone() };
        if self.attached {
            // A deferred transaction, then at once a write to the read-model file: its write
            // lock only, never the store's. (Dropped on an error: the connection is closed.)
            tx.ddl("UPDATE main.read_models SET name = name WHERE 0").await?;
        }
        Ok(tx)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn bind<'q>(mut query: Query<'q, Any, AnyArguments<'q>>, values: &[Value]) -> Query<'q, Any, AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Int(v) => query.bind(*v),
            Value::Text(v) => query.bind(v.clone()),
            Value::Null => query.bind(None::<String>),
        };
    }
    query
}

/// A write transaction on one connection; rolled back when dropped uncommitted (the
/// connection is then closed rather than returned to the pool mid-transaction).
pub struct DbTx {
    conn: Option<PoolConnection<Any>>,
    db: Db,
}

impl DbTx {
    fn conn(&mut self) -> &mut PoolConnection<Any> {
        self.conn.as_mut().expect("the transaction is open")
    }

    /// Runs one statement in the transaction.
    pub async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let sql = self.db.sql(sql).into_owned();
        let done = bind(sqlx::query(&sql), values).execute(&mut **self.conn()).await?;
        Ok(done.rows_affected())
    }

    /// Rows of a query in the transaction.
    pub async fn fetch(&mut self, sql: &str, values: &[Value]) -> Result<Vec<AnyRow>, StoreError> {
        let sql = self.db.sql(sql).into_owned();
        Ok(bind(sqlx::query(&sql), values).fetch_all(&mut **self.conn()).await?)
    }

    /// Runs a DDL statement (no parameters).
    pub async fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn().execute(sql).await?;
        Ok(())
    }

    /// Commits.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let result = self.conn().execute("COMMIT").await;
        match result {
            Ok(_) => {
                self.conn.take();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for DbTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Never hand a connection with an open transaction back to the pool.
            drop(conn.detach());
        }
    }
}

/// Text of column `i` (empty when NULL).
pub fn text(row: &AnyRow, i: usize) -> String {
    opt_text(row, i).unwrap_or_default()
}

/// Optional text of column `i`. MariaDB hands `TEXT` columns of a binary collation over as
/// bytes; those are read as UTF-8.
pub fn opt_text(row: &AnyRow, i: usize) -> Option<String> {
    match row.try_get::<Option<String>, _>(i) {
        Ok(text) => text,
        Err(_) => row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten().and_then(|b| String::from_utf8(b).ok()),
    }
}

/// Integer of column `i`.
pub fn int(row: &AnyRow, i: usize) -> i64 {
    row.try_get::<i64, _>(i).unwrap_or_default()
}
