//! Time travel: the state of an aggregate at a version or a timestamp, and of the whole
//! exchange at a global position. Each is a fold of a prefix of the log.

use crate::account::AccountState;
use crate::aggregate::{fold, Aggregate};
use crate::event::{AggregateType, EventEnvelope};
use crate::market::MarketState;
use crate::order::OrderState;
use crate::position::PositionState;
use crate::time::Timestamp;
use crate::Exchange;
use serde::{Deserialize, Serialize};

/// The state of any aggregate, tagged with its type (for hosts that serve any stream).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "aggregateType", content = "state")]
pub enum AggregateState {
    /// An order's state.
    Order(OrderState),
    /// An account's state.
    Account(AccountState),
    /// A position's state.
    Position(PositionState),
    /// A market's state.
    Market(MarketState),
}

impl AggregateState {
    /// Version of the last event folded in.
    pub fn version(&self) -> u64 {
        match self {
            AggregateState::Order(s) => s.version(),
            AggregateState::Account(s) => s.version(),
            AggregateState::Position(s) => s.version(),
            AggregateState::Market(s) => s.version(),
        }
    }
}

impl AggregateState {
    /// Evolves the state by one more event of its stream.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        match self {
            AggregateState::Order(s) => s.apply(envelope),
            AggregateState::Account(s) => s.apply(envelope),
            AggregateState::Position(s) => s.apply(envelope),
            AggregateState::Market(s) => s.apply(envelope),
        }
    }
}

/// Folds one stream's events (version order) as an aggregate of `aggregate_type`.
pub fn fold_stream<'a>(
    aggregate_type: AggregateType,
    events: impl IntoIterator<Item = &'a EventEnvelope>,
) -> Option<AggregateState> {
    match aggregate_type {
        AggregateType::Order => fold(events).map(AggregateState::Order),
        AggregateType::Account => fold(events).map(AggregateState::Account),
        AggregateType::Position => fold(events).map(AggregateState::Position),
        AggregateType::Market => fold(events).map(AggregateState::Market),
    }
}

/// The state of a stream after its event at `version` (events after it are ignored).
pub fn state_at_version(
    aggregate_type: AggregateType,
    events: &[EventEnvelope],
    version: u64,
) -> Option<AggregateState> {
    fold_stream(aggregate_type, events.iter().take_while(|e| e.version <= version))
}

/// The state of a stream as of `at`: every event stamped at or before `at`.
pub fn state_at_time(aggregate_type: AggregateType, events: &[EventEnvelope], at: Timestamp) -> Option<AggregateState> {
    fold_stream(aggregate_type, events.iter().take_while(|e| e.timestamp <= at))
}

/// Every state a stream passed through, one per event (index `i` is the state at version `i+1`).
pub fn states_of_stream(aggregate_type: AggregateType, events: &[EventEnvelope]) -> Vec<AggregateState> {
    // Linear: each state is the one before with one more event applied (the fold of the
    // prefix, which the property tests check `apply` agrees with).
    let mut states = Vec::with_capacity(events.len());
    let mut current: Option<AggregateState> = None;
    for n in 0..events.len() {
        current = match current.take() {
            Some(mut state) => {
                state.apply(&events[n]);
                Some(state)
            }
            None => fold_stream(aggregate_type, &events[..=n]),
        };
        states.extend(current.clone());
    }
    states
}

/// The whole exchange as it was right after global position `position`.
pub fn exchange_at(log: &[EventEnvelope], position: u64) -> Exchange {
    Exchange::replay(log.iter().take_while(|e| e.position <= position))
}
