//! The demo story: a small exchange day with enough in it for an auditor to explore —
//! several traders, a market maker's ladder, a few hundred orders with fills, partial fills
//! and cancels, a self-trade prevention, a reduce-only close, a funding settlement, a mark
//! price move that liquidates an isolated position, and an admin's correction. Deterministic:
//! the same start time gives the same log.

use crate::command::{Command, CommandContext, PlaceOrder};
use crate::engine::Exchange;
use crate::event::{Event, EventEnvelope, Metadata, StreamId};
use crate::ids::{AccountId, OrderId, UserId};
use crate::market::spec::default_markets;
use crate::order::events::FieldCorrection;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use crate::workload::Sequence;
use rust_decimal::Decimal;

/// The traders of the demo, in the order their accounts are created.
pub const TRADERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

/// When the demo day starts: 2026-01-01T09:00:00Z.
pub const DEMO_START: Timestamp = Timestamp(1_767_258_000_000);

/// The demo's log, sealed: runs the story on a fresh engine from [`DEMO_START`] and fills in
/// the hash chain. Returns the engine and the stored events.
pub fn sealed_log() -> (Exchange, Vec<crate::event::StoredEvent>) {
    let mut exchange = Exchange::new();
    let mut log = run(&mut exchange, DEMO_START);
    let stored = crate::audit::HashChain::default().seal(&mut log);
    (exchange, stored)
}

/// The admin user id recorded on the demo's correction.
pub const DEMO_ADMIN: UserId = UserId(uuid::Uuid::from_u128(0x75736572_0000_8000_8000_0000000000ad));

struct Demo<'a> {
    exchange: &'a mut Exchange,
    log: Vec<EventEnvelope>,
    now: Timestamp,
    accounts: Vec<AccountId>,
    seq: Sequence,
}

fn symbol(text: &str) -> Symbol {
    text.parse().expect("demo symbols are valid")
}

/// An order as the demo places it; `None` price means MARKET.
struct Order {
    trader: usize,
    symbol: &'static str,
    side: Side,
    price: Option<Decimal>,
    quantity: Decimal,
    leverage: u32,
    margin_mode: MarginMode,
    time_in_force: TimeInForce,
    reduce_only: bool,
    post_only: bool,
    client_order_id: Option<String>,
}

impl Order {
    fn limit(trader: usize, symbol: &'static str, side: Side, price: Decimal, quantity: Decimal) -> Self {
        Order {
            trader,
            symbol,
            side,
            price: Some(price),
            quantity,
            leverage: 10,
            margin_mode: MarginMode::Cross,
            time_in_force: TimeInForce::Gtc,
            reduce_only: false,
            post_only: false,
            client_order_id: None,
        }
    }
}

impl Demo<'_> {
    fn run(&mut self, command: Command, trader: Option<usize>) -> Vec<EventEnvelope> {
        self.now = Timestamp(self.now.0 + 1_000 + self.seq.below(4_000) as i64);
        let user_id = trader.map(|t| UserId::derive(t as u64 + 1));
        let metadata =
            Metadata { user_id, ip_address: trader.map(|t| format!("198.51.100.{}", t + 10)), ..Default::default() };
        let ctx = CommandContext { now: self.now, metadata };
        match self.exchange.execute(&command, &ctx) {
            Ok(decision) => {
                self.log.extend(decision.events.iter().cloned());
                decision.events
            }
            Err(_) => Vec::new(),
        }
    }

    fn place(&mut self, order: Order) -> Option<OrderId> {
        let command = Command::PlaceOrder(PlaceOrder {
            account_id: self.accounts[order.trader],
            symbol: symbol(order.symbol),
            side: order.side,
            order_type: if order.price.is_some() { OrderType::Limit } else { OrderType::Market },
            price: order.price,
            quantity: order.quantity,
            leverage: order.leverage,
            margin_mode: order.margin_mode,
            time_in_force: order.time_in_force,
            reduce_only: order.reduce_only,
            post_only: order.post_only,
            stp_mode: StpMode::ExpireTaker,
            client_order_id: order.client_order_id,
        });
        self.run(command, Some(order.trader)).iter().find_map(|e| match &e.event {
            Event::OrderPlaced(p) => Some(p.order_id),
            _ => None,
        })
    }

    fn cancel(&mut self, trader: usize, order_id: OrderId) {
        let account_id = self.accounts[trader];
        self.run(Command::CancelOrder { account_id, order_id }, Some(trader));
    }

    fn open_orders_of(&self, trader: usize) -> Vec<OrderId> {
        let account_id = self.accounts[trader];
        let mut open: Vec<OrderId> =
            self.exchange.orders().filter(|o| o.account_id == account_id && o.is_open()).map(|o| o.order_id).collect();
        open.sort();
        open
    }
}

/// Runs the demo on a fresh `exchange` starting at `start`; returns the events it produced.
pub fn run(exchange: &mut Exchange, start: Timestamp) -> Vec<EventEnvelope> {
    let mut demo = Demo { exchange, log: Vec::new(), now: start, accounts: Vec::new(), seq: Sequence::new(2026) };
    demo.run(Command::Genesis { markets: default_markets() }, None);
    for (n, _) in TRADERS.iter().enumerate() {
        let events = demo.run(Command::CreateAccount { user_id: UserId::derive(n as u64 + 1) }, None);
        let Some(Event::AccountCreated(created)) = events.first().map(|e| &e.event) else { continue };
        demo.accounts.push(created.account_id);
    }
    let deposits = [250_000, 180_000, 120_000, 90_000, 5_000_000, 4_000];
    for (trader, amount) in deposits.into_iter().enumerate() {
        let account_id = demo.accounts[trader];
        demo.run(Command::Deposit { account_id, amount: Decimal::from(amount) }, None);
    }
    market_maker_ladder(&mut demo);
    random_flow(&mut demo, 320);
    self_trade_prevention(&mut demo);
    let frank_liquidated_at = liquidation_setup(&mut demo);
    funding_and_reduce_only(&mut demo);
    demo.run(Command::SetMarkPrice { symbol: symbol("BTCUSDT"), price: frank_liquidated_at }, None);
    correction(&mut demo);
    demo.log
}

/// erin (index 4) quotes both markets, post-only, ten levels each side.
fn market_maker_ladder(demo: &mut Demo<'_>) {
    for (name, mid, step, size) in [
        ("BTCUSDT", 50_000, Decimal::from(5), Decimal::new(250, 3)),
        ("ETHUSDT", 3_000, Decimal::new(50, 2), Decimal::new(4, 0)),
    ] {
        for level in 1..=10 {
            let offset = step * Decimal::from(level);
            for (side, price) in [(Side::Buy, Decimal::from(mid) - offset), (Side::Sell, Decimal::from(mid) + offset)] {
                let mut order = Order::limit(4, name, side, price, size);
                order.post_only = true;
                demo.place(order);
            }
        }
    }
}

/// Traders 0-3 trade around the mid: resting and crossing limits, IOCs, market orders, cancels.
fn random_flow(demo: &mut Demo<'_>, orders: usize) {
    for n in 0..orders {
        let trader = demo.seq.below(4) as usize;
        let (name, mid, tick) = if demo.seq.below(3) == 0 {
            ("ETHUSDT", 3_000, Decimal::new(1, 2))
        } else {
            ("BTCUSDT", 50_000, Decimal::new(1, 1))
        };
        let side = if demo.seq.below(2) == 0 { Side::Buy } else { Side::Sell };
        let distance = tick * Decimal::from(demo.seq.below(800) as i64 - 200);
        let price = match side {
            Side::Buy => Decimal::from(mid) - distance,
            Side::Sell => Decimal::from(mid) + distance,
        };
        let lots = Decimal::from(demo.seq.below(60) + 1);
        let quantity = if name == "BTCUSDT" { lots * Decimal::new(5, 3) } else { lots * Decimal::new(1, 1) };
        let mut order = Order::limit(trader, name, side, price, quantity);
        order.leverage = [5, 10, 20][demo.seq.below(3) as usize];
        order.client_order_id = Some(format!("{}-{n}", TRADERS[trader]));
        match demo.seq.below(10) {
            0 => order.price = None,
            1 => order.time_in_force = TimeInForce::Ioc,
            _ => {}
        }
        demo.place(order);
        if demo.seq.below(4) == 0 {
            let open = demo.open_orders_of(trader);
            if !open.is_empty() {
                let pick = open[demo.seq.below(open.len() as u64) as usize];
                demo.cancel(trader, pick);
            }
        }
    }
}

/// alice rests an ask and then sends a buy through it: EXPIRE_TAKER cancels the buy.
fn self_trade_prevention(demo: &mut Demo<'_>) {
    let best_bid =
        demo.exchange.book(symbol("ETHUSDT")).and_then(|b| b.best_price(Side::Buy)).unwrap_or(Decimal::from(2_990));
    let ask = best_bid + Decimal::new(1, 2);
    let mut resting = Order::limit(0, "ETHUSDT", Side::Sell, ask, Decimal::ONE);
    resting.client_order_id = Some("alice-stp-ask".into());
    demo.place(resting);
    let mut crossing = Order::limit(0, "ETHUSDT", Side::Buy, ask, Decimal::ONE);
    crossing.client_order_id = Some("alice-stp-buy".into());
    demo.place(crossing);
}

/// frank (index 5) opens an isolated long at 20x with market buys; returns a mark price that
/// lies below his liquidation price.
fn liquidation_setup(demo: &mut Demo<'_>) -> Decimal {
    let btc = symbol("BTCUSDT");
    let best_ask = demo.exchange.book(btc).and_then(|b| b.best_price(Side::Sell)).unwrap_or(Decimal::from(50_050));
    let mut buy = Order::limit(5, "BTCUSDT", Side::Buy, best_ask, Decimal::new(1, 1));
    buy.leverage = 20;
    buy.margin_mode = MarginMode::Isolated;
    buy.time_in_force = TimeInForce::Ioc;
    buy.client_order_id = Some("frank-long".into());
    demo.place(buy);
    demo.run(Command::SetMarkPrice { symbol: btc, price: best_ask }, None);
    let frank = demo.accounts[5];
    let liquidation = demo
        .exchange
        .position_of(frank, btc)
        .and_then(|p| demo.exchange.liquidation_price(p.position_id))
        .unwrap_or(Decimal::from(45_000));
    (liquidation - Decimal::from(25)).round_dp(1)
}

/// Funding on both markets, then bob closes his BTC position with a reduce-only market order.
fn funding_and_reduce_only(demo: &mut Demo<'_>) {
    let eth = symbol("ETHUSDT");
    let eth_mid = demo.exchange.book(eth).and_then(|b| b.best_price(Side::Buy)).unwrap_or(Decimal::from(3_000));
    demo.run(Command::SetMarkPrice { symbol: eth, price: eth_mid }, None);
    demo.run(Command::SettleFunding { symbol: symbol("BTCUSDT"), rate: Decimal::new(1, 4) }, None);
    demo.run(Command::SettleFunding { symbol: eth, rate: Decimal::new(-5, 5) }, None);
    let bob = demo.accounts[1];
    if let Some(p) = demo.exchange.position_of(bob, symbol("BTCUSDT")).filter(|p| p.is_open()) {
        let mut close = Order::limit(1, "BTCUSDT", p.side.opposite(), Decimal::ZERO, p.size);
        close.price = None;
        close.reduce_only = true;
        close.client_order_id = Some("bob-close".into());
        demo.place(close);
    }
}

/// The admin corrects the client order id of alice's self-trade-prevented buy.
fn correction(demo: &mut Demo<'_>) {
    let target =
        demo.exchange.orders().find(|o| o.client_order_id.as_deref() == Some("alice-stp-buy")).map(|o| o.order_id);
    let Some(order_id) = target else { return };
    let Some(placed) = demo.log.iter().find(|e| e.stream == StreamId::order(order_id) && e.version == 1) else {
        return;
    };
    let command = Command::CorrectOrder {
        order_id,
        corrected_event_id: placed.event_id,
        corrected_version: 1,
        corrections: vec![FieldCorrection {
            field: "note".into(),
            from: None,
            to: Some("cancelled by self-trade prevention at the client's request; see ticket 4711".into()),
        }],
        reason: "annotate the order for the client's audit request".into(),
        corrected_by: DEMO_ADMIN,
    };
    demo.run(command, None);
}
