//! Read-only questions about a position: entry price, PnL at a mark, maintenance margin and
//! liquidation price (DOMAIN.md, "Mark price, liquidation, funding").

use crate::market::spec::MarketSpec;
use crate::position::PositionState;
use crate::symbol::Symbol;
use crate::types::MarginMode;
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

/// What [`liquidation_inputs`] needs to know of a market: its specification and mark price.
pub type MarketView<'a> = (&'a MarketSpec, Option<Decimal>);

/// The inputs of `position`'s liquidation price: its own margin when ISOLATED; when CROSS,
/// the account's `balance` less its isolated margins, with the maintenance margin and
/// unrealized PnL of its other open cross positions, each valued at
/// [`PositionState::valuation_price`]. `open` are the account's open positions (`position`
/// itself may be among them); `market` looks a market up by symbol.
pub fn liquidation_inputs<'a>(
    position: &PositionState,
    balance: Decimal,
    open: impl IntoIterator<Item = &'a PositionState>,
    market: impl Fn(Symbol) -> Option<MarketView<'a>>,
) -> LiquidationInputs {
    if position.margin_mode == MarginMode::Isolated {
        return LiquidationInputs { wallet_balance: position.margin, ..LiquidationInputs::default() };
    }
    let mut inputs = LiquidationInputs { wallet_balance: balance, ..LiquidationInputs::default() };
    for other in open.into_iter().filter(|p| p.position_id != position.position_id) {
        match other.margin_mode {
            MarginMode::Isolated => inputs.wallet_balance -= other.margin,
            MarginMode::Cross => {
                let Some((spec, mark)) = market(other.symbol) else { continue };
                let price = other.valuation_price(mark);
                inputs.other_maintenance += other.maintenance_margin(spec, price);
                inputs.other_upnl += other.unrealized_pnl(price);
            }
        }
    }
    inputs
}

impl PositionState {
    /// The price an open position is valued at for margin: the market's `mark`, or the exact
    /// entry price while the market has none.
    pub fn valuation_price(&self, mark: Option<Decimal>) -> Decimal {
        debug_assert!(self.is_open(), "only open positions are valued");
        mark.unwrap_or_else(|| self.entry_value / self.size)
    }

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
