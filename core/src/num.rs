//! Money and number rules: 8-decimal amounts, directional rounding, and input bounds.
//!
//! Amounts taken from a user round **up** at the 8th decimal place; amounts given to a user
//! round **down** (DOMAIN.md, "Money and numbers"). Inputs are bounded so that no product or
//! sum the engine forms can overflow `Decimal` (≈ 7.9e28): prices and quantities are at most
//! 1e9 and amounts at most 1e15, so `price × quantity` ≤ 1e18 and sums of any realistic number
//! of amounts stay far below the limit. A value outside the bounds is a rejection, never a panic.

use rust_decimal::{Decimal, RoundingStrategy};

/// Number of decimal places kept for amounts of the settlement asset.
pub const AMOUNT_DP: u32 = 8;

/// Largest price or quantity accepted from a command.
pub const MAX_PRICE_OR_QTY: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Largest amount accepted from a command (deposit, withdrawal, margin).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// Rounds an amount the user pays (fee, margin, lock, funding paid) up at the 8th place.
pub fn round_up(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(AMOUNT_DP, RoundingStrategy::ToPositiveInfinity)
}

/// Rounds an amount the user receives (released lock, funding received) down at the 8th place.
pub fn round_down(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(AMOUNT_DP, RoundingStrategy::ToNegativeInfinity)
}

/// True when `value` is an exact multiple of `step` (`step` > 0).
pub fn is_multiple_of(value: Decimal, step: Decimal) -> bool {
    debug_assert!(step > Decimal::ZERO);
    (value % step).is_zero()
}

/// True when `value` is positive and no larger than [`MAX_PRICE_OR_QTY`].
pub fn price_or_qty_in_range(value: Decimal) -> bool {
    value > Decimal::ZERO && value <= MAX_PRICE_OR_QTY
}

/// True when `value` is positive, no larger than [`MAX_AMOUNT`] and has at most 8 decimals.
pub fn amount_in_range(value: Decimal) -> bool {
    value > Decimal::ZERO && value <= MAX_AMOUNT && value.scale() <= AMOUNT_DP
}

/// `+1` for a positive or zero value, `-1` for a negative one, as a `Decimal`.
pub fn signum(value: Decimal) -> Decimal {
    if value.is_sign_negative() && !value.is_zero() {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn rounding_is_directional() {
        assert_eq!(round_up(d("0.000000001")), d("0.00000001"));
        assert_eq!(round_down(d("0.000000019")), d("0.00000001"));
        assert_eq!(round_up(d("-0.000000019")), d("-0.00000001"));
        assert_eq!(round_down(d("-0.000000011")), d("-0.00000002"));
    }

    #[test]
    fn bounds() {
        assert_eq!(MAX_AMOUNT, d("1000000000000000"));
        assert!(amount_in_range(d("0.00000001")));
        assert!(!amount_in_range(d("0.000000001")));
        assert!(!amount_in_range(d("1000000000000000.1")));
        assert!(price_or_qty_in_range(d("1000000000")));
        assert!(!price_or_qty_in_range(d("0")));
        assert!(is_multiple_of(d("50000.1"), d("0.1")));
        assert!(!is_multiple_of(d("50000.05"), d("0.1")));
    }
}
