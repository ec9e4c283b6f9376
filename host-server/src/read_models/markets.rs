//! The `markets` read model: each market's rules, last mark price and funding.

use super::{docs, ReadError, Rows, TableDef, Tables, DOC, SMALL};
use crate::db::Db;
use crate::http::wire;
use perpetua_core::market::MarketState;
use perpetua_core::projection::ReadModels;
use perpetua_core::symbol::Symbol;
use std::collections::BTreeSet;

/// Its table.
pub const TABLES: &[TableDef] = &[TableDef {
    read_model: "markets",
    name: "markets",
    key: "symbol",
    columns: &[("symbol", SMALL), ("doc", DOC)],
    indexes: &[],
}];

/// The rows of the markets `symbols`.
pub fn rows(models: &ReadModels, symbols: &BTreeSet<Symbol>, rows: &mut Rows) {
    for market in models.positions().markets().filter(|m| symbols.contains(&m.spec.symbol)) {
        let doc = serde_json::to_string(market).expect("markets serialize");
        rows.put.entry("markets").or_default().push(vec![market.spec.symbol.to_string().into(), doc.into()]);
    }
}

/// Every market, by symbol.
pub async fn all(db: &Db, tables: &Tables) -> Result<Vec<wire::Market>, ReadError> {
    let table = tables.name("markets", "markets");
    // Stored as the core's market state; shown in the wire's one shape of a market.
    let markets: Vec<MarketState> =
        docs(&db.fetch(&format!("SELECT doc FROM {table} ORDER BY symbol"), &[]).await?, 0, &table)?;
    Ok(markets.iter().map(wire::Market::from).collect())
}

/// Whether the market exists.
pub async fn exists(db: &Db, tables: &Tables, symbol: Symbol) -> Result<bool, ReadError> {
    let table = tables.name("markets", "markets");
    Ok(!db
        .fetch(&format!("SELECT symbol FROM {table} WHERE symbol = ?"), &[symbol.to_string().into()])
        .await?
        .is_empty())
}
