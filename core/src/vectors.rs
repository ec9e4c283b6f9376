//! The runner of the shared given/when/then vectors (`tests/vectors/*.json`). It is plain
//! code over JSON text so that the native tests and the wasm tests run the very same files.
//!
//! A vector file is `{"name", "description", "cases": [case…]}`; a case is
//! `{"name", "rule", "given": [step…], "when": step, "then": expectations}`. Steps name
//! accounts and orders by alias (`"alice"`, `"o1"`); `"fee"` and `"insurance"` are the system
//! accounts. In expected payloads a string `"@alias"` stands for that alias's id. Decimals are
//! compared by value. See `tests/vectors/README.md` for the full format.

use crate::command::{Command, CommandContext, PlaceOrder};
use crate::engine::{Exchange, Outcome};
use crate::event::EventEnvelope;
use crate::ids::{AccountId, EventId, OrderId, UserId, FEE_ACCOUNT, INSURANCE_ACCOUNT};
use crate::invariants;
use crate::market::spec::{default_markets, MarketSpec};
use crate::order::events::FieldCorrection;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// Start of the clock used by vectors: 2026-01-01T00:00:00Z; each step is one second later.
pub const VECTOR_EPOCH: Timestamp = Timestamp(1_767_225_600_000);

/// What running a file found.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    /// Number of cases run.
    pub cases: usize,
    /// One message per failing case (`case name: what went wrong`).
    pub failures: Vec<String>,
    /// Event types produced by the file's cases (their `given` and `when` steps, genesis included).
    pub event_types: BTreeSet<String>,
    /// Every `eventType.reason` produced by the file's cases, for coverage of cancel reasons
    /// and rejection codes.
    pub reasons: BTreeSet<String>,
    /// The log of each case that ran to its end (for hosts that need real events of every type).
    pub logs: Vec<Vec<EventEnvelope>>,
}

/// Runs every case of one vector file.
pub fn run_file(text: &str) -> Result<FileReport, String> {
    let file: Value = serde_json::from_str(text).map_err(|e| format!("invalid vector file: {e}"))?;
    let cases = file.get("cases").and_then(Value::as_array).ok_or("a vector file needs \"cases\": [...]")?;
    let mut report = FileReport::default();
    for case in cases {
        let name = case.get("name").and_then(Value::as_str).unwrap_or("<unnamed>").to_owned();
        report.cases += 1;
        if let Err(e) = run_case(case, &mut report) {
            report.failures.push(format!("{name}: {e}"));
        }
    }
    Ok(report)
}

/// Runs every given vector file (`(name, text)` pairs) and checks that, together, they
/// produce every event type of the catalog, every cancel reason and every rejection code.
/// Returns the number of cases, or every failure found.
pub fn run_all<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<usize, String> {
    use crate::event::EVENT_TYPES;
    use crate::types::{CancelReason, RejectCode};
    let (mut cases, mut failures) = (0, Vec::new());
    let (mut event_types, mut reasons) = (BTreeSet::new(), BTreeSet::new());
    for (name, text) in files {
        let report = run_file(text).map_err(|e| format!("{name}: {e}"))?;
        cases += report.cases;
        failures.extend(report.failures.into_iter().map(|f| format!("{name}: {f}")));
        event_types.extend(report.event_types);
        reasons.extend(report.reasons);
    }
    let missing_types = EVENT_TYPES.iter().filter(|t| !event_types.contains(**t)).map(|t| format!("event {t}"));
    let missing_cancels = CancelReason::ALL
        .iter()
        .filter(|r| !reasons.contains(&format!("OrderCancelled.{r}")))
        .map(|r| format!("cancel reason {r}"));
    let missing_rejections = RejectCode::ALL
        .iter()
        .filter(|c| !reasons.contains(&format!("OrderRejected.{c}")))
        .map(|c| format!("rejection {c}"));
    let missing: Vec<String> = missing_types.chain(missing_cancels).chain(missing_rejections).collect();
    if !missing.is_empty() {
        failures.push(format!("no vector produces: {}", missing.join(", ")));
    }
    if failures.is_empty() {
        Ok(cases)
    } else {
        Err(format!("{} problem(s) in {cases} cases:\n{}", failures.len(), failures.join("\n")))
    }
}

/// The state of one case while it runs.
struct Run {
    exchange: Exchange,
    log: Vec<EventEnvelope>,
    accounts: BTreeMap<String, AccountId>,
    users: BTreeMap<String, UserId>,
    orders: BTreeMap<String, OrderId>,
    step: i64,
}

fn run_case(case: &Value, report: &mut FileReport) -> Result<(), String> {
    let markets = match case.get("markets") {
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| format!("markets: {e}"))?,
        None => default_markets(),
    };
    let mut run = Run::new(markets)?;
    for (i, step) in case.get("given").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let (result, _) = run.step(step)?;
        if let Err(e) = result {
            return Err(format!("given step {} failed: {e}", i + 1));
        }
    }
    let when = case.get("when").ok_or("a case needs \"when\"")?;
    let (result, events) = run.step(when)?;
    for envelope in &run.log {
        report.event_types.insert(envelope.event.event_type().to_owned());
        let payload: Value = serde_json::from_str(&envelope.event.payload_json()).unwrap_or_default();
        if let Some(reason) = payload.get("reason").and_then(Value::as_str) {
            report.reasons.insert(format!("{}.{reason}", envelope.event.event_type()));
        }
    }
    let then = case.get("then").ok_or("a case needs \"then\"")?;
    run.check_outcome(then, &result)?;
    run.check_events(then, &events)?;
    run.check_state(then)?;
    invariants::check(&run.exchange).map_err(|v| format!("invariant broken: {v}"))?;
    if Exchange::replay(&run.log) != run.exchange {
        return Err("folding the log from scratch differs from the live engine".into());
    }
    report.logs.push(run.log);
    Ok(())
}

type StepResult = Result<Outcome, String>;

impl Run {
    fn new(markets: Vec<MarketSpec>) -> Result<Self, String> {
        let mut run = Run {
            exchange: Exchange::new(),
            log: Vec::new(),
            accounts: BTreeMap::from([("fee".to_owned(), FEE_ACCOUNT), ("insurance".to_owned(), INSURANCE_ACCOUNT)]),
            users: BTreeMap::new(),
            orders: BTreeMap::new(),
            step: 0,
        };
        run.execute(&Command::Genesis { markets })?.map_err(|e| format!("genesis failed: {e}"))?;
        Ok(run)
    }

    fn execute(&mut self, command: &Command) -> Result<StepResult, String> {
        self.step += 1;
        let ctx = CommandContext { now: Timestamp(VECTOR_EPOCH.0 + self.step * 1000), ..Default::default() };
        match self.exchange.execute(command, &ctx) {
            Ok(decision) => {
                self.log.extend(decision.events);
                Ok(Ok(decision.outcome))
            }
            Err(e) => Ok(Err(e.code.as_str().to_owned())),
        }
    }

    /// Runs one step; returns its result and the events it produced.
    fn step(&mut self, step: &Value) -> Result<(StepResult, Vec<EventEnvelope>), String> {
        let (kind, args) = single_key(step)?;
        let before = self.log.len();
        let command = self.command(kind, args)?;
        let result = self.execute(&command)?;
        let events = self.log[before..].to_vec();
        self.record_aliases(kind, args, &events);
        Ok((result, events))
    }

    fn record_aliases(&mut self, kind: &str, args: &Value, events: &[EventEnvelope]) {
        use crate::event::Event;
        for envelope in events {
            match (&envelope.event, kind) {
                (Event::AccountCreated(e), "createAccount") => {
                    let alias = args.as_str().unwrap_or_default().to_owned();
                    self.accounts.insert(alias, e.account_id);
                }
                (Event::OrderPlaced(e), "place") => self.alias_order(args, e.order_id),
                (Event::OrderRejected(e), "place") => self.alias_order(args, e.order_id),
                _ => {}
            }
        }
    }

    fn alias_order(&mut self, args: &Value, order_id: OrderId) {
        if let Some(alias) = args.get("as").and_then(Value::as_str) {
            self.orders.insert(alias.to_owned(), order_id);
        }
    }

    fn account(&self, args: &Value) -> Result<AccountId, String> {
        let alias = str_field(args, "account")?;
        self.accounts.get(alias).copied().ok_or_else(|| format!("unknown account alias {alias:?}"))
    }

    fn order(&self, args: &Value) -> Result<OrderId, String> {
        let alias = str_field(args, "order")?;
        self.orders.get(alias).copied().ok_or_else(|| format!("unknown order alias {alias:?}"))
    }

    fn command(&mut self, kind: &str, args: &Value) -> Result<Command, String> {
        Ok(match kind {
            "createAccount" => {
                let alias = args.as_str().ok_or("createAccount takes the account's alias")?;
                let next = self.users.len() as u64 + 1;
                let user_id = *self.users.entry(alias.to_owned()).or_insert_with(|| UserId::derive(next));
                Command::CreateAccount { user_id }
            }
            "deposit" => Command::Deposit { account_id: self.account(args)?, amount: dec_field(args, "amount")? },
            "withdraw" => Command::Withdraw { account_id: self.account(args)?, amount: dec_field(args, "amount")? },
            "place" => Command::PlaceOrder(self.place(args)?),
            "cancel" => Command::CancelOrder { account_id: self.account(args)?, order_id: self.order(args)? },
            "cancelAll" => Command::CancelAllOrders { account_id: self.account(args)?, symbol: symbol_field(args)? },
            "leverage" => Command::ChangeLeverage {
                account_id: self.account(args)?,
                symbol: symbol_field(args)?,
                leverage: u32_field(args, "leverage")?,
            },
            "margin" => Command::AdjustMargin {
                account_id: self.account(args)?,
                symbol: symbol_field(args)?,
                amount: dec_field(args, "amount")?,
            },
            "markPrice" => Command::SetMarkPrice { symbol: symbol_field(args)?, price: dec_field(args, "price")? },
            "funding" => Command::SettleFunding { symbol: symbol_field(args)?, rate: dec_field(args, "rate")? },
            "correct" => self.correction(args)?,
            other => return Err(format!("unknown step {other:?}")),
        })
    }

    fn place(&self, args: &Value) -> Result<PlaceOrder, String> {
        let parse = |field: &str, default: &str| -> String {
            args.get(field).and_then(Value::as_str).unwrap_or(default).to_owned()
        };
        let side = Side::parse(&parse("side", "")).ok_or("place: side must be BUY or SELL")?;
        let order_type = OrderType::parse(&parse("type", "LIMIT")).ok_or("place: bad type")?;
        Ok(PlaceOrder {
            account_id: self.account(args)?,
            symbol: args.get("symbol").map_or(Ok("BTCUSDT".parse().expect("valid")), |_| symbol_field(args))?,
            side,
            order_type,
            price: args.get("price").map(|_| dec_field(args, "price")).transpose()?,
            quantity: dec_field(args, "quantity")?,
            leverage: args.get("leverage").map_or(Ok(20), |_| u32_field(args, "leverage"))?,
            margin_mode: MarginMode::parse(&parse("marginMode", "CROSS")).ok_or("place: bad marginMode")?,
            time_in_force: TimeInForce::parse(&parse("timeInForce", "GTC")).ok_or("place: bad timeInForce")?,
            reduce_only: args.get("reduceOnly").and_then(Value::as_bool).unwrap_or(false),
            post_only: args.get("postOnly").and_then(Value::as_bool).unwrap_or(false),
            stp_mode: StpMode::parse(&parse("stpMode", "EXPIRE_TAKER")).ok_or("place: bad stpMode")?,
            client_order_id: args.get("clientOrderId").and_then(Value::as_str).map(str::to_owned),
        })
    }

    fn correction(&self, args: &Value) -> Result<Command, String> {
        let order_id = self.order(args)?;
        let version = args.get("version").and_then(Value::as_u64).ok_or("correct: version")?;
        let corrected = self
            .log
            .iter()
            .find(|e| e.stream == crate::event::StreamId::order(order_id) && e.version == version)
            .map_or(EventId::derive(0), |e| e.event_id);
        let corrections: Vec<FieldCorrection> =
            serde_json::from_value(args.get("corrections").cloned().unwrap_or_default()).map_err(|e| e.to_string())?;
        Ok(Command::CorrectOrder {
            order_id,
            corrected_event_id: corrected,
            corrected_version: version,
            corrections,
            reason: str_field(args, "reason")?.to_owned(),
            corrected_by: UserId::derive(0),
        })
    }

    fn check_outcome(&self, then: &Value, result: &StepResult) -> Result<(), String> {
        let Some(expected) = then.get("outcome").and_then(Value::as_str) else { return Ok(()) };
        let actual = match result {
            Ok(Outcome::Accepted) => "ACCEPTED".to_owned(),
            Ok(Outcome::Rejected(code)) => format!("REJECTED:{code}"),
            Err(code) => format!("ERROR:{code}"),
        };
        if actual != expected {
            return Err(format!("outcome {actual}, expected {expected}"));
        }
        Ok(())
    }

    fn check_events(&self, then: &Value, events: &[EventEnvelope]) -> Result<(), String> {
        let types: Vec<&str> = events.iter().map(|e| e.event.event_type()).collect();
        if let Some(expected) = then.get("eventTypes").and_then(Value::as_array) {
            let expected: Vec<&str> = expected.iter().filter_map(Value::as_str).collect();
            if expected != types {
                return Err(format!("event types {types:?}, expected {expected:?}"));
            }
        }
        let mut next = 0;
        for expected in then.get("events").and_then(Value::as_array).into_iter().flatten() {
            let wanted_type = str_field(expected, "type")?;
            let wanted = expected.get("payload").cloned().unwrap_or(Value::Object(Map::new()));
            let found = events[next..].iter().position(|e| {
                e.event.event_type() == wanted_type
                    && self.matches(&wanted, &serde_json::from_str(&e.event.payload_json()).unwrap_or_default())
            });
            match found {
                Some(offset) => next += offset + 1,
                None => {
                    return Err(format!(
                        "no {wanted_type} matching {wanted} after event {next}; events were {types:?}: {}",
                        describe(&events[next..], wanted_type)
                    ))
                }
            }
        }
        Ok(())
    }

    /// True when every field of `wanted` (recursively) equals the same field of `actual`.
    fn matches(&self, wanted: &Value, actual: &Value) -> bool {
        match (wanted, actual) {
            (Value::Object(w), Value::Object(a)) => {
                w.iter().all(|(k, v)| a.get(k).is_some_and(|actual_value| self.matches(v, actual_value)))
            }
            (Value::String(w), actual) if w.starts_with('@') => {
                self.resolve(&w[1..]).is_some_and(|id| actual.as_str() == Some(id.as_str()))
            }
            (Value::String(w), Value::String(a)) => match (Decimal::from_str(w), Decimal::from_str(a)) {
                (Ok(x), Ok(y)) => x == y,
                _ => w == a,
            },
            (Value::Array(w), Value::Array(a)) => {
                w.len() == a.len() && w.iter().zip(a).all(|(x, y)| self.matches(x, y))
            }
            (w, a) => w == a,
        }
    }

    fn resolve(&self, alias: &str) -> Option<String> {
        if let Some(id) = self.accounts.get(alias) {
            return Some(id.to_string());
        }
        self.orders.get(alias).map(|id| id.to_string())
    }

    fn check_state(&self, then: &Value) -> Result<(), String> {
        for (alias, wanted) in then.get("accounts").and_then(Value::as_object).into_iter().flatten() {
            let id = self.accounts.get(alias).ok_or_else(|| format!("unknown account {alias}"))?;
            let account = self.exchange.account(*id).ok_or_else(|| format!("account {alias} missing"))?;
            let actual = serde_json::json!({
                "balance": account.balance.to_string(),
                "locked": account.locked.to_string(),
                "available": self.exchange.available(*id).to_string(),
                "positionMargin": self.exchange.position_margin(*id).to_string(),
            });
            expect_fields(&format!("account {alias}"), wanted, &actual, |w, a| self.matches(w, a))?;
        }
        for (key, wanted) in then.get("positions").and_then(Value::as_object).into_iter().flatten() {
            let actual = self.position_view(key)?;
            expect_fields(&format!("position {key}"), wanted, &actual, |w, a| self.matches(w, a))?;
        }
        for (alias, wanted) in then.get("orders").and_then(Value::as_object).into_iter().flatten() {
            let id = self.orders.get(alias).ok_or_else(|| format!("unknown order {alias}"))?;
            let order = self.exchange.order(*id).ok_or_else(|| format!("order {alias} missing"))?;
            let mut actual = serde_json::to_value(order).map_err(|e| e.to_string())?;
            actual["avgPrice"] = order.avg_price().map_or(Value::Null, |p| Value::String(p.to_string()));
            expect_fields(&format!("order {alias}"), wanted, &actual, |w, a| self.matches(w, a))?;
        }
        Ok(())
    }

    /// `"alice:BTCUSDT"` → the position's figures at the current mark.
    fn position_view(&self, key: &str) -> Result<Value, String> {
        let (alias, symbol) = key.split_once(':').ok_or("positions are keyed \"account:SYMBOL\"")?;
        let account = self.accounts.get(alias).ok_or_else(|| format!("unknown account {alias}"))?;
        let symbol: Symbol = symbol.parse().map_err(|e| format!("{e}"))?;
        let Some(p) = self.exchange.position_of(*account, symbol) else {
            return Ok(serde_json::json!({ "size": "0" }));
        };
        let spec = &self.exchange.market(symbol).ok_or("unknown market")?.spec;
        let mark = self.exchange.mark_price(symbol);
        let opt = |d: Option<Decimal>| d.map_or(Value::Null, |d| Value::String(d.to_string()));
        Ok(serde_json::json!({
            "side": p.side,
            "size": p.size.to_string(),
            "entryPrice": opt(p.entry_price()),
            "entryValue": p.entry_value.to_string(),
            "margin": p.margin.to_string(),
            "leverage": p.leverage,
            "marginMode": p.margin_mode,
            "realizedPnl": p.realized_pnl.to_string(),
            "unrealizedPnl": p.unrealized_pnl(mark.unwrap_or_default()).to_string(),
            "maintenanceMargin": opt(mark.map(|m| p.maintenance_margin(spec, m))),
            "liquidationPrice": opt(self.exchange.liquidation_price(p.position_id)),
        }))
    }
}

fn expect_fields(
    what: &str,
    wanted: &Value,
    actual: &Value,
    matches: impl Fn(&Value, &Value) -> bool,
) -> Result<(), String> {
    for (field, value) in wanted.as_object().into_iter().flatten() {
        let got = actual.get(field).unwrap_or(&Value::Null);
        if !matches(value, got) {
            return Err(format!("{what}: {field} is {got}, expected {value}"));
        }
    }
    Ok(())
}

fn describe(events: &[EventEnvelope], wanted_type: &str) -> String {
    let same: Vec<String> =
        events.iter().filter(|e| e.event.event_type() == wanted_type).map(|e| e.event.payload_json()).collect();
    if same.is_empty() {
        "none of that type".into()
    } else {
        same.join(" | ")
    }
}

fn single_key(step: &Value) -> Result<(&str, &Value), String> {
    let object =
        step.as_object().filter(|o| o.len() == 1).ok_or_else(|| format!("a step is {{\"kind\": args}}: {step}"))?;
    let (kind, args) = object.iter().next().expect("one key");
    Ok((kind.as_str(), args))
}

fn str_field<'a>(args: &'a Value, field: &str) -> Result<&'a str, String> {
    args.get(field).and_then(Value::as_str).ok_or_else(|| format!("missing string field {field:?} in {args}"))
}

fn dec_field(args: &Value, field: &str) -> Result<Decimal, String> {
    Decimal::from_str(str_field(args, field)?).map_err(|e| format!("{field}: {e}"))
}

fn u32_field(args: &Value, field: &str) -> Result<u32, String> {
    args.get(field)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("missing integer field {field:?}"))
}

fn symbol_field(args: &Value) -> Result<Symbol, String> {
    str_field(args, "symbol")?.parse().map_err(|e| format!("{e}"))
}
