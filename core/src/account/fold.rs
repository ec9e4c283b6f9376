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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    pub account_id: AccountId,
    pub user_id: UserId,
    pub kind: AccountKind,
    /// Wallet balance: deposits − withdrawals − fees ± realized PnL ± funding.
    pub balance: Decimal,
    /// Sum of the `remaining` of `locks`.
    pub locked: Decimal,
    /// The reservation of each open order that locked anything.
    pub locks: BTreeMap<OrderId, OrderLock>,
    pub total_deposited: Decimal,
    pub total_withdrawn: Decimal,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// What one order locked, and what of it is still locked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLock {
    pub amount: Decimal,
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
