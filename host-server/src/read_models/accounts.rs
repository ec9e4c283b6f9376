//! The `accounts` read model: each account's money (balance, locked, available, margins,
//! unrealized PnL at the marks).

use super::{docs, ReadError, Rows, TableDef, Tables, DOC, ID};
use crate::db::Db;
use crate::http::wire;
use perpetua_core::ids::AccountId;
use perpetua_core::projection::ReadModels;
use std::collections::BTreeSet;

/// Its table.
pub const TABLES: &[TableDef] = &[TableDef {
    read_model: "accounts",
    name: "accounts",
    key: "account_id",
    columns: &[("account_id", ID), ("user_id", ID), ("doc", DOC)],
    indexes: &["user_id"],
}];

/// The rows of the accounts `ids`, as `models` now has them.
pub fn rows(models: &ReadModels, ids: &BTreeSet<AccountId>, rows: &mut Rows) {
    for id in ids {
        let Some(summary) = models.accounts().summary(*id) else { continue };
        let doc = serde_json::to_string(&summary).expect("views serialize");
        rows.put.entry("accounts").or_default().push(vec![
            id.to_string().into(),
            summary.user_id.to_string().into(),
            doc.into(),
        ]);
    }
}

/// One account.
pub async fn get(db: &Db, tables: &Tables, id: AccountId) -> Result<Option<wire::Account>, ReadError> {
    let table = tables.name("accounts", "accounts");
    let rows = db.fetch(&format!("SELECT doc FROM {table} WHERE account_id = ?"), &[id.to_string().into()]).await?;
    Ok(docs(&rows, 0, &table)?.pop())
}
