//! The `positions` read model: the open positions, valued at their markets' last marks.

use super::{docs, ReadError, Rows, TableDef, Tables, DOC, ID, INT, SMALL};
use crate::db::{Db, Value};
use crate::http::wire;
use perpetua_core::ids::{AccountId, PositionId};
use perpetua_core::projection::ReadModels;
use std::collections::BTreeSet;

/// Its table.
pub const TABLES: &[TableDef] = &[TableDef {
    read_model: "positions",
    name: "positions",
    key: "position_id",
    columns: &[("position_id", ID), ("account_id", ID), ("symbol", SMALL), ("opened", INT), ("doc", DOC)],
    indexes: &["account_id"],
}];

/// The rows of the position streams `ids`: an open one's view, or its row deleted when flat.
pub fn rows(models: &ReadModels, ids: &BTreeSet<PositionId>, rows: &mut Rows) {
    for id in ids {
        let key = Value::from(id.to_string());
        match models.positions().open_view(*id, models.accounts()) {
            Some(view) => {
                let doc = serde_json::to_string(&view).expect("views serialize");
                let opened = id.counter().unwrap_or_default();
                rows.put.entry("positions").or_default().push(vec![
                    key,
                    view.account_id.to_string().into(),
                    view.symbol.to_string().into(),
                    opened.into(),
                    doc.into(),
                ]);
            }
            None => rows.delete.entry("positions").or_default().push(key),
        }
    }
}

/// Open positions in the order they were opened: one account's, or every account's.
pub async fn open(db: &Db, tables: &Tables, account: Option<AccountId>) -> Result<Vec<wire::Position>, ReadError> {
    let table = tables.name("positions", "positions");
    let rows = match account {
        Some(account) => {
            let sql = format!("SELECT doc FROM {table} WHERE account_id = ? ORDER BY opened");
            db.fetch(&sql, &[account.to_string().into()]).await?
        }
        None => db.fetch(&format!("SELECT doc FROM {table} ORDER BY opened"), &[]).await?,
    };
    docs(&rows, 0, &table)
}
