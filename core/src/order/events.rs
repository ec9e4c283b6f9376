//! Events of the Order stream (aggregate id: the order id).

use crate::ids::{AccountId, EventId, OrderId, TradeId, UserId};
use crate::symbol::Symbol;
use crate::types::{CancelReason, MarginMode, OrderType, RejectCode, Side, StpMode, TimeInForce};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An order was accepted (schema v2: v1 had no `stpMode` and no `clientOrderId`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    /// The new order.
    pub order_id: OrderId,
    /// The user who placed it.
    pub user_id: UserId,
    /// The account it trades for.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY or SELL.
    pub side: Side,
    /// LIMIT or MARKET.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price; `null` for MARKET orders.
    pub price: Option<Decimal>,
    /// Quantity ordered (base asset).
    pub quantity: Decimal,
    /// Leverage requested (adding to an open same-side position trades at the position's).
    pub leverage: u32,
    /// Margin mode of the position the order opens.
    pub margin_mode: MarginMode,
    /// GTC, IOC or FOK.
    pub time_in_force: TimeInForce,
    /// The order may only reduce an opposite position (it locks nothing).
    pub is_reduce_only: bool,
    /// The order was refused if it would have taken liquidity on arrival.
    pub is_post_only: bool,
    /// Self-trade prevention mode.
    pub stp_mode: StpMode,
    /// The client's own id for the order, if given.
    pub client_order_id: Option<String>,
}

/// One fill of an order (each fill gives one of these to the taker and one to the maker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderMatched {
    /// The order that filled.
    pub order_id: OrderId,
    /// The trade (shared by the taker's and the maker's `OrderMatched`).
    pub trade_id: TradeId,
    /// Fill price in USDT: the resting (maker) order's price.
    pub price: Decimal,
    /// Quantity filled (base asset).
    pub quantity: Decimal,
    /// Quantity still open after this fill.
    pub remaining: Decimal,
    /// Fee paid by this order's account for this fill.
    pub fee: Decimal,
    /// PnL realized by this order's account on this fill (signed).
    pub realized_pnl: Decimal,
    /// True for the resting order, false for the incoming one.
    pub is_maker: bool,
    /// The order on the other side of the trade.
    pub counterparty_order_id: OrderId,
}

/// A partly filled order rests (or keeps resting) in the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPartiallyFilled {
    /// The order.
    pub order_id: OrderId,
    /// Quantity filled so far (base asset).
    pub executed_qty: Decimal,
    /// Quantity still open, resting in the book (base asset).
    pub remaining: Decimal,
}

/// The order's whole quantity has been filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFilled {
    /// The order.
    pub order_id: OrderId,
    /// Quantity filled: the order's whole quantity (base asset).
    pub executed_qty: Decimal,
    /// Size-weighted average fill price in USDT (8 dp).
    pub avg_price: Decimal,
}

/// The order was cancelled; `remaining` is what was left open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    /// The order.
    pub order_id: OrderId,
    /// Why it was cancelled.
    pub reason: CancelReason,
    /// Quantity still open when cancelled (base asset).
    pub remaining: Decimal,
}

/// An IOC or MARKET order (or a reduce-only order with nothing left to reduce) ended with a
/// remainder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderExpired {
    /// The order.
    pub order_id: OrderId,
    /// Quantity left unfilled (base asset).
    pub remaining: Decimal,
}

/// An order was refused by a business rule; this is the only event of its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRejected {
    /// The order id given to the refused order.
    pub order_id: OrderId,
    /// The user who placed it.
    pub user_id: UserId,
    /// The account it would have traded for.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY or SELL.
    pub side: Side,
    /// LIMIT or MARKET.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price in USDT; `null` for MARKET orders.
    pub price: Option<Decimal>,
    /// Quantity ordered (base asset).
    pub quantity: Decimal,
    /// The first business rule that refused it.
    pub reason: RejectCode,
    /// The client's own id for the order, if given.
    pub client_order_id: Option<String>,
}

/// One corrected field of an order: what it said, and what it should have said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldCorrection {
    /// Wire name of the field (`clientOrderId` or `note`).
    pub field: String,
    /// Value before the correction, as stated by the admin; `null` when unset.
    pub from: Option<String>,
    /// Value after the correction; `null` clears it.
    pub to: Option<String>,
}

/// An admin's compensating correction of an earlier event of this order. The original event
/// stays in the log; read models show the corrected values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCorrected {
    /// The corrected order.
    pub order_id: OrderId,
    /// The event this correction compensates.
    pub corrected_event_id: EventId,
    /// That event's version in this stream.
    pub corrected_version: u64,
    /// The fields corrected.
    pub corrections: Vec<FieldCorrection>,
    /// Why the correction was made.
    pub reason: String,
    /// The admin who made it.
    pub corrected_by: UserId,
}

/// Fields of an order that a correction may change (descriptive only: money moves only
/// through trading, funding and liquidation events).
pub const CORRECTABLE_FIELDS: &[&str] = &["clientOrderId", "note"];
