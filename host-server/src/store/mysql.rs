//! MariaDB/MySQL (InnoDB): refuses to open when `innodb_flush_log_at_trx_commit` is not 1, or
//! when the binary log is on and `sync_binlog` is not 1 (a commit could then be acknowledged
//! and lost). Sessions run at READ COMMITTED; appends
//! lock the `log_head` row. The writer lease is a named `GET_LOCK` held by its own session.

use super::backend::{common_queries, values_insert, Held, LeaseKind, Queries, Tx, WriterLease};
use super::{Backend, Durability, StoreOptions};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Connection as _, Executor as _, MySql, MySqlConnection, MySqlPool};
use std::str::FromStr;
use std::sync::LazyLock;

static Q: LazyLock<Queries> = LazyLock::new(|| Queries::new(Backend::MySql));
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

/// Named locks are server-wide: the lease's name includes the database's name.
pub(super) const LEASE: &str = "CONCAT('perpetua.writer.', DATABASE())";
/// The projector lease's name.
pub(super) const PROJECTOR_LEASE: &str = "CONCAT('perpetua.projector.', DATABASE())";

/// The lock name of a lease (an SQL expression).
pub(super) fn lease_name(kind: LeaseKind) -> &'static str {
    match kind {
        LeaseKind::Writer => LEASE,
        LeaseKind::Projector => PROJECTOR_LEASE,
    }
}

#[derive(Clone, Debug)]
pub(super) struct MySqlStore {
    pub(super) pool: MySqlPool,
    pub(super) durability: Durability,
    connect: MySqlConnectOptions,
}

/// Reads a text column. Columns with a binary collation (`utf8mb4_bin`, which makes ids and
/// keys case-sensitive) come over the wire flagged as binary, so they are read as bytes and
/// checked to be UTF-8.
fn text(row: &sqlx::mysql::MySqlRow, index: usize) -> Result<String, sqlx::Error> {
    let bytes: Vec<u8> = sqlx::Row::try_get(row, index)?;
    String::from_utf8(bytes).map_err(|e| sqlx::Error::ColumnDecode { index: index.to_string(), source: Box::new(e) })
}

common_queries!(MySql, MySqlStore);
// 13 values per row; MySQL allows 65,535 placeholders per statement.
values_insert!(MySql, 1000);

impl MySqlStore {
    pub(super) async fn open(options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = MySqlConnectOptions::from_str(&options.url)?;
        let address = format!("{}:{}", connect.get_host(), connect.get_port());
        super::reach(address, sqlx::MySqlConnection::connect_with(&connect)).await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                    Ok(())
                })
            })
            .connect_with(connect.clone())
            .await?;
        // The redo log must be flushed at every commit; with the binary log on, so must it be
        // (crash recovery rolls back transactions missing from the binary log).
        let mut settings = Vec::new();
        for name in ["innodb_flush_log_at_trx_commit", "log_bin", "sync_binlog"] {
            let value: String = sqlx::query_scalar(&format!("SELECT CAST(@@{name} AS CHAR)")).fetch_one(&pool).await?;
            settings.push((name.to_owned(), value));
        }
        let binlog = settings[1].1 == "1";
        let unsafe_setting = settings.iter().find(|(name, value)| match name.as_str() {
            "innodb_flush_log_at_trx_commit" => value != "1",
            "sync_binlog" => binlog && value != "1",
            _ => false,
        });
        let durable = unsafe_setting.is_none();
        if let (Some((setting, value)), false) = (unsafe_setting, options.allow_unsafe_durability) {
            return Err(StoreError::UnsafeDurability { setting: setting.clone(), value: value.clone() });
        }
        super::migrate(&MIGRATOR, &pool).await?;
        Ok(MySqlStore { pool, durability: Durability { settings, durable }, connect })
    }

    pub(super) async fn begin_append(&self) -> Result<(Tx, HashChain, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let (head, epoch) = tx::locked_head(&mut tx).await?;
        Ok((Tx::MySql(tx), head, epoch))
    }

    pub(super) async fn acquire_lease(&self, kind: LeaseKind) -> Result<WriterLease, StoreError> {
        let name = lease_name(kind);
        let mut session = MySqlConnection::connect_with(&self.connect).await?;
        let locked: Option<i64> =
            sqlx::query_scalar(&format!("SELECT GET_LOCK({name}, 0)")).fetch_one(&mut session).await?;
        if locked != Some(1) {
            let holder: Option<i64> =
                sqlx::query_scalar(&format!("SELECT IS_USED_LOCK({name})")).fetch_one(&mut session).await?;
            let holder = holder.map_or("another session".to_owned(), |id| format!("connection {id}"));
            return Err(StoreError::WriterLeaseHeld(format!("named lock held by {holder}")));
        }
        Ok(WriterLease::new(Held::MySql(session), kind))
    }
}
