//! The clients: each opens and funds an account, then sends deposits, withdrawals, orders
//! (alone and in batches), cancels and now and then an admin's mark price or funding.
//!
//! Every request is an *intent*, registered before it is sent, with a correlation id of its
//! own in its metadata: the checks find in the log every command an intent caused. An intent
//! with an idempotency key is sent again, with the same key, after every failed attempt (an
//! error, a timeout, a crash) until it is answered; one without a key is sent once, and when
//! it meets a fault its fate is unknown to the client (it may or may not be in the log).
//! Some keyed intents are sent twice at once, some again after their answer, and some keys
//! are reused for another request, which must be refused.

use crate::cluster::{self, Node};
use crate::disk;
use crate::rng::Rng;
use crate::sim::{guard, Sim};
use perpetua_core::audit::Hash;
use perpetua_core::command::{Command, PlaceOrder};
use perpetua_core::event::Metadata;
use perpetua_core::ids::{AccountId, OrderId, UserId};
use perpetua_core::market::spec::default_markets;
use perpetua_core::symbol::Symbol;
use perpetua_core::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use perpetua_core::{Decimal, Receipt};
use perpetua_server::processor::{Answer, IdempotencyKey, Outcome, ProcessorError};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Attempts after which a keyed intent that is still not answered counts as stuck.
const MAX_ATTEMPTS: u32 = 200;

/// One request a client means to make, and every answer it got.
#[derive(Clone, Debug)]
pub struct Intent {
    /// Its index in the run's list.
    pub id: u64,
    /// The commands, submitted together.
    pub commands: Vec<Command>,
    /// Its metadata; the correlation id is the intent's own.
    pub metadata: Metadata,
    /// Its idempotency key, if it has one.
    pub key: Option<IdempotencyKey>,
    /// The intent whose key this one reuses for another request (it must be refused).
    pub reuses: Option<u64>,
    /// Every answer it got (retries and duplicates included).
    pub answers: Vec<Answer>,
    /// Attempts made.
    pub attempts: u32,
}

impl Intent {
    /// The correlation id its commands carry.
    pub fn correlation(&self) -> uuid::Uuid {
        self.metadata.correlation_id.expect("every intent has a correlation id")
    }
}

/// True when an answer says something was written (some command of it is `Done`).
pub fn wrote(answer: &[Outcome]) -> bool {
    answer.iter().any(|outcome| matches!(outcome, Outcome::Done { .. }))
}

/// The market every order trades in.
fn btc() -> Symbol {
    "BTCUSDT".parse().expect("a listed symbol")
}

/// Registers an intent whose commands are built from its id (amounts and client order ids
/// are made unique with it).
fn register(sim: &Sim, user: Option<UserId>, keyed: bool, build: impl FnOnce(u64) -> Vec<Command>) -> u64 {
    let mut intents = guard(&sim.intents);
    let id = intents.len() as u64;
    let commands = build(id);
    let metadata = Metadata {
        user_id: user,
        correlation_id: Some(uuid::Uuid::from_u64_pair(sim.seed, id)),
        causation_id: None,
        ip_address: None,
    };
    let key =
        keyed.then(|| IdempotencyKey { key: format!("intent-{id}"), fingerprint: fingerprint(&commands, &metadata) });
    intents.push(Intent { id, commands, metadata, key, reuses: None, answers: Vec::new(), attempts: 0 });
    id
}

/// Registers a request that reuses the key of `original` for other commands.
fn register_reuse(sim: &Sim, original: u64, build: impl FnOnce(u64) -> Vec<Command>) -> u64 {
    let mut intents = guard(&sim.intents);
    let id = intents.len() as u64;
    let commands = build(id);
    let source = &intents[original as usize];
    let mut metadata = source.metadata.clone();
    metadata.correlation_id = Some(uuid::Uuid::from_u64_pair(sim.seed, id));
    let key = source.key.as_ref().expect("only keyed intents are reused").key.clone();
    let key = Some(IdempotencyKey { key, fingerprint: fingerprint(&commands, &metadata) });
    intents.push(Intent { id, commands, metadata, key, reuses: Some(original), answers: Vec::new(), attempts: 0 });
    id
}

/// The digest of a request, as the HTTP layer takes it of method, path and body.
fn fingerprint(commands: &[Command], metadata: &Metadata) -> Hash {
    let body = serde_json::to_vec(&(commands, metadata)).expect("commands serialize");
    Hash(Sha256::digest(body).into())
}

/// What one attempt got.
enum Attempt {
    /// The processor answered.
    Answered(Result<Answer, ProcessorError>),
    /// The client stopped waiting.
    TimedOut,
    /// The process crashed before it answered.
    Cut,
}

/// Sends an intent until it is answered (keyed) or once (unkeyed); returns its answer, or
/// `None` when it got none (or, for a reused key, when it was refused as it must be).
async fn deliver(sim: &Sim, id: u64, rng: &mut Rng) -> Option<Answer> {
    loop {
        let node = cluster::running(sim).await;
        let (commands, metadata, key, reuses, attempts) = {
            let mut intents = guard(&sim.intents);
            let intent = &mut intents[id as usize];
            intent.attempts += 1;
            (intent.commands.clone(), intent.metadata.clone(), intent.key.clone(), intent.reuses, intent.attempts)
        };
        let keyed = key.is_some();
        match attempt(sim, &node, commands, metadata, key).await {
            Attempt::Answered(Ok(answer)) => {
                answered(sim, id, &answer);
                return Some(answer);
            }
            Attempt::Answered(Err(ProcessorError::IdempotencyKeyReused(key))) => {
                if reuses.is_none() {
                    sim.violation(format!("intent {id}: its own key {key:?} was refused as reused"));
                }
                return None;
            }
            Attempt::Answered(Err(_)) => sim.count(|c| c.errors += 1),
            Attempt::TimedOut => sim.count(|c| c.timeouts += 1),
            Attempt::Cut => sim.count(|c| c.cut += 1),
        }
        if !keyed {
            return None;
        }
        if attempts >= MAX_ATTEMPTS {
            sim.violation(format!("intent {id}: not answered after {attempts} attempts"));
            return None;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(5, 100))).await;
    }
}

/// One attempt: the answer, unless the client's timeout or a crash comes first.
async fn attempt(
    sim: &Sim,
    node: &Node,
    commands: Vec<Command>,
    metadata: Metadata,
    key: Option<IdempotencyKey>,
) -> Attempt {
    let timeout = Duration::from_millis(sim.config.client_timeout_ms);
    // One command goes through `submit`, several through `submit_all`, as the HTTP handlers do.
    let submitted = async {
        match <[Command; 1]>::try_from(commands) {
            Ok([command]) => {
                node.handle.submit(command, metadata, key).await.map(|outcome| Answer::from(vec![outcome]))
            }
            Err(commands) => node.handle.submit_all(commands, metadata, key).await,
        }
    };
    tokio::select! {
        biased;
        answered = tokio::time::timeout(timeout, submitted) => match answered {
            Ok(answer) => Attempt::Answered(answer),
            Err(_) => Attempt::TimedOut,
        },
        () = node.crashed() => Attempt::Cut,
    }
}

/// Records an answer, checking it at once against the disk: an answer comes only after its
/// commit (each `Done` position is committed and was written by this intent).
fn answered(sim: &Sim, id: u64, answer: &Answer) {
    let mut intents = guard(&sim.intents);
    let intent = &mut intents[id as usize];
    if let Some(original) = intent.reuses {
        sim.violation(format!("intent {id} reused the key of intent {original} for another request and was answered"));
    }
    let correlation = intent.correlation();
    let disk = disk::lock(&sim.disk);
    for outcome in answer.iter() {
        match outcome {
            Outcome::Done { position, .. } => {
                let committed = disk.head.last_position;
                let stored = disk.events.get((*position as usize).wrapping_sub(1));
                if *position > committed {
                    sim.violation(format!(
                        "intent {id} was answered with position {position} above the committed head {committed}"
                    ));
                } else if stored.is_none_or(|event| event.metadata.correlation_id != Some(correlation)) {
                    sim.violation(format!("intent {id} was answered with position {position}, another command's"));
                }
            }
            Outcome::Refused(_) => {}
            Outcome::Reply { .. } => sim.violation(format!("intent {id} was answered with a stored HTTP reply")),
        }
    }
    intent.answers.push(answer.clone());
}

/// Sends a new intent: registered, delivered (sometimes twice at once), and when it wrote
/// under a key sometimes delivered again, or its key reused for another request.
async fn send(
    sim: &Sim,
    rng: &mut Rng,
    user: Option<UserId>,
    keyed: bool,
    build: impl FnOnce(u64) -> Vec<Command>,
) -> Option<Answer> {
    let id = register(sim, user, keyed, build);
    let answer = if keyed && rng.chance(60) {
        sim.count(|c| c.duplicates += 1);
        let (mut first, mut second) = (rng.fork(), rng.fork());
        let (a, b) = tokio::join!(deliver(sim, id, &mut first), deliver(sim, id, &mut second));
        match (a, b) {
            (Some(a), _) if wrote(&a) => Some(a),
            (a, b) => b.or(a),
        }
    } else {
        deliver(sim, id, rng).await
    };
    match &answer {
        Some(_) => sim.count(|c| c.acknowledged += 1),
        None => sim.count(|c| c.unacknowledged += 1),
    }
    if keyed && answer.as_deref().is_some_and(wrote) {
        if rng.chance(100) {
            sim.count(|c| c.duplicates += 1);
            deliver(sim, id, rng).await;
        }
        let first = guard(&sim.intents)[id as usize].commands[0].clone();
        if let Command::Deposit { account_id, .. } = first {
            if rng.chance(80) {
                sim.count(|c| c.conflicts += 1);
                let reuse = register_reuse(sim, id, |n| vec![deposit(account_id, n)]);
                deliver(sim, reuse, rng).await;
            }
        }
    }
    answer
}

/// The receipt of the first command of an answer, when it was done.
fn receipt(answer: &Option<Answer>) -> Option<&Receipt> {
    match answer.as_ref()?.first()? {
        Outcome::Done { receipt, .. } => Some(receipt),
        _ => None,
    }
}

/// A deposit whose amount names its intent: 1,000 plus the intent's id in cents.
fn deposit(account_id: AccountId, id: u64) -> Command {
    Command::Deposit { account_id, amount: Decimal::new(100_000 + id as i64, 2) }
}

/// Lists the markets, under a key, before the clients start.
pub async fn genesis(sim: &Arc<Sim>) {
    let mut rng = sim.fork_rng();
    let id = register(sim, None, true, |_| vec![Command::Genesis { markets: default_markets() }]);
    if !deliver(sim, id, &mut rng).await.as_deref().is_some_and(wrote) {
        sim.violation("genesis was not done".into());
    }
}

/// How a client trades.
#[derive(Clone, Copy)]
struct Style {
    /// Its first deposit (before the intent's cents).
    funding: i64,
    /// Leverage of its orders.
    leverage: u32,
    /// Margin mode of its orders.
    margin_mode: MarginMode,
    /// Largest quantity of an order, in thousandths.
    lots_max: u64,
}

/// Well funded, cross margin at 10×: trades for long.
const STEADY: Style = Style { funding: 1_000_000, leverage: 10, margin_mode: MarginMode::Cross, lots_max: 40 };
/// Thinly funded, isolated at 50×: a mark price move of a few per cent liquidates it.
const RISKY: Style = Style { funding: 5_000, leverage: 50, margin_mode: MarginMode::Isolated, lots_max: 200 };

/// Builds an intent's commands from its id.
type Build = Box<dyn FnOnce(u64) -> Vec<Command> + Send>;

/// One client: an account of its own, funded, then its intents.
pub async fn client(sim: Arc<Sim>, index: usize, mut rng: Rng) {
    let style = if index % 3 == 2 { RISKY } else { STEADY };
    let user = UserId::derive(1_000 + index as u64);
    let created = send(&sim, &mut rng, Some(user), true, |_| vec![Command::CreateAccount { user_id: user }]).await;
    let Some(account) = receipt(&created).and_then(|r| r.created_account) else {
        sim.violation(format!("client {index}: its account was not created"));
        return;
    };
    let amount = |id: u64| Decimal::new(style.funding * 100 + id as i64, 2);
    send(&sim, &mut rng, Some(user), true, |id| vec![Command::Deposit { account_id: account, amount: amount(id) }])
        .await;
    let mut open: Vec<OrderId> = Vec::new();
    for _ in 0..sim.config.intents_per_client {
        tokio::time::sleep(Duration::from_millis(rng.between(0, sim.config.think_ms_max))).await;
        let keyed = rng.chance(sim.config.keyed);
        let roll = rng.below(100);
        let (user, commands): (Option<UserId>, Build) = match roll {
            0..=24 => (Some(user), Box::new(move |id| vec![deposit(account, id)])),
            25..=37 => {
                let withdraw = move |id: u64| {
                    vec![Command::Withdraw { account_id: account, amount: Decimal::new(id as i64 + 1, 2) }]
                };
                (Some(user), Box::new(withdraw))
            }
            38..=83 => {
                let batch = if rng.chance(150) { rng.between(2, 4) } else { 1 };
                let orders: Vec<Draft> = (0..batch).map(|_| Draft::draw(&mut rng, style)).collect();
                (
                    Some(user),
                    Box::new(move |id| orders.iter().enumerate().map(|(n, d)| d.command(account, id, n)).collect()),
                )
            }
            84..=93 if !open.is_empty() => {
                let order_id = open.swap_remove(rng.below(open.len() as u64) as usize);
                (Some(user), Box::new(move |_| vec![Command::CancelOrder { account_id: account, order_id }]))
            }
            _ => (None, Box::new(admin(&mut rng))),
        };
        let answer = send(&sim, &mut rng, user, keyed, commands).await;
        for outcome in answer.iter().flat_map(|answer| answer.iter()) {
            if let Outcome::Done { receipt, .. } = outcome {
                if let Some(order) = receipt.order.as_ref().filter(|order| order.is_open()) {
                    open.push(order.order_id);
                }
            }
        }
    }
}

/// An admin's command: a mark price near 50,000, or a funding settlement.
fn admin(rng: &mut Rng) -> impl FnOnce(u64) -> Vec<Command> {
    let command = if rng.chance(700) {
        Command::SetMarkPrice { symbol: btc(), price: Decimal::new(rng.between(485_000, 515_000) as i64, 1) }
    } else {
        let rate = rng.between(1, 10) as i64 * if rng.chance(500) { 1 } else { -1 };
        Command::SettleFunding { symbol: btc(), rate: Decimal::new(rate, 4) }
    };
    move |_| vec![command]
}

/// An order drawn before its intent's id is known.
struct Draft {
    /// Buy or sell.
    side: Side,
    /// Limit or market.
    order_type: OrderType,
    /// GTC, IOC or FOK.
    time_in_force: TimeInForce,
    /// The limit price, in ticks of 0.1.
    price_ticks: i64,
    /// The quantity, in lots of 0.001.
    lots: i64,
    /// Refused if it would take liquidity.
    post_only: bool,
    /// Only reduces a position.
    reduce_only: bool,
    /// What happens when it would trade with its own account.
    stp_mode: StpMode,
    /// The client's leverage and margin mode.
    style: Style,
}

impl Draft {
    /// A BTCUSDT order: mostly limit orders between 49,800.0 and 50,200.0 that rest or
    /// cross, some IOC, FOK and market orders, a few post-only and reduce-only ones.
    fn draw(rng: &mut Rng, style: Style) -> Draft {
        let (order_type, time_in_force) = match rng.below(100) {
            0..=69 => (OrderType::Limit, TimeInForce::Gtc),
            70..=84 => (OrderType::Limit, TimeInForce::Ioc),
            85..=89 => (OrderType::Limit, TimeInForce::Fok),
            _ => (OrderType::Market, TimeInForce::Ioc),
        };
        Draft {
            side: rng.pick(&[Side::Buy, Side::Sell]),
            order_type,
            time_in_force,
            price_ticks: 498_000 + rng.between(0, 4_000) as i64,
            lots: rng.between(1, style.lots_max) as i64,
            post_only: rng.chance(50),
            reduce_only: rng.chance(50),
            stp_mode: rng.pick(&[StpMode::ExpireTaker, StpMode::ExpireMaker, StpMode::ExpireBoth]),
            style,
        }
    }

    /// The order, its client order id naming the intent and its place in it.
    fn command(&self, account_id: AccountId, id: u64, n: usize) -> Command {
        Command::PlaceOrder(PlaceOrder {
            account_id,
            symbol: btc(),
            side: self.side,
            order_type: self.order_type,
            price: (self.order_type == OrderType::Limit).then(|| Decimal::new(self.price_ticks, 1)),
            quantity: Decimal::new(self.lots, 3),
            leverage: self.style.leverage,
            margin_mode: self.style.margin_mode,
            time_in_force: self.time_in_force,
            reduce_only: self.reduce_only,
            post_only: self.post_only,
            stp_mode: self.stp_mode,
            client_order_id: Some(format!("intent-{id}-{n}")),
        })
    }
}

/// After the faults: every keyed intent that wrote is sent once more (the answer must be the
/// one it got), and every account gets one more deposit, answered by the last process (its
/// receipt is checked against the log's fold like every other).
pub async fn final_round(sim: &Arc<Sim>) {
    let mut rng = sim.fork_rng();
    let (again, accounts): (Vec<u64>, Vec<(AccountId, Option<UserId>)>) = {
        let intents = guard(&sim.intents);
        let again = intents
            .iter()
            .filter(|i| i.key.is_some() && i.reuses.is_none() && i.answers.iter().any(|a| wrote(a)))
            .map(|i| i.id)
            .collect();
        let accounts = intents
            .iter()
            .filter_map(|i| {
                let created = i.answers.iter().find_map(|a| match a.first() {
                    Some(Outcome::Done { receipt, .. }) => receipt.created_account,
                    _ => None,
                })?;
                Some((created, i.metadata.user_id))
            })
            .collect();
        (again, accounts)
    };
    for id in again {
        sim.count(|c| c.duplicates += 1);
        deliver(sim, id, &mut rng).await;
    }
    for (account, user) in accounts {
        let id = register(sim, user, true, |id| vec![deposit(account, id)]);
        deliver(sim, id, &mut rng).await;
    }
}
