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
    pub order_id: OrderId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price; `null` for MARKET orders.
    pub price: Option<Decimal>,
    pub quantity: Decimal,
    pub leverage: u32,
    pub margin_mode: MarginMode,
    pub time_in_force: TimeInForce,
    pub is_reduce_only: bool,
    pub is_post_only: bool,
    pub stp_mode: StpMode,
    pub client_order_id: Option<String>,
}

/// One fill of an order (each fill gives one of these to the taker and one to the maker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderMatched {
    pub order_id: OrderId,
    pub trade_id: TradeId,
    pub price: Decimal,
    pub quantity: Decimal,
    /// Quantity still open after this fill.
    pub remaining: Decimal,
    /// Fee paid by this order's account for this fill.
    pub fee: Decimal,
    /// PnL realized by this order's account on this fill (signed).
    pub realized_pnl: Decimal,
    pub is_maker: bool,
    pub counterparty_order_id: OrderId,
}

/// A partly filled order rests (or keeps resting) in the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPartiallyFilled {
    pub order_id: OrderId,
    pub executed_qty: Decimal,
    pub remaining: Decimal,
}

/// The order's whole quantity has been filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFilled {
    pub order_id: OrderId,
    pub executed_qty: Decimal,
    pub avg_price: Decimal,
}

/// The order was cancelled; `remaining` is what was left open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub reason: CancelReason,
    pub remaining: Decimal,
}

/// An IOC or MARKET order (or a reduce-only order with nothing left to reduce) ended with a
/// remainder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderExpired {
    pub order_id: OrderId,
    pub remaining: Decimal,
}

/// An order was refused by a business rule; this is the only event of its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRejected {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub price: Option<Decimal>,
    pub quantity: Decimal,
    pub reason: RejectCode,
    pub client_order_id: Option<String>,
}

/// One corrected field of an order: what it said, and what it should have said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldCorrection {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// An admin's compensating correction of an earlier event of this order. The original event
/// stays in the log; read models show the corrected values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCorrected {
    pub order_id: OrderId,
    /// The event this correction compensates.
    pub corrected_event_id: EventId,
    /// That event's version in this stream.
    pub corrected_version: u64,
    pub corrections: Vec<FieldCorrection>,
    pub reason: String,
    pub corrected_by: UserId,
}

/// Fields of an order that a correction may change (descriptive only: money moves only
/// through trading, funding and liquidation events).
pub const CORRECTABLE_FIELDS: &[&str] = &["clientOrderId", "note"];
