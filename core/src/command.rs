//! Commands: what a user or operator asks the exchange to do (imperative names). Hosts parse
//! their own wire formats into these; the JSON form here exists for the shared test vectors
//! and is not a stored format.

use crate::event::Metadata;
use crate::ids::{AccountId, EventId, OrderId, UserId};
use crate::market::spec::MarketSpec;
use crate::order::events::FieldCorrection;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Place an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrder {
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    #[serde(default)]
    pub price: Option<Decimal>,
    pub quantity: Decimal,
    pub leverage: u32,
    #[serde(default = "default_margin_mode")]
    pub margin_mode: MarginMode,
    #[serde(default = "default_tif")]
    pub time_in_force: TimeInForce,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default = "default_stp")]
    pub stp_mode: StpMode,
    #[serde(default)]
    pub client_order_id: Option<String>,
}

fn default_margin_mode() -> MarginMode {
    MarginMode::Cross
}
fn default_tif() -> TimeInForce {
    TimeInForce::Gtc
}
fn default_stp() -> StpMode {
    StpMode::ExpireTaker
}

/// Everything the exchange can be asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all_fields = "camelCase")]
pub enum Command {
    /// List the markets and create the fee and insurance accounts; the first command of a log.
    Genesis {
        markets: Vec<MarketSpec>,
    },
    /// Open a trading account for a user.
    CreateAccount {
        user_id: UserId,
    },
    Deposit {
        account_id: AccountId,
        amount: Decimal,
    },
    Withdraw {
        account_id: AccountId,
        amount: Decimal,
    },
    PlaceOrder(PlaceOrder),
    /// Cancel an open order of `account_id`.
    CancelOrder {
        account_id: AccountId,
        order_id: OrderId,
    },
    ChangeLeverage {
        account_id: AccountId,
        symbol: Symbol,
        leverage: u32,
    },
    /// Move isolated margin: a positive amount adds, a negative one removes.
    AdjustMargin {
        account_id: AccountId,
        symbol: Symbol,
        amount: Decimal,
    },
    SetMarkPrice {
        symbol: Symbol,
        price: Decimal,
    },
    SettleFunding {
        symbol: Symbol,
        rate: Decimal,
    },
    /// Record an admin's correction of an earlier event of an order.
    CorrectOrder {
        order_id: OrderId,
        /// The event being corrected; the host checks it is the event at `corrected_version`.
        corrected_event_id: EventId,
        corrected_version: u64,
        corrections: Vec<FieldCorrection>,
        reason: String,
        corrected_by: UserId,
    },
}

/// What a command runs with besides itself: the time and who asked. The core never reads a
/// clock; hosts pass `now`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandContext {
    pub now: Timestamp,
    #[serde(default)]
    pub metadata: Metadata,
}
