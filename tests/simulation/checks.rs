//! The promises checked after every run, against the disk as the faults left it:
//!
//! - the log is contiguous from position 1, its hash chain verifies and ends at the head;
//! - every answer equals what the log says: each `Done` names the last event of a command of
//!   its intent, and its receipt is the one the log's fold gives at that position; every
//!   answer of one key that wrote is the same answer;
//! - every intent is in the log as often as its answers say: exactly once when it was done,
//!   never when it was refused or reused another request's key, at most once when it got no
//!   answer; order by order (client order ids) and deposit by deposit (amounts) alike;
//! - one idempotency record per key that wrote, with its request's digest and position;
//! - each snapshot on the disk equals the fold at its position, and the engine loaded from
//!   the newest snapshot and the tail equals the fold of the whole log;
//! - the fold keeps the core's invariants, money among them, and the money in the accounts is
//!   what the log's deposits and withdrawals brought.

use crate::clients::{wrote, Intent};
use crate::disk;
use crate::sim::{guard, Sim};
use perpetua_core::audit::{self, HashChain};
use perpetua_core::engine::{Decision, Outcome as Decided};
use perpetua_core::event::{AggregateId, AggregateType, Event, EventEnvelope, StoredEvent, StreamId};
use perpetua_core::snapshot::AggregateSnapshot;
use perpetua_core::{invariants, Command, Decimal, Exchange, Receipt};
use perpetua_server::processor::{aggregate_state, LoadError, Outcome};
use perpetua_server::store::{IdempotencyRecord, SnapshotRecord, ENGINE_SNAPSHOT_TYPE};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Runs every check; each broken promise is recorded as a violation.
pub fn check(sim: &Sim, loaded: Result<(Exchange, HashChain), LoadError>) {
    let (events, head, keys, snapshots, refusals) = {
        let disk = disk::lock(&sim.disk);
        (disk.events.clone(), disk.head, disk.keys.clone(), disk.snapshots.clone(), disk.refusals.clone())
    };
    let intents = guard(&sim.intents).clone();
    for refusal in refusals {
        sim.violation(format!("the store refused a batch: {refusal}"));
    }
    check_chain(sim, &events, head);
    let mut decoded = Vec::with_capacity(events.len());
    for event in &events {
        match event.decode() {
            Ok(envelope) => decoded.push(envelope),
            Err(e) => return sim.violation(format!("position {} does not decode: {e}", event.position)),
        }
    }
    let fold = fold_and_check_answers(sim, &decoded, &intents, &snapshots);
    match loaded {
        Ok((engine, chain)) => {
            if chain != head {
                sim.violation(format!(
                    "the engine loaded at position {}, the disk's head is {}",
                    chain.last_position, head.last_position
                ));
            }
            if engine != fold {
                sim.violation(format!(
                    "the engine loaded from the newest snapshot and the tail differs from the fold of the log (at {})",
                    head.last_position
                ));
            }
            let json = |exchange: &Exchange| serde_json::to_string(&exchange.snapshot()).expect("snapshots serialize");
            if json(&engine) != json(&fold) {
                sim.violation("the loaded engine's snapshot differs from the fold's".into());
            }
        }
        Err(e) => sim.violation(format!("the engine does not load from the disk: {e}")),
    }
    check_landings(sim, &decoded, &intents);
    check_keys(sim, &decoded, &intents, &keys);
    check_money(sim, &decoded, &fold);
}

/// Positions 1, 2, 3… in order, a verifying chain, and the head at its last event.
fn check_chain(sim: &Sim, events: &[StoredEvent], head: HashChain) {
    if let Some((index, event)) = events.iter().enumerate().find(|(index, e)| e.position != *index as u64 + 1) {
        sim.violation(format!("the log is not contiguous: position {} is at place {}", event.position, index + 1));
    }
    let report = audit::verify(events, HashChain::default());
    if !report.is_ok() {
        sim.violation(format!("the hash chain breaks at position {:?}: {:?}", report.first_bad_position, report.fault));
    }
    let last =
        events.last().map_or(HashChain::default(), |e| HashChain { last_position: e.position, last_hash: e.hash });
    if last != head {
        sim.violation(format!("the head says position {}, the log ends at {}", head.last_position, last.last_position));
    }
}

/// The answer an intent is judged by: its first that wrote, else its first.
fn reference(intent: &Intent) -> Option<&[Outcome]> {
    let answers = &intent.answers;
    answers.iter().find(|a| wrote(a)).or(answers.first()).map(|a| &a[..])
}

/// Folds the log from position 1, checking at each command's end the receipts answered there
/// and at each position the snapshots saved there. Returns the fold.
fn fold_and_check_answers(
    sim: &Sim,
    decoded: &[EventEnvelope],
    intents: &[Intent],
    snapshots: &[SnapshotRecord],
) -> Exchange {
    let mut answered: BTreeMap<u64, Vec<(u64, &Command, &Receipt)>> = BTreeMap::new();
    for intent in intents {
        let Some(answer) = reference(intent) else { continue };
        for again in intent.answers.iter().filter(|a| wrote(a)) {
            if &again[..] != answer {
                sim.violation(format!(
                    "intent {}: its key was answered differently: {} after {}{}",
                    intent.id,
                    summary(again),
                    summary(answer),
                    first_difference(again, answer)
                ));
            }
        }
        for (command, outcome) in intent.commands.iter().zip(answer) {
            if let Outcome::Done { receipt, position } = outcome {
                answered.entry(*position).or_default().push((intent.id, command, receipt));
            }
        }
    }
    let mut saved: BTreeMap<u64, Vec<&SnapshotRecord>> = BTreeMap::new();
    for snapshot in snapshots {
        saved.entry(snapshot.position).or_default().push(snapshot);
    }
    let mut exchange = Exchange::new();
    let mut command_start = 0;
    for (index, envelope) in decoded.iter().enumerate() {
        exchange.apply(envelope);
        let position = envelope.position;
        let ends_command =
            decoded.get(index + 1).is_none_or(|next| next.metadata.causation_id != envelope.metadata.causation_id);
        if let Some(here) = answered.remove(&position) {
            if !ends_command {
                sim.violation(format!("position {position} was answered but does not end its command"));
            }
            let decision = Decision { events: decoded[command_start..=index].to_vec(), outcome: Decided::Accepted };
            for (id, command, receipt) in here {
                let expected = exchange.receipt(command, &decision);
                if expected != *receipt {
                    sim.violation(format!(
                        "intent {id}: the receipt answered at position {position} is not the log's: {}",
                        differences(receipt, &expected)
                    ));
                }
            }
        }
        if ends_command {
            command_start = index + 1;
        }
        for snapshot in saved.remove(&position).unwrap_or_default() {
            check_snapshot(sim, &exchange, snapshot);
        }
    }
    for (position, here) in answered {
        let ids: Vec<u64> = here.iter().map(|(id, ..)| *id).collect();
        sim.violation(format!("intents {ids:?} were answered with position {position}, beyond the log"));
    }
    for position in saved.keys() {
        sim.violation(format!("a snapshot was saved at position {position}, beyond the log"));
    }
    exchange
}

/// A snapshot equals the fold at its position.
fn check_snapshot(sim: &Sim, fold: &Exchange, snapshot: &SnapshotRecord) {
    let position = snapshot.position;
    if snapshot.aggregate_type == ENGINE_SNAPSHOT_TYPE {
        match Exchange::from_snapshot_json(&snapshot.state) {
            Ok(engine) if engine == *fold => {}
            Ok(_) => sim.violation(format!("the engine snapshot at position {position} differs from the fold")),
            Err(e) => sim.violation(format!("the engine snapshot at position {position} does not load: {e}")),
        }
        return;
    }
    let stream = AggregateType::parse(&snapshot.aggregate_type)
        .zip(snapshot.aggregate_id.parse::<AggregateId>().ok())
        .map(|(aggregate_type, aggregate_id)| StreamId { aggregate_type, aggregate_id });
    let read = AggregateSnapshot::from_json(&snapshot.state);
    match (stream, read) {
        (Some(stream), Ok(read)) if Some(&read.state) == aggregate_state(fold, stream).as_ref() => {}
        (stream, read) => sim.violation(format!(
            "the snapshot of {}/{} at position {position} is not the fold's ({stream:?}, {:?})",
            snapshot.aggregate_type,
            snapshot.aggregate_id,
            read.err()
        )),
    }
}

/// What the log holds of each intent.
#[derive(Default)]
struct Found {
    /// Commands (causation ids) of each correlation id.
    commands: BTreeMap<uuid::Uuid, BTreeSet<uuid::Uuid>>,
    /// `OrderPlaced` and `OrderRejected` events of each client order id.
    orders: BTreeMap<String, u64>,
    /// `BalanceDeposited` events of each amount.
    deposits: BTreeMap<Decimal, u64>,
}

impl Found {
    /// What `decoded` holds.
    fn of(decoded: &[EventEnvelope]) -> Found {
        let mut found = Found::default();
        for envelope in decoded {
            if let (Some(correlation), Some(causation)) =
                (envelope.metadata.correlation_id, envelope.metadata.causation_id)
            {
                found.commands.entry(correlation).or_default().insert(causation);
            }
            let client_order_id = match &envelope.event {
                Event::OrderPlaced(e) => e.client_order_id.clone(),
                Event::OrderRejected(e) => e.client_order_id.clone(),
                Event::BalanceDeposited(e) => {
                    *found.deposits.entry(e.amount).or_default() += 1;
                    None
                }
                _ => None,
            };
            if let Some(id) = client_order_id {
                *found.orders.entry(id).or_default() += 1;
            }
        }
        found
    }

    /// How many commands of `intent` are in the log.
    fn landed(&self, intent: &Intent) -> usize {
        self.commands.get(&intent.correlation()).map_or(0, BTreeSet::len)
    }
}

/// Each intent is in the log as often as its answers allow.
fn check_landings(sim: &Sim, decoded: &[EventEnvelope], intents: &[Intent]) {
    let mut found = Found::of(decoded);
    for intent in intents {
        let landed = found.landed(intent);
        let answer = reference(intent);
        let id = intent.id;
        match answer {
            _ if intent.reuses.is_some() && landed > 0 => {
                sim.violation(format!("intent {id} reused another request's key and is in the log"))
            }
            Some(answer) => {
                let done = answer.iter().filter(|o| matches!(o, Outcome::Done { .. })).count();
                if landed != done {
                    sim.violation(format!(
                        "intent {id} was answered with {done} command(s) done and is in the log {landed} time(s)"
                    ));
                }
            }
            None if landed > intent.commands.len() => {
                sim.violation(format!("intent {id} got no answer and is in the log {landed} time(s)"))
            }
            None => {}
        }
        for (n, command) in intent.commands.iter().enumerate() {
            let outcome = answer.and_then(|answer| answer.get(n));
            let done = match intent.reuses {
                Some(_) => Some(false),
                None => outcome.map(|o| matches!(o, Outcome::Done { .. })),
            };
            let count = match command {
                Command::PlaceOrder(order) => {
                    order.client_order_id.as_ref().map_or(0, |coid| found.orders.remove(coid).unwrap_or(0))
                }
                Command::Deposit { amount, .. } => found.deposits.remove(amount).unwrap_or(0),
                _ => continue,
            };
            let allowed = match done {
                Some(true) => count == 1,
                Some(false) => count == 0,
                None => count <= 1,
            };
            if !allowed {
                sim.violation(format!(
                    "intent {id}, command {n} ({}): answered {}, found {count} time(s) in the log",
                    kind(command),
                    outcome.map_or("nothing".into(), |o| summary(std::slice::from_ref(o)))
                ));
            }
        }
    }
    let known: BTreeSet<uuid::Uuid> = intents.iter().map(Intent::correlation).collect();
    for correlation in found.commands.keys().filter(|c| !known.contains(c)) {
        sim.violation(format!("the log holds commands of correlation {correlation}, which no client sent"));
    }
    for (amount, count) in found.deposits.iter().filter(|(_, count)| **count > 0) {
        sim.violation(format!("the log holds {count} deposit(s) of {amount}, which no client asked for"));
    }
}

/// An answer in short: each command's position or refusal code.
fn summary(answer: &[Outcome]) -> String {
    let outcomes: Vec<String> = answer
        .iter()
        .map(|outcome| match outcome {
            Outcome::Done { position, .. } => format!("done at {position}"),
            Outcome::Refused(e) => format!("refused {}", e.code.as_str()),
            Outcome::Reply { status, .. } => format!("reply {status}"),
        })
        .collect();
    format!("[{}]", outcomes.join(", "))
}

/// Where two answers of the same shape differ first, in their receipts.
fn first_difference(a: &[Outcome], b: &[Outcome]) -> String {
    for pair in a.iter().zip(b) {
        if let (Outcome::Done { receipt: x, .. }, Outcome::Done { receipt: y, .. }) = pair {
            if x != y {
                return format!(" (receipts differ: {})", differences(x, y));
            }
        }
    }
    String::new()
}

/// The fields in which two receipts differ, each value cut short.
fn differences(a: &Receipt, b: &Receipt) -> String {
    let json = |receipt: &Receipt| serde_json::to_value(receipt).expect("receipts serialize");
    let (a, b) = (json(a), json(b));
    let empty = serde_json::Map::new();
    let (a, b) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let fields: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let short = |value: Option<&serde_json::Value>| {
        let text = value.map_or("absent".to_owned(), ToString::to_string);
        text.chars().take(160).collect::<String>()
    };
    let differing: Vec<String> = fields
        .into_iter()
        .filter(|field| a.get(*field) != b.get(*field))
        .map(|field| format!("{field}: {} vs {}", short(a.get(field)), short(b.get(field))))
        .collect();
    differing.join("; ")
}

/// What a command is, for messages.
fn kind(command: &Command) -> &'static str {
    match command {
        Command::PlaceOrder(_) => "an order",
        Command::Deposit { .. } => "a deposit",
        _ => "a command",
    }
}

/// One record per key that wrote, with its request's digest and the position of its last event.
fn check_keys(sim: &Sim, decoded: &[EventEnvelope], intents: &[Intent], keys: &BTreeMap<String, IdempotencyRecord>) {
    let mut last: BTreeMap<uuid::Uuid, u64> = BTreeMap::new();
    for envelope in decoded {
        if let Some(correlation) = envelope.metadata.correlation_id {
            last.insert(correlation, envelope.position);
        }
    }
    let mut writers = 0;
    for intent in intents.iter().filter(|i| i.reuses.is_none()) {
        let Some(key) = &intent.key else { continue };
        let Some(&position) = last.get(&intent.correlation()) else {
            if keys.get(&key.key).is_some_and(|record| record.fingerprint == key.fingerprint) {
                sim.violation(format!("key {:?} is recorded but its intent is not in the log", key.key));
            }
            continue;
        };
        writers += 1;
        match keys.get(&key.key) {
            Some(record) if record.fingerprint == key.fingerprint && record.position == position => {}
            Some(record) => sim.violation(format!(
                "key {:?}: recorded at position {} (digest {}), its intent ends at {position}",
                key.key,
                record.position,
                if record.fingerprint == key.fingerprint { "its own" } else { "another request's" }
            )),
            None => sim.violation(format!("key {:?} wrote but has no idempotency record", key.key)),
        }
    }
    if keys.len() != writers {
        sim.violation(format!("{} idempotency records for {writers} keys that wrote", keys.len()));
    }
}

/// The core's invariants, and the accounts' money against the log's deposits and withdrawals.
fn check_money(sim: &Sim, decoded: &[EventEnvelope], fold: &Exchange) {
    if let Err(violation) = invariants::check(fold) {
        sim.violation(format!("the fold of the log breaks an invariant: {violation}"));
    }
    let mut net = Decimal::ZERO;
    for envelope in decoded {
        match &envelope.event {
            Event::BalanceDeposited(e) => net += e.amount,
            Event::BalanceWithdrawn(e) => net -= e.amount,
            _ => {}
        }
    }
    let balances: Decimal = fold.accounts().map(|a| a.balance).sum();
    let entry_values: Decimal = fold.positions().map(|p| p.side.sign() * p.entry_value).sum();
    if balances - entry_values != net {
        sim.violation(format!(
            "money: balances {balances} and unrealized PnL {} do not add up to the log's deposits less withdrawals, {net}",
            -entry_values
        ));
    }
}

/// A digest of what a run did that does not depend on the clock: each event's position,
/// type, stream, version and ids, and each intent's answers (positions and refusal codes).
pub fn digest(sim: &Sim) -> String {
    let mut hasher = Sha256::new();
    for event in &disk::lock(&sim.disk).events {
        let line = format!(
            "{} {} {} {} {:?}\n",
            event.position, event.event_type, event.aggregate_id, event.version, event.metadata
        );
        hasher.update(line.as_bytes());
    }
    for intent in guard(&sim.intents).iter() {
        hasher.update(format!("{} {}", intent.id, intent.attempts).as_bytes());
        for outcome in intent.answers.iter().flat_map(|a| a.iter()) {
            let line = match outcome {
                Outcome::Done { position, .. } => format!(" done {position}"),
                Outcome::Refused(e) => format!(" refused {}", e.code.as_str()),
                Outcome::Reply { status, .. } => format!(" reply {status}"),
            };
            hasher.update(line.as_bytes());
        }
        hasher.update(b"\n");
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
