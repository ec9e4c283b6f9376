//! Events of the Market stream (aggregate id: the symbol).

use crate::market::spec::MarketSpec;
use crate::symbol::Symbol;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A market was opened for trading with this specification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketListed {
    pub spec: MarketSpec,
}

/// A new mark price (from an admin or a price feed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkPriceSet {
    pub symbol: Symbol,
    pub mark_price: Decimal,
}

/// Funding was settled at `rate` and the current mark; the payments follow on the accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingSettled {
    pub symbol: Symbol,
    pub rate: Decimal,
    pub mark_price: Decimal,
    pub total_paid: Decimal,
    pub total_received: Decimal,
}
