//! The order book of one market: price levels in price-time priority. The book holds only
//! order ids; quantities live in the orders' states, so there is one source of truth.
//!
//! Levels are keyed by the price as a fixed-point integer (18 decimals, [`PriceKey`]), so
//! the hot comparisons are integer comparisons; each level keeps its `Decimal` price too.

use crate::ids::OrderId;
use crate::types::Side;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

/// A price as an integer count of 1e-18: exact for every price the engine accepts (at most
/// 1e9, with a tick of at least 1e-18), and ordered like the price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PriceKey(i128);

const KEY_SCALE: u32 = 18;

impl PriceKey {
    /// The key of `price`. Prices with more than 18 significant decimals are rounded to 18
    /// (such a price is not a multiple of any tick a market may have).
    pub fn of(price: Decimal) -> PriceKey {
        let price = if price.scale() > KEY_SCALE { price.round_dp(KEY_SCALE) } else { price };
        PriceKey(price.mantissa() * 10_i128.pow(KEY_SCALE - price.scale()))
    }
}

/// One price level: its price and its orders in time priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// The level's price (as written by the order that opened the level).
    pub price: Decimal,
    /// Resting orders at this price, oldest (first to fill) first.
    pub orders: VecDeque<OrderId>,
}

/// Resting orders of one market.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    bids: BTreeMap<PriceKey, Level>,
    asks: BTreeMap<PriceKey, Level>,
    resting: usize,
}

impl Book {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<PriceKey, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Adds an order at the back of its price level (newest, lowest time priority).
    pub fn insert(&mut self, side: Side, price: Decimal, order_id: OrderId) {
        let level =
            self.side_mut(side).entry(PriceKey::of(price)).or_insert_with(|| Level { price, orders: VecDeque::new() });
        level.orders.push_back(order_id);
        self.resting += 1;
    }

    /// Removes an order; returns whether it was there.
    pub fn remove(&mut self, side: Side, price: Decimal, order_id: OrderId) -> bool {
        let key = PriceKey::of(price);
        let levels = self.side_mut(side);
        let Some(level) = levels.get_mut(&key) else { return false };
        let Some(index) = level.orders.iter().position(|id| *id == order_id) else { return false };
        level.orders.remove(index);
        if level.orders.is_empty() {
            levels.remove(&key);
        }
        self.resting -= 1;
        true
    }

    /// Best price and the order with time priority there, on `side` (highest bid, lowest ask).
    pub fn best(&self, side: Side) -> Option<(Decimal, OrderId)> {
        let level = match side {
            Side::Buy => self.bids.values().next_back(),
            Side::Sell => self.asks.values().next(),
        };
        level.and_then(|level| level.orders.front().map(|id| (level.price, *id)))
    }

    /// Best price on `side`.
    pub fn best_price(&self, side: Side) -> Option<Decimal> {
        self.best(side).map(|(price, _)| price)
    }

    /// Levels of `side` from best to worst, each with its orders in time priority.
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = (Decimal, &VecDeque<OrderId>)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.values().rev().map(|l| (l.price, &l.orders))),
            Side::Sell => Box::new(self.asks.values().map(|l| (l.price, &l.orders))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn price_keys_order_like_prices_and_ignore_scale() {
        let d = |s: &str| Decimal::from_str(s).expect("decimal");
        assert_eq!(PriceKey::of(d("50000")), PriceKey::of(d("50000.000")));
        assert!(PriceKey::of(d("49999.9")) < PriceKey::of(d("50000")));
        assert!(PriceKey::of(d("0.000000000000000001")) > PriceKey::of(d("0")));
        assert!(PriceKey::of(d("1000000000")) > PriceKey::of(d("999999999.999999999999999999")));
    }
}
