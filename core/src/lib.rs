//! # perpetua-core
//!
//! The pure, deterministic core of the Perpetua perpetual-futures exchange: the event catalog,
//! the aggregates as decide/evolve modules, the matching engine, margin, fee, funding and
//! liquidation rules, the read-side folds, time travel, snapshots and the audit hash chain.
//!
//! Architecture invariant: this crate performs no I/O, reads no clock and uses no randomness.
//! Time, ids and configuration come in as arguments; the same commands give the same events,
//! byte for byte, on every platform (it is compiled natively and for `wasm32-unknown-unknown`).

#![warn(missing_docs)]

pub mod account;
pub mod aggregate;
pub mod audit;
pub mod checkpoint;
pub mod command;
pub mod demo;
pub mod engine;
pub mod error;
pub mod event;
pub mod ids;
pub mod invariants;
pub mod market;
pub mod merkle;
pub mod num;
pub mod order;
pub mod position;
pub mod projection;
pub mod snapshot;
pub mod symbol;
mod text;
pub mod time;
pub mod timetravel;
pub mod types;
pub mod upcast;
pub mod vectors;
pub mod workload;

pub use command::{Command, CommandContext, PlaceOrder};
pub use engine::receipt::Receipt;
pub use engine::{Decision, Exchange, Outcome};
pub use error::{CommandError, ErrorCode};
pub use event::{Event, EventEnvelope, Metadata, StoredEvent, StreamId};
pub use rust_decimal::Decimal;
