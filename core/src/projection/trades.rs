//! The trade tape: one record per fill, from the taker's side, per market.

use crate::event::{Event, EventEnvelope};
use crate::ids::{OrderId, TradeId};
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::Side;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// One fill between a taker and a maker order, as the market saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    /// The trade.
    pub trade_id: TradeId,
    /// The market.
    pub symbol: Symbol,
    /// The maker's price.
    pub price: Decimal,
    /// Quantity filled (base asset).
    pub quantity: Decimal,
    /// Side of the incoming (taker) order: BUY lifted an ask, SELL hit a bid.
    pub taker_side: Side,
    /// The incoming order.
    pub taker_order_id: OrderId,
    /// The resting order.
    pub maker_order_id: OrderId,
    /// Timestamp of the taker's `OrderMatched`.
    pub timestamp: Timestamp,
    /// Global position of the taker's `OrderMatched` (orders trades across markets).
    pub position: u64,
}

/// Every trade of each market in log order, built from the taker's `OrderMatched` (each fill
/// records one for the taker and one for the maker; the taker's makes the trade).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradesProjection {
    /// Symbol and side of each open order; an order is dropped when it ends, since an ended
    /// order fills no more, so this stays as small as the open orders.
    open_orders: BTreeMap<OrderId, (Symbol, Side)>,
    tape: BTreeMap<Symbol, Vec<Trade>>,
}

impl TradesProjection {
    /// Folds one event: order placements, taker fills and order endings; others are ignored.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::OrderPlaced(e) => {
                self.open_orders.insert(e.order_id, (e.symbol, e.side));
            }
            Event::OrderMatched(e) if !e.is_maker => {
                let known = self.open_orders.get(&e.order_id).copied();
                debug_assert!(known.is_some(), "a taker fill follows its order's placement");
                let Some((symbol, taker_side)) = known else { return };
                let trade = Trade {
                    trade_id: e.trade_id,
                    symbol,
                    price: e.price,
                    quantity: e.quantity,
                    taker_side,
                    taker_order_id: e.order_id,
                    maker_order_id: e.counterparty_order_id,
                    timestamp: envelope.timestamp,
                    position: envelope.position,
                };
                self.tape.entry(symbol).or_default().push(trade);
            }
            Event::OrderFilled(e) => self.forget(e.order_id),
            Event::OrderCancelled(e) => self.forget(e.order_id),
            Event::OrderExpired(e) => self.forget(e.order_id),
            _ => {}
        }
    }

    fn forget(&mut self, order_id: OrderId) {
        self.open_orders.remove(&order_id);
    }

    /// Every trade of `symbol`, oldest first.
    pub fn tape(&self, symbol: Symbol) -> &[Trade] {
        self.tape.get(&symbol).map_or(&[], Vec::as_slice)
    }

    /// The last `limit` trades of `symbol`, newest first.
    pub fn recent(&self, symbol: Symbol, limit: usize) -> Vec<&Trade> {
        self.tape.get(&symbol).into_iter().flat_map(|trades| trades.iter().rev()).take(limit).collect()
    }
}
