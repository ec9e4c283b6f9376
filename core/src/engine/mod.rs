//! The exchange engine: one in-memory state of every aggregate and order book, changed only
//! by applying events. `execute` decides a command against that state and returns one atomic
//! batch of events for every stream it touched; each event is applied as it is produced, so
//! the live engine is, by construction, the fold of its own log (`Exchange::replay`).

pub mod book;
mod commands;
pub mod hash;
mod matching;
pub mod receipt;
mod risk;
mod savepoint;
pub mod table;

use crate::account::AccountState;
use crate::aggregate::Aggregate;
use crate::command::{Command, CommandContext};
use crate::error::{CommandError, ErrorCode};
use crate::event::{Event, EventEnvelope, Metadata, StreamId};
use crate::ids::{AccountId, CommandId, EventId, OrderId, PositionId};
use crate::market::MarketState;
use crate::order::fold::order_id_of;
use crate::order::OrderState;
use crate::position::PositionState;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, OrderType, RejectCode, Side};
use book::Book;
use hash::IdMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Counters from which the engine derives ids. Restored by folding the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Orders placed or rejected so far; the next order id derives from it.
    pub orders: u64,
    /// Trades so far (one per taker fill); the next trade id derives from it.
    pub trades: u64,
    /// Accounts created, the two system accounts included.
    pub accounts: u64,
    /// Position streams opened (one per account and symbol).
    pub positions: u64,
}

/// How a decided command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Every event of the batch took effect.
    Accepted,
    /// An order was refused by a business rule; the batch holds its `OrderRejected`.
    Rejected(RejectCode),
}

/// The events one command produced, in global order, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The events, already applied to the engine.
    pub events: Vec<EventEnvelope>,
    /// Accepted, or rejected with the reason code.
    pub outcome: Outcome,
}

/// The whole exchange in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    pub(crate) markets: BTreeMap<Symbol, MarketState>,
    pub(crate) books: BTreeMap<Symbol, Book>,
    pub(crate) accounts: table::Table<AccountState>,
    pub(crate) orders: table::Table<OrderState>,
    pub(crate) positions: table::Table<PositionState>,
    pub(crate) position_index: IdMap<(AccountId, Symbol), PositionId>,
    /// Positions of each account, in the order they were opened.
    pub(crate) account_positions: IdMap<AccountId, Vec<PositionId>>,
    /// Positions of each market, in the order they were opened.
    pub(crate) market_positions: BTreeMap<Symbol, Vec<PositionId>>,
    pub(crate) counters: Counters,
    pub(crate) last_position: u64,
    pub(crate) last_timestamp: Timestamp,
}

/// Builds envelopes for one command: positions, versions, ids and metadata.
pub(crate) struct Batch<'c> {
    ctx: &'c CommandContext,
    metadata: std::sync::Arc<Metadata>,
    pub(crate) events: Vec<EventEnvelope>,
    /// Open while part of the command may still be undone (see `savepoint.rs`).
    pub(crate) savepoint: Option<savepoint::Savepoint>,
}

impl Exchange {
    /// An empty exchange (no markets, no accounts). Run [`Command::Genesis`] first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds an exchange by folding a log from its first event.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a EventEnvelope>) -> Self {
        let mut exchange = Exchange::new();
        for envelope in events {
            exchange.apply(envelope);
        }
        exchange
    }

    /// Decides `command` and applies its events. On `Err` nothing changed.
    pub fn execute(&mut self, command: &Command, ctx: &CommandContext) -> Result<Decision, CommandError> {
        if !matches!(command, Command::Genesis { .. }) && self.markets.is_empty() {
            return Err(CommandError::new(ErrorCode::NotInitialized, "the exchange has no markets yet"));
        }
        // A command is identified by the global position of its first event.
        let command_id: Uuid = CommandId::derive(self.last_position + 1).0;
        let mut metadata = ctx.metadata.clone();
        metadata.causation_id = metadata.causation_id.or(Some(command_id));
        metadata.correlation_id = metadata.correlation_id.or(metadata.causation_id);
        let mut batch =
            Batch { ctx, metadata: std::sync::Arc::new(metadata), events: Vec::with_capacity(8), savepoint: None };
        let outcome = self.decide(command, &mut batch)?;
        Ok(Decision { events: batch.events, outcome })
    }

    fn decide(&mut self, command: &Command, batch: &mut Batch<'_>) -> Result<Outcome, CommandError> {
        match command {
            Command::Genesis { markets } => self.genesis(markets, batch),
            Command::CreateAccount { user_id } => self.create_account(*user_id, batch),
            Command::Deposit { account_id, amount } => self.deposit(*account_id, *amount, batch),
            Command::Withdraw { account_id, amount } => self.withdraw(*account_id, *amount, batch),
            Command::PlaceOrder(order) => self.place_order(order, batch),
            Command::CancelOrder { account_id, order_id } => self.cancel_order(*account_id, *order_id, batch),
            Command::CancelAllOrders { account_id, symbol } => self.cancel_all_orders(*account_id, *symbol, batch),
            Command::ChangeLeverage { account_id, symbol, leverage } => {
                self.change_leverage(*account_id, *symbol, *leverage, batch)
            }
            Command::AdjustMargin { account_id, symbol, amount } => {
                self.adjust_margin(*account_id, *symbol, *amount, batch)
            }
            Command::SetMarkPrice { symbol, price } => self.set_mark_price(*symbol, *price, batch),
            Command::SettleFunding { symbol, rate } => self.settle_funding(*symbol, *rate, batch),
            Command::CorrectOrder {
                order_id,
                corrected_event_id,
                corrected_version,
                corrections,
                reason,
                corrected_by,
            } => {
                let corrected = (*corrected_event_id, *corrected_version);
                self.correct_order(*order_id, corrected, corrections, reason, *corrected_by, batch)
            }
        }
    }

    /// Wraps `event` in its envelope, applies it, and appends it to the batch.
    pub(crate) fn emit(&mut self, batch: &mut Batch<'_>, event: Event) {
        let stream = event.stream();
        let position = self.last_position + 1;
        let envelope = EventEnvelope {
            position,
            event_id: EventId::derive(position),
            stream,
            version: self.stream_version(&stream) + 1,
            schema_version: event.schema_version(),
            timestamp: batch.ctx.now,
            event,
            metadata: batch.metadata.clone(),
            prev_hash: Default::default(),
            hash: Default::default(),
        };
        if batch.savepoint.is_some() {
            let prior = self.prior_of(&stream);
            if let (Some(savepoint), Some(prior)) = (batch.savepoint.as_mut(), prior) {
                savepoint.priors.push(prior);
            }
        }
        self.apply(&envelope);
        batch.events.push(envelope);
    }

    /// Current version of a stream (0 when it has no events).
    pub fn stream_version(&self, stream: &StreamId) -> u64 {
        use crate::event::{AggregateId, AggregateType};
        match (stream.aggregate_type, stream.aggregate_id) {
            (AggregateType::Order, AggregateId::Uuid(id)) => self.orders.get(&OrderId(id)).map_or(0, |s| s.version),
            (AggregateType::Account, AggregateId::Uuid(id)) => {
                self.accounts.get(&AccountId(id)).map_or(0, |s| s.version)
            }
            (AggregateType::Position, AggregateId::Uuid(id)) => {
                self.positions.get(&PositionId(id)).map_or(0, |s| s.version)
            }
            (AggregateType::Market, AggregateId::Symbol(symbol)) => self.markets.get(&symbol).map_or(0, |s| s.version),
            _ => 0,
        }
    }

    /// Evolves the engine by one event. Never fails: a stored event is a fact.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        debug_assert_eq!(envelope.position, self.last_position + 1, "global positions are contiguous");
        self.last_position = envelope.position;
        self.last_timestamp = envelope.timestamp;
        match &envelope.event {
            Event::OrderPlaced(_)
            | Event::OrderRejected(_)
            | Event::OrderMatched(_)
            | Event::OrderPartiallyFilled(_)
            | Event::OrderFilled(_)
            | Event::OrderCancelled(_)
            | Event::OrderExpired(_)
            | Event::OrderCorrected(_) => self.apply_order(envelope),
            Event::PositionOpened(_)
            | Event::PositionIncreased(_)
            | Event::PositionDecreased(_)
            | Event::PositionClosed(_)
            | Event::PositionLiquidated(_)
            | Event::LeverageChanged(_)
            | Event::MarginAdded(_)
            | Event::MarginRemoved(_) => self.apply_position(envelope),
            Event::MarketListed(_) | Event::MarkPriceSet(_) | Event::FundingSettled(_) => self.apply_market(envelope),
            _ => self.apply_account(envelope),
        }
    }

    fn apply_order(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::OrderPlaced(e) => {
                self.counters.orders += 1;
                if let (OrderType::Limit, Some(price)) = (e.order_type, e.price) {
                    self.books.entry(e.symbol).or_default().insert(e.side, price, e.order_id);
                }
                self.orders.insert(OrderState::create(envelope).expect("OrderPlaced starts a stream"));
            }
            Event::OrderRejected(_) => {
                self.counters.orders += 1;
                self.orders.insert(OrderState::create(envelope).expect("OrderRejected starts a stream"));
            }
            event => {
                let Some(order_id) = order_id_of(event) else { return };
                let Some(order) = self.orders.get_mut(&order_id) else { return };
                order.apply(envelope);
                if let Event::OrderMatched(m) = event {
                    self.counters.trades += u64::from(!m.is_maker);
                }
                let ended = matches!(event, Event::OrderFilled(_) | Event::OrderCancelled(_) | Event::OrderExpired(_));
                if let (true, Some(price)) = (ended, order.price) {
                    let (side, symbol) = (order.side, order.symbol);
                    if let Some(book) = self.books.get_mut(&symbol) {
                        book.remove(side, price, order_id);
                    }
                }
            }
        }
    }

    fn apply_position(&mut self, envelope: &EventEnvelope) {
        let Event::PositionOpened(e) = &envelope.event else {
            let id = PositionId(match envelope.stream.aggregate_id {
                crate::event::AggregateId::Uuid(id) => id,
                crate::event::AggregateId::Symbol(_) => return,
            });
            if let Some(position) = self.positions.get_mut(&id) {
                position.apply(envelope);
            }
            return;
        };
        match self.positions.get_mut(&e.position_id) {
            Some(position) => position.apply(envelope),
            None => {
                self.counters.positions += 1;
                self.position_index.insert((e.account_id, e.symbol), e.position_id);
                self.account_positions.entry(e.account_id).or_default().push(e.position_id);
                self.market_positions.entry(e.symbol).or_default().push(e.position_id);
                self.positions.insert(PositionState::create(envelope).expect("PositionOpened starts a stream"));
            }
        }
    }

    fn apply_market(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::MarketListed(e) => {
                self.books.entry(e.spec.symbol).or_default();
                self.markets
                    .insert(e.spec.symbol, MarketState::create(envelope).expect("MarketListed starts a stream"));
            }
            event => {
                let symbol = match event {
                    Event::MarkPriceSet(e) => e.symbol,
                    Event::FundingSettled(e) => e.symbol,
                    _ => return,
                };
                if let Some(market) = self.markets.get_mut(&symbol) {
                    market.apply(envelope);
                }
            }
        }
    }

    fn apply_account(&mut self, envelope: &EventEnvelope) {
        if let Event::AccountCreated(_) = &envelope.event {
            self.counters.accounts += 1;
            self.accounts.insert(AccountState::create(envelope).expect("AccountCreated starts a stream"));
            return;
        }
        let crate::event::AggregateId::Uuid(id) = envelope.stream.aggregate_id else { return };
        if let Some(account) = self.accounts.get_mut(&AccountId(id)) {
            account.apply(envelope);
        }
    }
}

/// A hypothetical position (size, entry value, margin) used to test a fill before it happens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exposure {
    pub side: Side,
    pub size: Decimal,
    pub entry_value: Decimal,
    pub margin: Decimal,
    pub mode: MarginMode,
}

/// Queries over the live state.
impl Exchange {
    /// Global position of the last event applied.
    pub fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Timestamp of the last event applied.
    pub fn last_timestamp(&self) -> Timestamp {
        self.last_timestamp
    }

    /// Id counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// An account's state.
    pub fn account(&self, id: AccountId) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    /// An order's state.
    pub fn order(&self, id: OrderId) -> Option<&OrderState> {
        self.orders.get(&id)
    }

    /// A position's state.
    pub fn position(&self, id: PositionId) -> Option<&PositionState> {
        self.positions.get(&id)
    }

    /// The position of an account in a symbol (open or flat), if it ever had one.
    pub fn position_of(&self, account_id: AccountId, symbol: Symbol) -> Option<&PositionState> {
        self.position_index.get(&(account_id, symbol)).and_then(|id| self.positions.get(id))
    }

    /// A market's state.
    pub fn market(&self, symbol: Symbol) -> Option<&MarketState> {
        self.markets.get(&symbol)
    }

    /// The order book of a market.
    pub fn book(&self, symbol: Symbol) -> Option<&Book> {
        self.books.get(&symbol)
    }

    /// Every market, by symbol.
    pub fn markets(&self) -> impl Iterator<Item = &MarketState> {
        self.markets.values()
    }

    /// Every account (in no particular order).
    pub fn accounts(&self) -> impl Iterator<Item = &AccountState> {
        self.accounts.values()
    }

    /// Every order (in no particular order).
    pub fn orders(&self) -> impl Iterator<Item = &OrderState> {
        self.orders.values()
    }

    /// Every position (in no particular order).
    pub fn positions(&self) -> impl Iterator<Item = &PositionState> {
        self.positions.values()
    }

    /// Positions of an account, in the order they were first opened.
    pub fn positions_of(&self, account_id: AccountId) -> impl Iterator<Item = &PositionState> {
        self.account_positions.get(&account_id).into_iter().flatten().filter_map(|id| self.positions.get(id))
    }

    /// The mark price of a market, if one was set.
    pub fn mark_price(&self, symbol: Symbol) -> Option<Decimal> {
        self.markets.get(&symbol).and_then(|m| m.mark_price)
    }

    /// Unrealized PnL of a position at its market's mark (0 without a mark).
    pub fn unrealized_pnl(&self, position: &PositionState) -> Decimal {
        self.mark_price(position.symbol).map_or(Decimal::ZERO, |mark| position.unrealized_pnl(mark))
    }

    /// `(Σ position margins, Σ unrealized PnL of cross positions)`, with the position in
    /// `replace.0` taken as `replace.1` (which may be a position the account does not have yet).
    pub(crate) fn margin_totals(
        &self,
        account_id: AccountId,
        replace: Option<(Symbol, Exposure)>,
    ) -> (Decimal, Decimal) {
        let (mut margins, mut cross_upnl) = (Decimal::ZERO, Decimal::ZERO);
        let mut add = |symbol: Symbol, exposure: Exposure| {
            margins += exposure.margin;
            if exposure.mode == MarginMode::Cross && !exposure.size.is_zero() {
                if let Some(mark) = self.mark_price(symbol) {
                    cross_upnl += exposure.side.sign() * (exposure.size * mark - exposure.entry_value);
                }
            }
        };
        let mut replaced = false;
        for position in self.positions_of(account_id) {
            let exposure = match replace {
                Some((symbol, exposure)) if symbol == position.symbol => {
                    replaced = true;
                    exposure
                }
                _ => Exposure {
                    side: position.side,
                    size: position.size,
                    entry_value: position.entry_value,
                    margin: position.margin,
                    mode: position.margin_mode,
                },
            };
            add(position.symbol, exposure);
        }
        if let (false, Some((symbol, exposure))) = (replaced, replace) {
            add(symbol, exposure);
        }
        (margins, cross_upnl)
    }

    /// `available = balance − locked − Σ position margins + min(0, Σ cross unrealized PnL)`.
    pub fn available(&self, account_id: AccountId) -> Decimal {
        let Some(account) = self.accounts.get(&account_id) else { return Decimal::ZERO };
        let (margins, cross_upnl) = self.margin_totals(account_id, None);
        account.balance - account.locked - margins + cross_upnl.min(Decimal::ZERO)
    }

    /// Σ position margins of an account.
    pub fn position_margin(&self, account_id: AccountId) -> Decimal {
        self.margin_totals(account_id, None).0
    }
}

/// Liquidation and maintenance figures of a position, at its market's mark.
impl Exchange {
    /// Liquidation price of an open position (DOMAIN.md formula): the wallet is the position
    /// margin for ISOLATED, and for CROSS the balance less isolated margins, with the account's
    /// other cross positions' maintenance margin and uPnL.
    pub fn liquidation_price(&self, position_id: PositionId) -> Option<Decimal> {
        let position = self.positions.get(&position_id).filter(|p| p.is_open())?;
        let spec = &self.markets.get(&position.symbol)?.spec;
        let balance = self.accounts.get(&position.account_id)?.balance;
        let open = self.positions_of(position.account_id).filter(|p| p.is_open());
        let market = |symbol| self.markets.get(&symbol).map(|m| (&m.spec, m.mark_price));
        let inputs = crate::position::queries::liquidation_inputs(position, balance, open, market);
        position.liquidation_price(spec, inputs)
    }
}
