//! The `trades` read model: each market's trade tape.

use super::{docs, ReadError, Rows, TableDef, Tables, DOC, ID, INT, SMALL};
use crate::db::Db;
use crate::http::wire;
use perpetua_core::projection::ReadModels;
use perpetua_core::symbol::Symbol;
use std::collections::BTreeMap;

/// Its table.
pub const TABLES: &[TableDef] = &[TableDef {
    read_model: "trades",
    name: "trades",
    key: "trade_id",
    columns: &[("trade_id", ID), ("symbol", SMALL), ("position", INT), ("doc", DOC)],
    indexes: &["symbol, position"],
}];

/// The rows of the trades each market's tape gained from its index in `from` on.
pub fn rows(models: &ReadModels, from: &BTreeMap<Symbol, usize>, rows: &mut Rows) {
    for (symbol, from) in from {
        for trade in models.trades().tape(*symbol).iter().skip(*from) {
            let doc = serde_json::to_string(trade).expect("views serialize");
            rows.put.entry("trades").or_default().push(vec![
                trade.trade_id.to_string().into(),
                symbol.to_string().into(),
                trade.position.into(),
                doc.into(),
            ]);
        }
    }
}

/// A market's latest `limit` trades, newest first.
pub async fn recent(db: &Db, tables: &Tables, symbol: Symbol, limit: u32) -> Result<Vec<wire::Trade>, ReadError> {
    let table = tables.name("trades", "trades");
    let sql = format!("SELECT doc FROM {table} WHERE symbol = ? ORDER BY position DESC LIMIT {limit}");
    docs(&db.fetch(&sql, &[symbol.to_string().into()]).await?, 0, &table)
}
