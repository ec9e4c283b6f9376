//! The Account aggregate: a user's wallet (balance), its reservations for open orders
//! (locks), and the money flows that change them.

pub mod decide;
pub mod events;
pub mod fold;

pub use fold::{AccountState, OrderLock};
