//! The invariants of DOMAIN.md as executable checks over an engine state. Property tests and
//! the vector runner call them after every step; hosts may call them after a rebuild.

use crate::engine::Exchange;
use crate::symbol::Symbol;
use crate::types::{AccountKind, Side};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A broken invariant, with enough detail to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(message: String) -> Result<(), Violation> {
    Err(Violation(message))
}

/// Checks invariants 1–4 of DOMAIN.md on `exchange`:
/// 1. no balance is negative (the insurance account excepted);
/// 2. money is conserved: `Σ balances + Σ uPnL at a common mark = Σ deposits − Σ withdrawals`
///    (with sizes balanced per symbol the uPnL sum is `−Σ side × entry value` at any mark);
/// 3. per symbol, total long size equals total short size;
/// 4. every order's filled quantity is within its quantity, an ended order holds no lock, and
///    each account's `locked` is the sum of its orders' locks.
pub fn check(exchange: &Exchange) -> Result<(), Violation> {
    check_accounts(exchange)?;
    check_positions(exchange)?;
    check_orders(exchange)
}

fn check_accounts(exchange: &Exchange) -> Result<(), Violation> {
    let (mut balances, mut net_deposits) = (Decimal::ZERO, Decimal::ZERO);
    for account in exchange.accounts() {
        if account.kind != AccountKind::Insurance && account.balance < Decimal::ZERO {
            return fail(format!("account {} has a negative balance {}", account.account_id, account.balance));
        }
        let locks: Decimal = account.locks.values().map(|lock| lock.remaining).sum();
        if locks != account.locked || account.locked < Decimal::ZERO {
            return fail(format!(
                "account {} locked {} but its orders hold {locks}",
                account.account_id, account.locked
            ));
        }
        balances += account.balance;
        net_deposits += account.total_deposited - account.total_withdrawn;
    }
    let entry_values: Decimal = exchange.positions().map(|p| p.side.sign() * p.entry_value).sum();
    if balances - entry_values != net_deposits {
        return fail(format!(
            "money not conserved: balances {balances} + uPnL(−Σ side×entry value = {}) ≠ net deposits {net_deposits}",
            -entry_values
        ));
    }
    Ok(())
}

fn check_positions(exchange: &Exchange) -> Result<(), Violation> {
    let mut net_size: BTreeMap<Symbol, Decimal> = BTreeMap::new();
    for p in exchange.positions() {
        if p.size < Decimal::ZERO || (p.size.is_zero() && !(p.entry_value.is_zero() && p.margin.is_zero())) {
            return fail(format!("position {} is inconsistent: {p:?}", p.position_id));
        }
        if p.margin < Decimal::ZERO {
            return fail(format!("position {} has negative margin {}", p.position_id, p.margin));
        }
        let signed = if p.side == Side::Buy { p.size } else { -p.size };
        *net_size.entry(p.symbol).or_default() += signed;
    }
    match net_size.iter().find(|(_, net)| !net.is_zero()) {
        Some((symbol, net)) => fail(format!("{symbol}: long and short sizes differ by {net}")),
        None => Ok(()),
    }
}

fn check_orders(exchange: &Exchange) -> Result<(), Violation> {
    for order in exchange.orders() {
        if order.executed_qty > order.quantity || order.remaining < Decimal::ZERO {
            return fail(format!("order {} filled {} of {}", order.order_id, order.executed_qty, order.quantity));
        }
        let holds_lock = exchange.account(order.account_id).is_some_and(|a| a.locks.contains_key(&order.order_id));
        if !order.is_open() && holds_lock {
            return fail(format!("order {} ended ({}) but still holds a lock", order.order_id, order.status));
        }
    }
    Ok(())
}
