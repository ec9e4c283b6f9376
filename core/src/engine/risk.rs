//! Mark price, liquidation and funding (DOMAIN.md, "Mark price, liquidation, funding").

use super::commands::Ending;
use super::matching::ChangeSource;
use super::{Batch, Exchange, Outcome};
use crate::account::events::{
    FeeReceived, FundingPaid, FundingReceived, FundingShortfallCovered, LiquidationSettled, PnlRealized,
};
use crate::error::{CommandError, ErrorCode};
use crate::event::Event;
use crate::ids::{AccountId, OrderId, PositionId, FEE_ACCOUNT, INSURANCE_ACCOUNT};
use crate::market::events::{FundingSettled, MarkPriceSet};
use crate::num::{is_multiple_of, price_or_qty_in_range, round_down, round_up};
use crate::position::decide::plan_fill;
use crate::position::events::PositionLiquidated;
use crate::symbol::Symbol;
use crate::types::{CancelReason, FeeSource, MarginMode, PnlSource, Side};
use rust_decimal::Decimal;

impl Exchange {
    pub(crate) fn set_mark_price(
        &mut self,
        symbol: Symbol,
        price: Decimal,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        self.market_or_err(symbol)?;
        let tick = self.markets[&symbol].spec.tick_size;
        if !price_or_qty_in_range(price) || !is_multiple_of(price, tick) {
            return Err(CommandError::new(
                ErrorCode::InvalidArgument,
                format!("mark price {price} must be positive, at most 1e9 and a multiple of the tick {tick}"),
            ));
        }
        self.emit(batch, Event::MarkPriceSet(MarkPriceSet { symbol, mark_price: price }));
        self.run_liquidations(symbol, batch);
        Ok(Outcome::Accepted)
    }

    /// Open positions in `symbol`, in the order they were first opened (a list, because the
    /// caller changes the positions while it walks them).
    fn open_positions_in(&self, symbol: Symbol) -> Vec<PositionId> {
        let ids = self.market_positions.get(&symbol).into_iter().flatten();
        ids.filter(|id| self.positions[*id].is_open()).copied().collect()
    }

    /// Every market's symbol, in order (a list, for loops that change the exchange).
    fn symbols(&self) -> Vec<Symbol> {
        self.markets.keys().copied().collect()
    }

    /// Liquidates every isolated position and cross account in `symbol` that is at or below
    /// its maintenance margin at the current mark.
    pub(crate) fn run_liquidations(&mut self, symbol: Symbol, batch: &mut Batch<'_>) {
        let Some(mark) = self.mark_price(symbol) else { return };
        let spec = self.markets[&symbol].spec.clone();
        let mut cross_accounts: Vec<AccountId> = Vec::new();
        for id in self.open_positions_in(symbol) {
            let p = &self.positions[&id];
            if self.accounts[&p.account_id].is_system() {
                continue;
            }
            match p.margin_mode {
                MarginMode::Isolated => {
                    if p.margin + p.unrealized_pnl(mark) <= p.maintenance_margin(&spec, mark) {
                        self.liquidate_isolated(id, mark, batch);
                    }
                }
                MarginMode::Cross if !cross_accounts.contains(&p.account_id) => cross_accounts.push(p.account_id),
                MarginMode::Cross => {}
            }
        }
        for account_id in cross_accounts {
            let (equity, maintenance) = self.cross_health(account_id);
            if equity <= maintenance {
                self.liquidate_cross(account_id, batch);
            }
        }
    }

    /// `(balance − Σ isolated margins + Σ cross uPnL, Σ cross maintenance margin)`, each
    /// position valued at its market's mark (at entry where no mark is set).
    pub fn cross_health(&self, account_id: AccountId) -> (Decimal, Decimal) {
        let mut equity = self.accounts.get(&account_id).map_or(Decimal::ZERO, |a| a.balance);
        let mut maintenance = Decimal::ZERO;
        for p in self.positions_of(account_id).filter(|p| p.is_open()) {
            match p.margin_mode {
                MarginMode::Isolated => equity -= p.margin,
                MarginMode::Cross => {
                    let mark = p.valuation_price(self.mark_price(p.symbol));
                    equity += p.unrealized_pnl(mark);
                    maintenance += p.maintenance_margin(&self.markets[&p.symbol].spec, mark);
                }
            }
        }
        (equity, maintenance)
    }

    fn cancel_for_liquidation(&mut self, account_id: AccountId, symbol: Symbol, batch: &mut Batch<'_>) {
        let book = &self.books[&symbol];
        let open: Vec<OrderId> = [Side::Buy, Side::Sell]
            .into_iter()
            .flat_map(|side| book.levels(side).flat_map(|(_, ids)| ids.iter().copied()))
            .filter(|id| self.orders[id].account_id == account_id)
            .collect();
        for order_id in open {
            self.end_order(order_id, Ending::Cancelled(CancelReason::Liquidation), batch);
        }
    }

    fn liquidate_isolated(&mut self, position_id: PositionId, mark: Decimal, batch: &mut Batch<'_>) {
        let (account_id, symbol) = {
            let p = &self.positions[&position_id];
            (p.account_id, p.symbol)
        };
        self.cancel_for_liquidation(account_id, symbol, batch);
        let p = &self.positions[&position_id];
        let at_stake = p.margin.min(self.accounts[&account_id].balance.max(Decimal::ZERO));
        self.liquidate_position(position_id, mark, at_stake, batch);
    }

    fn liquidate_cross(&mut self, account_id: AccountId, batch: &mut Batch<'_>) {
        let cross: Vec<PositionId> = self
            .positions_of(account_id)
            .filter(|p| p.is_open() && p.margin_mode == MarginMode::Cross)
            .map(|p| p.position_id)
            .collect();
        // Every lock of the account is part of the cross wallet at stake: its open orders in
        // every market are cancelled, or a far-away order would shield funds from the loss.
        for symbol in self.symbols() {
            self.cancel_for_liquidation(account_id, symbol, batch);
        }
        // The cross wallet is at stake: everything not backing isolated positions or orders.
        let isolated_margins: Decimal =
            self.positions_of(account_id).filter(|p| p.margin_mode == MarginMode::Isolated).map(|p| p.margin).sum();
        let account = &self.accounts[&account_id];
        let mut at_stake = (account.balance - isolated_margins - account.locked).max(Decimal::ZERO);
        for (i, id) in cross.iter().enumerate() {
            let p = &self.positions[id];
            let share = if i + 1 == cross.len() { at_stake } else { p.margin.min(at_stake) };
            at_stake -= share;
            let mark = p.valuation_price(self.mark_price(p.symbol));
            self.liquidate_position(*id, mark, share, batch);
        }
    }

    /// The account loses exactly `at_stake`; the insurance account takes the position over at
    /// the mark and keeps `at_stake + pnl_at_mark` (a fee when positive, a covered deficit when
    /// negative). Money is conserved exactly.
    fn liquidate_position(&mut self, position_id: PositionId, mark: Decimal, at_stake: Decimal, batch: &mut Batch<'_>) {
        let p = &self.positions[&position_id];
        let (account_id, symbol, side, size) = (p.account_id, p.symbol, p.side, p.size);
        let pnl_at_mark = p.unrealized_pnl(mark);
        let liquidated = PositionLiquidated {
            position_id,
            account_id,
            symbol,
            side,
            size,
            entry_price: p.entry_price().unwrap_or_default(),
            mark_price: mark,
            pnl_at_mark,
            margin_released: p.margin,
            margin_mode: p.margin_mode,
        };
        self.emit(batch, Event::PositionLiquidated(liquidated));
        if !at_stake.is_zero() {
            let loss = PnlRealized {
                account_id,
                position_id,
                symbol,
                amount: -at_stake,
                source: PnlSource::Liquidation,
                trade_id: None,
            };
            self.emit(batch, Event::PnlRealized(loss));
        }
        let settled = at_stake + pnl_at_mark;
        if !settled.is_zero() {
            let event = LiquidationSettled {
                account_id: INSURANCE_ACCOUNT,
                liquidated_account_id: account_id,
                symbol,
                amount: settled,
            };
            self.emit(batch, Event::LiquidationSettled(event));
        }
        let insurance_position = self.position_of(INSURANCE_ACCOUNT, symbol);
        let plan = plan_fill(insurance_position, side, size, mark, 1, true);
        let source = ChangeSource { order_id: None, trade_id: None, pnl_source: PnlSource::Liquidation };
        let takeover = (side, size, mark);
        self.change_position(INSURANCE_ACCOUNT, symbol, takeover, &plan, (1, MarginMode::Cross), source, batch);
    }

    pub(crate) fn settle_funding(
        &mut self,
        symbol: Symbol,
        rate: Decimal,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        self.market_or_err(symbol)?;
        if rate.abs() >= Decimal::ONE || rate.scale() > 8 {
            return Err(CommandError::new(ErrorCode::InvalidArgument, format!("funding rate {rate} out of range")));
        }
        let mark = self
            .mark_price(symbol)
            .ok_or_else(|| CommandError::new(ErrorCode::MarkPriceNotSet, format!("{symbol} has no mark price yet")))?;
        let open = self.open_positions_in(symbol);
        let (mut total_paid, mut total_received) = (Decimal::ZERO, Decimal::ZERO);
        for id in open.iter().filter(|_| !rate.is_zero()) {
            let p = &self.positions[id];
            let (account_id, position_id) = (p.account_id, p.position_id);
            let due = p.size * mark * rate.abs();
            let pays = (rate > Decimal::ZERO) == (p.side == Side::Buy);
            if pays {
                let amount = round_up(due).min(self.funding_capacity(account_id));
                if !amount.is_zero() {
                    total_paid += amount;
                    let event = FundingPaid { account_id, position_id, symbol, amount, rate, mark_price: mark };
                    self.emit(batch, Event::FundingPaid(event));
                }
            } else {
                let amount = round_down(due);
                if !amount.is_zero() {
                    total_received += amount;
                    let event = FundingReceived { account_id, position_id, symbol, amount, rate, mark_price: mark };
                    self.emit(batch, Event::FundingReceived(event));
                }
            }
        }
        let residue = total_paid - total_received;
        if residue > Decimal::ZERO {
            let event = FeeReceived {
                account_id: FEE_ACCOUNT,
                amount: residue,
                source: FeeSource::FundingResidue,
                from_account_id: None,
                trade_id: None,
            };
            self.emit(batch, Event::FeeReceived(event));
        } else if residue < Decimal::ZERO {
            let event = FundingShortfallCovered { account_id: INSURANCE_ACCOUNT, symbol, amount: -residue };
            self.emit(batch, Event::FundingShortfallCovered(event));
        }
        let settled = FundingSettled { symbol, rate, mark_price: mark, total_paid, total_received };
        self.emit(batch, Event::FundingSettled(settled));
        // Funding moved balances, which back cross positions in every market.
        for symbol in self.symbols() {
            self.run_liquidations(symbol, batch);
        }
        Ok(Outcome::Accepted)
    }

    /// What an account can pay in funding: its free wallet (balance not locked and not
    /// margin). The insurance account pays in full. What a trader cannot pay, the insurance
    /// account covers.
    fn funding_capacity(&self, account_id: AccountId) -> Decimal {
        let account = &self.accounts[&account_id];
        if account.is_system() {
            return Decimal::MAX;
        }
        (account.balance - account.locked - self.position_margin(account_id)).max(Decimal::ZERO)
    }
}
