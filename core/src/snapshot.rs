//! Versioned snapshots of aggregates and of the whole engine. A snapshot is a cache of a fold:
//! loading one and folding the rest of the log must equal folding the whole log (tested).
//! The format carries `formatVersion`; a reader refuses a version it does not know.

use crate::account::AccountState;
use crate::engine::book::Book;
use crate::engine::{Counters, Exchange};
use crate::event::StreamId;
use crate::market::MarketState;
use crate::order::OrderState;
use crate::position::PositionState;
use crate::time::Timestamp;
use crate::timetravel::AggregateState;
use crate::types::OrderType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// A snapshot of one aggregate at a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregateSnapshot {
    /// Snapshot format ([`SNAPSHOT_FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Aggregate type name (`Order`, `Account`, `Position` or `Market`).
    pub aggregate_type: String,
    /// Stream id: a UUID, or the symbol for a market.
    pub aggregate_id: String,
    /// Stream version the state was folded up to.
    pub version: u64,
    /// The aggregate's state at `version`.
    pub state: AggregateState,
}

impl AggregateSnapshot {
    /// Snapshot of `state`, the fold of `stream` up to its version.
    pub fn new(stream: StreamId, state: AggregateState) -> Self {
        AggregateSnapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            aggregate_type: stream.aggregate_type.as_str().to_owned(),
            aggregate_id: stream.aggregate_id.to_string(),
            version: state.version(),
            state,
        }
    }

    /// Parses a JSON aggregate snapshot, refusing a format this build does not read. Fold the
    /// stream's events after `version` on top of `state` to continue.
    pub fn from_json(json: &str) -> Result<AggregateSnapshot, SnapshotError> {
        let snapshot: AggregateSnapshot =
            serde_json::from_str(json).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if snapshot.format_version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedFormat(snapshot.format_version));
        }
        Ok(snapshot)
    }
}

/// A snapshot of the whole engine after `last_position`. Collections are sorted by id, which
/// is also creation order (ids derive from counters), so books are rebuilt in time priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineSnapshot {
    /// Snapshot format ([`SNAPSHOT_FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Global position of the last event folded in.
    pub last_position: u64,
    /// Timestamp of that event.
    pub last_timestamp: Timestamp,
    /// The engine's id counters.
    pub counters: Counters,
    /// Every market, by symbol.
    pub markets: Vec<MarketState>,
    /// Every account, by id.
    pub accounts: Vec<AccountState>,
    /// Every order, ended ones included, by id.
    pub orders: Vec<OrderState>,
    /// Every position stream, flat ones included, by id.
    pub positions: Vec<PositionState>,
}

/// Why a snapshot could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The snapshot was written in a format this build does not read.
    UnsupportedFormat(u32),
    /// The snapshot is not valid JSON of the format.
    Malformed(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::UnsupportedFormat(v) => write!(f, "snapshot format {v} is not supported"),
            SnapshotError::Malformed(e) => write!(f, "malformed snapshot: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl Exchange {
    /// A snapshot of the engine as it stands.
    pub fn snapshot(&self) -> EngineSnapshot {
        fn sorted<K: Ord + Copy, V: Clone>(map: impl Iterator<Item = (K, V)>) -> Vec<V> {
            let mut items: Vec<(K, V)> = map.collect();
            items.sort_by_key(|(k, _)| *k);
            items.into_iter().map(|(_, v)| v).collect()
        }
        EngineSnapshot {
            format_version: SNAPSHOT_FORMAT_VERSION,
            last_position: self.last_position,
            last_timestamp: self.last_timestamp,
            counters: self.counters,
            markets: self.markets.values().cloned().collect(),
            accounts: sorted(self.accounts.values().map(|v| (v.account_id, v.clone()))),
            orders: sorted(self.orders.values().map(|v| (v.order_id, v.clone()))),
            positions: sorted(self.positions.values().map(|v| (v.position_id, v.clone()))),
        }
    }

    /// The engine a snapshot describes; fold the log after `last_position` on top of it.
    pub fn from_snapshot(snapshot: EngineSnapshot) -> Result<Exchange, SnapshotError> {
        if snapshot.format_version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedFormat(snapshot.format_version));
        }
        let mut exchange = Exchange {
            last_position: snapshot.last_position,
            last_timestamp: snapshot.last_timestamp,
            counters: snapshot.counters,
            ..Exchange::default()
        };
        for market in snapshot.markets {
            exchange.books.insert(market.spec.symbol, Book::default());
            exchange.markets.insert(market.spec.symbol, market);
        }
        for account in snapshot.accounts {
            exchange.accounts.insert(account);
        }
        for order in snapshot.orders {
            if let (true, OrderType::Limit, Some(price)) = (order.is_open(), order.order_type, order.price) {
                exchange.books.entry(order.symbol).or_default().insert(order.side, price, order.order_id);
            }
            exchange.orders.insert(order);
        }
        for position in snapshot.positions {
            let (id, account_id, symbol) = (position.position_id, position.account_id, position.symbol);
            exchange.position_index.insert((account_id, symbol), id);
            exchange.account_positions.entry(account_id).or_default().push(id);
            exchange.market_positions.entry(symbol).or_default().push(id);
            exchange.positions.insert(position);
        }
        Ok(exchange)
    }

    /// Parses and loads a JSON engine snapshot.
    pub fn from_snapshot_json(json: &str) -> Result<Exchange, SnapshotError> {
        let snapshot: EngineSnapshot =
            serde_json::from_str(json).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        Self::from_snapshot(snapshot)
    }
}
