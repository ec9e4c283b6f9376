//! The Perpetua server: the SQL event store today; the HTTP API, the command processor and
//! the projector build on it.

pub mod store;
