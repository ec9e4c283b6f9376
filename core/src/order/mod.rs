//! The Order aggregate: one stream per order, from `OrderPlaced` (or `OrderRejected`) to its end.

pub mod decide;
pub mod events;
pub mod fold;
pub mod queries;

pub use fold::OrderState;
