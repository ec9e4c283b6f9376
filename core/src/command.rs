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
    /// The trader account placing the order.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY or SELL.
    pub side: Side,
    /// LIMIT or MARKET.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price in USDT; required for LIMIT, absent for MARKET.
    #[serde(default)]
    pub price: Option<Decimal>,
    /// Quantity in the base asset (positive, at most 1e9).
    pub quantity: Decimal,
    /// Leverage, at least 1 (an order adding to an open same-side position trades at the position's).
    pub leverage: u32,
    /// Margin mode of the position the order opens; CROSS when absent.
    #[serde(default = "default_margin_mode")]
    pub margin_mode: MarginMode,
    /// Time in force; GTC when absent.
    #[serde(default = "default_tif")]
    pub time_in_force: TimeInForce,
    /// Only reduce an opposite position; locks nothing.
    #[serde(default)]
    pub reduce_only: bool,
    /// Reject the order instead of letting it take liquidity on arrival.
    #[serde(default)]
    pub post_only: bool,
    /// Self-trade prevention mode; EXPIRE_TAKER when absent.
    #[serde(default = "default_stp")]
    pub stp_mode: StpMode,
    /// The client's own id for the order (1 to 64 bytes).
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
        /// Markets to list (each must validate; symbols must be unique).
        markets: Vec<MarketSpec>,
    },
    /// Open a trading account for a user.
    CreateAccount {
        /// The user who will own the account.
        user_id: UserId,
    },
    /// Credit money to an account's balance.
    Deposit {
        /// The account to credit.
        account_id: AccountId,
        /// Amount in USDT: positive, at most 1e15, at most 8 decimals.
        amount: Decimal,
    },
    /// Take money out of a trader account (at most its available).
    Withdraw {
        /// The trader account to debit.
        account_id: AccountId,
        /// Amount in USDT: positive, at most 1e15, at most 8 decimals.
        amount: Decimal,
    },
    /// Place an order; business rejections are recorded as `OrderRejected`.
    PlaceOrder(PlaceOrder),
    /// Cancel an open order of `account_id`.
    CancelOrder {
        /// The account that owns the order.
        account_id: AccountId,
        /// The order to cancel.
        order_id: OrderId,
    },
    /// Cancel every open order of an account in one market (a trader's "cancel all"), decided
    /// against the engine's own book, so an order placed just before is cancelled too. No
    /// open order is not an error: nothing is written.
    CancelAllOrders {
        /// The account.
        account_id: AccountId,
        /// The market.
        symbol: Symbol,
    },
    /// Change the leverage of the account's open position in `symbol`.
    ChangeLeverage {
        /// The trader account holding the position.
        account_id: AccountId,
        /// The position's market.
        symbol: Symbol,
        /// New leverage, at least 1 and allowed by the tier for the position's notional.
        leverage: u32,
    },
    /// Move isolated margin: a positive amount adds, a negative one removes.
    AdjustMargin {
        /// The trader account holding the isolated position.
        account_id: AccountId,
        /// The position's market.
        symbol: Symbol,
        /// Margin in USDT: positive adds, negative removes.
        amount: Decimal,
    },
    /// Set a market's mark price (admin or price feed); liquidation checks follow.
    SetMarkPrice {
        /// The market.
        symbol: Symbol,
        /// New mark price in USDT: positive, at most 1e9, a multiple of the tick size.
        price: Decimal,
    },
    /// Settle funding at `rate` and the current mark price.
    SettleFunding {
        /// The market.
        symbol: Symbol,
        /// Funding rate: `|rate|` < 1, at most 8 decimals; positive: longs pay shorts.
        rate: Decimal,
    },
    /// Record an admin's correction of an earlier event of an order.
    CorrectOrder {
        /// The order to correct.
        order_id: OrderId,
        /// The event being corrected; the host checks it is the event at `corrected_version`.
        corrected_event_id: EventId,
        /// Version, in the order's stream, of the event being corrected.
        corrected_version: u64,
        /// The fields to correct (only `clientOrderId` and `note`).
        corrections: Vec<FieldCorrection>,
        /// Why the correction is made (must not be blank).
        reason: String,
        /// The admin making the correction.
        corrected_by: UserId,
    },
}

impl Command {
    /// The command's name, as its `command` tag on the wire (`PlaceOrder`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Genesis { .. } => "Genesis",
            Command::CreateAccount { .. } => "CreateAccount",
            Command::Deposit { .. } => "Deposit",
            Command::Withdraw { .. } => "Withdraw",
            Command::PlaceOrder(_) => "PlaceOrder",
            Command::CancelOrder { .. } => "CancelOrder",
            Command::CancelAllOrders { .. } => "CancelAllOrders",
            Command::ChangeLeverage { .. } => "ChangeLeverage",
            Command::AdjustMargin { .. } => "AdjustMargin",
            Command::SetMarkPrice { .. } => "SetMarkPrice",
            Command::SettleFunding { .. } => "SettleFunding",
            Command::CorrectOrder { .. } => "CorrectOrder",
        }
    }
}

/// What a command runs with besides itself: the time and who asked. The core never reads a
/// clock; hosts pass `now`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandContext {
    /// Time the command is decided at; every event it produces carries it.
    pub now: Timestamp,
    /// Who asked; causation and correlation ids default to the command's id.
    #[serde(default)]
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Command::name` (a metrics label) is the command's `command` tag on the wire, for
    /// every kind of command.
    #[test]
    fn names_are_the_wire_tags() {
        let account_id = AccountId::derive(1);
        let symbol: Symbol = "BTCUSDT".parse().expect("a symbol");
        let placed = crate::workload::Setup::new(2, 4, 1)
            .mixed_workload(200, 2)
            .into_iter()
            .find(|c| matches!(c, Command::PlaceOrder(_)))
            .expect("the workload places orders");
        let commands = [
            Command::Genesis { markets: crate::market::spec::default_markets() },
            Command::CreateAccount { user_id: UserId::derive(1) },
            Command::Deposit { account_id, amount: Decimal::ONE },
            Command::Withdraw { account_id, amount: Decimal::ONE },
            placed,
            Command::CancelOrder { account_id, order_id: OrderId::derive(1) },
            Command::CancelAllOrders { account_id, symbol },
            Command::ChangeLeverage { account_id, symbol, leverage: 10 },
            Command::AdjustMargin { account_id, symbol, amount: Decimal::ONE },
            Command::SetMarkPrice { symbol, price: Decimal::ONE },
            Command::SettleFunding { symbol, rate: Decimal::ONE },
            Command::CorrectOrder {
                order_id: OrderId::derive(1),
                corrected_event_id: EventId::derive(1),
                corrected_version: 1,
                corrections: Vec::new(),
                reason: "a test".into(),
                corrected_by: UserId::derive(1),
            },
        ];
        let mut names = std::collections::BTreeSet::new();
        for command in &commands {
            let wire = serde_json::to_value(command).expect("serializes");
            assert_eq!(wire["command"], command.name(), "{command:?}");
            names.insert(command.name());
        }
        assert_eq!(names.len(), commands.len(), "every kind, once");
    }
}
