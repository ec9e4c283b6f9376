//! Events of the Position stream (one stream per account and symbol, for the account's whole
//! life; aggregate id: the position id). A position keeps its size, its entry value
//! (`Σ fill quantity × fill price` of what is open; entry price = entry value / size) and its
//! margin. Keeping the entry value instead of a rounded entry price makes PnL exact.

use crate::ids::{AccountId, OrderId, PositionId, TradeId};
use crate::symbol::Symbol;
use crate::types::{MarginMode, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A position was opened from flat by a fill (or by a takeover in a liquidation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionOpened {
    pub position_id: PositionId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    pub size: Decimal,
    pub entry_price: Decimal,
    pub margin: Decimal,
    pub leverage: u32,
    pub margin_mode: MarginMode,
    pub order_id: Option<OrderId>,
    pub trade_id: Option<TradeId>,
}

/// A fill on the position's side made it larger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionIncreased {
    pub position_id: PositionId,
    pub quantity: Decimal,
    pub price: Decimal,
    pub size: Decimal,
    /// Size-weighted average entry price after the fill.
    pub entry_price: Decimal,
    pub margin_added: Decimal,
    pub order_id: Option<OrderId>,
    pub trade_id: Option<TradeId>,
}

/// A fill against the position made it smaller (not to zero).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionDecreased {
    pub position_id: PositionId,
    pub quantity: Decimal,
    pub price: Decimal,
    pub size: Decimal,
    pub realized_pnl: Decimal,
    /// Entry value taken off with the closed quantity (exact bookkeeping of the cost basis).
    pub entry_value_released: Decimal,
    pub margin_released: Decimal,
    pub order_id: Option<OrderId>,
    pub trade_id: Option<TradeId>,
}

/// A fill took the position to zero; its margin is released in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionClosed {
    pub position_id: PositionId,
    pub quantity: Decimal,
    pub price: Decimal,
    pub realized_pnl: Decimal,
    pub margin_released: Decimal,
    pub order_id: Option<OrderId>,
    pub trade_id: Option<TradeId>,
}

/// The position was liquidated at the mark price and taken over by the insurance account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionLiquidated {
    pub position_id: PositionId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    pub size: Decimal,
    pub entry_price: Decimal,
    pub mark_price: Decimal,
    /// `side × (size × mark − entry value)`: what closing at the mark would have realized.
    pub pnl_at_mark: Decimal,
    pub margin_released: Decimal,
    pub margin_mode: MarginMode,
}

/// The position's leverage changed; `margin` is the position margin after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageChanged {
    pub position_id: PositionId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub leverage: u32,
    pub margin: Decimal,
}

/// Margin was added to an isolated position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginAdded {
    pub position_id: PositionId,
    pub amount: Decimal,
    pub margin: Decimal,
}

/// Margin was removed from an isolated position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginRemoved {
    pub position_id: PositionId,
    pub amount: Decimal,
    pub margin: Decimal,
}
