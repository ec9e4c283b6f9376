//! Savepoints: undoing the events of part of a command. A FOK order must fill completely or
//! be rejected with no fills; whether it fills depends on checks made fill by fill (a maker
//! can be cancelled by the fill guard), so the engine matches it under a savepoint and, if it
//! falls short, restores every state the matching touched and records the rejection instead.
//! While a savepoint is open, `emit` keeps the prior state of each aggregate before applying
//! an event to it; a rollback restores them in reverse order.

use super::{Batch, Counters, Exchange};
use crate::account::AccountState;
use crate::engine::book::Book;
use crate::event::{AggregateId, AggregateType, StreamId};
use crate::ids::{AccountId, OrderId, PositionId};
use crate::market::MarketState;
use crate::order::OrderState;
use crate::position::PositionState;
use crate::symbol::Symbol;
use crate::time::Timestamp;

/// The state of one aggregate before an event was applied to it (`None`: it did not exist).
#[derive(Clone, Debug)]
pub(crate) enum Prior {
    Order(OrderId, Option<Box<OrderState>>),
    Account(AccountId, Box<AccountState>),
    Position(PositionId, Option<Box<PositionState>>),
    Market(Symbol, Box<MarketState>),
}

/// What a rollback restores besides the aggregates.
#[derive(Clone, Debug)]
pub(crate) struct Savepoint {
    last_position: u64,
    last_timestamp: Timestamp,
    counters: Counters,
    events_len: usize,
    book: (Symbol, Book),
    pub(crate) priors: Vec<Prior>,
}

impl Exchange {
    /// Opens a savepoint on `batch`; only the book of `symbol` may change under it.
    pub(crate) fn open_savepoint(&self, symbol: Symbol, batch: &mut Batch<'_>) {
        debug_assert!(batch.savepoint.is_none(), "savepoints do not nest");
        batch.savepoint = Some(Savepoint {
            last_position: self.last_position,
            last_timestamp: self.last_timestamp,
            counters: self.counters,
            events_len: batch.events.len(),
            book: (symbol, self.books.get(&symbol).cloned().unwrap_or_default()),
            priors: Vec::new(),
        });
    }

    /// Keeps what rolling back needs: the savepoint is released.
    pub(crate) fn release_savepoint(&self, batch: &mut Batch<'_>) {
        batch.savepoint = None;
    }

    /// The state `stream` has now, for the savepoint.
    pub(crate) fn prior_of(&self, stream: &StreamId) -> Option<Prior> {
        Some(match (stream.aggregate_type, stream.aggregate_id) {
            (AggregateType::Order, AggregateId::Uuid(id)) => {
                let id = OrderId(id);
                Prior::Order(id, self.orders.get(&id).cloned().map(Box::new))
            }
            (AggregateType::Account, AggregateId::Uuid(id)) => {
                let id = AccountId(id);
                Prior::Account(id, Box::new(self.accounts.get(&id)?.clone()))
            }
            (AggregateType::Position, AggregateId::Uuid(id)) => {
                let id = PositionId(id);
                Prior::Position(id, self.positions.get(&id).cloned().map(Box::new))
            }
            (AggregateType::Market, AggregateId::Symbol(symbol)) => {
                Prior::Market(symbol, Box::new(self.markets.get(&symbol)?.clone()))
            }
            _ => return None,
        })
    }

    /// Undoes every event emitted since the savepoint was opened.
    pub(crate) fn rollback(&mut self, batch: &mut Batch<'_>) {
        let savepoint = batch.savepoint.take().expect("a savepoint is open");
        for prior in savepoint.priors.into_iter().rev() {
            match prior {
                Prior::Order(id, Some(state)) => *self.orders.get_mut(&id).expect("order") = *state,
                Prior::Order(id, None) => self.orders.remove_newest(&id),
                Prior::Account(id, state) => *self.accounts.get_mut(&id).expect("account") = *state,
                Prior::Position(id, Some(state)) => *self.positions.get_mut(&id).expect("position") = *state,
                Prior::Position(id, None) => self.forget_position(id),
                Prior::Market(symbol, state) => {
                    self.markets.insert(symbol, *state);
                }
            }
        }
        let (symbol, book) = savepoint.book;
        self.books.insert(symbol, book);
        self.last_position = savepoint.last_position;
        self.last_timestamp = savepoint.last_timestamp;
        self.counters = savepoint.counters;
        batch.events.truncate(savepoint.events_len);
    }

    /// Removes a position created under a savepoint, with its index entries.
    fn forget_position(&mut self, id: PositionId) {
        let Some(position) = self.positions.get(&id) else { return };
        let (account_id, symbol) = (position.account_id, position.symbol);
        self.position_index.remove(&(account_id, symbol));
        if let Some(list) = self.account_positions.get_mut(&account_id) {
            list.retain(|p| *p != id);
            if list.is_empty() {
                self.account_positions.remove(&account_id);
            }
        }
        if let Some(list) = self.market_positions.get_mut(&symbol) {
            list.retain(|p| *p != id);
            if list.is_empty() {
                self.market_positions.remove(&symbol);
            }
        }
        self.positions.remove_newest(&id);
    }
}
