//! The Market aggregate: a market's specification, its mark price and its funding history.

pub mod events;
pub mod fold;
pub mod spec;

pub use fold::MarketState;
