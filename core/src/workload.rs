//! A deterministic, reproducible workload for benchmarks and demos: the mixed order flow of
//! the engine benchmark (resting limit orders, cancels, crossing limit and market orders over
//! several accounts and one symbol with a deep book). Pseudo-random choices come from a fixed
//! linear congruential sequence seeded by the caller; there is no randomness from outside.

use crate::command::{Command, CommandContext, PlaceOrder};
use crate::engine::Exchange;
use crate::event::{Event, EventEnvelope};
use crate::ids::{AccountId, OrderId, UserId};
use crate::market::spec::default_markets;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use rust_decimal::Decimal;

/// A small deterministic pseudo-random sequence (PCG-style LCG step, xorshift output).
#[derive(Clone, Debug)]
pub struct Sequence(u64);

impl Sequence {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Sequence(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let x = self.0;
        (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd) ^ (x >> 29)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The exchange after genesis, `accounts` funded traders and a book of `resting` orders on
/// BTCUSDT (bids below 50,000, asks above), with the log that built it.
pub struct Setup {
    /// The engine after the steps run so far.
    pub exchange: Exchange,
    /// Every event produced so far, in log order.
    pub log: Vec<EventEnvelope>,
    /// The funded trader accounts.
    pub accounts: Vec<AccountId>,
    /// Ids of LIMIT orders still open (in no particular order).
    pub open_orders: Vec<OrderId>,
    /// Timestamp of the last command run (each command is 1 ms after the previous).
    pub now: Timestamp,
    /// The book depth the mixed workload steers toward (the starting number of resting orders).
    pub target_depth: usize,
}

fn btc() -> Symbol {
    "BTCUSDT".parse().expect("valid symbol")
}

fn limit(account_id: AccountId, side: Side, price: Decimal, quantity: Decimal, tif: TimeInForce) -> Command {
    Command::PlaceOrder(PlaceOrder {
        account_id,
        symbol: btc(),
        side,
        order_type: OrderType::Limit,
        price: Some(price),
        quantity,
        leverage: 10,
        margin_mode: MarginMode::Cross,
        time_in_force: tif,
        reduce_only: false,
        post_only: false,
        stp_mode: StpMode::ExpireMaker,
        client_order_id: None,
    })
}

impl Setup {
    /// Builds the starting state.
    pub fn new(accounts: usize, resting: usize, seed: u64) -> Setup {
        let mut setup = Setup {
            exchange: Exchange::new(),
            log: Vec::new(),
            accounts: Vec::new(),
            open_orders: Vec::new(),
            now: Timestamp(1_767_225_600_000),
            target_depth: resting,
        };
        setup.run(&Command::Genesis { markets: default_markets() });
        for n in 0..accounts {
            setup.run(&Command::CreateAccount { user_id: UserId::derive(n as u64 + 1) });
            let Some(Event::AccountCreated(created)) = setup.log.last().map(|e| &e.event) else {
                unreachable!("CreateAccount emits AccountCreated")
            };
            let account_id = created.account_id;
            setup.accounts.push(account_id);
            setup.run(&Command::Deposit { account_id, amount: Decimal::from(1_000_000_000_000_i64) });
        }
        let mut seq = Sequence::new(seed);
        for _ in 0..resting {
            let command = setup.resting_order(&mut seq);
            setup.run(&command);
        }
        setup
    }

    /// Executes a command, keeping the log and the set of open orders up to date.
    pub fn run(&mut self, command: &Command) {
        self.now = Timestamp(self.now.0 + 1);
        let ctx = CommandContext { now: self.now, ..Default::default() };
        let Ok(decision) = self.exchange.execute(command, &ctx) else { return };
        for envelope in &decision.events {
            match &envelope.event {
                Event::OrderPlaced(e) if e.order_type == OrderType::Limit => self.open_orders.push(e.order_id),
                Event::OrderFilled(e) => self.forget(e.order_id),
                Event::OrderCancelled(e) => self.forget(e.order_id),
                Event::OrderExpired(e) => self.forget(e.order_id),
                _ => {}
            }
        }
        self.log.extend(decision.events);
    }

    fn forget(&mut self, order_id: OrderId) {
        if let Some(i) = self.open_orders.iter().position(|id| *id == order_id) {
            self.open_orders.swap_remove(i);
        }
    }

    fn account(&self, seq: &mut Sequence) -> AccountId {
        self.accounts[seq.below(self.accounts.len() as u64) as usize]
    }

    /// A limit order that rests: bids at 49,000.0-49,999.9, asks at 50,000.1-51,000.0.
    fn resting_order(&self, seq: &mut Sequence) -> Command {
        let offset = Decimal::new(seq.below(10_000) as i64 + 1, 1);
        let quantity = Decimal::new(seq.below(100) as i64 + 1, 3);
        let (side, price) = if seq.below(2) == 0 {
            (Side::Buy, Decimal::from(50_000) - offset)
        } else {
            (Side::Sell, Decimal::from(50_000) + offset)
        };
        limit(self.account(seq), side, price, quantity, TimeInForce::Gtc)
    }

    /// The mixed workload: about 60% resting limit orders, 25% cancels of open orders, 15%
    /// crossing orders (limit IOC through the spread, or market). Returns the commands; the
    /// setup's state has advanced through them, so run them on a clone taken before.
    pub fn mixed_workload(&mut self, commands: usize, seed: u64) -> Vec<Command> {
        let mut seq = Sequence::new(seed);
        let mut out = Vec::with_capacity(commands);
        for _ in 0..commands {
            let roll = seq.below(100);
            let command = if roll < 60 || (roll < 85 && self.open_orders.is_empty()) {
                self.resting_order(&mut seq)
            } else if roll < 85 {
                let order_id = self.open_orders[seq.below(self.open_orders.len() as u64) as usize];
                let account_id = self.exchange.order(order_id).map_or(self.accounts[0], |o| o.account_id);
                Command::CancelOrder { account_id, order_id }
            } else {
                self.crossing_order(&mut seq)
            };
            self.run(&command);
            out.push(command);
        }
        out
    }

    fn crossing_order(&self, seq: &mut Sequence) -> Command {
        let side = if seq.below(2) == 0 { Side::Buy } else { Side::Sell };
        // Sized so that the book stays near its starting depth: larger while it is deeper.
        let depth = self.exchange.book(btc()).map_or(0, |b| b.len());
        let max_lots = if depth > self.target_depth { 400 } else { 200 };
        let quantity = Decimal::new(seq.below(max_lots) as i64 + 1, 3);
        let account_id = self.account(seq);
        if seq.below(2) == 0 {
            let price = match side {
                Side::Buy => Decimal::from(50_200),
                Side::Sell => Decimal::from(49_800),
            };
            limit(account_id, side, price, quantity, TimeInForce::Ioc)
        } else {
            Command::PlaceOrder(PlaceOrder {
                account_id,
                symbol: btc(),
                side,
                order_type: OrderType::Market,
                price: None,
                quantity,
                leverage: 10,
                margin_mode: MarginMode::Cross,
                time_in_force: TimeInForce::Ioc,
                reduce_only: false,
                post_only: false,
                stp_mode: StpMode::ExpireMaker,
                client_order_id: None,
            })
        }
    }
}
