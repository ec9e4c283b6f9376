//! The order book of one market: price levels in price-time priority. The book holds only
//! order ids; quantities live in the orders' states, so there is one source of truth.

use crate::ids::OrderId;
use crate::types::Side;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

/// Resting orders of one market.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    bids: BTreeMap<Decimal, VecDeque<OrderId>>,
    asks: BTreeMap<Decimal, VecDeque<OrderId>>,
    resting: usize,
}

impl Book {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Decimal, VecDeque<OrderId>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Adds an order at the back of its price level (newest, lowest time priority).
    pub fn insert(&mut self, side: Side, price: Decimal, order_id: OrderId) {
        self.side_mut(side).entry(price).or_default().push_back(order_id);
        self.resting += 1;
    }

    /// Removes an order; returns whether it was there.
    pub fn remove(&mut self, side: Side, price: Decimal, order_id: OrderId) -> bool {
        let levels = self.side_mut(side);
        let Some(level) = levels.get_mut(&price) else { return false };
        let Some(index) = level.iter().position(|id| *id == order_id) else { return false };
        level.remove(index);
        if level.is_empty() {
            levels.remove(&price);
        }
        self.resting -= 1;
        true
    }

    /// Best price and the order with time priority there, on `side` (highest bid, lowest ask).
    pub fn best(&self, side: Side) -> Option<(Decimal, OrderId)> {
        let level = match side {
            Side::Buy => self.bids.iter().next_back(),
            Side::Sell => self.asks.iter().next(),
        };
        level.and_then(|(price, ids)| ids.front().map(|id| (*price, *id)))
    }

    /// Best price on `side`.
    pub fn best_price(&self, side: Side) -> Option<Decimal> {
        self.best(side).map(|(price, _)| price)
    }

    /// Levels of `side` from best to worst, each with its orders in time priority.
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = (Decimal, &VecDeque<OrderId>)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter().rev().map(|(p, ids)| (*p, ids))),
            Side::Sell => Box::new(self.asks.iter().map(|(p, ids)| (*p, ids))),
        }
    }

    /// Number of resting orders.
    pub fn len(&self) -> usize {
        self.resting
    }

    /// True when no order rests.
    pub fn is_empty(&self) -> bool {
        self.resting == 0
    }
}

/// True when an incoming order on `taker_side` with `limit` (None: MARKET) crosses `price`.
pub fn crosses(taker_side: Side, limit: Option<Decimal>, price: Decimal) -> bool {
    match (taker_side, limit) {
        (_, None) => true,
        (Side::Buy, Some(limit)) => price <= limit,
        (Side::Sell, Some(limit)) => price >= limit,
    }
}
