//! Position state and its evolution.

use crate::aggregate::Aggregate;
use crate::event::{Event, EventEnvelope};
use crate::ids::{AccountId, PositionId};
use crate::position::events::PositionOpened;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A position. Flat when `size` is zero; the stream lives on and may open again.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionState {
    /// The position stream's id.
    pub position_id: PositionId,
    /// The account holding the position.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY for a long, SELL for a short (the last side while flat).
    pub side: Side,
    /// Open size (base asset); 0 when flat.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub size: Decimal,
    /// `Σ quantity × price` of what is open; entry price = entry value / size.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub entry_value: Decimal,
    /// Margin reserved for the position, in USDT; 0 when flat and for the insurance account.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub margin: Decimal,
    /// Leverage of the position.
    pub leverage: u32,
    /// CROSS or ISOLATED.
    pub margin_mode: MarginMode,
    /// Realized PnL over the stream's life (trades and liquidation).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub realized_pnl: Decimal,
    /// Timestamp of the stream's first `PositionOpened`.
    pub created_at: Timestamp,
    /// Timestamp of the stream's last event.
    pub updated_at: Timestamp,
    /// Version of the position stream after its last event.
    pub version: u64,
}

impl PositionState {
    fn open(&mut self, e: &PositionOpened) {
        self.side = e.side;
        self.size = e.size;
        self.entry_value = e.size * e.entry_price;
        self.margin = e.margin;
        self.leverage = e.leverage;
        self.margin_mode = e.margin_mode;
    }

    fn flatten(&mut self) {
        self.size = Decimal::ZERO;
        self.entry_value = Decimal::ZERO;
        self.margin = Decimal::ZERO;
    }
}

impl Aggregate for PositionState {
    fn create(envelope: &EventEnvelope) -> Option<Self> {
        let Event::PositionOpened(e) = &envelope.event else { return None };
        let mut state = PositionState {
            position_id: e.position_id,
            account_id: e.account_id,
            symbol: e.symbol,
            side: e.side,
            size: Decimal::ZERO,
            entry_value: Decimal::ZERO,
            margin: Decimal::ZERO,
            leverage: e.leverage,
            margin_mode: e.margin_mode,
            realized_pnl: Decimal::ZERO,
            created_at: envelope.timestamp,
            updated_at: envelope.timestamp,
            version: envelope.version,
        };
        state.open(e);
        Some(state)
    }

    fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::PositionOpened(e) => self.open(e),
            Event::PositionIncreased(e) => {
                self.size = e.size;
                self.entry_value += e.quantity * e.price;
                self.margin += e.margin_added;
            }
            Event::PositionDecreased(e) => {
                self.size = e.size;
                self.entry_value -= e.entry_value_released;
                self.margin -= e.margin_released;
                self.realized_pnl += e.realized_pnl;
            }
            Event::PositionClosed(e) => {
                self.realized_pnl += e.realized_pnl;
                self.flatten();
            }
            Event::PositionLiquidated(e) => {
                self.realized_pnl += e.pnl_at_mark;
                self.flatten();
            }
            Event::LeverageChanged(e) => {
                self.leverage = e.leverage;
                self.margin = e.margin;
            }
            Event::MarginAdded(e) => self.margin = e.margin,
            Event::MarginRemoved(e) => self.margin = e.margin,
            other => debug_assert!(false, "{} is not a position event", other.event_type()),
        }
        self.version = envelope.version;
        self.updated_at = envelope.timestamp;
    }

    fn version(&self) -> u64 {
        self.version
    }
}
