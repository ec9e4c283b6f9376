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
    pub account_id: AccountId,
    pub user_id: UserId,
    pub kind: AccountKind,
}

/// Money came in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceDeposited {
    pub account_id: AccountId,
    pub amount: Decimal,
}

/// Money went out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceWithdrawn {
    pub account_id: AccountId,
    pub amount: Decimal,
}

/// Part of the balance was reserved for an open order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceLocked {
    pub account_id: AccountId,
    pub order_id: OrderId,
    pub amount: Decimal,
}

/// Part of an order's reservation was released (a fill's share, or the rest at its end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceUnlocked {
    pub account_id: AccountId,
    pub order_id: OrderId,
    pub amount: Decimal,
}

/// A trading fee was taken from this account (the fee account records `FeeReceived`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeCharged {
    pub account_id: AccountId,
    pub order_id: OrderId,
    pub trade_id: TradeId,
    pub amount: Decimal,
    pub rate: Decimal,
}

/// The fee account received a fee or a rounding residue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeReceived {
    pub account_id: AccountId,
    pub amount: Decimal,
    pub source: FeeSource,
    pub from_account_id: Option<AccountId>,
    pub trade_id: Option<TradeId>,
}

/// Realized profit (positive) or loss (negative) moved into or out of the balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PnlRealized {
    pub account_id: AccountId,
    pub position_id: PositionId,
    pub symbol: Symbol,
    pub amount: Decimal,
    pub source: PnlSource,
    pub trade_id: Option<TradeId>,
}

/// A funding payment this account made for one position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingPaid {
    pub account_id: AccountId,
    pub position_id: PositionId,
    pub symbol: Symbol,
    pub amount: Decimal,
    pub rate: Decimal,
    pub mark_price: Decimal,
}

/// A funding payment this account received for one position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingReceived {
    pub account_id: AccountId,
    pub position_id: PositionId,
    pub symbol: Symbol,
    pub amount: Decimal,
    pub rate: Decimal,
    pub mark_price: Decimal,
}

/// The insurance account settled a liquidation: a positive amount is the liquidation fee it
/// kept, a negative one the deficit it covered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiquidationSettled {
    pub account_id: AccountId,
    pub liquidated_account_id: AccountId,
    pub symbol: Symbol,
    pub amount: Decimal,
}

/// The insurance account paid funding that payers could not (their free balance ran out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingShortfallCovered {
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub amount: Decimal,
}
