//! The accounts read model: each account's wallet, reservations, position margins and what
//! is available, valued at the last mark price of each market.

use super::stream_uuid;
use crate::account::AccountState;
use crate::aggregate::Aggregate;
use crate::event::{AggregateType, Event, EventEnvelope};
use crate::ids::{AccountId, PositionId, UserId};
use crate::position::PositionState;
use crate::symbol::Symbol;
use crate::types::{AccountKind, MarginMode};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// An account's money at one point of the log. Always
/// `available = balance − locked − positionMargin + min(0, unrealizedPnl)`, the formula of
/// `Exchange::available`, so it equals what the engine allowed at that point.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    /// The account's id.
    pub account_id: AccountId,
    /// The user who owns it (the system user for system accounts).
    pub user_id: UserId,
    /// Trader, fee or insurance account.
    pub kind: AccountKind,
    /// Wallet balance: deposits − withdrawals − fees ± realized PnL ± funding.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub balance: Decimal,
    /// Reserved by open orders.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub locked: Decimal,
    /// What can be withdrawn or used for new orders now (negative after a cross loss).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub available: Decimal,
    /// Σ margins of the account's positions.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub position_margin: Decimal,
    /// Σ unrealized PnL of the account's open CROSS positions at each market's last mark
    /// (a market without a mark yet contributes 0). Isolated positions are not included:
    /// their losses are bounded by their own margin and do not reduce `available`.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub unrealized_pnl: Decimal,
}

/// Every account's summary, kept as the Account and Position aggregates' own states (folded
/// with their `Aggregate::apply`) plus the last mark price of each market; the derived
/// numbers are computed when asked, so a new mark revalues every account at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsProjection {
    accounts: BTreeMap<AccountId, AccountState>,
    positions: BTreeMap<PositionId, PositionState>,
    /// Position streams of each account, in the order they were first opened.
    account_positions: BTreeMap<AccountId, Vec<PositionId>>,
    marks: BTreeMap<Symbol, Decimal>,
}

impl AccountsProjection {
    /// Folds one event: account events, position events and mark prices; others are ignored.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        match envelope.stream.aggregate_type {
            AggregateType::Account => self.apply_account(envelope),
            AggregateType::Position => self.apply_position(envelope),
            AggregateType::Market => {
                if let Event::MarkPriceSet(e) = &envelope.event {
                    self.marks.insert(e.symbol, e.mark_price);
                }
            }
            AggregateType::Order => {}
        }
    }

    fn apply_account(&mut self, envelope: &EventEnvelope) {
        if let Event::AccountCreated(e) = &envelope.event {
            debug_assert!(!self.accounts.contains_key(&e.account_id), "an account stream starts once");
            if let Some(account) = AccountState::create(envelope) {
                self.accounts.insert(e.account_id, account);
            }
            return;
        }
        let account = stream_uuid(envelope).and_then(|id| self.accounts.get_mut(&AccountId(id)));
        if let Some(account) = account {
            account.apply(envelope);
        }
    }

    fn apply_position(&mut self, envelope: &EventEnvelope) {
        let Some(id) = stream_uuid(envelope).map(PositionId) else { return };
        if let Some(position) = self.positions.get_mut(&id) {
            position.apply(envelope);
        } else if let Some(position) = PositionState::create(envelope) {
            self.account_positions.entry(position.account_id).or_default().push(id);
            self.positions.insert(id, position);
        }
    }

    /// Position streams of an account (open or flat), in the order they were first opened.
    fn positions_of(&self, account_id: AccountId) -> impl Iterator<Item = &PositionState> {
        self.account_positions.get(&account_id).into_iter().flatten().filter_map(|id| self.positions.get(id))
    }

    /// The summary of an account, or `None` if it was not created in the log so far.
    pub fn summary(&self, account_id: AccountId) -> Option<AccountSummary> {
        let account = self.accounts.get(&account_id)?;
        let (mut position_margin, mut cross_upnl) = (Decimal::ZERO, Decimal::ZERO);
        for position in self.positions_of(account_id) {
            position_margin += position.margin;
            if position.margin_mode == MarginMode::Cross && position.is_open() {
                if let Some(mark) = self.marks.get(&position.symbol) {
                    cross_upnl += position.unrealized_pnl(*mark);
                }
            }
        }
        Some(AccountSummary {
            account_id,
            user_id: account.user_id,
            kind: account.kind,
            balance: account.balance,
            locked: account.locked,
            available: account.balance - account.locked - position_margin + cross_upnl.min(Decimal::ZERO),
            position_margin,
            unrealized_pnl: cross_upnl,
        })
    }

    /// Every account's summary, by account id.
    pub fn summaries(&self) -> Vec<AccountSummary> {
        self.accounts.keys().filter_map(|id| self.summary(*id)).collect()
    }

    /// An account's wallet balance, or `None` if it was not created in the log so far.
    pub fn balance(&self, account_id: AccountId) -> Option<Decimal> {
        self.accounts.get(&account_id).map(|account| account.balance)
    }
}
