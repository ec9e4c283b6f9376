//! A receipt: what a decided command did, as plain data — the order as placed, its fills,
//! the trader's account or position after it. The engine writes it right after deciding, while
//! its state is the state after the command; a host shapes it for its clients later, off the
//! writer's path, and keeps it with an idempotency key so that a retry is told the same.

use super::{Decision, Exchange};
use crate::account::AccountState;
use crate::command::Command;
use crate::event::Event;
use crate::ids::{AccountId, OrderId, PositionId, TradeId};
use crate::market::MarketState;
use crate::order::OrderState;
use crate::position::PositionState;
use crate::projection::{AccountSummary, PositionView};
use crate::symbol::Symbol;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a command did. Which parts are set depends on the command (see [`Exchange::receipt`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The account a `CreateAccount` opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_account: Option<AccountId>,
    /// The account after a deposit or withdrawal, or as a `CreateAccount` opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountReceipt>,
    /// The order after the command (placed, rejected, cancelled or corrected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderState>,
    /// The placed order's own fills (as taker), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fills: Vec<Fill>,
    /// Whether the receipt speaks of a position (an order, a leverage or margin change): then
    /// `position` is the trader's open position in the market after it, `None` when flat.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_position: bool,
    /// The trader's open position after the command (see `has_position`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<PositionReceipt>,
    /// The market after a mark price or a funding settlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<MarketState>,
    /// Positions a mark price or a funding settlement liquidated, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub liquidated: Vec<PositionId>,
    /// The orders a cancel-all cancelled, in the order it cancelled them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancelled: Vec<OrderId>,
}

/// An account and the figures derived from the whole engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountReceipt {
    /// The account's state.
    pub state: AccountState,
    /// `Exchange::available`.
    pub available: Decimal,
    /// `Exchange::position_margin`.
    pub position_margin: Decimal,
    /// Σ unrealized PnL of the account's open CROSS positions at their marks (0 in receipts
    /// stored before this field existed).
    #[serde(default)]
    pub unrealized_pnl: Decimal,
}

impl AccountReceipt {
    /// The account as the read models show it: the same figures, the same shape.
    pub fn summary(&self) -> AccountSummary {
        AccountSummary {
            account_id: self.state.account_id,
            user_id: self.state.user_id,
            kind: self.state.kind,
            balance: self.state.balance,
            locked: self.state.locked,
            available: self.available,
            position_margin: self.position_margin,
            unrealized_pnl: self.unrealized_pnl,
        }
    }
}

/// An open position and its figures at the mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionReceipt {
    /// The position's state.
    pub state: PositionState,
    /// `Exchange::unrealized_pnl`.
    pub unrealized_pnl: Decimal,
    /// `Exchange::liquidation_price`.
    pub liquidation_price: Option<Decimal>,
    /// The market's mark price (`None` before the first, and in receipts stored before this
    /// field existed).
    #[serde(default)]
    pub mark_price: Option<Decimal>,
}

impl PositionReceipt {
    /// The position as the read models show it: the same figures, the same shape.
    pub fn view(&self) -> PositionView {
        let state = &self.state;
        PositionView {
            position_id: state.position_id,
            account_id: state.account_id,
            symbol: state.symbol,
            side: state.side,
            size: state.size,
            entry_price: state.entry_price(),
            margin: state.margin,
            leverage: state.leverage,
            margin_mode: state.margin_mode,
            mark_price: self.mark_price,
            unrealized_pnl: self.unrealized_pnl,
            liquidation_price: self.liquidation_price,
            realized_pnl: state.realized_pnl,
            updated_at: state.updated_at,
        }
    }
}

/// One fill of the placed order, as taker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fill {
    /// The trade.
    pub trade_id: TradeId,
    /// Fill price (the maker's price).
    pub price: Decimal,
    /// Quantity filled.
    pub quantity: Decimal,
    /// Fee paid for the fill.
    pub fee: Decimal,
    /// PnL the fill realized (signed).
    pub realized_pnl: Decimal,
    /// The resting order it filled against.
    pub maker_order_id: OrderId,
}

impl Exchange {
    /// The receipt of `decision`, which this engine just made for `command` (its state is the
    /// state right after it).
    pub fn receipt(&self, command: &Command, decision: &Decision) -> Receipt {
        let mut receipt = Receipt::default();
        match command {
            Command::Genesis { .. } => {}
            Command::CreateAccount { .. } => {
                receipt.created_account = decision.events.iter().find_map(|e| match &e.event {
                    Event::AccountCreated(created) => Some(created.account_id),
                    _ => None,
                });
                receipt.account = receipt.created_account.and_then(|id| self.account_receipt(id));
            }
            Command::Deposit { account_id, .. } | Command::Withdraw { account_id, .. } => {
                receipt.account = self.account_receipt(*account_id);
            }
            Command::PlaceOrder(order) => {
                let order_id = decision.events.iter().find_map(|e| match &e.event {
                    Event::OrderPlaced(placed) => Some(placed.order_id),
                    Event::OrderRejected(rejected) => Some(rejected.order_id),
                    _ => None,
                });
                receipt.order = order_id.and_then(|id| self.order(id)).cloned();
                receipt.fills = decision
                    .events
                    .iter()
                    .filter_map(|e| match &e.event {
                        Event::OrderMatched(m) if Some(m.order_id) == order_id && !m.is_maker => Some(Fill {
                            trade_id: m.trade_id,
                            price: m.price,
                            quantity: m.quantity,
                            fee: m.fee,
                            realized_pnl: m.realized_pnl,
                            maker_order_id: m.counterparty_order_id,
                        }),
                        _ => None,
                    })
                    .collect();
                self.position_part(&mut receipt, order.account_id, order.symbol);
            }
            Command::CancelOrder { order_id, .. } | Command::CorrectOrder { order_id, .. } => {
                receipt.order = self.order(*order_id).cloned();
            }
            Command::CancelAllOrders { account_id, .. } => {
                receipt.cancelled = decision
                    .events
                    .iter()
                    .filter_map(|e| match &e.event {
                        Event::OrderCancelled(cancelled) => Some(cancelled.order_id),
                        _ => None,
                    })
                    .collect();
                receipt.account = self.account_receipt(*account_id);
            }
            Command::ChangeLeverage { account_id, symbol, .. } | Command::AdjustMargin { account_id, symbol, .. } => {
                self.position_part(&mut receipt, *account_id, *symbol);
            }
            Command::SetMarkPrice { symbol, .. } | Command::SettleFunding { symbol, .. } => {
                receipt.market = self.market(*symbol).cloned();
                receipt.liquidated = decision
                    .events
                    .iter()
                    .filter_map(|e| match &e.event {
                        Event::PositionLiquidated(l) => Some(l.position_id),
                        _ => None,
                    })
                    .collect();
            }
        }
        receipt
    }

    fn account_receipt(&self, account_id: AccountId) -> Option<AccountReceipt> {
        self.account(account_id).map(|state| {
            let (position_margin, unrealized_pnl) = self.margin_totals(account_id, None);
            AccountReceipt {
                state: state.clone(),
                available: self.available(account_id),
                position_margin,
                unrealized_pnl,
            }
        })
    }

    fn position_part(&self, receipt: &mut Receipt, account_id: AccountId, symbol: Symbol) {
        receipt.has_position = true;
        receipt.position =
            self.position_of(account_id, symbol).filter(|p| p.is_open()).map(|position| PositionReceipt {
                state: position.clone(),
                unrealized_pnl: self.unrealized_pnl(position),
                liquidation_price: self.liquidation_price(position.position_id),
                mark_price: self.mark_price(symbol),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Setup;

    /// Every command of the mixed workload gets a receipt that survives its JSON form (it is
    /// stored with idempotency keys), and an accepted order's fills are its taker matches.
    #[test]
    fn receipts_round_trip_and_name_the_order() {
        let mut setup = Setup::new(4, 1_000, 3);
        let (mut exchange, start) = (setup.exchange.clone(), setup.now);
        let commands = setup.mixed_workload(400, 5);
        let mut orders = 0;
        for (n, command) in commands.into_iter().enumerate() {
            let ctx = crate::command::CommandContext {
                now: crate::time::Timestamp(start.0 + 1 + n as i64),
                ..Default::default()
            };
            let Ok(decision) = exchange.execute(&command, &ctx) else { continue };
            let receipt = exchange.receipt(&command, &decision);
            let json = serde_json::to_string(&receipt).expect("receipts serialize");
            assert_eq!(serde_json::from_str::<Receipt>(&json).expect("receipts deserialize"), receipt);
            if let Command::PlaceOrder(_) = command {
                orders += 1;
                let order = receipt.order.as_ref().expect("a placed order is in its receipt");
                let taker_matches = decision
                    .events
                    .iter()
                    .filter(
                        |e| matches!(&e.event, Event::OrderMatched(m) if m.order_id == order.order_id && !m.is_maker),
                    )
                    .count();
                assert_eq!(receipt.fills.len(), taker_matches);
                assert!(receipt.has_position);
            }
        }
        assert!(orders > 100, "the workload placed {orders} orders");
    }

    /// The account and position a receipt carries are the read models' own views after the
    /// same events, figure for figure (a client sees one shape and one value for each).
    #[test]
    fn receipts_show_what_the_read_models_show() {
        let mut setup = Setup::new(4, 1_000, 3);
        let (mut exchange, start) = (setup.exchange.clone(), setup.now);
        let mut models = crate::projection::ReadModels::new();
        setup.log.iter().for_each(|e| models.apply(e));
        // Every 20th command a deposit too, so accounts with open positions and locks are compared.
        let traders = setup.accounts.clone();
        let commands = setup.mixed_workload(400, 5).into_iter().enumerate().flat_map(|(n, command)| {
            let deposit = Command::Deposit { account_id: traders[n % traders.len()], amount: Decimal::ONE };
            std::iter::once(command).chain((n % 20 == 0).then_some(deposit))
        });
        let (mut accounts, mut positions) = (0, 0);
        for (n, command) in commands.enumerate() {
            let ctx = crate::command::CommandContext {
                now: crate::time::Timestamp(start.0 + 1 + n as i64),
                ..Default::default()
            };
            let Ok(decision) = exchange.execute(&command, &ctx) else { continue };
            decision.events.iter().for_each(|e| models.apply(e));
            let receipt = exchange.receipt(&command, &decision);
            if let Some(account) = &receipt.account {
                accounts += 1;
                assert_eq!(Some(account.summary()), models.accounts().summary(account.state.account_id));
            }
            if let Some(position) = &receipt.position {
                positions += 1;
                let view = models.positions().open_view(position.state.position_id, models.accounts());
                assert_eq!(Some(position.view()), view);
            }
        }
        assert!(accounts > 10 && positions > 100, "{accounts} accounts, {positions} positions compared");
    }
}
