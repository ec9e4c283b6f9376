//! The users table: who may call the API, by the digest of their token (the token itself
//! is never stored).

use crate::db::{self, Db, Value};
use crate::http::{token_digest, Role, User};
use crate::store::StoreError;
use std::collections::HashMap;

const COLUMNS: &str = "user_id, name, role, token_hash, account_id";

/// Loads every user into memory.
pub async fn load_all(db: &Db) -> Result<HashMap<String, User>, StoreError> {
    let rows = db.fetch(&format!("SELECT {COLUMNS} FROM users"), &[]).await?;
    let mut users = HashMap::new();
    for row in &rows {
        if let Some(user) = user_of_row(row) {
            users.insert(db::text(row, 3), user);
        }
    }
    Ok(users)
}

fn user_of_row(row: &sqlx::any::AnyRow) -> Option<User> {
    Some(User {
        user_id: db::text(row, 0).parse().ok()?,
        name: db::text(row, 1),
        role: Role::parse(&db::text(row, 2))?,
        account_id: db::opt_text(row, 4).and_then(|a| a.parse().ok()),
    })
}

/// Stores a user with its token digest.
pub async fn insert(db: &Db, user: &User, token: &str, now_ms: i64) -> Result<(), StoreError> {
    db.execute(&format!("INSERT INTO users {INSERTED}"), &inserted(user, token, now_ms)).await?;
    Ok(())
}

/// The columns and placeholders of a stored user, and their values.
const INSERTED: &str = "(user_id, name, role, token_hash, account_id, created_at) VALUES (?, ?, ?, ?, ?, ?)";

fn inserted(user: &User, token: &str, now_ms: i64) -> [Value; 6] {
    [
        user.user_id.to_string().into(),
        user.name.clone().into(),
        user.role.as_str().into(),
        token_digest(token).into(),
        Value::from(user.account_id.map(|a| a.to_string())),
        now_ms.into(),
    ]
}

/// The user holding the token whose digest is `digest`.
pub async fn by_token_digest(db: &Db, digest: &str) -> Result<Option<User>, StoreError> {
    let rows =
        db.fetch(&format!("SELECT {COLUMNS} FROM users WHERE token_hash = ?"), &[digest.to_owned().into()]).await?;
    Ok(rows.first().and_then(user_of_row))
}

/// Stores a user unless one with its id is stored already; returns whether this call stored
/// it.
pub async fn insert_if_absent(db: &Db, user: &User, token: &str, now_ms: i64) -> Result<bool, StoreError> {
    let sql = match db.backend() {
        crate::store::Backend::MySql => format!("INSERT IGNORE INTO users {INSERTED}"),
        _ => format!("INSERT INTO users {INSERTED} ON CONFLICT (user_id) DO NOTHING"),
    };
    Ok(db.execute(&sql, &inserted(user, token, now_ms)).await? == 1)
}
