//! Property tests over random command sequences (DOMAIN.md, Invariants):
//! - invariants 1–4 hold after every step (`perpetua_core::invariants::check`), and no
//!   trader's available goes negative through its own or a counterparty's trading;
//! - a rejected order records exactly one `OrderRejected` and changes nothing else, and a
//!   refused command writes nothing and changes nothing (invariant 5);
//! - folding the log from scratch, and loading a snapshot and folding the tail, both equal the
//!   live engine (invariant 6), and the read-side folds agree with it (accounts, positions
//!   with uPnL and liquidation price, orders);
//! - replaying the same commands gives byte-identical events (invariant 7);
//! - the hash chain over the log verifies, and any altered event is named by position.
//!
//! Cases and sequence length: `PROPTEST_CASES` (default 256) sequences of up to 120 commands.

use perpetua_core::audit::{self, HashChain};
use perpetua_core::command::{Command, CommandContext, PlaceOrder};
use perpetua_core::event::{Event, EventEnvelope};
use perpetua_core::ids::{AccountId, UserId};
use perpetua_core::market::spec::default_markets;
use perpetua_core::symbol::Symbol;
use perpetua_core::time::Timestamp;
use perpetua_core::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use perpetua_core::{invariants, Decimal, Exchange, Outcome};
use proptest::prelude::*;

const TRADERS: usize = 4;

/// An abstract step; turned into a concrete command against the current state.
#[derive(Clone, Debug)]
enum Op {
    Deposit {
        trader: usize,
        amount: u32,
    },
    Withdraw {
        trader: usize,
        amount: u32,
    },
    Place {
        trader: usize,
        eth: bool,
        buy: bool,
        market: bool,
        ticks: u16,
        lots: u16,
        leverage: u8,
        isolated: bool,
        tif: u8,
        reduce_only: bool,
        post_only: bool,
        stp: u8,
    },
    Cancel {
        trader: usize,
        pick: usize,
    },
    Mark {
        eth: bool,
        ticks: u16,
    },
    Funding {
        eth: bool,
        rate_bp: i8,
    },
    Leverage {
        trader: usize,
        eth: bool,
        leverage: u8,
    },
    Margin {
        trader: usize,
        eth: bool,
        amount: i32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let trader = 0..TRADERS;
    prop_oneof![
        2 => (trader.clone(), 100u32..50_000).prop_map(|(trader, amount)| Op::Deposit { trader, amount }),
        1 => (trader.clone(), 1u32..20_000).prop_map(|(trader, amount)| Op::Withdraw { trader, amount }),
        12 => (trader.clone(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.15), 0u16..400, 1u16..400, 1u8..=60,
               any::<bool>(), 0u8..6, prop::bool::weighted(0.15), prop::bool::weighted(0.15), 0u8..3)
            .prop_map(|(trader, eth, buy, market, ticks, lots, leverage, isolated, tif, reduce_only, post_only, stp)| {
                Op::Place { trader, eth, buy, market, ticks, lots, leverage, isolated, tif, reduce_only, post_only, stp }
            }),
        3 => (trader.clone(), 0usize..8).prop_map(|(trader, pick)| Op::Cancel { trader, pick }),
        2 => (any::<bool>(), 0u16..1000).prop_map(|(eth, ticks)| Op::Mark { eth, ticks }),
        1 => (any::<bool>(), -20i8..=20).prop_map(|(eth, rate_bp)| Op::Funding { eth, rate_bp }),
        1 => (trader.clone(), any::<bool>(), 1u8..=60).prop_map(|(trader, eth, leverage)| Op::Leverage { trader, eth, leverage }),
        1 => (trader, any::<bool>(), -3000i32..3000).prop_map(|(trader, eth, amount)| Op::Margin { trader, eth, amount }),
    ]
}

struct Harness {
    exchange: Exchange,
    log: Vec<EventEnvelope>,
    commands: Vec<Command>,
    traders: Vec<AccountId>,
    now: i64,
}

fn symbol(eth: bool) -> Symbol {
    (if eth { "ETHUSDT" } else { "BTCUSDT" }).parse().expect("valid symbol")
}

/// Prices around 50,000 (BTC) or 3,000 (ETH); `ticks` spreads them over ±10%.
fn price(eth: bool, ticks: u16, spread: u16) -> Decimal {
    let (center, step) =
        if eth { (Decimal::from(3000), Decimal::new(75, 2)) } else { (Decimal::from(50_000), Decimal::from(10)) };
    center + step * (Decimal::from(ticks) - Decimal::from(spread / 2)) * Decimal::new(1, 0)
}

impl Harness {
    fn new() -> Self {
        let mut h =
            Harness { exchange: Exchange::new(), log: Vec::new(), commands: Vec::new(), traders: Vec::new(), now: 0 };
        h.run(Command::Genesis { markets: default_markets() }).expect("genesis");
        for n in 0..TRADERS {
            h.run(Command::CreateAccount { user_id: UserId::derive(n as u64 + 1) }).expect("account");
            let Some(Event::AccountCreated(e)) = h.log.last().map(|e| &e.event) else { unreachable!() };
            h.traders.push(e.account_id);
            let deposit = Command::Deposit { account_id: e.account_id, amount: Decimal::from(20_000) };
            h.run(deposit).expect("deposit");
        }
        h
    }

    fn run(&mut self, command: Command) -> Result<(Outcome, usize), String> {
        self.now += 1000;
        let ctx = CommandContext { now: Timestamp(1_767_225_600_000 + self.now), ..Default::default() };
        let result = self.exchange.execute(&command, &ctx);
        self.commands.push(command);
        match result {
            Ok(decision) => {
                let n = decision.events.len();
                self.log.extend(decision.events);
                Ok((decision.outcome, n))
            }
            Err(e) => Err(e.code.as_str().to_owned()),
        }
    }

    fn command(&self, op: &Op) -> Command {
        match *op {
            Op::Deposit { trader, amount } => {
                Command::Deposit { account_id: self.traders[trader], amount: amount.into() }
            }
            Op::Withdraw { trader, amount } => {
                Command::Withdraw { account_id: self.traders[trader], amount: amount.into() }
            }
            Op::Place {
                trader,
                eth,
                buy,
                market,
                ticks,
                lots,
                leverage,
                isolated,
                tif,
                reduce_only,
                post_only,
                stp,
            } => Command::PlaceOrder(PlaceOrder {
                account_id: self.traders[trader],
                symbol: symbol(eth),
                side: if buy { Side::Buy } else { Side::Sell },
                order_type: if market { OrderType::Market } else { OrderType::Limit },
                price: (!market).then(|| price(eth, ticks, 400)),
                quantity: Decimal::new(i64::from(lots), 3) * if eth { Decimal::from(10) } else { Decimal::ONE },
                leverage: leverage.into(),
                margin_mode: if isolated { MarginMode::Isolated } else { MarginMode::Cross },
                time_in_force: [
                    TimeInForce::Gtc,
                    TimeInForce::Gtc,
                    TimeInForce::Gtc,
                    TimeInForce::Gtc,
                    TimeInForce::Ioc,
                    TimeInForce::Fok,
                ][usize::from(tif)],
                reduce_only,
                post_only,
                stp_mode: [StpMode::ExpireTaker, StpMode::ExpireMaker, StpMode::ExpireBoth][usize::from(stp)],
                client_order_id: None,
            }),
            Op::Cancel { trader, pick } => {
                let account_id = self.traders[trader];
                let mut open: Vec<_> = self
                    .exchange
                    .orders()
                    .filter(|o| o.account_id == account_id && o.is_open())
                    .map(|o| o.order_id)
                    .collect();
                open.sort();
                let order_id = if open.is_empty() {
                    perpetua_core::ids::OrderId::derive(999_999)
                } else {
                    open[pick % open.len()]
                };
                Command::CancelOrder { account_id, order_id }
            }
            Op::Mark { eth, ticks } => {
                Command::SetMarkPrice { symbol: symbol(eth), price: price(eth, ticks / 2 + 150, 800) }
            }
            Op::Funding { eth, rate_bp } => {
                Command::SettleFunding { symbol: symbol(eth), rate: Decimal::new(i64::from(rate_bp), 4) }
            }
            Op::Leverage { trader, eth, leverage } => Command::ChangeLeverage {
                account_id: self.traders[trader],
                symbol: symbol(eth),
                leverage: leverage.into(),
            },
            Op::Margin { trader, eth, amount } => Command::AdjustMargin {
                account_id: self.traders[trader],
                symbol: symbol(eth),
                amount: Decimal::from(amount),
            },
        }
    }

    fn availables(&self) -> Vec<Decimal> {
        self.traders.iter().map(|id| self.exchange.available(*id)).collect()
    }
}

fn is_market_move(command: &Command) -> bool {
    matches!(command, Command::SetMarkPrice { .. } | Command::SettleFunding { .. })
}

fn check_step(h: &mut Harness, op: &Op) -> Result<(), TestCaseError> {
    let command = h.command(op);
    let before = h.exchange.clone();
    let available_before = h.availables();
    let log_before = h.log.len();
    match h.run(command.clone()) {
        Err(code) => {
            prop_assert_eq!(h.log.len(), log_before, "refused command {} wrote events", code);
            prop_assert!(h.exchange == before, "refused command {} changed the state", code);
        }
        Ok((Outcome::Rejected(code), n)) => {
            prop_assert_eq!(n, 1, "rejection {} wrote more than OrderRejected", code);
            prop_assert!(matches!(h.log.last().map(|e| &e.event), Some(Event::OrderRejected(_))));
            let mut expected = before.clone();
            expected.apply(h.log.last().expect("one event"));
            prop_assert!(expected == h.exchange, "rejection {} changed more than its record", code);
            let accounts_same = h.traders.iter().all(|id| before.account(*id) == h.exchange.account(*id));
            prop_assert!(accounts_same, "rejection changed an account");
        }
        Ok((Outcome::Accepted, _)) => {}
    }
    if let Err(v) = invariants::check(&h.exchange) {
        return Err(TestCaseError::fail(format!("after {command:?}: {v}")));
    }
    if !is_market_move(&command) {
        for (i, (before, after)) in available_before.iter().zip(h.availables()).enumerate() {
            prop_assert!(
                *before < Decimal::ZERO || after >= Decimal::ZERO,
                "trader {} available went from {} to {} after {:?}",
                i,
                before,
                after,
                command
            );
        }
    }
    Ok(())
}

/// `PROPTEST_CASES` from the environment (for long soak runs), 256 by default.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
}

fn check_read_models(h: &Harness) -> Result<(), TestCaseError> {
    use perpetua_core::projection::orders::OrderView;
    use perpetua_core::projection::ReadModels;
    let mut models = ReadModels::default();
    for envelope in &h.log {
        models.apply(envelope);
    }
    for account in h.exchange.accounts() {
        let id = account.account_id;
        let summary = models.accounts().summary(id).ok_or_else(|| TestCaseError::fail("account missing"))?;
        prop_assert_eq!(summary.balance, account.balance);
        prop_assert_eq!(summary.locked, account.locked);
        prop_assert_eq!(summary.available, h.exchange.available(id));
        prop_assert_eq!(summary.position_margin, h.exchange.position_margin(id));
        let views = models.positions_for_account(id);
        let open: Vec<_> = h.exchange.positions_of(id).filter(|p| p.is_open()).collect();
        prop_assert_eq!(views.len(), open.len());
        for (view, position) in views.iter().zip(open) {
            prop_assert_eq!(view.size, position.size);
            prop_assert_eq!(view.margin, position.margin);
            prop_assert_eq!(view.entry_price, position.entry_price());
            prop_assert_eq!(view.unrealized_pnl, h.exchange.unrealized_pnl(position));
            prop_assert_eq!(view.liquidation_price, h.exchange.liquidation_price(position.position_id));
        }
    }
    for order in h.exchange.orders() {
        prop_assert_eq!(models.orders().get(order.order_id), Some(OrderView::from(order)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_replay_is_exact(ops in prop::collection::vec(op(), 1..120)) {
        let mut h = Harness::new();
        for op in &ops {
            check_step(&mut h, op)?;
        }
        // Invariant 6: fold from scratch == live; snapshot + tail == live.
        prop_assert!(Exchange::replay(&h.log) == h.exchange, "fold from scratch differs from the live engine");
        let middle = h.log.len() / 2;
        let snapshot = perpetua_core::timetravel::exchange_at(&h.log, middle as u64).snapshot();
        let json = serde_json::to_string(&snapshot).expect("snapshot serializes");
        let mut restored = Exchange::from_snapshot_json(&json).expect("snapshot loads");
        for envelope in &h.log[middle..] {
            restored.apply(envelope);
        }
        prop_assert!(restored == h.exchange, "snapshot + tail differs from the live engine");
        // The read-side folds agree with the engine (they fold the same log independently).
        check_read_models(&h)?;
        // Invariant 7: the same commands give byte-identical events.
        let mut again = Exchange::new();
        let mut replayed = Vec::new();
        for (i, command) in h.commands.iter().enumerate() {
            let ctx = CommandContext { now: Timestamp(1_767_225_600_000 + (i as i64 + 1) * 1000), ..Default::default() };
            if let Ok(decision) = again.execute(command, &ctx) {
                replayed.extend(decision.events);
            }
        }
        let bytes = |events: &[EventEnvelope]| serde_json::to_string(events).expect("events serialize");
        prop_assert_eq!(bytes(&replayed), bytes(&h.log));
        // The hash chain verifies, and an altered event is named by its position.
        let mut sealed = h.log.clone();
        let stored = HashChain::default().seal(&mut sealed);
        prop_assert!(audit::verify(&stored, HashChain::default()).is_ok());
        let victim = ops.len() % stored.len();
        let mut tampered = stored.clone();
        let mut altered = tampered[victim].payload.get().to_owned().into_bytes();
        let digit = altered.iter().position(u8::is_ascii_digit).expect("every payload holds an id");
        altered[digit] = b'0' + (altered[digit] - b'0' + 1) % 10;
        let altered = String::from_utf8(altered).expect("still UTF-8");
        tampered[victim].payload = serde_json::value::RawValue::from_string(altered).expect("still JSON");
        let report = audit::verify(&tampered, HashChain::default());
        prop_assert_eq!(report.first_bad_position, Some(stored[victim].position));
    }
}

/// The generator must exercise the rules, or the properties above would hold vacuously:
/// over 64 generated sequences, fills, closes, flips, liquidations, funding, rejections and
/// every kind of cancel all happen.
#[test]
fn generated_sequences_exercise_the_rules() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeMap;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..64 {
        let ops = prop::collection::vec(op(), 60..120).new_tree(&mut runner).expect("generates").current();
        let mut h = Harness::new();
        for op in &ops {
            let command = h.command(op);
            let _ = h.run(command);
        }
        for envelope in &h.log {
            let key = match &envelope.event {
                Event::OrderCancelled(e) => format!("OrderCancelled.{}", e.reason),
                Event::OrderRejected(e) => format!("OrderRejected.{}", e.reason),
                other => other.event_type().to_owned(),
            };
            *counts.entry(key).or_default() += 1;
        }
    }
    for wanted in [
        "OrderMatched",
        "OrderPartiallyFilled",
        "OrderExpired",
        "PositionIncreased",
        "PositionDecreased",
        "PositionClosed",
        "PositionLiquidated",
        "FundingPaid",
        "FundingReceived",
        "PnlRealized",
        "LeverageChanged",
        "MarginAdded",
        "OrderCancelled.USER_REQUESTED",
        "OrderCancelled.SELF_TRADE",
        "OrderCancelled.LIQUIDATION",
        "OrderRejected.INSUFFICIENT_BALANCE",
        "OrderRejected.POST_ONLY_WOULD_TAKE",
        "OrderRejected.REDUCE_ONLY_REJECTED",
    ] {
        assert!(counts.get(wanted).copied().unwrap_or(0) > 0, "the generator never produced {wanted}: {counts:#?}");
        println!("{wanted}: {}", counts[wanted]);
    }
}
