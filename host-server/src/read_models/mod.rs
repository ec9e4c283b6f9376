//! The read models, one module each: `orders`, `accounts`, `positions`, `trades`, `markets`
//! and `candles`. Each owns its tables (their columns and indexes), the rows the projector
//! writes into them from the core's folds, and its typed queries; the HTTP handlers call the
//! queries and write no SQL. The tables of a read model live in generations (`rm_orders_3`):
//! [`Tables`] names the ones serving queries.

pub mod accounts;
pub mod candles;
pub mod markets;
pub mod orders;
pub mod positions;
pub mod trades;

use crate::db::Value;
use crate::store::StoreError;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// A table of a read model: its name, key column, and column definitions.
pub struct TableDef {
    /// The read model it belongs to.
    pub read_model: &'static str,
    /// The table's name (without its generation).
    pub name: &'static str,
    /// The key column (the first of `columns`).
    pub key: &'static str,
    /// Columns and their SQL types.
    pub columns: &'static [(&'static str, &'static str)],
    /// Indexes, by their columns.
    pub indexes: &'static [&'static str],
}

pub(crate) const ID: &str = "VARCHAR(36) NOT NULL";
pub(crate) const SMALL: &str = "VARCHAR(48) NOT NULL";
pub(crate) const INT: &str = "BIGINT NOT NULL";
pub(crate) const DOC: &str = "TEXT NOT NULL";

/// Every table of every read model.
pub fn tables() -> impl Iterator<Item = &'static TableDef> {
    orders::TABLES
        .iter()
        .chain(accounts::TABLES)
        .chain(positions::TABLES)
        .chain(trades::TABLES)
        .chain(markets::TABLES)
        .chain(candles::TABLES)
}

/// The table named `name`.
pub fn table_def(name: &str) -> &'static TableDef {
    tables().find(|t| t.name == name).expect("a known table")
}

/// Rows to write: per table, rows to put (replacing any with the same key) and keys to delete.
#[derive(Default)]
pub struct Rows {
    /// Rows to put, by table, each its columns' values in order.
    pub put: BTreeMap<&'static str, Vec<Vec<Value>>>,
    /// Keys to delete, by table.
    pub delete: BTreeMap<&'static str, Vec<Value>>,
}

/// The tables serving queries: the served generation of each read model.
#[derive(Clone, Debug)]
pub struct Tables(BTreeMap<String, u64>);

impl Tables {
    /// The tables of these generations (read model → generation).
    pub fn new(generations: BTreeMap<String, u64>) -> Tables {
        Tables(generations)
    }

    /// The served table `table` of `read_model` (`rm_orders_1`).
    pub fn name(&self, read_model: &str, table: &str) -> String {
        format!("rm_{table}_{}", self.0.get(read_model).copied().unwrap_or(1))
    }
}

/// Why a read-model query failed: the database, or a stored row that does not read (the
/// server's fault either way).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row's document does not read as its type.
    #[error("a row of {table} does not read: {detail}")]
    Corrupt {
        /// The table.
        table: String,
        /// Why, with the row's text.
        detail: String,
    },
}

/// The documents of `rows` (in `column`), read as `T`.
pub(crate) fn docs<T: DeserializeOwned>(
    rows: &[sqlx::any::AnyRow],
    column: usize,
    table: &str,
) -> Result<Vec<T>, ReadError> {
    rows.iter()
        .map(|row| {
            let text = crate::db::text(row, column);
            serde_json::from_str(&text).map_err(|e| ReadError::Corrupt {
                table: table.to_owned(),
                detail: format!("not a {}: {e}: {text}", std::any::type_name::<T>()),
            })
        })
        .collect()
}
