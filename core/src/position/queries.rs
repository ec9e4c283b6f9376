//! Read-only questions about a position: entry price, PnL at a mark, maintenance margin and
//! liquidation price (DOMAIN.md, "Mark price, liquidation, funding").

use crate::market::spec::MarketSpec;
use crate::position::PositionState;
use rust_decimal::{Decimal, RoundingStrategy};

/// What the liquidation-price formula needs besides the position itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiquidationInputs {
    /// Wallet backing the position: its margin (isolated) or the cross wallet balance.
    pub wallet_balance: Decimal,
    /// Maintenance margin of the account's other cross positions (0 for isolated).
    pub other_maintenance: Decimal,
    /// Unrealized PnL of the account's other cross positions (0 for isolated).
    pub other_upnl: Decimal,
}

impl PositionState {
    /// True when the position has a size.
    pub fn is_open(&self) -> bool {
        !self.size.is_zero()
    }

    /// Size-weighted average entry price (8 dp), `None` when flat.
    pub fn entry_price(&self) -> Option<Decimal> {
        if self.size.is_zero() {
            None
        } else {
            Some((self.entry_value / self.size).round_dp(8).normalize())
        }
    }

    /// Unrealized PnL at `mark`: `side × (size × mark − entry value)` (exact).
    pub fn unrealized_pnl(&self, mark: Decimal) -> Decimal {
        self.side.sign() * (self.size * mark - self.entry_value)
    }

    /// Maintenance margin at `mark`.
    pub fn maintenance_margin(&self, spec: &MarketSpec, mark: Decimal) -> Decimal {
        spec.maintenance_margin(self.size * mark)
    }

    /// Liquidation price (2 dp), or `None` when the position is flat or cannot be liquidated
    /// at a positive price. Starts from the tier of the position's notional and recomputes once
    /// with the tier of the result when that falls in another tier.
    pub fn liquidation_price(&self, spec: &MarketSpec, inputs: LiquidationInputs) -> Option<Decimal> {
        if self.size.is_zero() {
            return None;
        }
        let side = self.side.sign();
        let solve = |mmr: Decimal, cum: Decimal| -> Option<Decimal> {
            let denominator = self.size * mmr - side * self.size;
            if denominator.is_zero() {
                return None;
            }
            let numerator =
                inputs.wallet_balance - inputs.other_maintenance + inputs.other_upnl + cum - side * self.entry_value;
            numerator.checked_div(denominator)
        };
        let first_tier = spec.tier_for(self.entry_value);
        let mut price = solve(first_tier.mmr, first_tier.cum)?;
        let tier_at_price = spec.tier_for(self.size * price);
        if tier_at_price != first_tier {
            price = solve(tier_at_price.mmr, tier_at_price.cum)?;
        }
        (price > Decimal::ZERO).then(|| price.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }
}
