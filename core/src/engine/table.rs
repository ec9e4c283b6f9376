//! The engine's tables of orders, accounts and positions. Their ids are derived from the
//! engine's counters, so the counter in an id is its index: a lookup is an array access
//! instead of hashing a 16-byte key, and a table grows without rehashing. A state whose id is
//! not the next derived one (a log written by something else) is kept in an ordered side map,
//! so applying it never fails.

use crate::account::AccountState;
use crate::ids::{AccountId, OrderId, PositionId};
use crate::order::OrderState;
use crate::position::PositionState;
use std::collections::BTreeMap;

/// A state stored in a [`Table`], and the derived id it is found by.
pub trait Row {
    /// The id rows are looked up by.
    type Id: Copy + Ord + std::fmt::Debug;
    /// The row's id.
    fn id(&self) -> Self::Id;
    /// The counter the id was derived from, if it is a derived id.
    fn counter_of(id: &Self::Id) -> Option<u64>;
}

macro_rules! row {
    ($state:ty, $id:ty, $field:ident) => {
        impl Row for $state {
            type Id = $id;
            fn id(&self) -> $id {
                self.$field
            }
            fn counter_of(id: &$id) -> Option<u64> {
                id.counter()
            }
        }
    };
}

row!(OrderState, OrderId, order_id);
row!(AccountState, AccountId, account_id);
row!(PositionState, PositionId, position_id);

/// States by derived id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table<R: Row> {
    by_counter: Vec<R>,
    irregular: BTreeMap<R::Id, R>,
}

impl<R: Row> Default for Table<R> {
    fn default() -> Self {
        Table { by_counter: Vec::new(), irregular: BTreeMap::new() }
    }
}

impl<R: Row> Table<R> {
    fn index(&self, id: &R::Id) -> Option<usize> {
        let counter = usize::try_from(R::counter_of(id)?).ok()?;
        (counter < self.by_counter.len() && self.by_counter[counter].id() == *id).then_some(counter)
    }

    /// The row with this id.
    pub fn get(&self, id: &R::Id) -> Option<&R> {
        match self.index(id) {
            Some(i) => Some(&self.by_counter[i]),
            None => self.irregular.get(id),
        }
    }

    /// The row with this id, to evolve it.
    pub fn get_mut(&mut self, id: &R::Id) -> Option<&mut R> {
        match self.index(id) {
            Some(i) => Some(&mut self.by_counter[i]),
            None => self.irregular.get_mut(id),
        }
    }

    /// Adds a row (its stream's first event).
    pub fn insert(&mut self, row: R) {
        let id = row.id();
        if R::counter_of(&id) == Some(self.by_counter.len() as u64) {
            self.by_counter.push(row);
        } else {
            self.irregular.insert(id, row);
        }
    }

    /// Removes the row with this id, which must be the newest derived row or an irregular one
    /// (rows are removed only when a savepoint rolls back, newest first).
    pub fn remove_newest(&mut self, id: &R::Id) {
        match self.index(id) {
            Some(i) => {
                debug_assert_eq!(i + 1, self.by_counter.len(), "only the newest row is removed");
                self.by_counter.truncate(i);
            }
            None => {
                self.irregular.remove(id);
            }
        }
    }

    /// True when the table has no row.
    pub fn is_empty(&self) -> bool {
        self.by_counter.is_empty() && self.irregular.is_empty()
    }

    /// True when a row has this id.
    pub fn contains_key(&self, id: &R::Id) -> bool {
        self.get(id).is_some()
    }

    /// Every row: derived ids in creation order, then any others by id.
    pub fn values(&self) -> impl Iterator<Item = &R> {
        self.by_counter.iter().chain(self.irregular.values())
    }
}

impl<R: Row> std::ops::Index<&R::Id> for Table<R> {
    type Output = R;

    /// The row with this id; the engine indexes only ids it has checked exist.
    fn index(&self, id: &R::Id) -> &R {
        self.get(id).expect("the row exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::types::AccountKind;
    use rust_decimal::Decimal;

    fn account(id: AccountId) -> AccountState {
        AccountState {
            account_id: id,
            user_id: UserId::derive(1),
            kind: AccountKind::Trader,
            balance: Decimal::ZERO,
            locked: Decimal::ZERO,
            locks: Default::default(),
            total_deposited: Decimal::ZERO,
            total_withdrawn: Decimal::ZERO,
            created_at: Default::default(),
            updated_at: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn derived_ids_index_and_others_fall_back() {
        let mut table: Table<AccountState> = Table::default();
        table.insert(account(AccountId::derive(0)));
        table.insert(account(AccountId::derive(5))); // out of sequence
        let foreign = AccountId("0b6c2f0e-3b1a-4f55-9a51-2d7c4b0f1e21".parse().expect("uuid"));
        table.insert(account(foreign));
        table.insert(account(AccountId::derive(1)));
        for id in [AccountId::derive(0), AccountId::derive(1), AccountId::derive(5), foreign] {
            assert_eq!(table.get(&id).map(|a| a.account_id), Some(id));
        }
        assert!(table.get(&AccountId::derive(2)).is_none());
        assert_eq!(table.values().count(), 4);
    }
}
