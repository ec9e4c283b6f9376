//! The `orders` read model: every order (each user's order history) and the open ones (the
//! book by order, and each account's open orders).

use super::{docs, ReadError, Rows, TableDef, Tables, DOC, ID, INT, SMALL};
use crate::db::{self, Db, Value};
use crate::http::wire;
use perpetua_core::ids::{AccountId, OrderId};
use perpetua_core::projection::ReadModels;
use perpetua_core::symbol::Symbol;
use perpetua_core::time::Timestamp;
use perpetua_core::types::OrderStatus;
use perpetua_core::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// Its tables: every order, and the open ones.
pub const TABLES: &[TableDef] = &[
    TableDef {
        read_model: "orders",
        name: "orders",
        key: "order_id",
        columns: &[
            ("order_id", ID),
            ("user_id", ID),
            ("account_id", ID),
            ("symbol", SMALL),
            ("status", SMALL),
            ("created_at", INT),
            ("doc", DOC),
        ],
        indexes: &["user_id, created_at", "account_id"],
    },
    TableDef {
        read_model: "orders",
        name: "active_orders",
        key: "order_id",
        columns: &[
            ("order_id", ID),
            ("user_id", ID),
            ("account_id", ID),
            ("symbol", SMALL),
            ("side", SMALL),
            ("price", SMALL),
            ("remaining", SMALL),
            ("created_at", INT),
            ("doc", DOC),
        ],
        indexes: &["user_id, created_at", "symbol"],
    },
];

/// The rows of the orders `ids`, as `models` now has them.
pub fn rows(models: &ReadModels, ids: &BTreeSet<OrderId>, rows: &mut Rows) {
    for id in ids {
        let Some(view) = models.orders().get(*id) else { continue };
        let key = Value::from(id.to_string());
        let doc = serde_json::to_string(&view).expect("views serialize");
        let common = [
            key.clone(),
            view.user_id.to_string().into(),
            view.account_id.to_string().into(),
            view.symbol.to_string().into(),
        ];
        if view.status.is_open() {
            let mut active = common.to_vec();
            active.extend([
                view.side.as_str().into(),
                view.price.map(|p| p.to_string()).unwrap_or_default().into(),
                view.remaining.to_string().into(),
                view.created_at.millis().into(),
                doc.clone().into(),
            ]);
            rows.put.entry("active_orders").or_default().push(active);
        } else {
            rows.delete.entry("active_orders").or_default().push(key.clone());
        }
        let mut order = common.to_vec();
        order.extend([view.status.as_str().into(), view.created_at.millis().into(), doc.into()]);
        rows.put.entry("orders").or_default().push(order);
    }
}

/// One order, with the account it trades for.
pub async fn get(db: &Db, tables: &Tables, id: OrderId) -> Result<Option<(Option<AccountId>, wire::Order)>, ReadError> {
    let table = tables.name("orders", "orders");
    let rows =
        db.fetch(&format!("SELECT account_id, doc FROM {table} WHERE order_id = ?"), &[id.to_string().into()]).await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let owner = db::text(row, 0).parse().ok();
    Ok(docs(&rows, 1, &table)?.pop().map(|order| (owner, order)))
}

/// What order history to show.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// One account's, or every account's.
    pub account: Option<AccountId>,
    pub symbol: Option<Symbol>,
    pub status: Option<OrderStatus>,
    /// Exactly this `clientOrderId`.
    pub client_order_id: Option<String>,
    /// Created at or after.
    pub start: Option<Timestamp>,
    /// Created at or before.
    pub end: Option<Timestamp>,
    /// From 1.
    pub page: u32,
    pub limit: u32,
}

/// A page of order history, newest first.
pub async fn history(db: &Db, tables: &Tables, query: &History) -> Result<wire::OrderPage, ReadError> {
    let mut filters: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(account) = query.account {
        filters.push("account_id = ?");
        values.push(account.to_string().into());
    }
    if let Some(id) = &query.client_order_id {
        let (filter, pattern) = client_order_id_filter(id);
        filters.push(filter);
        values.push(pattern);
    }
    if let Some(symbol) = query.symbol {
        filters.push("symbol = ?");
        values.push(symbol.to_string().into());
    }
    if let Some(status) = query.status {
        filters.push("status = ?");
        values.push(status.as_str().into());
    }
    if let Some(start) = query.start {
        filters.push("created_at >= ?");
        values.push(start.millis().into());
    }
    if let Some(end) = query.end {
        filters.push("created_at <= ?");
        values.push(end.millis().into());
    }
    let table = tables.name("orders", "orders");
    let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    let (page, limit) = (query.page.max(1), query.limit.max(1));
    let offset = u64::from(page - 1) * u64::from(limit);
    let order = "ORDER BY created_at DESC, order_id DESC";
    if let Some(id) = &query.client_order_id {
        // LIKE only narrows (it ignores case on SQLite, and on MariaDB follows the table's
        // collation): the field itself decides, so the page and the total are counted here,
        // over at most CLIENT_ID_MATCHES candidates.
        let sql = format!("SELECT doc FROM {table} {filter} {order} LIMIT {CLIENT_ID_MATCHES}");
        let candidates: Vec<wire::Order> = docs(&db.fetch(&sql, &values).await?, 0, &table)?;
        let matching: Vec<wire::Order> =
            candidates.into_iter().filter(|o| o.client_order_id.as_deref() == Some(id.as_str())).collect();
        let total = matching.len() as u64;
        let data = matching.into_iter().skip(offset as usize).take(limit as usize).collect();
        return Ok(wire::OrderPage { data, total, page, limit, total_pages: total.div_ceil(u64::from(limit)) });
    }
    let total_rows = db.fetch(&format!("SELECT COUNT(*) FROM {table} {filter}"), &values).await?;
    let total = total_rows.first().map_or(0, |r| db::int(r, 0)) as u64;
    let sql = format!("SELECT doc FROM {table} {filter} {order} LIMIT {limit} OFFSET {offset}");
    let data: Vec<wire::Order> = docs(&db.fetch(&sql, &values).await?, 0, &table)?;
    Ok(wire::OrderPage { data, total, page, limit, total_pages: total.div_ceil(u64::from(limit)) })
}

/// Open orders, newest first: one account's, or every account's.
pub async fn active(db: &Db, tables: &Tables, account: Option<AccountId>) -> Result<Vec<wire::Order>, ReadError> {
    let table = tables.name("orders", "active_orders");
    let rows = match account {
        Some(account) => {
            let sql = format!("SELECT doc FROM {table} WHERE account_id = ? ORDER BY created_at DESC, order_id DESC");
            db.fetch(&sql, &[account.to_string().into()]).await?
        }
        None => db.fetch(&format!("SELECT doc FROM {table} ORDER BY created_at DESC, order_id DESC"), &[]).await?,
    };
    docs(&rows, 0, &table)
}

/// Most rows a `clientOrderId` lookup reads (those whose document contains the id as LIKE
/// sees it) before it compares the field itself.
const CLIENT_ID_MATCHES: u32 = 10_000;

/// An account's orders (`open_only`: its open ones) whose `clientOrderId` is `id`, newest
/// first.
pub async fn by_client_id(
    db: &Db,
    tables: &Tables,
    account: AccountId,
    id: &str,
    open_only: bool,
) -> Result<Vec<wire::Order>, ReadError> {
    let table = tables.name("orders", if open_only { "active_orders" } else { "orders" });
    let (filter, pattern) = client_order_id_filter(id);
    let sql = format!(
        "SELECT doc FROM {table} WHERE account_id = ? AND {filter} ORDER BY created_at DESC, order_id DESC LIMIT {CLIENT_ID_MATCHES}"
    );
    let orders: Vec<wire::Order> = docs(&db.fetch(&sql, &[account.to_string().into(), pattern]).await?, 0, &table)?;
    Ok(orders.into_iter().filter(|o| o.client_order_id.as_deref() == Some(id)).collect())
}

/// A filter on the stored documents' `clientOrderId`: `doc LIKE` the field as the document
/// spells it (with `!` escaping the pattern's wildcards, the same on every backend). It only
/// narrows: the callers compare the parsed field.
fn client_order_id_filter(id: &str) -> (&'static str, Value) {
    let field = format!("\"clientOrderId\":{}", serde_json::Value::from(id));
    let escaped: String =
        field.chars().flat_map(|c| if matches!(c, '!' | '%' | '_') { vec!['!', c] } else { vec![c] }).collect();
    ("doc LIKE ? ESCAPE '!'", format!("%{escaped}%").into())
}

/// A market's book by price level, `depth` levels a side, its `sequence` as given.
pub async fn book(
    db: &Db,
    tables: &Tables,
    symbol: Symbol,
    depth: usize,
    sequence: u64,
) -> Result<wire::Book, ReadError> {
    let table = tables.name("orders", "active_orders");
    let rows = db
        .fetch(&format!("SELECT side, price, remaining FROM {table} WHERE symbol = ?"), &[symbol.to_string().into()])
        .await?;
    // Price → (quantity, orders) on each side.
    type Levels = BTreeMap<Decimal, (Decimal, u32)>;
    let (mut bids, mut asks) = (Levels::new(), Levels::new());
    for row in &rows {
        let (Ok(price), Ok(remaining)) = (db::text(row, 1).parse::<Decimal>(), db::text(row, 2).parse::<Decimal>())
        else {
            continue;
        };
        // Normalized: one level, and one spelling, per price (`100.5`, not `100.50`).
        let price = price.normalize();
        let side = if db::text(row, 0) == "BUY" { &mut bids } else { &mut asks };
        let level = side.entry(price).or_default();
        level.0 += remaining;
        level.1 += 1;
    }
    let level = |(price, (quantity, orders)): (&Decimal, &(Decimal, u32))| wire::BookLevel {
        price: wire::Dec(price.normalize()),
        quantity: wire::Dec(quantity.normalize()),
        orders: *orders,
    };
    let bids = bids.iter().rev().take(depth).map(level).collect();
    let asks = asks.iter().take(depth).map(level).collect();
    Ok(wire::Book { symbol, sequence, bids, asks })
}
