//! Market specifications and the maintenance-margin tier table (DOMAIN.md, "Markets").

use crate::num::round_up;
use crate::symbol::Symbol;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One maintenance-margin tier: notional in `[notional_from, notional_to)`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// Lower bound of the tier's notional (inclusive), in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub notional_from: Decimal,
    /// Upper bound of the tier's notional (exclusive), in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub notional_to: Decimal,
    /// Highest leverage allowed for a notional in this tier.
    pub max_leverage: u32,
    /// Maintenance-margin rate.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub mmr: Decimal,
    /// Maintenance amount: `cum_n = from_n × (MMR_n − MMR_{n−1}) + cum_{n−1}`.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub cum: Decimal,
}

/// Everything the rules need to know about one market.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketSpec {
    /// The market's symbol, e.g. `BTCUSDT`.
    pub symbol: Symbol,
    /// Prices are multiples of this.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub tick_size: Decimal,
    /// Quantities are multiples of this.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub step_size: Decimal,
    /// Smallest order quantity.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub min_qty: Decimal,
    /// Smallest `price × quantity` of an order.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub min_notional: Decimal,
    /// Highest leverage of the market (the first tier's).
    pub max_leverage: u32,
    /// Fee rate paid by the resting order of a fill.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub maker_fee_rate: Decimal,
    /// Fee rate paid by the incoming order of a fill.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub taker_fee_rate: Decimal,
    /// Maintenance-margin tiers, ascending and contiguous.
    pub tiers: Vec<Tier>,
}

fn dec(mantissa: i64, scale: u32) -> Decimal {
    Decimal::new(mantissa, scale)
}

/// The default tier table used by both default markets.
pub fn default_tiers() -> Vec<Tier> {
    let rows: [(i64, i64, u32, Decimal); 4] = [
        (0, 50_000, 125, dec(4, 3)),
        (50_000, 250_000, 100, dec(5, 3)),
        (250_000, 1_000_000, 50, dec(1, 2)),
        (1_000_000, 10_000_000, 20, dec(25, 3)),
    ];
    let mut tiers: Vec<Tier> = Vec::with_capacity(rows.len());
    for (from, to, max_leverage, mmr) in rows {
        let from = Decimal::from(from);
        let cum = match tiers.last() {
            Some(prev) => from * (mmr - prev.mmr) + prev.cum,
            None => Decimal::ZERO,
        };
        tiers.push(Tier {
            notional_from: from,
            notional_to: Decimal::from(to),
            max_leverage,
            mmr,
            cum: cum.normalize(),
        });
    }
    tiers
}

/// The default markets: BTCUSDT and ETHUSDT (DOMAIN.md table).
pub fn default_markets() -> Vec<MarketSpec> {
    let market = |symbol: &str, tick: Decimal| MarketSpec {
        symbol: symbol.parse().expect("static symbol is valid"),
        tick_size: tick,
        step_size: dec(1, 3),
        min_qty: dec(1, 3),
        min_notional: Decimal::from(5),
        max_leverage: 125,
        maker_fee_rate: dec(2, 4),
        taker_fee_rate: dec(5, 4),
        tiers: default_tiers(),
    };
    vec![market("BTCUSDT", dec(1, 1)), market("ETHUSDT", dec(1, 2))]
}

impl MarketSpec {
    /// The tier whose range contains `notional` (the last tier beyond the table).
    pub fn tier_for(&self, notional: Decimal) -> &Tier {
        debug_assert!(!self.tiers.is_empty());
        self.tiers
            .iter()
            .find(|tier| notional < tier.notional_to)
            .unwrap_or_else(|| self.tiers.last().expect("a market has at least one tier"))
    }

    /// Maintenance margin for a notional: `notional × MMR − cum`, rounded up.
    pub fn maintenance_margin(&self, notional: Decimal) -> Decimal {
        let tier = self.tier_for(notional);
        round_up(notional * tier.mmr - tier.cum)
    }

    /// Highest leverage allowed for a position of this notional.
    pub fn max_leverage_for(&self, notional: Decimal) -> u32 {
        self.tier_for(notional).max_leverage.min(self.max_leverage)
    }

    /// Checks the spec is usable: positive steps and rates in range, contiguous tiers.
    pub fn validate(&self) -> Result<(), &'static str> {
        let positive = self.tick_size > Decimal::ZERO && self.step_size > Decimal::ZERO;
        let rates = [self.maker_fee_rate, self.taker_fee_rate].iter().all(|r| *r >= Decimal::ZERO && *r < Decimal::ONE);
        let contiguous = self.tiers.windows(2).all(|w| w[0].notional_to == w[1].notional_from);
        let starts_at_zero = self.tiers.first().is_some_and(|t| t.notional_from.is_zero());
        let tiers_sane = self.tiers.iter().all(|t| {
            t.notional_to > t.notional_from && t.max_leverage >= 1 && t.mmr >= Decimal::ZERO && t.mmr < Decimal::ONE
        });
        // Fills realize PnL of quantity x price exactly: that must fit in 8 decimals.
        let precise_enough = self.tick_size.scale() + self.step_size.scale() <= crate::num::AMOUNT_DP;
        match () {
            _ if !positive => Err("tickSize and stepSize must be positive"),
            _ if !precise_enough => Err("tickSize and stepSize together may have at most 8 decimals"),
            _ if self.min_qty <= Decimal::ZERO || self.min_notional < Decimal::ZERO => {
                Err("minQty must be positive and minNotional not negative")
            }
            _ if !rates => Err("fee rates must be in [0, 1)"),
            _ if !(contiguous && starts_at_zero && tiers_sane) => {
                Err("tiers must start at 0, be contiguous, and have leverage >= 1 and MMR in [0, 1)")
            }
            _ if self.max_leverage == 0 => Err("maxLeverage must be at least 1"),
            _ => Ok(()),
        }
    }
}
