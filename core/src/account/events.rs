//! Events of the Account stream (aggregate id: the account id).

use crate::ids::{AccountId, OrderId, PositionId, TradeId, UserId};
use crate::symbol::Symbol;
use crate::types::{AccountKind, FeeSource, PnlSource};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An account was opened for a user (or a system account at genesis).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCreated {
    /// The new account.
    pub account_id: AccountId,
    /// The user who owns it (the system user for the fee and insurance accounts).
    pub user_id: UserId,
    /// Trader, fee or insurance account.
    pub kind: AccountKind,
}

/// Money came in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceDeposited {
    /// The account credited.
    pub account_id: AccountId,
    /// Amount added to the balance, in USDT (positive, at most 8 decimals).
    pub amount: Decimal,
}

/// Money went out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceWithdrawn {
    /// The account debited.
    pub account_id: AccountId,
    /// Amount taken from the balance, in USDT (at most what was available).
    pub amount: Decimal,
}

/// Part of the balance was reserved for an open order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceLocked {
    /// The account whose balance is reserved.
    pub account_id: AccountId,
    /// The order the reservation is for.
    pub order_id: OrderId,
    /// Amount locked, in USDT: `q × lockPrice × (1/leverage + takerFeeRate)`, rounded up.
    pub amount: Decimal,
}

/// Part of an order's reservation was released (a fill's share, or the rest at its end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceUnlocked {
    /// The account whose reservation is released.
    pub account_id: AccountId,
    /// The order the reservation was for.
    pub order_id: OrderId,
    /// Amount released, in USDT: a fill's share (rounded down) or all still locked when the order ends.
    pub amount: Decimal,
}

/// A trading fee was taken from this account (the fee account records `FeeReceived`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeCharged {
    /// The account that paid the fee.
    pub account_id: AccountId,
    /// The order whose fill the fee is for.
    pub order_id: OrderId,
    /// The trade (fill) the fee is for.
    pub trade_id: TradeId,
    /// Fee paid, in USDT: `fill quantity × fill price × rate`, rounded up at the 8th decimal.
    pub amount: Decimal,
    /// Fee rate applied: the market's maker rate for the resting order, taker rate for the incoming one.
    pub rate: Decimal,
}

/// The fee account received a fee or a rounding residue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeReceived {
    /// The fee account.
    pub account_id: AccountId,
    /// Amount received, in USDT.
    pub amount: Decimal,
    /// A trading fee, or the residue of a funding settlement.
    pub source: FeeSource,
    /// The account that paid the trading fee; `null` for a funding residue.
    pub from_account_id: Option<AccountId>,
    /// The trade the fee was charged on; `null` for a funding residue.
    pub trade_id: Option<TradeId>,
}

/// Realized profit (positive) or loss (negative) moved into or out of the balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PnlRealized {
    /// The account whose balance changes.
    pub account_id: AccountId,
    /// The position the PnL was realized on.
    pub position_id: PositionId,
    /// The position's market.
    pub symbol: Symbol,
    /// Realized PnL in USDT (signed); for a liquidated account, minus the margin at stake.
    pub amount: Decimal,
    /// A trade, or a liquidation at the mark price.
    pub source: PnlSource,
    /// The trade that realized it; `null` for a liquidation.
    pub trade_id: Option<TradeId>,
}

/// A funding payment this account made for one position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingPaid {
    /// The paying account.
    pub account_id: AccountId,
    /// The position funding is paid for.
    pub position_id: PositionId,
    /// The position's market.
    pub symbol: Symbol,
    /// Amount paid, in USDT: `q × MP × |rate|` rounded up, capped at the account's free wallet.
    pub amount: Decimal,
    /// Funding rate of the settlement (signed; positive: longs pay).
    pub rate: Decimal,
    /// Mark price the payment was computed at, in USDT.
    pub mark_price: Decimal,
}

/// A funding payment this account received for one position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingReceived {
    /// The receiving account.
    pub account_id: AccountId,
    /// The position funding is received for.
    pub position_id: PositionId,
    /// The position's market.
    pub symbol: Symbol,
    /// Amount received, in USDT: `q × MP × |rate|`, rounded down at the 8th decimal.
    pub amount: Decimal,
    /// Funding rate of the settlement (signed; positive: shorts receive).
    pub rate: Decimal,
    /// Mark price the payment was computed at, in USDT.
    pub mark_price: Decimal,
}

/// The insurance account settled a liquidation: a positive amount is the liquidation fee it
/// kept, a negative one the deficit it covered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiquidationSettled {
    /// The insurance account.
    pub account_id: AccountId,
    /// The account whose position was liquidated.
    pub liquidated_account_id: AccountId,
    /// The liquidated position's market.
    pub symbol: Symbol,
    /// Margin at stake + PnL at mark, in USDT: positive is a fee kept, negative a deficit covered.
    pub amount: Decimal,
}

/// The insurance account paid funding that payers could not (their free balance ran out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingShortfallCovered {
    /// The insurance account.
    pub account_id: AccountId,
    /// The market whose funding settlement fell short.
    pub symbol: Symbol,
    /// Funding received minus funding paid in that settlement, in USDT (positive).
    pub amount: Decimal,
}
