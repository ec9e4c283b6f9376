//! The Perpetua server: the SQL event store, the single-writer command processor with group
//! commit, the projector and its read-model tables, and the HTTP API.

pub mod audit_tree;
pub mod checkpoints;
pub mod db;
pub mod feed;
pub mod http;
pub mod listener;
pub mod logging;
pub mod market_data;
pub mod metrics;
pub mod processor;
pub mod projector;
pub mod read_models;
pub mod relay;
pub mod server;
pub mod store;
pub mod users;

/// Milliseconds since the Unix epoch, from the system clock (the host's; the core reads none).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
