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
    /// The position stream (reused when the account reopens in this symbol).
    pub position_id: PositionId,
    /// The account holding the position.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY for a long, SELL for a short.
    pub side: Side,
    /// Size opened (base asset).
    pub size: Decimal,
    /// Entry price in USDT: the fill price (the mark price for a liquidation takeover).
    pub entry_price: Decimal,
    /// Initial margin, in USDT: `size × price / leverage` rounded up (0 for the insurance account).
    pub margin: Decimal,
    /// Leverage of the position.
    pub leverage: u32,
    /// CROSS or ISOLATED.
    pub margin_mode: MarginMode,
    /// The order whose fill opened it; `null` for a liquidation takeover.
    pub order_id: Option<OrderId>,
    /// The trade that opened it; `null` for a liquidation takeover.
    pub trade_id: Option<TradeId>,
}

/// A fill on the position's side made it larger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionIncreased {
    /// The position.
    pub position_id: PositionId,
    /// Quantity added (base asset).
    pub quantity: Decimal,
    /// Fill price in USDT (the mark price for a liquidation takeover).
    pub price: Decimal,
    /// Size after the fill (base asset).
    pub size: Decimal,
    /// Size-weighted average entry price after the fill.
    pub entry_price: Decimal,
    /// Margin added, in USDT: `quantity × price / leverage` rounded up (0 for the insurance account).
    pub margin_added: Decimal,
    /// The order whose fill increased it; `null` for a liquidation takeover.
    pub order_id: Option<OrderId>,
    /// The trade that increased it; `null` for a liquidation takeover.
    pub trade_id: Option<TradeId>,
}

/// A fill against the position made it smaller (not to zero).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionDecreased {
    /// The position.
    pub position_id: PositionId,
    /// Quantity closed (base asset).
    pub quantity: Decimal,
    /// Fill price in USDT (the mark price for a liquidation takeover).
    pub price: Decimal,
    /// Size left after the fill (base asset).
    pub size: Decimal,
    /// PnL realized on the closed quantity, in USDT (signed).
    pub realized_pnl: Decimal,
    /// Entry value taken off with the closed quantity (exact bookkeeping of the cost basis).
    pub entry_value_released: Decimal,
    /// Margin released in proportion to the closed quantity, in USDT, rounded down.
    pub margin_released: Decimal,
    /// The order whose fill decreased it; `null` for a liquidation takeover.
    pub order_id: Option<OrderId>,
    /// The trade that decreased it; `null` for a liquidation takeover.
    pub trade_id: Option<TradeId>,
}

/// A fill took the position to zero; its margin is released in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionClosed {
    /// The position.
    pub position_id: PositionId,
    /// Quantity closed: the whole size before the fill (base asset).
    pub quantity: Decimal,
    /// Fill price in USDT (the mark price for a liquidation takeover).
    pub price: Decimal,
    /// PnL realized on the closed quantity, in USDT (signed).
    pub realized_pnl: Decimal,
    /// The position's whole margin, in USDT.
    pub margin_released: Decimal,
    /// The order whose fill closed it; `null` for a liquidation takeover.
    pub order_id: Option<OrderId>,
    /// The trade that closed it; `null` for a liquidation takeover.
    pub trade_id: Option<TradeId>,
}

/// The position was liquidated at the mark price and taken over by the insurance account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionLiquidated {
    /// The liquidated position.
    pub position_id: PositionId,
    /// The account that held it.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// Side of the liquidated position.
    pub side: Side,
    /// Size taken over by the insurance account (base asset).
    pub size: Decimal,
    /// Entry price in USDT before the liquidation (8 dp).
    pub entry_price: Decimal,
    /// Mark price at which the insurance account took the position over, in USDT.
    pub mark_price: Decimal,
    /// `side × (size × mark − entry value)`: what closing at the mark would have realized.
    pub pnl_at_mark: Decimal,
    /// The position's whole margin, in USDT.
    pub margin_released: Decimal,
    /// CROSS or ISOLATED.
    pub margin_mode: MarginMode,
}

/// The position's leverage changed; `margin` is the position margin after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageChanged {
    /// The position.
    pub position_id: PositionId,
    /// The account holding it.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// New leverage.
    pub leverage: u32,
    /// Position margin after the change, in USDT: `size × EP / leverage`, rounded up.
    pub margin: Decimal,
}

/// Margin was added to an isolated position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginAdded {
    /// The isolated position.
    pub position_id: PositionId,
    /// Margin added, in USDT.
    pub amount: Decimal,
    /// Position margin after the addition, in USDT.
    pub margin: Decimal,
}

/// Margin was removed from an isolated position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginRemoved {
    /// The isolated position.
    pub position_id: PositionId,
    /// Margin removed, in USDT.
    pub amount: Decimal,
    /// Position margin after the removal, in USDT.
    pub margin: Decimal,
}
