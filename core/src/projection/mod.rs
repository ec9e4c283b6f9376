//! Read models ("projections"): pure folds over the global event log, shared by the server's
//! projector and the browser's audit viewer.
//!
//! Each fold takes envelopes in global position order through `apply` and answers queries
//! from what it has seen, so the read model at position N is exactly the fold of the log's
//! first N events (time travel for free). A fold ignores events it does not need; where an
//! event's meaning is already written down by an aggregate (a balance, a position's entry
//! value, a market's mark), the fold evolves that aggregate's own state rather than restating
//! the rule, so the read side cannot disagree with the write side about what an event means.
//!
//! Architecture invariant: no I/O, no clock, no randomness; every map is a `BTreeMap`, so
//! every answer (and every serialized form) is the same on every platform.

pub mod accounts;
pub mod orders;
pub mod positions;
pub mod trades;

#[cfg(test)]
mod tests;

pub use accounts::{AccountSummary, AccountsProjection};
pub use orders::{HistoryQuery, OrderView, OrdersProjection, Page};
pub use positions::{PositionView, PositionsProjection};
pub use trades::{Trade, TradesProjection};

use crate::event::{AggregateId, EventEnvelope};
use crate::ids::AccountId;
use serde::Serialize;
use uuid::Uuid;

/// The four read models fed from one log. Every envelope reaches every fold, so they all
/// describe the same prefix of the log: the one ending at [`ReadModels::last_position`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadModels {
    orders: OrdersProjection,
    accounts: AccountsProjection,
    positions: PositionsProjection,
    trades: TradesProjection,
    last_position: u64,
}

impl ReadModels {
    /// Read models of the empty log (position 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds the next event of the log. The caller feeds the log from its first event with
    /// contiguous positions (the host's projector refuses a gap before it gets here); a gap is
    /// a bug and fails a debug assertion.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        debug_assert_eq!(envelope.position, self.last_position + 1, "global positions are contiguous");
        self.last_position = envelope.position;
        self.orders.apply(envelope);
        self.accounts.apply(envelope);
        self.positions.apply(envelope);
        self.trades.apply(envelope);
    }

    /// Global position of the last event folded (0 before the first).
    pub fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Orders, by id and by user.
    pub fn orders(&self) -> &OrdersProjection {
        &self.orders
    }

    /// Account summaries (balance, locks, margins, available).
    pub fn accounts(&self) -> &AccountsProjection {
        &self.accounts
    }

    /// Positions; their queries need [`ReadModels::accounts`] for cross wallets, or use
    /// [`ReadModels::positions_for_account`] and [`ReadModels::open_positions`].
    pub fn positions(&self) -> &PositionsProjection {
        &self.positions
    }

    /// The trade tape of each market.
    pub fn trades(&self) -> &TradesProjection {
        &self.trades
    }

    /// Open positions of an account, in the order they were first opened, valued with this
    /// log prefix's balances and marks.
    pub fn positions_for_account(&self, account_id: AccountId) -> Vec<PositionView> {
        self.positions.for_account(account_id, &self.accounts)
    }

    /// Every open position, in the order they were first opened.
    pub fn open_positions(&self) -> Vec<PositionView> {
        self.positions.all_open(&self.accounts)
    }
}

/// The UUID of the envelope's stream (`None` for a market stream, whose id is its symbol).
fn stream_uuid(envelope: &EventEnvelope) -> Option<Uuid> {
    match envelope.stream.aggregate_id {
        AggregateId::Uuid(id) => Some(id),
        AggregateId::Symbol(_) => None,
    }
}
