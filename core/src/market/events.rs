//! Events of the Market stream (aggregate id: the symbol).

use crate::market::spec::MarketSpec;
use crate::symbol::Symbol;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A market was opened for trading with this specification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketListed {
    /// The market's specification.
    pub spec: MarketSpec,
}

/// A new mark price (from an admin or a price feed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkPriceSet {
    /// The market.
    pub symbol: Symbol,
    /// New mark price in USDT.
    pub mark_price: Decimal,
}

/// Funding was settled at `rate` and the current mark; the payments follow on the accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingSettled {
    /// The market.
    pub symbol: Symbol,
    /// Funding rate (signed; positive: longs pay, shorts receive).
    pub rate: Decimal,
    /// Mark price the payments were computed at, in USDT.
    pub mark_price: Decimal,
    /// Σ `FundingPaid` amounts of this settlement, in USDT.
    pub total_paid: Decimal,
    /// Σ `FundingReceived` amounts of this settlement, in USDT.
    pub total_received: Decimal,
}
