//! Decisions on an account alone: deposits and withdrawals.

use crate::account::events::{BalanceDeposited, BalanceWithdrawn};
use crate::account::AccountState;
use crate::error::{CommandError, ErrorCode};
use crate::num::amount_in_range;
use rust_decimal::Decimal;

fn check_amount(amount: Decimal) -> Result<(), CommandError> {
    if amount_in_range(amount) {
        Ok(())
    } else {
        Err(CommandError::new(
            ErrorCode::AmountOutOfRange,
            format!("amount {amount} must be positive, at most 1e15, with at most 8 decimals"),
        ))
    }
}

/// A deposit of a positive amount; the balance after must stay within the amount bound.
pub fn deposit(account: &AccountState, amount: Decimal) -> Result<BalanceDeposited, CommandError> {
    check_amount(amount)?;
    check_amount(account.balance + amount)?;
    Ok(BalanceDeposited { account_id: account.account_id, amount })
}

/// A withdrawal of at most what is available.
pub fn withdraw(account: &AccountState, available: Decimal, amount: Decimal) -> Result<BalanceWithdrawn, CommandError> {
    check_amount(amount)?;
    if amount > available {
        return Err(CommandError::new(
            ErrorCode::InsufficientBalance,
            format!("withdrawal of {amount} exceeds the available {available}"),
        ));
    }
    Ok(BalanceWithdrawn { account_id: account.account_id, amount })
}
