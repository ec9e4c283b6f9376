//! The positions read model: each open position with its entry price, margin, PnL at the
//! last mark and liquidation price.

use super::accounts::AccountsProjection;
use super::stream_uuid;
use crate::aggregate::Aggregate;
use crate::event::{AggregateType, Event, EventEnvelope};
use crate::ids::{AccountId, PositionId};
use crate::market::MarketState;
use crate::position::queries::LiquidationInputs;
use crate::position::PositionState;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, Side};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// One open position at one point of the log, valued at its market's last mark.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionView {
    /// The position stream's id.
    pub position_id: PositionId,
    /// The account holding the position.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY for a long, SELL for a short.
    pub side: Side,
    /// Open size (base asset).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub size: Decimal,
    /// Size-weighted average entry price (8 dp, normalized); `None` only when flat.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub entry_price: Option<Decimal>,
    /// Margin reserved for the position, in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub margin: Decimal,
    /// Leverage of the position.
    pub leverage: u32,
    /// CROSS or ISOLATED.
    pub margin_mode: MarginMode,
    /// The market's last mark price; `None` before the first.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub mark_price: Option<Decimal>,
    /// `side × (size × mark − entry value)`, exact; 0 without a mark.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub unrealized_pnl: Decimal,
    /// `PositionState::liquidation_price` (2 dp); `None` when no positive price liquidates.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub liquidation_price: Option<Decimal>,
    /// PnL realized over the position stream's life.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub realized_pnl: Decimal,
    /// Timestamp of the position stream's last event.
    pub updated_at: Timestamp,
}

/// Every position stream, kept as the Position aggregate's own state (folded with its
/// `Aggregate::apply`, so the entry value is exact), plus each market's spec and mark. The
/// cross wallet comes from an [`AccountsProjection`] of the same log prefix, passed to the
/// queries (see `ReadModels`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionsProjection {
    positions: BTreeMap<PositionId, PositionState>,
    /// Every position stream, in the order it was first opened.
    opened: Vec<PositionId>,
    /// Position streams of each account, in the order they were first opened.
    account_positions: BTreeMap<AccountId, Vec<PositionId>>,
    markets: BTreeMap<Symbol, MarketState>,
}

impl PositionsProjection {
    /// Folds one event: position events and market events; others are ignored.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        match envelope.stream.aggregate_type {
            AggregateType::Position => self.apply_position(envelope),
            AggregateType::Market => self.apply_market(envelope),
            AggregateType::Account | AggregateType::Order => {}
        }
    }

    fn apply_position(&mut self, envelope: &EventEnvelope) {
        let Some(id) = stream_uuid(envelope).map(PositionId) else { return };
        if let Some(position) = self.positions.get_mut(&id) {
            position.apply(envelope);
        } else if let Some(position) = PositionState::create(envelope) {
            self.opened.push(id);
            self.account_positions.entry(position.account_id).or_default().push(id);
            self.positions.insert(id, position);
        }
    }

    fn apply_market(&mut self, envelope: &EventEnvelope) {
        let symbol = match &envelope.event {
            Event::MarketListed(e) => {
                debug_assert!(!self.markets.contains_key(&e.spec.symbol), "a market stream starts once");
                if let Some(market) = MarketState::create(envelope) {
                    self.markets.insert(e.spec.symbol, market);
                }
                return;
            }
            Event::MarkPriceSet(e) => e.symbol,
            Event::FundingSettled(e) => e.symbol,
            _ => return,
        };
        if let Some(market) = self.markets.get_mut(&symbol) {
            market.apply(envelope);
        }
    }

    /// The account's open positions, in the order they were first opened.
    pub fn for_account(&self, account_id: AccountId, accounts: &AccountsProjection) -> Vec<PositionView> {
        self.open_of(account_id).map(|position| self.view(position, accounts)).collect()
    }

    /// Every open position (system accounts' included), in the order they were first opened.
    pub fn all_open(&self, accounts: &AccountsProjection) -> Vec<PositionView> {
        let open = self.opened.iter().filter_map(|id| self.positions.get(id)).filter(|p| p.is_open());
        open.map(|position| self.view(position, accounts)).collect()
    }

    /// One position stream's view while it is open; `None` when flat or unknown.
    pub fn open_view(&self, position_id: PositionId, accounts: &AccountsProjection) -> Option<PositionView> {
        let position = self.positions.get(&position_id).filter(|p| p.is_open())?;
        Some(self.view(position, accounts))
    }

    /// The account holding a position stream.
    pub fn account_of(&self, position_id: PositionId) -> Option<AccountId> {
        self.positions.get(&position_id).map(|p| p.account_id)
    }

    /// Every market's state (spec, mark price, last funding), by symbol.
    pub fn markets(&self) -> impl Iterator<Item = &MarketState> {
        self.markets.values()
    }

    fn open_of(&self, account_id: AccountId) -> impl Iterator<Item = &PositionState> {
        let ids = self.account_positions.get(&account_id).into_iter().flatten();
        ids.filter_map(|id| self.positions.get(id)).filter(|p| p.is_open())
    }

    fn mark_price(&self, symbol: Symbol) -> Option<Decimal> {
        self.markets.get(&symbol).and_then(|market| market.mark_price)
    }

    fn view(&self, position: &PositionState, accounts: &AccountsProjection) -> PositionView {
        let mark_price = self.mark_price(position.symbol);
        let liquidation_price = self
            .markets
            .get(&position.symbol)
            .and_then(|market| position.liquidation_price(&market.spec, self.liquidation_inputs(position, accounts)));
        PositionView {
            position_id: position.position_id,
            account_id: position.account_id,
            symbol: position.symbol,
            side: position.side,
            size: position.size,
            entry_price: position.entry_price(),
            margin: position.margin,
            leverage: position.leverage,
            margin_mode: position.margin_mode,
            mark_price,
            unrealized_pnl: mark_price.map_or(Decimal::ZERO, |mark| position.unrealized_pnl(mark)),
            liquidation_price,
            realized_pnl: position.realized_pnl,
            updated_at: position.updated_at,
        }
    }

    /// The inputs of `position`'s liquidation price, as `Exchange::liquidation_price` takes them.
    fn liquidation_inputs(&self, position: &PositionState, accounts: &AccountsProjection) -> LiquidationInputs {
        let balance = accounts.balance(position.account_id).unwrap_or_default();
        let market = |symbol| self.markets.get(&symbol).map(|m| (&m.spec, m.mark_price));
        crate::position::queries::liquidation_inputs(position, balance, self.open_of(position.account_id), market)
    }
}
