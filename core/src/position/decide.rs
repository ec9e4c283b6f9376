//! Decisions on a position: what a fill does to it (open, increase, decrease, close, flip),
//! leverage changes and isolated-margin adjustments.

use crate::error::{CommandError, ErrorCode};
use crate::market::spec::MarketSpec;
use crate::num::{amount_in_range, round_down, round_up};
use crate::position::events::{LeverageChanged, MarginAdded, MarginRemoved};
use crate::position::PositionState;
use crate::types::{MarginMode, Side};
use rust_decimal::{Decimal, RoundingStrategy};

/// What one fill does to a position, computed before any event is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FillPlan {
    /// Quantity that reduces the existing opposite position.
    pub close_qty: Decimal,
    /// PnL realized on `close_qty` (signed, 8 dp).
    pub realized_pnl: Decimal,
    /// Entry value removed with `close_qty`.
    pub entry_value_released: Decimal,
    /// Margin released with `close_qty`.
    pub margin_released: Decimal,
    /// True when the existing position goes to zero.
    pub closes: bool,
    /// Quantity that opens or increases a position on the fill's side.
    pub open_qty: Decimal,
    /// Margin reserved for `open_qty`.
    pub margin_added: Decimal,
    /// True when `open_qty` adds to an existing position on the same side.
    pub increases: bool,
}

/// Plans a fill of `qty` at `price` on `side` against `position` (`None`: never opened).
/// `leverage` applies to a position opened from flat; an increase uses the position's own
/// leverage. `margin_free` is for the insurance account, which holds no margin.
///
/// Entry value released on a partial close is rounded so that the realized PnL handed to the
/// user is never more than exact (up for a long, down for a short); the residue stays in the
/// remaining entry value, so money is conserved exactly.
pub fn plan_fill(
    position: Option<&PositionState>,
    side: Side,
    qty: Decimal,
    price: Decimal,
    leverage: u32,
    margin_free: bool,
) -> FillPlan {
    debug_assert!(qty > Decimal::ZERO && price > Decimal::ZERO);
    let mut plan = FillPlan::default();
    let open_position = position.filter(|p| p.is_open());
    let mut open_leverage = leverage;
    if let Some(pos) = open_position {
        if pos.side == side {
            plan.increases = true;
            open_leverage = pos.leverage;
        } else {
            plan.close_qty = qty.min(pos.size);
            plan.closes = plan.close_qty == pos.size;
            let pos_sign = pos.side.sign();
            if plan.closes {
                plan.entry_value_released = pos.entry_value;
                plan.margin_released = pos.margin;
            } else {
                let exact = pos.entry_value * plan.close_qty / pos.size;
                let strategy = match pos.side {
                    Side::Buy => RoundingStrategy::ToPositiveInfinity,
                    Side::Sell => RoundingStrategy::ToNegativeInfinity,
                };
                plan.entry_value_released = exact.round_dp_with_strategy(8, strategy);
                plan.margin_released = round_down(pos.margin * plan.close_qty / pos.size);
            }
            plan.realized_pnl = pos_sign * (plan.close_qty * price - plan.entry_value_released);
        }
    }
    plan.open_qty = qty - plan.close_qty;
    if plan.open_qty > Decimal::ZERO && !margin_free {
        plan.margin_added = round_up(plan.open_qty * price / Decimal::from(open_leverage.max(1)));
    }
    plan
}

fn require_open(position: Option<&PositionState>) -> Result<&PositionState, CommandError> {
    position
        .filter(|p| p.is_open())
        .ok_or_else(|| CommandError::new(ErrorCode::NoOpenPosition, "no open position in this symbol"))
}

/// Changes the leverage of an open position. The tier must allow it for the current
/// notional (`size × mark`, at entry while no mark is set); the margin becomes
/// `size × EP / leverage`; a rise must fit in `available`; and an ISOLATED position must stay
/// above its maintenance margin at the mark (a fall must not free margin the position needs).
pub fn change_leverage(
    position: Option<&PositionState>,
    spec: &MarketSpec,
    leverage: u32,
    available: Decimal,
    mark: Option<Decimal>,
) -> Result<LeverageChanged, CommandError> {
    let pos = require_open(position)?;
    if leverage == 0 {
        return Err(CommandError::new(ErrorCode::InvalidArgument, "leverage must be at least 1"));
    }
    let notional = mark.map_or(pos.entry_value, |m| pos.size * m);
    let max = spec.max_leverage_for(notional);
    if leverage > max {
        return Err(CommandError::new(
            ErrorCode::LeverageTooHigh,
            format!("leverage {leverage} above the tier maximum {max} for this position"),
        ));
    }
    let margin = round_up(pos.entry_value / Decimal::from(leverage));
    let rise = margin - pos.margin;
    if rise > available {
        return Err(CommandError::new(
            ErrorCode::InsufficientBalance,
            format!("the margin rises by {rise} but only {available} is available"),
        ));
    }
    if pos.margin_mode == MarginMode::Isolated {
        let mark = pos.valuation_price(mark);
        let (equity, maintenance) = (margin + pos.unrealized_pnl(mark), pos.maintenance_margin(spec, mark));
        if equity <= maintenance {
            return Err(CommandError::new(
                ErrorCode::LeverageTooHigh,
                format!("at leverage {leverage} the margin {margin} plus PnL is {equity}, not above the maintenance margin {maintenance}"),
            ));
        }
    }
    Ok(LeverageChanged {
        position_id: pos.position_id,
        account_id: pos.account_id,
        symbol: pos.symbol,
        leverage,
        margin,
    })
}

/// Margin added to an isolated position (at most `available`).
pub fn add_margin(
    position: Option<&PositionState>,
    amount: Decimal,
    available: Decimal,
) -> Result<MarginAdded, CommandError> {
    let pos = require_isolated(position, amount)?;
    if amount > available {
        return Err(CommandError::new(
            ErrorCode::InsufficientBalance,
            format!("adding {amount} exceeds the available {available}"),
        ));
    }
    Ok(MarginAdded { position_id: pos.position_id, amount, margin: pos.margin + amount })
}

/// Margin removed from an isolated position, leaving at least `size × mark / leverage` and
/// keeping margin + PnL at the mark above the maintenance margin.
pub fn remove_margin(
    position: Option<&PositionState>,
    spec: &MarketSpec,
    amount: Decimal,
    mark: Decimal,
) -> Result<MarginRemoved, CommandError> {
    let pos = require_isolated(position, amount)?;
    let margin = pos.margin - amount;
    let floor = round_up(pos.size * mark / Decimal::from(pos.leverage.max(1)));
    if margin < floor {
        return Err(CommandError::new(
            ErrorCode::MarginRemovalTooLarge,
            format!("removing {amount} would leave {margin} below the required {floor}"),
        ));
    }
    let (equity, maintenance) = (margin + pos.unrealized_pnl(mark), pos.maintenance_margin(spec, mark));
    if equity <= maintenance {
        return Err(CommandError::new(
            ErrorCode::MarginRemovalTooLarge,
            format!("removing {amount} would leave margin plus PnL {equity} at or below the maintenance margin {maintenance}"),
        ));
    }
    Ok(MarginRemoved { position_id: pos.position_id, amount, margin })
}

fn require_isolated(position: Option<&PositionState>, amount: Decimal) -> Result<&PositionState, CommandError> {
    if !amount_in_range(amount) {
        return Err(CommandError::new(ErrorCode::AmountOutOfRange, format!("invalid margin amount {amount}")));
    }
    let pos = require_open(position)?;
    if pos.margin_mode != MarginMode::Isolated {
        return Err(CommandError::new(ErrorCode::NotIsolated, "margin can be moved only on ISOLATED positions"));
    }
    Ok(pos)
}
