//! Order placement: the rejection checks in precedence order, the lock, and price-time
//! priority matching with self-trade prevention, fees and position changes.

use super::commands::Ending;
use super::{Batch, Exchange, Exposure, Outcome};
use crate::account::events::{BalanceLocked, BalanceUnlocked, FeeCharged, FeeReceived, PnlRealized};
use crate::command::PlaceOrder;
use crate::engine::book::{crosses, Book};
use crate::error::CommandError;
use crate::event::Event;
use crate::ids::{AccountId, OrderId, PositionId, TradeId, FEE_ACCOUNT};
use crate::num::{is_multiple_of, round_down, round_up};
use crate::order::decide as order_decide;
use crate::order::events::{OrderMatched, OrderPartiallyFilled, OrderPlaced, OrderRejected};
use crate::position::decide::{plan_fill, FillPlan};
use crate::position::events::{PositionClosed, PositionDecreased, PositionIncreased, PositionOpened};
use crate::symbol::Symbol;
use crate::types::{
    CancelReason, FeeSource, MarginMode, OrderStatus, OrderType, PnlSource, RejectCode, Side, StpMode, TimeInForce,
};
use rust_decimal::Decimal;

/// One side of a fill, planned before anything is written.
#[derive(Clone, Copy, Debug)]
struct Leg {
    order_id: OrderId,
    account_id: AccountId,
    side: Side,
    fee: Decimal,
    fee_rate: Decimal,
    lock_release: Decimal,
    plan: FillPlan,
    leverage: u32,
    margin_mode: MarginMode,
}

/// Where a position change came from, for its events.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChangeSource {
    pub order_id: Option<OrderId>,
    pub trade_id: Option<TradeId>,
    pub pnl_source: PnlSource,
}

/// The leverage an order trades at: the open position's when it adds to it on the same side,
/// the order's own otherwise.
fn effective_leverage(order: &PlaceOrder, position: Option<&crate::position::PositionState>) -> u32 {
    match position {
        Some(p) if p.is_open() && p.side == order.side => p.leverage,
        _ => order.leverage,
    }
}

impl Exchange {
    pub(crate) fn place_order(&mut self, order: &PlaceOrder, batch: &mut Batch<'_>) -> Result<Outcome, CommandError> {
        order_decide::check_shape(order)?;
        let user_id = self.trader_account(order.account_id)?.user_id;
        self.market_or_err(order.symbol)?;
        let order_id = OrderId::derive(self.counters.orders);
        let lock = match self.check_placement(order) {
            Ok(lock) => lock,
            Err(reason) => return Ok(self.reject(order, order_id, user_id, reason, batch)),
        };
        // A FOK order fills completely or not at all: it is matched under a savepoint and,
        // should a fill-by-fill check stop it short, rolled back and rejected.
        let fill_or_kill = order.time_in_force == TimeInForce::Fok;
        if fill_or_kill {
            self.open_savepoint(order.symbol, batch);
        }
        let placed = OrderPlaced {
            order_id,
            user_id,
            account_id: order.account_id,
            symbol: order.symbol,
            side: order.side,
            order_type: order.order_type,
            price: order.price,
            quantity: order.quantity,
            leverage: order.leverage,
            margin_mode: order.margin_mode,
            time_in_force: order.time_in_force,
            is_reduce_only: order.reduce_only,
            is_post_only: order.post_only,
            stp_mode: order.stp_mode,
            client_order_id: order.client_order_id.clone(),
        };
        self.emit(batch, Event::OrderPlaced(placed));
        if !lock.is_zero() {
            let account_id = order.account_id;
            self.emit(batch, Event::BalanceLocked(BalanceLocked { account_id, order_id, amount: lock }));
        }
        self.match_incoming(order_id, batch);
        if fill_or_kill {
            if self.orders[&order_id].status != OrderStatus::Filled {
                self.rollback(batch);
                return Ok(self.reject(order, order_id, user_id, RejectCode::FokNotFillable, batch));
            }
            self.release_savepoint(batch);
        }
        Ok(Outcome::Accepted)
    }

    /// Records a business rejection: `OrderRejected` is the command's only event.
    fn reject(
        &mut self,
        order: &PlaceOrder,
        order_id: OrderId,
        user_id: crate::ids::UserId,
        reason: RejectCode,
        batch: &mut Batch<'_>,
    ) -> Outcome {
        let rejected = OrderRejected {
            order_id,
            user_id,
            account_id: order.account_id,
            symbol: order.symbol,
            side: order.side,
            order_type: order.order_type,
            price: order.price,
            quantity: order.quantity,
            reason,
            client_order_id: order.client_order_id.clone(),
        };
        self.emit(batch, Event::OrderRejected(rejected));
        Outcome::Rejected(reason)
    }

    /// The business rules of DOMAIN.md in precedence order; on success, the amount to lock.
    fn check_placement(&self, order: &PlaceOrder) -> Result<Decimal, RejectCode> {
        let spec = &self.markets[&order.symbol].spec;
        let book = &self.books[&order.symbol];
        let position = self.position_of(order.account_id, order.symbol).filter(|p| p.is_open());
        let opposite = order.side.opposite();
        let (q, limit) = (order.quantity, order.price);
        if limit.is_some_and(|price| !is_multiple_of(price, spec.tick_size)) {
            return Err(RejectCode::InvalidPriceTick);
        }
        if !is_multiple_of(q, spec.step_size) || q < spec.min_qty {
            return Err(RejectCode::InvalidQuantityStep);
        }
        let reference_price = limit.or_else(|| book.best_price(opposite));
        if reference_price.is_some_and(|price| price * q < spec.min_notional) {
            return Err(RejectCode::BelowMinNotional);
        }
        let lock_price = limit.or_else(|| self.worst_price_for(book, opposite, q));
        let size_after = match position {
            Some(p) if p.side == order.side => p.size + q,
            Some(p) => (p.size - q).abs(),
            None => q,
        };
        // Adding to an open position on the same side trades at the position's leverage; both
        // it and the order's own must be allowed for the notional after the order.
        let leverage = effective_leverage(order, position);
        let max_leverage = lock_price.map_or(spec.max_leverage, |price| spec.max_leverage_for(size_after * price));
        if leverage.max(order.leverage) > max_leverage {
            return Err(RejectCode::LeverageTooHigh);
        }
        if position.is_some_and(|p| p.margin_mode != order.margin_mode) {
            return Err(RejectCode::MarginModeMismatch);
        }
        if order.reduce_only {
            let reducible = position.filter(|p| p.side != order.side).map_or(Decimal::ZERO, |p| p.size);
            if reducible.is_zero() || (order.order_type == OrderType::Limit && q > reducible) {
                return Err(RejectCode::ReduceOnlyRejected);
            }
        }
        if order.post_only {
            let would_take = match limit {
                None => true,
                Some(price) => book.best_price(opposite).is_some_and(|best| crosses(order.side, Some(price), best)),
            };
            if would_take {
                return Err(RejectCode::PostOnlyWouldTake);
            }
        }
        if order.time_in_force == TimeInForce::Fok && !self.fok_fillable(order, book) {
            return Err(RejectCode::FokNotFillable);
        }
        let lock = match (order.reduce_only, lock_price) {
            (false, Some(price)) => {
                let notional = q * price;
                round_up(notional / Decimal::from(leverage) + notional * spec.taker_fee_rate)
            }
            _ => Decimal::ZERO,
        };
        // An order that locks nothing (reduce-only) is never refused for balance: a trader whose
        // available went negative through a market move must still be able to close.
        if !lock.is_zero() && lock > self.available(order.account_id) {
            return Err(RejectCode::InsufficientBalance);
        }
        Ok(lock)
    }

    /// The worst price a MARKET order of `qty` would reach walking `side` of the book (the last
    /// level when the book holds less than `qty`; `None` for an empty side).
    fn worst_price_for(&self, book: &Book, side: Side, qty: Decimal) -> Option<Decimal> {
        let mut covered = Decimal::ZERO;
        let mut worst = None;
        for (price, ids) in book.levels(side) {
            worst = Some(price);
            covered += ids.iter().map(|id| self.orders[id].remaining).sum::<Decimal>();
            if covered >= qty {
                break;
            }
        }
        worst
    }

    /// Whether a FOK order would fill completely at once against the book as it stands,
    /// honouring self-trade prevention and the caps of reduce-only orders on both sides.
    fn fok_fillable(&self, order: &PlaceOrder, book: &Book) -> bool {
        let mut needed = order.quantity;
        if order.reduce_only && self.reducible(order.account_id, order.symbol, order.side) < needed {
            return false;
        }
        // What reduce-only makers of each account can still take: fills lower it as they go.
        let mut reducible_left: std::collections::BTreeMap<AccountId, Decimal> = std::collections::BTreeMap::new();
        for (price, ids) in book.levels(order.side.opposite()) {
            if !crosses(order.side, order.price, price) {
                return false;
            }
            for id in ids {
                let maker = &self.orders[id];
                if maker.account_id == order.account_id {
                    if order.stp_mode == StpMode::ExpireMaker {
                        continue;
                    }
                    return false;
                }
                let mut offered = maker.remaining;
                if maker.is_reduce_only {
                    let left = reducible_left
                        .entry(maker.account_id)
                        .or_insert_with(|| self.reducible(maker.account_id, maker.symbol, maker.side));
                    offered = offered.min(*left);
                    *left -= offered;
                }
                needed -= offered.min(needed);
                if needed.is_zero() {
                    return true;
                }
            }
        }
        false
    }

    /// How much an order on `side` can reduce the account's position (0 if none is opposite).
    fn reducible(&self, account_id: AccountId, symbol: Symbol, side: Side) -> Decimal {
        self.position_of(account_id, symbol).filter(|p| p.is_open() && p.side != side).map_or(Decimal::ZERO, |p| p.size)
    }

    /// Matches an incoming order, then rests, fills or expires it.
    fn match_incoming(&mut self, taker_id: OrderId, batch: &mut Batch<'_>) {
        let ended_in_loop = self.take_liquidity(taker_id, batch);
        let taker = &self.orders[&taker_id];
        if ended_in_loop || !taker.is_open() {
            return;
        }
        if taker.remaining.is_zero() {
            self.end_order(taker_id, Ending::Filled, batch);
        } else if taker.order_type == OrderType::Limit && taker.time_in_force == TimeInForce::Gtc {
            if !taker.executed_qty.is_zero() {
                let (executed_qty, remaining) = (taker.executed_qty, taker.remaining);
                let event = OrderPartiallyFilled { order_id: taker_id, executed_qty, remaining };
                self.emit(batch, Event::OrderPartiallyFilled(event));
            }
        } else {
            self.end_order(taker_id, Ending::Expired, batch);
        }
    }

    /// The matching loop; returns true when the taker was ended inside it.
    fn take_liquidity(&mut self, taker_id: OrderId, batch: &mut Batch<'_>) -> bool {
        let taker = &self.orders[&taker_id];
        let (symbol, side, account_id) = (taker.symbol, taker.side, taker.account_id);
        let limit = if taker.order_type == OrderType::Limit { taker.price } else { None };
        let (stp_mode, reduce_only) = (taker.stp_mode, taker.is_reduce_only);
        let mut partial_maker = None;
        let taker_ended = loop {
            let taker_remaining = self.orders[&taker_id].remaining;
            if taker_remaining.is_zero() {
                break false;
            }
            let Some((level_price, maker_id)) = self.books[&symbol].best(side.opposite()) else { break false };
            if !crosses(side, limit, level_price) {
                break false;
            }
            let maker = &self.orders[&maker_id];
            // A fill is at the resting order's own price (the level's price may be written
            // with another scale).
            let price = maker.price.unwrap_or(level_price);
            if maker.account_id == account_id {
                let cancel = Ending::Cancelled(CancelReason::SelfTrade);
                match stp_mode {
                    StpMode::ExpireTaker => {
                        self.end_order(taker_id, cancel, batch);
                        break true;
                    }
                    StpMode::ExpireMaker => {
                        self.end_order(maker_id, cancel, batch);
                        continue;
                    }
                    StpMode::ExpireBoth => {
                        self.end_order(maker_id, cancel, batch);
                        self.end_order(taker_id, cancel, batch);
                        break true;
                    }
                }
            }
            let mut qty = taker_remaining.min(maker.remaining);
            if maker.is_reduce_only {
                let cap = self.reducible(maker.account_id, symbol, maker.side);
                if cap.is_zero() {
                    self.end_order(maker_id, Ending::Expired, batch);
                    continue;
                }
                qty = qty.min(cap);
            }
            if reduce_only {
                let cap = self.reducible(account_id, symbol, side);
                if cap.is_zero() {
                    self.end_order(taker_id, Ending::Expired, batch);
                    break true;
                }
                qty = qty.min(cap);
            }
            let maker_leg = self.plan_leg(maker_id, qty, price, true);
            if !self.affordable(&maker_leg, symbol, price) {
                self.end_order(maker_id, Ending::Cancelled(CancelReason::InsufficientBalance), batch);
                continue;
            }
            let taker_leg = self.plan_leg(taker_id, qty, price, false);
            if !self.affordable(&taker_leg, symbol, price) {
                self.end_order(taker_id, Ending::Cancelled(CancelReason::InsufficientBalance), batch);
                break true;
            }
            self.fill(symbol, (taker_leg, maker_leg), qty, price, batch);
            let maker = &self.orders[&maker_id];
            if maker.remaining.is_zero() {
                self.end_order(maker_id, Ending::Filled, batch);
                partial_maker = None;
            } else {
                partial_maker = Some(maker_id);
            }
        };
        if let Some(maker_id) = partial_maker {
            let maker = &self.orders[&maker_id];
            if maker.is_open() {
                let (executed_qty, remaining) = (maker.executed_qty, maker.remaining);
                let event = OrderPartiallyFilled { order_id: maker_id, executed_qty, remaining };
                self.emit(batch, Event::OrderPartiallyFilled(event));
            }
        }
        taker_ended
    }

    fn plan_leg(&self, order_id: OrderId, qty: Decimal, price: Decimal, is_maker: bool) -> Leg {
        let order = &self.orders[&order_id];
        let spec = &self.markets[&order.symbol].spec;
        let fee_rate = if is_maker { spec.maker_fee_rate } else { spec.taker_fee_rate };
        let lock_release = self.accounts[&order.account_id]
            .locks
            .get(&order_id)
            .map_or(Decimal::ZERO, |lock| round_down(lock.amount * qty / order.quantity).min(lock.remaining));
        let position = self.position_of(order.account_id, order.symbol);
        Leg {
            order_id,
            account_id: order.account_id,
            side: order.side,
            fee: round_up(qty * price * fee_rate),
            fee_rate,
            lock_release,
            plan: plan_fill(position, order.side, qty, price, order.leverage, false),
            leverage: order.leverage,
            margin_mode: order.margin_mode,
        }
    }

    /// The fill guard: after the fill the account's balance stays non-negative and its
    /// available does not go below zero (or, if it already was, does not fall further).
    /// A leg that fails is not filled: its order is cancelled with `INSUFFICIENT_BALANCE`.
    fn affordable(&self, leg: &Leg, symbol: Symbol, price: Decimal) -> bool {
        let account = &self.accounts[&leg.account_id];
        let balance_after = account.balance + leg.plan.realized_pnl - leg.fee;
        let locked_after = account.locked - leg.lock_release;
        let exposure = self.exposure_after(leg, symbol, price);
        let (margins, cross_upnl) = self.margin_totals(leg.account_id, Some((symbol, exposure)));
        let available_after = balance_after - locked_after - margins + cross_upnl.min(Decimal::ZERO);
        balance_after >= Decimal::ZERO
            && (available_after >= Decimal::ZERO || available_after >= self.available(leg.account_id))
    }

    fn exposure_after(&self, leg: &Leg, symbol: Symbol, price: Decimal) -> Exposure {
        let plan = &leg.plan;
        let current = self.position_of(leg.account_id, symbol).filter(|p| p.is_open());
        let mut exposure = match current {
            Some(p) => Exposure {
                side: p.side,
                size: p.size,
                entry_value: p.entry_value,
                margin: p.margin,
                mode: p.margin_mode,
            },
            None => Exposure {
                side: leg.side,
                size: Decimal::ZERO,
                entry_value: Decimal::ZERO,
                margin: Decimal::ZERO,
                mode: leg.margin_mode,
            },
        };
        exposure.size -= plan.close_qty;
        exposure.entry_value -= plan.entry_value_released;
        exposure.margin -= plan.margin_released;
        if plan.open_qty > Decimal::ZERO {
            if !plan.increases {
                let zero = Decimal::ZERO;
                exposure =
                    Exposure { side: leg.side, size: zero, entry_value: zero, margin: zero, mode: leg.margin_mode };
            }
            exposure.size += plan.open_qty;
            exposure.entry_value += plan.open_qty * price;
            exposure.margin += plan.margin_added;
        }
        exposure
    }

    fn fill(
        &mut self,
        symbol: Symbol,
        (taker, maker): (Leg, Leg),
        qty: Decimal,
        price: Decimal,
        batch: &mut Batch<'_>,
    ) {
        let trade_id = TradeId::derive(self.counters.trades);
        for (leg, counterparty, is_maker) in [(&taker, maker.order_id, false), (&maker, taker.order_id, true)] {
            let remaining = self.orders[&leg.order_id].remaining - qty;
            debug_assert!(remaining >= Decimal::ZERO, "a fill never exceeds what is open");
            let matched = OrderMatched {
                order_id: leg.order_id,
                trade_id,
                price,
                quantity: qty,
                remaining,
                fee: leg.fee,
                realized_pnl: leg.plan.realized_pnl,
                is_maker,
                counterparty_order_id: counterparty,
            };
            self.emit(batch, Event::OrderMatched(matched));
        }
        for leg in [taker, maker] {
            self.settle_leg(symbol, &leg, trade_id, qty, price, batch);
        }
    }

    fn settle_leg(
        &mut self,
        symbol: Symbol,
        leg: &Leg,
        trade_id: TradeId,
        qty: Decimal,
        price: Decimal,
        batch: &mut Batch<'_>,
    ) {
        let (account_id, order_id) = (leg.account_id, leg.order_id);
        if !leg.lock_release.is_zero() {
            let amount = leg.lock_release;
            self.emit(batch, Event::BalanceUnlocked(BalanceUnlocked { account_id, order_id, amount }));
        }
        if !leg.fee.is_zero() {
            let (amount, rate) = (leg.fee, leg.fee_rate);
            self.emit(batch, Event::FeeCharged(FeeCharged { account_id, order_id, trade_id, amount, rate }));
            let received = FeeReceived {
                account_id: FEE_ACCOUNT,
                amount,
                source: FeeSource::TradingFee,
                from_account_id: Some(account_id),
                trade_id: Some(trade_id),
            };
            self.emit(batch, Event::FeeReceived(received));
        }
        let source = ChangeSource { order_id: Some(order_id), trade_id: Some(trade_id), pnl_source: PnlSource::Trade };
        let fill = (leg.side, qty, price);
        self.change_position(account_id, symbol, fill, &leg.plan, (leg.leverage, leg.margin_mode), source, batch);
    }

    /// Emits the position events of a planned fill (close, then open, as in a flip) and the
    /// realized PnL.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn change_position(
        &mut self,
        account_id: AccountId,
        symbol: Symbol,
        (side, qty, price): (Side, Decimal, Decimal),
        plan: &FillPlan,
        (leverage, margin_mode): (u32, MarginMode),
        source: ChangeSource,
        batch: &mut Batch<'_>,
    ) {
        debug_assert_eq!(plan.close_qty + plan.open_qty, qty);
        let existing = self.position_of(account_id, symbol).map(|p| (p.position_id, p.size, p.entry_value));
        let position_id = existing.map_or_else(|| PositionId::derive(self.counters.positions), |(id, ..)| id);
        let (size, entry_value) = existing.map_or((Decimal::ZERO, Decimal::ZERO), |(_, size, value)| (size, value));
        let (order_id, trade_id) = (source.order_id, source.trade_id);
        if plan.close_qty > Decimal::ZERO {
            let (quantity, realized_pnl, margin_released) = (plan.close_qty, plan.realized_pnl, plan.margin_released);
            let event = if plan.closes {
                Event::PositionClosed(PositionClosed {
                    position_id,
                    quantity,
                    price,
                    realized_pnl,
                    margin_released,
                    order_id,
                    trade_id,
                })
            } else {
                Event::PositionDecreased(PositionDecreased {
                    position_id,
                    quantity,
                    price,
                    size: size - quantity,
                    realized_pnl,
                    entry_value_released: plan.entry_value_released,
                    margin_released,
                    order_id,
                    trade_id,
                })
            };
            self.emit(batch, event);
        }
        if plan.open_qty > Decimal::ZERO {
            let quantity = plan.open_qty;
            let event = if plan.increases {
                let new_size = size + quantity;
                let entry_price = ((entry_value + quantity * price) / new_size).round_dp(8).normalize();
                Event::PositionIncreased(PositionIncreased {
                    position_id,
                    quantity,
                    price,
                    size: new_size,
                    entry_price,
                    margin_added: plan.margin_added,
                    order_id,
                    trade_id,
                })
            } else {
                Event::PositionOpened(PositionOpened {
                    position_id,
                    account_id,
                    symbol,
                    side,
                    size: quantity,
                    entry_price: price,
                    margin: plan.margin_added,
                    leverage,
                    margin_mode,
                    order_id,
                    trade_id,
                })
            };
            self.emit(batch, event);
        }
        if !plan.realized_pnl.is_zero() {
            let event = PnlRealized {
                account_id,
                position_id,
                symbol,
                amount: plan.realized_pnl,
                source: source.pnl_source,
                trade_id,
            };
            self.emit(batch, Event::PnlRealized(event));
        }
    }
}
