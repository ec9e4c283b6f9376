//! Account state and its evolution.

use crate::aggregate::Aggregate;
use crate::event::{Event, EventEnvelope};
use crate::ids::{AccountId, OrderId, UserId};
use crate::time::Timestamp;
use crate::types::AccountKind;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An account's wallet and order reservations. Position margins are reserved out of the
/// balance too; they live on the positions (see `Exchange::available`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    /// The account's id.
    pub account_id: AccountId,
    /// The user who owns it (the system user for system accounts).
    pub user_id: UserId,
    /// Trader, fee or insurance account.
    pub kind: AccountKind,
    /// Wallet balance in USDT: deposits − withdrawals − fees paid + fees received ± realized
    /// PnL ± funding ± liquidation settlements − funding shortfalls covered.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub balance: Decimal,
    /// Sum of the `remaining` of `locks`.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub locked: Decimal,
    /// The reservation of each open order that locked anything.
    pub locks: BTreeMap<OrderId, OrderLock>,
    /// Σ deposits, in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub total_deposited: Decimal,
    /// Σ withdrawals, in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub total_withdrawn: Decimal,
    /// Timestamp of `AccountCreated`.
    pub created_at: Timestamp,
    /// Timestamp of the stream's last event.
    pub updated_at: Timestamp,
    /// Version of the account stream after its last event.
    pub version: u64,
}

/// What one order locked, and what of it is still locked.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLock {
    /// Σ locked for the order, in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub amount: Decimal,
    /// Part of `amount` not released yet, in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub remaining: Decimal,
}

impl AccountState {
    fn unlock(&mut self, order_id: OrderId, amount: Decimal) {
        self.locked -= amount;
        if let Some(lock) = self.locks.get_mut(&order_id) {
            lock.remaining -= amount;
            if lock.remaining.is_zero() {
                self.locks.remove(&order_id);
            }
        }
    }

    /// True for the fee and insurance accounts.
    pub fn is_system(&self) -> bool {
        self.kind != AccountKind::Trader
    }
}

impl Aggregate for AccountState {
    fn create(envelope: &EventEnvelope) -> Option<Self> {
        let Event::AccountCreated(e) = &envelope.event else { return None };
        Some(AccountState {
            account_id: e.account_id,
            user_id: e.user_id,
            kind: e.kind,
            balance: Decimal::ZERO,
            locked: Decimal::ZERO,
            locks: BTreeMap::new(),
            total_deposited: Decimal::ZERO,
            total_withdrawn: Decimal::ZERO,
            created_at: envelope.timestamp,
            updated_at: envelope.timestamp,
            version: envelope.version,
        })
    }

    fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::BalanceDeposited(e) => {
                self.balance += e.amount;
                self.total_deposited += e.amount;
            }
            Event::BalanceWithdrawn(e) => {
                self.balance -= e.amount;
                self.total_withdrawn += e.amount;
            }
            Event::BalanceLocked(e) => {
                self.locked += e.amount;
                let lock = self.locks.entry(e.order_id).or_default();
                lock.amount += e.amount;
                lock.remaining += e.amount;
            }
            Event::BalanceUnlocked(e) => self.unlock(e.order_id, e.amount),
            Event::FeeCharged(e) => self.balance -= e.amount,
            Event::FeeReceived(e) => self.balance += e.amount,
            Event::PnlRealized(e) => self.balance += e.amount,
            Event::FundingPaid(e) => self.balance -= e.amount,
            Event::FundingReceived(e) => self.balance += e.amount,
            Event::LiquidationSettled(e) => self.balance += e.amount,
            Event::FundingShortfallCovered(e) => self.balance -= e.amount,
            other => debug_assert!(false, "{} is not an account event", other.event_type()),
        }
        self.version = envelope.version;
        self.updated_at = envelope.timestamp;
    }

    fn version(&self) -> u64 {
        self.version
    }
}
