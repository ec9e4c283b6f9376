//! Commands on accounts, positions and orders other than placement and matching.

use super::{Batch, Exchange, Outcome};
use crate::account::decide as account_decide;
use crate::account::events::{AccountCreated, BalanceUnlocked};
use crate::account::AccountState;
use crate::error::{CommandError, ErrorCode};
use crate::event::Event;
use crate::ids::{AccountId, EventId, OrderId, UserId, FEE_ACCOUNT, INSURANCE_ACCOUNT, SYSTEM_USER};
use crate::market::events::MarketListed;
use crate::market::spec::MarketSpec;
use crate::order::decide::CLIENT_ORDER_ID_MAX_LEN;
use crate::order::events::{
    FieldCorrection, OrderCancelled, OrderCorrected, OrderExpired, OrderFilled, CORRECTABLE_FIELDS,
};
use crate::position::decide as position_decide;
use crate::symbol::Symbol;
use crate::types::{AccountKind, CancelReason, Side};
use rust_decimal::Decimal;

/// Longest note an admin may attach to an order.
pub const NOTE_MAX_LEN: usize = 500;

/// How an order's life ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ending {
    Filled,
    Cancelled(CancelReason),
    Expired,
}

impl Exchange {
    pub(crate) fn genesis(&mut self, markets: &[MarketSpec], batch: &mut Batch<'_>) -> Result<Outcome, CommandError> {
        if !self.markets.is_empty() || !self.accounts.is_empty() {
            return Err(CommandError::new(ErrorCode::AlreadyInitialized, "genesis has already run"));
        }
        if markets.is_empty() {
            return Err(CommandError::new(ErrorCode::InvalidArgument, "genesis needs at least one market"));
        }
        for (i, spec) in markets.iter().enumerate() {
            spec.validate()
                .map_err(|e| CommandError::new(ErrorCode::InvalidArgument, format!("{}: {e}", spec.symbol)))?;
            if markets[..i].iter().any(|other| other.symbol == spec.symbol) {
                return Err(CommandError::new(ErrorCode::InvalidArgument, format!("{} listed twice", spec.symbol)));
            }
        }
        for (account_id, kind) in [(FEE_ACCOUNT, AccountKind::Fee), (INSURANCE_ACCOUNT, AccountKind::Insurance)] {
            debug_assert_eq!(account_id, AccountId::derive(self.counters.accounts));
            self.emit(batch, Event::AccountCreated(AccountCreated { account_id, user_id: SYSTEM_USER, kind }));
        }
        for spec in markets {
            self.emit(batch, Event::MarketListed(MarketListed { spec: spec.clone() }));
        }
        Ok(Outcome::Accepted)
    }

    pub(crate) fn create_account(&mut self, user_id: UserId, batch: &mut Batch<'_>) -> Result<Outcome, CommandError> {
        let account_id = AccountId::derive(self.counters.accounts);
        let kind = AccountKind::Trader;
        self.emit(batch, Event::AccountCreated(AccountCreated { account_id, user_id, kind }));
        Ok(Outcome::Accepted)
    }

    pub(crate) fn account_or_err(&self, account_id: AccountId) -> Result<&AccountState, CommandError> {
        self.accounts
            .get(&account_id)
            .ok_or_else(|| CommandError::new(ErrorCode::AccountNotFound, format!("account {account_id} not found")))
    }

    pub(crate) fn trader_account(&self, account_id: AccountId) -> Result<&AccountState, CommandError> {
        let account = self.account_or_err(account_id)?;
        if account.is_system() {
            return Err(CommandError::new(ErrorCode::AccountNotTradable, "system accounts do not trade"));
        }
        Ok(account)
    }

    pub(crate) fn deposit(
        &mut self,
        account_id: AccountId,
        amount: Decimal,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        let event = account_decide::deposit(self.account_or_err(account_id)?, amount)?;
        self.emit(batch, Event::BalanceDeposited(event));
        Ok(Outcome::Accepted)
    }

    pub(crate) fn withdraw(
        &mut self,
        account_id: AccountId,
        amount: Decimal,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        let account = self.trader_account(account_id)?;
        let event = account_decide::withdraw(account, self.available(account_id), amount)?;
        self.emit(batch, Event::BalanceWithdrawn(event));
        Ok(Outcome::Accepted)
    }

    pub(crate) fn cancel_order(
        &mut self,
        account_id: AccountId,
        order_id: OrderId,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        let order = self
            .orders
            .get(&order_id)
            .ok_or_else(|| CommandError::new(ErrorCode::OrderNotFound, format!("order {order_id} not found")))?;
        crate::order::decide::check_cancel(order, account_id)?;
        self.end_order(order_id, Ending::Cancelled(CancelReason::UserRequested), batch);
        Ok(Outcome::Accepted)
    }

    pub(crate) fn cancel_all_orders(
        &mut self,
        account_id: AccountId,
        symbol: Symbol,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        if !self.accounts.contains_key(&account_id) {
            return Err(CommandError::new(ErrorCode::AccountNotFound, format!("account {account_id} not found")));
        }
        let book = self
            .books
            .get(&symbol)
            .ok_or_else(|| CommandError::new(ErrorCode::MarketNotFound, format!("no market {symbol}")))?;
        // In the book's order (by side, price, then time): the events' order is deterministic.
        let open: Vec<OrderId> = [Side::Buy, Side::Sell]
            .into_iter()
            .flat_map(|side| book.levels(side).flat_map(|(_, ids)| ids.iter().copied()))
            .filter(|id| self.orders[id].account_id == account_id)
            .collect();
        for order_id in open {
            self.end_order(order_id, Ending::Cancelled(CancelReason::UserRequested), batch);
        }
        Ok(Outcome::Accepted)
    }

    /// Ends an open order and releases everything still locked for it.
    pub(crate) fn end_order(&mut self, order_id: OrderId, ending: Ending, batch: &mut Batch<'_>) {
        let order = &self.orders[&order_id];
        debug_assert!(order.is_open(), "only open orders end");
        let (account_id, remaining) = (order.account_id, order.remaining);
        let event = match ending {
            Ending::Filled => {
                let avg_price = order.avg_price().unwrap_or_default();
                Event::OrderFilled(OrderFilled { order_id, executed_qty: order.executed_qty, avg_price })
            }
            Ending::Cancelled(reason) => Event::OrderCancelled(OrderCancelled { order_id, reason, remaining }),
            Ending::Expired => Event::OrderExpired(OrderExpired { order_id, remaining }),
        };
        self.emit(batch, event);
        let still_locked = self.accounts[&account_id].locks.get(&order_id).map(|lock| lock.remaining);
        if let Some(amount) = still_locked.filter(|amount| !amount.is_zero()) {
            self.emit(batch, Event::BalanceUnlocked(BalanceUnlocked { account_id, order_id, amount }));
        }
        debug_assert!(!self.accounts[&account_id].locks.contains_key(&order_id), "an ended order holds no lock");
    }

    pub(crate) fn change_leverage(
        &mut self,
        account_id: AccountId,
        symbol: Symbol,
        leverage: u32,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        self.trader_account(account_id)?;
        let spec = &self.market_or_err(symbol)?.spec;
        let event = position_decide::change_leverage(
            self.position_of(account_id, symbol),
            spec,
            leverage,
            self.available(account_id),
            self.mark_price(symbol),
        )?;
        self.emit(batch, Event::LeverageChanged(event));
        self.run_liquidations(symbol, batch);
        Ok(Outcome::Accepted)
    }

    pub(crate) fn adjust_margin(
        &mut self,
        account_id: AccountId,
        symbol: Symbol,
        amount: Decimal,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        self.trader_account(account_id)?;
        let spec = &self.market_or_err(symbol)?.spec;
        let position = self.position_of(account_id, symbol);
        let event = if amount.is_sign_negative() {
            let open = position.filter(|p| p.is_open());
            let mark = open.map_or(Decimal::ZERO, |p| p.valuation_price(self.mark_price(symbol)));
            Event::MarginRemoved(position_decide::remove_margin(position, spec, -amount, mark)?)
        } else {
            Event::MarginAdded(position_decide::add_margin(position, amount, self.available(account_id))?)
        };
        self.emit(batch, event);
        self.run_liquidations(symbol, batch);
        Ok(Outcome::Accepted)
    }

    pub(crate) fn market_or_err(&self, symbol: Symbol) -> Result<&crate::market::MarketState, CommandError> {
        self.markets
            .get(&symbol)
            .ok_or_else(|| CommandError::new(ErrorCode::MarketNotFound, format!("unknown symbol {symbol}")))
    }

    pub(crate) fn correct_order(
        &mut self,
        order_id: OrderId,
        (corrected_event_id, corrected_version): (EventId, u64),
        corrections: &[FieldCorrection],
        reason: &str,
        corrected_by: UserId,
        batch: &mut Batch<'_>,
    ) -> Result<Outcome, CommandError> {
        let invalid = |message: String| CommandError::new(ErrorCode::InvalidCorrection, message);
        let order = self
            .orders
            .get(&order_id)
            .ok_or_else(|| CommandError::new(ErrorCode::OrderNotFound, format!("order {order_id} not found")))?;
        if corrected_version == 0 || corrected_version > order.version {
            return Err(invalid(format!("the order has no event at version {corrected_version}")));
        }
        if corrections.is_empty() || reason.trim().is_empty() {
            return Err(invalid("a correction needs at least one field and a reason".into()));
        }
        if let Some(bad) = corrections.iter().find(|c| !CORRECTABLE_FIELDS.contains(&c.field.as_str())) {
            return Err(invalid(format!(
                "field {:?} cannot be corrected (allowed: {CORRECTABLE_FIELDS:?})",
                bad.field
            )));
        }
        for correction in corrections {
            let (current, max_len) = match correction.field.as_str() {
                "clientOrderId" => (&order.client_order_id, CLIENT_ORDER_ID_MAX_LEN),
                _ => (&order.note, NOTE_MAX_LEN),
            };
            if correction.from != *current {
                return Err(invalid(format!(
                    "{} is {current:?}, not {:?} as the correction says",
                    correction.field, correction.from
                )));
            }
            if correction.to.as_ref().is_some_and(|to| to.is_empty() || to.len() > max_len) {
                return Err(invalid(format!("a corrected {} must be 1 to {max_len} bytes", correction.field)));
            }
        }
        // The engine keeps no per-version event ids (they would cost memory on every order);
        // the host, which holds the log, checks that the id is the event at that version.
        let event = OrderCorrected {
            order_id,
            corrected_event_id,
            corrected_version,
            corrections: corrections.to_vec(),
            reason: reason.to_owned(),
            corrected_by,
        };
        self.emit(batch, Event::OrderCorrected(event));
        Ok(Outcome::Accepted)
    }
}
