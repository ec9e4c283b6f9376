//! The Perpetua server: the SQL event store, the single-writer command processor with group
//! commit, the projector and its read-model tables, and the HTTP API.

pub mod db;
pub mod http;
pub mod metrics;
pub mod processor;
pub mod projector;
pub mod server;
pub mod store;
