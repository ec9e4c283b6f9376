//! The read models against the engine: a scenario of real commands is decided by
//! `Exchange`, its events are folded by `ReadModels`, and after every command each read
//! model must say what the engine's own state says.

use super::*;
use crate::account::AccountState;
use crate::command::{Command, CommandContext, PlaceOrder};
use crate::engine::{Decision, Exchange};
use crate::event::{Event, EventEnvelope};
use crate::ids::{AccountId, OrderId, UserId};
use crate::market::spec::default_markets;
use crate::order::events::FieldCorrection;
use crate::order::OrderState;
use crate::position::PositionState;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, OrderStatus, OrderType, Side, StpMode, TimeInForce};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

fn d(text: &str) -> Decimal {
    text.parse().expect("test decimal")
}

fn sym(text: &str) -> Symbol {
    text.parse().expect("test symbol")
}

/// An exchange, the read models folded from its log, and aliases for accounts and orders.
struct Sim {
    exchange: Exchange,
    models: ReadModels,
    log: Vec<EventEnvelope>,
    users: BTreeMap<&'static str, UserId>,
    accounts: BTreeMap<&'static str, AccountId>,
    orders: BTreeMap<&'static str, OrderId>,
    now_ms: i64,
    hold_clock: bool,
}

impl Sim {
    fn new() -> Self {
        let mut sim = Sim {
            exchange: Exchange::new(),
            models: ReadModels::new(),
            log: Vec::new(),
            users: BTreeMap::new(),
            accounts: BTreeMap::new(),
            orders: BTreeMap::new(),
            now_ms: 1_767_225_600_000,
            hold_clock: false,
        };
        sim.run(Command::Genesis { markets: default_markets() });
        sim
    }

    /// Decides `command` one second after the previous one (or at the same instant after
    /// [`Sim::same_time`]), folds its events and checks every read model against the engine.
    fn run(&mut self, command: Command) -> Decision {
        if !std::mem::take(&mut self.hold_clock) {
            self.now_ms += 1_000;
        }
        let ctx = CommandContext { now: Timestamp(self.now_ms), metadata: Default::default() };
        let decision = self.exchange.execute(&command, &ctx).unwrap_or_else(|e| panic!("{command:?}: {e:?}"));
        for envelope in &decision.events {
            self.models.apply(envelope);
        }
        self.log.extend(decision.events.iter().cloned());
        assert_matches_engine(self);
        decision
    }

    /// The next command runs at the same instant as the previous one.
    fn same_time(&mut self) {
        self.hold_clock = true;
    }

    fn account(&mut self, alias: &'static str, deposit: &str) {
        let user_id = UserId::derive(self.users.len() as u64 + 1);
        let decision = self.run(Command::CreateAccount { user_id });
        let Some(Event::AccountCreated(created)) = decision.events.first().map(|e| &e.event) else {
            panic!("CreateAccount gives AccountCreated")
        };
        let account_id = created.account_id;
        self.users.insert(alias, user_id);
        self.accounts.insert(alias, account_id);
        self.run(Command::Deposit { account_id, amount: d(deposit) });
    }

    fn order(
        &self,
        account: &str,
        symbol: &str,
        side: Side,
        price: Option<&str>,
        qty: &str,
        leverage: u32,
    ) -> PlaceOrder {
        PlaceOrder {
            account_id: self.accounts[account],
            symbol: sym(symbol),
            side,
            order_type: if price.is_some() { OrderType::Limit } else { OrderType::Market },
            price: price.map(d),
            quantity: d(qty),
            leverage,
            margin_mode: MarginMode::Cross,
            time_in_force: TimeInForce::Gtc,
            reduce_only: false,
            post_only: false,
            stp_mode: StpMode::ExpireTaker,
            client_order_id: None,
        }
    }

    fn place(&mut self, alias: &'static str, order: PlaceOrder) {
        let decision = self.run(Command::PlaceOrder(order));
        let order_id = match decision.events.first().map(|e| &e.event) {
            Some(Event::OrderPlaced(e)) => e.order_id,
            Some(Event::OrderRejected(e)) => e.order_id,
            other => panic!("PlaceOrder starts with OrderPlaced or OrderRejected, not {other:?}"),
        };
        self.orders.insert(alias, order_id);
    }

    fn cancel(&mut self, account: &str, order: &str) {
        self.run(Command::CancelOrder { account_id: self.accounts[account], order_id: self.orders[order] });
    }

    fn correct_placement(&mut self, order: &str, corrections: &[(&str, &str)]) {
        let order_id = self.orders[order];
        let placed = self.log.iter().find(|e| matches!(&e.event, Event::OrderPlaced(p) if p.order_id == order_id));
        let placed = placed.expect("the corrected order was placed");
        let corrections = corrections
            .iter()
            .map(|(field, to)| FieldCorrection { field: (*field).into(), from: None, to: Some((*to).into()) })
            .collect();
        self.run(Command::CorrectOrder {
            order_id,
            corrected_event_id: placed.event_id,
            corrected_version: placed.version,
            corrections,
            reason: "desk request".into(),
            corrected_by: UserId::derive(999),
        });
    }

    fn mark(&mut self, symbol: &str, price: &str) {
        self.run(Command::SetMarkPrice { symbol: sym(symbol), price: d(price) });
    }

    fn user_orders(&self, user: &str) -> Vec<&OrderState> {
        let user_id = self.users[user];
        self.exchange.orders().filter(|o| o.user_id == user_id).collect()
    }
}

fn isolated(mut order: PlaceOrder) -> PlaceOrder {
    order.margin_mode = MarginMode::Isolated;
    order
}

fn ioc(mut order: PlaceOrder) -> PlaceOrder {
    order.time_in_force = TimeInForce::Ioc;
    order
}

/// The view the orders read model must show for an engine order.
/// Newest first: createdAt, then order id, descending.
fn newest_first(mut views: Vec<OrderView>) -> Vec<OrderView> {
    views.sort_by_key(|view| std::cmp::Reverse((view.created_at, view.order_id)));
    views
}

fn expected_summary(exchange: &Exchange, account: &AccountState) -> AccountSummary {
    let id = account.account_id;
    let cross_open = exchange.positions_of(id).filter(|p| p.is_open() && p.margin_mode == MarginMode::Cross);
    AccountSummary {
        account_id: id,
        user_id: account.user_id,
        kind: account.kind,
        balance: account.balance,
        locked: account.locked,
        available: exchange.available(id),
        position_margin: exchange.position_margin(id),
        unrealized_pnl: cross_open.map(|p| exchange.unrealized_pnl(p)).sum(),
    }
}

fn expected_position(exchange: &Exchange, p: &PositionState) -> PositionView {
    let market = exchange.market(p.symbol).expect("listed");
    PositionView {
        position_id: p.position_id,
        account_id: p.account_id,
        symbol: p.symbol,
        side: p.side,
        size: p.size,
        entry_price: p.entry_price(),
        margin: p.margin,
        leverage: p.leverage,
        margin_mode: p.margin_mode,
        mark_price: market.mark_price,
        unrealized_pnl: exchange.unrealized_pnl(p),
        liquidation_price: exchange.liquidation_price(p.position_id),
        realized_pnl: p.realized_pnl,
        updated_at: p.updated_at,
    }
}

/// The tape the trades read model must hold: one trade per taker `OrderMatched`, with the
/// taker order's symbol and side from the engine.
fn expected_tape(sim: &Sim) -> BTreeMap<Symbol, Vec<Trade>> {
    let mut tape: BTreeMap<Symbol, Vec<Trade>> = BTreeMap::new();
    for envelope in &sim.log {
        let Event::OrderMatched(m) = &envelope.event else { continue };
        if m.is_maker {
            continue;
        }
        let taker = sim.exchange.order(m.order_id).expect("taker order");
        tape.entry(taker.symbol).or_default().push(Trade {
            trade_id: m.trade_id,
            symbol: taker.symbol,
            price: m.price,
            quantity: m.quantity,
            taker_side: taker.side,
            taker_order_id: m.order_id,
            maker_order_id: m.counterparty_order_id,
            timestamp: envelope.timestamp,
            position: envelope.position,
        });
    }
    tape
}

fn assert_matches_engine(sim: &Sim) {
    let (exchange, models) = (&sim.exchange, &sim.models);
    assert_eq!(models.last_position(), exchange.last_position());
    assert_orders_match(sim);
    for account in exchange.accounts() {
        let summary = models.accounts().summary(account.account_id);
        assert_eq!(summary, Some(expected_summary(exchange, account)), "account {}", account.account_id);
        let expected: Vec<PositionView> = exchange
            .positions_of(account.account_id)
            .filter(|p| p.is_open())
            .map(|p| expected_position(exchange, p))
            .collect();
        assert_eq!(models.positions_for_account(account.account_id), expected, "positions of {}", account.account_id);
    }
    assert_eq!(models.accounts().summaries().len(), exchange.accounts().count());
    let mut open: Vec<PositionView> =
        exchange.positions().filter(|p| p.is_open()).map(|p| expected_position(exchange, p)).collect();
    let mut folded = models.open_positions();
    open.sort_by_key(|p| p.position_id);
    folded.sort_by_key(|p| p.position_id);
    assert_eq!(folded, open);
    let tape = expected_tape(sim);
    assert_eq!(tape.values().map(Vec::len).sum::<usize>() as u64, exchange.counters().trades);
    for market in exchange.markets() {
        let symbol = market.spec.symbol;
        let expected: Vec<&Trade> = tape.get(&symbol).into_iter().flat_map(|t| t.iter().rev()).collect();
        assert_eq!(models.trades().recent(symbol, usize::MAX), expected, "tape of {symbol}");
    }
}

fn assert_orders_match(sim: &Sim) {
    let (exchange, models) = (&sim.exchange, &sim.models);
    for order in exchange.orders() {
        assert_eq!(models.orders().get(order.order_id), Some(OrderView::from(order)), "order {}", order.order_id);
    }
    for user in sim.users.keys() {
        let open = sim.user_orders(user).into_iter().filter(|o| o.is_open()).map(OrderView::from).collect();
        let active: Vec<OrderView> = models.orders().active_for_user(sim.users[user]);
        assert_eq!(active, newest_first(open), "active orders of {user}");
    }
}

/// BTC trading between alice and bob, alice's orders of every ending, and a correction.
fn trade(sim: &mut Sim) {
    for (alias, deposit) in [("alice", "100000"), ("bob", "100000"), ("carol", "100000"), ("dave", "20000")] {
        sim.account(alias, deposit);
    }
    sim.account("frank", "1000");
    sim.place("a1", sim.order("alice", "BTCUSDT", Side::Sell, Some("50000"), "0.5", 10));
    sim.place("b1", sim.order("bob", "BTCUSDT", Side::Buy, None, "0.2", 10));
    sim.place("b2", sim.order("bob", "BTCUSDT", Side::Buy, Some("50000"), "0.4", 10));
    sim.place("a2", sim.order("alice", "ETHUSDT", Side::Buy, Some("2000"), "1", 5));
    sim.place("a3", sim.order("alice", "ETHUSDT", Side::Buy, Some("2000.005"), "1", 5));
    sim.cancel("alice", "a2");
    sim.place("a4", sim.order("alice", "BTCUSDT", Side::Sell, Some("50000"), "0.1", 10));
    sim.place("a5", ioc(sim.order("alice", "ETHUSDT", Side::Buy, Some("1900"), "1", 5)));
    sim.place("a6", sim.order("alice", "ETHUSDT", Side::Sell, Some("2100"), "2", 5));
    sim.same_time();
    sim.place("a7", sim.order("alice", "ETHUSDT", Side::Sell, Some("2200"), "1", 5));
    sim.correct_placement("a6", &[("clientOrderId", "desk-7"), ("note", "fat finger")]);
    sim.place("b3", sim.order("bob", "ETHUSDT", Side::Buy, None, "1", 5));
}

/// Marks, leverage, isolated margin, funding, a decrease, a close, a liquidation, and an
/// account with both an isolated and a cross position.
fn risk(sim: &mut Sim) {
    sim.mark("BTCUSDT", "51000");
    let (bob, dave) = (sim.accounts["bob"], sim.accounts["dave"]);
    let btc = sym("BTCUSDT");
    sim.run(Command::ChangeLeverage { account_id: bob, symbol: btc, leverage: 5 });
    sim.place("c1", sim.order("carol", "BTCUSDT", Side::Sell, Some("50000"), "1", 10));
    sim.place("d1", isolated(sim.order("dave", "BTCUSDT", Side::Buy, Some("50000"), "1", 20)));
    sim.run(Command::AdjustMargin { account_id: dave, symbol: btc, amount: d("100") });
    sim.run(Command::AdjustMargin { account_id: dave, symbol: btc, amount: d("-20") });
    sim.run(Command::SettleFunding { symbol: btc, rate: d("0.0001") });
    sim.place("c2", sim.order("carol", "BTCUSDT", Side::Buy, Some("50500"), "0.2", 10));
    sim.place("b4", sim.order("bob", "BTCUSDT", Side::Sell, None, "0.2", 5));
    sim.place("c3", sim.order("carol", "ETHUSDT", Side::Buy, Some("2000"), "1", 5));
    sim.place("b5", sim.order("bob", "ETHUSDT", Side::Sell, None, "1", 5));
    sim.place("c4", sim.order("carol", "BTCUSDT", Side::Sell, Some("50000"), "0.1", 10));
    sim.place("f1", isolated(sim.order("frank", "BTCUSDT", Side::Buy, Some("50000"), "0.1", 100)));
    sim.place("f2", isolated(sim.order("frank", "BTCUSDT", Side::Buy, Some("40000"), "0.01", 100)));
    sim.mark("BTCUSDT", "49400");
    sim.place("a8", sim.order("alice", "BTCUSDT", Side::Sell, Some("60000"), "0.01", 10));
    sim.place("a9", sim.order("alice", "BTCUSDT", Side::Buy, Some("60000"), "0.01", 10));
    sim.mark("ETHUSDT", "2050");
    sim.place("c5", sim.order("carol", "ETHUSDT", Side::Buy, Some("2000"), "10", 10));
    sim.place("d2", sim.order("dave", "ETHUSDT", Side::Sell, None, "10", 20));
    sim.run(Command::Withdraw { account_id: bob, amount: d("1000") });
}

fn scenario() -> Sim {
    let mut sim = Sim::new();
    trade(&mut sim);
    risk(&mut sim);
    sim
}

#[test]
fn read_models_equal_the_engine_after_every_command() {
    let sim = scenario();
    let seen: BTreeSet<&str> = sim.log.iter().map(|e| e.event.event_type()).collect();
    let missing: Vec<&&str> =
        crate::event::EVENT_TYPES.iter().filter(|t| !seen.contains(*t) && **t != "FundingShortfallCovered").collect();
    assert!(missing.is_empty(), "the scenario should produce every event type but {missing:?}");
    let statuses: BTreeSet<OrderStatus> = sim.user_orders("alice").iter().map(|o| o.status).collect();
    assert_eq!(statuses.len(), OrderStatus::ALL.len(), "alice's orders end in every status");
}

#[test]
fn corrections_show_on_the_order_view() {
    let sim = scenario();
    let view = sim.models.orders().get(sim.orders["a6"]).expect("a6");
    assert_eq!(view.client_order_id.as_deref(), Some("desk-7"));
    assert_eq!(view.note.as_deref(), Some("fat finger"));
}

/// Page sizes and filters of alice's history; the expected page is cut from the engine's
/// orders with the same filters.
#[test]
fn history_pages_and_filters_newest_first() {
    let sim = scenario();
    let alice = sim.users["alice"];
    let created = |alias: &str| sim.exchange.order(sim.orders[alias]).expect("placed").created_at;
    let eth = Some(sym("ETHUSDT"));
    let cases: Vec<HistoryQuery> = vec![
        HistoryQuery::default(),
        HistoryQuery { page: 2, limit: 2, ..Default::default() },
        HistoryQuery { page: 5, limit: 2, ..Default::default() },
        HistoryQuery { page: 6, limit: 2, ..Default::default() },
        HistoryQuery { page: 0, limit: 1000, ..Default::default() },
        HistoryQuery { page: 1, limit: 0, ..Default::default() },
        HistoryQuery { status: Some(OrderStatus::Filled), ..Default::default() },
        HistoryQuery { symbol: eth, ..Default::default() },
        HistoryQuery { symbol: eth, status: Some(OrderStatus::Cancelled), ..Default::default() },
        HistoryQuery { start_time: Some(created("a4")), end_time: Some(created("a7")), ..Default::default() },
        HistoryQuery { start_time: Some(created("a6")), limit: 3, page: 2, ..Default::default() },
        HistoryQuery { start_time: Some(created("a7")), end_time: Some(created("a4")), ..Default::default() },
    ];
    let all = newest_first(sim.user_orders("alice").into_iter().map(OrderView::from).collect());
    for query in &cases {
        let (page, limit) = (query.page.max(1), query.limit.clamp(1, 100));
        let matching: Vec<OrderView> = all
            .iter()
            .filter(|o| query.symbol.is_none_or(|s| o.symbol == s) && query.status.is_none_or(|s| o.status == s))
            .filter(|o| query.start_time.is_none_or(|t| o.created_at >= t))
            .filter(|o| query.end_time.is_none_or(|t| o.created_at <= t))
            .cloned()
            .collect();
        let data = matching.iter().skip(((page - 1) * limit) as usize).take(limit as usize).cloned().collect();
        let total_pages = matching.len().div_ceil(limit as usize) as u32;
        let expected = Page { data, total: matching.len() as u64, page, limit, total_pages };
        assert_eq!(sim.models.orders().history(alice, query), expected, "{query:?}");
    }
}

#[test]
fn history_page_two_breaks_creation_ties_by_order_id() {
    let sim = scenario();
    let all = newest_first(sim.user_orders("alice").into_iter().map(OrderView::from).collect());
    let page =
        sim.models.orders().history(sim.users["alice"], &HistoryQuery { page: 2, limit: 2, ..Default::default() });
    assert_eq!(page.data, all[2..4].to_vec());
    assert_eq!((page.total, page.total_pages), (all.len() as u64, all.len().div_ceil(2) as u32));
    // a6 and a7 were placed at the same instant: the later id comes first.
    let ids: Vec<OrderId> = page.data.iter().map(|o| o.order_id).collect();
    assert_eq!(ids, vec![sim.orders["a7"], sim.orders["a6"]]);
    assert_eq!(page.data[0].created_at, page.data[1].created_at);
    let nobody = sim.models.orders().history(UserId::derive(12345), &HistoryQuery::default());
    assert_eq!((nobody.total, nobody.total_pages, nobody.data.len()), (0, 0, 0));
}

#[test]
fn recent_trades_are_newest_first_and_limited() {
    let sim = scenario();
    let btc = sym("BTCUSDT");
    let all = sim.models.trades().recent(btc, usize::MAX);
    assert!(all.len() > 2, "the scenario trades BTC more than twice");
    assert_eq!(sim.models.trades().recent(btc, 2), all[..2].to_vec());
    assert!(all.windows(2).all(|w| w[0].position > w[1].position));
    assert!(sim.models.trades().recent(sym("SOLUSDT"), 10).is_empty());
}

/// DOMAIN.md's liquidation-price examples, reached by trading: isolated long and short 1 BTC
/// at 50,000, 20×, margin 2,500; cross long 1 at 50,000 with a balance of 10,000 and nothing
/// else (10,025 deposited, 25 taker fee).
#[test]
fn liquidation_prices_match_the_domain_examples() {
    let mut sim = Sim::new();
    for (alias, deposit) in [("short", "10000"), ("seller", "100000"), ("long", "10000"), ("cross", "10025")] {
        sim.account(alias, deposit);
    }
    sim.place("s1", isolated(sim.order("short", "BTCUSDT", Side::Sell, Some("50000"), "1", 20)));
    sim.place("l1", isolated(sim.order("long", "BTCUSDT", Side::Buy, Some("50000"), "1", 20)));
    sim.place("s2", sim.order("seller", "BTCUSDT", Side::Sell, Some("50000"), "1", 10));
    sim.place("x1", sim.order("cross", "BTCUSDT", Side::Buy, Some("50000"), "1", 10));
    let cross = sim.models.accounts().summary(sim.accounts["cross"]).expect("cross account");
    assert_eq!(cross.balance, d("10000"));
    for (account, liquidation_price) in [("long", "47690.76"), ("short", "52288.56"), ("cross", "40160.64")] {
        let positions = sim.models.positions_for_account(sim.accounts[account]);
        assert_eq!(positions.len(), 1);
        assert_eq!(positions[0].liquidation_price, Some(d(liquidation_price)), "{account}");
    }
}

#[test]
fn views_serialize_in_camel_case() {
    let sim = scenario();
    let page = sim.models.orders().history(sim.users["alice"], &HistoryQuery { limit: 1, ..Default::default() });
    let json = serde_json::to_value(&page).expect("serializes");
    let keys = |value: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&json), ["data", "limit", "page", "total", "totalPages"]);
    let order = keys(&json["data"][0]);
    for key in ["orderId", "userId", "accountId", "type", "executedQty", "avgPrice", "createdAt", "updatedAt"] {
        assert!(order.contains(&key.to_owned()), "{key} in {order:?}");
    }
    let position = serde_json::to_value(&sim.models.open_positions()[0]).expect("serializes");
    for key in ["positionId", "entryPrice", "markPrice", "unrealizedPnl", "liquidationPrice", "marginMode"] {
        assert!(position.get(key).is_some(), "{key} in {position}");
    }
}
