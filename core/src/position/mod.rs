//! The Position aggregate: one stream per account and symbol (one-way mode), holding size,
//! entry value and margin; fills open, increase, decrease, close or flip it.

pub mod decide;
pub mod events;
pub mod fold;
pub mod queries;

pub use fold::PositionState;
