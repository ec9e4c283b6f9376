//! Command routes: parse the request into a core command, hand it to the single writer, and
//! answer once its batch is committed. Every answer carries `position`, the global position
//! of the command's last event.

use super::{ApiError, AppState, Body, Role, User};
use crate::processor::{IdempotencyKey, Outcome, ProcessorError, Reply};
use crate::projector::{read_model_name, READ_MODELS};
use crate::store::StreamRange;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use perpetua_core::audit::Hash;
use perpetua_core::event::{Event, StreamId};
use perpetua_core::ids::{AccountId, OrderId, UserId};
use perpetua_core::order::events::FieldCorrection;
use perpetua_core::projection::OrderView;
use perpetua_core::symbol::Symbol;
use perpetua_core::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use perpetua_core::{Command, CommandError, Decimal, Decision, ErrorCode, Exchange, Metadata, PlaceOrder};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A decimal sent as a JSON string (`"100.5"`); numbers are refused, so no precision is lost
/// on the way in.
#[derive(Clone, Copy, Debug)]
pub struct Dec(pub Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        text.parse::<Decimal>()
            .ok()
            .filter(|_| !text.is_empty() && text.trim() == text && !text.contains(['e', 'E']))
            .map(Dec)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a decimal number (at most 28 digits)")))
    }
}

/// The stable HTTP status of a command the engine refused.
fn refusal(error: CommandError) -> ApiError {
    let status = match error.code {
        ErrorCode::InvalidArgument | ErrorCode::AmountOutOfRange | ErrorCode::MarketNotFound => StatusCode::BAD_REQUEST,
        ErrorCode::AccountNotFound | ErrorCode::OrderNotFound | ErrorCode::NotOrderOwner => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    // Another trader's order is reported as not found: its existence is not disclosed.
    let message = if error.code == ErrorCode::NotOrderOwner { "no such order".to_owned() } else { error.message };
    let code = if error.code == ErrorCode::NotOrderOwner { "ORDER_NOT_FOUND" } else { error.code.as_str() };
    ApiError::new(status, code, message)
}

fn processor_error(error: ProcessorError) -> ApiError {
    let status = match &error {
        ProcessorError::IdempotencyKeyReused(_) => StatusCode::CONFLICT,
        ProcessorError::Store(_) | ProcessorError::Stopped | ProcessorError::LeaseLost(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    // The database's own words stay in the server's log (the processor writes them once per
    // failed batch); the client gets what to do.
    let message = match &error {
        // A commit whose connection failed may have landed: only the key makes a retry safe.
        ProcessorError::Store(_) => {
            "the event store did not confirm the commit; retry with the same Idempotency-Key".to_owned()
        }
        ProcessorError::LeaseLost(_) => "this server is no longer the writer; send the command again".to_owned(),
        other => other.to_string(),
    };
    ApiError::new(status, error.code(), message)
}

/// The request's idempotency key, scoped to the caller, with the request's digest.
fn idempotency(user: &User, headers: &HeaderMap, what: &str, body: &[u8]) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_IDEMPOTENCY_KEY",
                "Idempotency-Key must be 1 to 200 visible ASCII characters",
            )
        })?;
    let mut digest = Sha256::new();
    digest.update(what.as_bytes());
    digest.update([0]);
    digest.update(body);
    Ok(Some(IdempotencyKey { key: format!("{}:{key}", user.user_id), fingerprint: Hash(digest.finalize().into()) }))
}

fn metadata(user: &User, headers: &HeaderMap) -> Result<Metadata, ApiError> {
    let correlation_id = match headers.get("x-correlation-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ApiError::bad_request("INVALID_CORRELATION_ID", "X-Correlation-Id must be a UUID"))?,
        ),
    };
    Ok(Metadata { user_id: Some(user.user_id), correlation_id, causation_id: None, ip_address: None })
}

/// Submits a command and turns its outcome into the response.
#[allow(clippy::too_many_arguments)]
async fn submit(
    state: &AppState,
    user: &User,
    headers: &HeaderMap,
    what: &str,
    body: &[u8],
    command: Command,
    render: impl FnOnce(&Exchange, &Decision) -> (StatusCode, Value) + Send + 'static,
) -> Result<(StatusCode, Value, u64), ApiError> {
    let idempotency = idempotency(user, headers, what, body)?;
    let metadata = metadata(user, headers)?;
    let render = Box::new(move |exchange: &Exchange, decision: &Decision| {
        let position = decision.events.last().map_or(exchange.last_position(), |e| e.position);
        let (status, mut body) = render(exchange, decision);
        body["position"] = json!(position);
        Reply { status: status.as_u16(), body }
    });
    match state.processor.submit(command, metadata, idempotency, render).await.map_err(processor_error)? {
        Outcome::Done { reply, position } => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            Ok((status, reply.body, position))
        }
        Outcome::Refused(error) => Err(refusal(error)),
    }
}

async fn run(
    state: &AppState,
    user: &User,
    headers: &HeaderMap,
    what: &str,
    body: &[u8],
    command: Command,
    render: impl FnOnce(&Exchange, &Decision) -> (StatusCode, Value) + Send + 'static,
) -> Result<Response, ApiError> {
    let (status, body, _) = submit(state, user, headers, what, body, command, render).await?;
    Ok((status, Json(body)).into_response())
}

fn account_json(exchange: &Exchange, account_id: AccountId) -> Value {
    match exchange.account(account_id) {
        Some(account) => json!({
            "accountId": account.account_id,
            "userId": account.user_id,
            "balance": account.balance,
            "locked": account.locked,
            "available": exchange.available(account_id),
            "positionMargin": exchange.position_margin(account_id),
        }),
        None => Value::Null,
    }
}

fn open_position_json(exchange: &Exchange, account_id: AccountId, symbol: Symbol) -> Value {
    match exchange.position_of(account_id, symbol).filter(|p| p.is_open()) {
        Some(position) => {
            let mut value = serde_json::to_value(position).expect("positions serialize");
            value["unrealizedPnl"] = json!(exchange.unrealized_pnl(position));
            value["liquidationPrice"] = json!(exchange.liquidation_price(position.position_id));
            value
        }
        None => Value::Null,
    }
}

fn order_json(exchange: &Exchange, order_id: OrderId) -> Value {
    exchange.order(order_id).map_or(Value::Null, |o| serde_json::to_value(OrderView::from(o)).expect("views serialize"))
}

fn own_account(user: &User, account_id: AccountId) -> Result<AccountId, ApiError> {
    if user.account_id == Some(account_id) {
        Ok(account_id)
    } else {
        Err(ApiError::forbidden("a trader may act only on its own account"))
    }
}

fn trader_account(user: &User) -> Result<AccountId, ApiError> {
    user.account_id.ok_or_else(|| ApiError::forbidden("this user has no trading account"))
}

fn parse_path<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::bad_request("INVALID_PATH", format!("{text:?} is not a valid {what}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    name: String,
    role: String,
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Extension(admin): Extension<User>,
    headers: HeaderMap,
    body: Body<CreateUser>,
) -> Result<Response, ApiError> {
    let CreateUser { name, role } = body.value;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("INVALID_NAME", "name must be 1 to 200 printable characters"));
    }
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::bad_request("INVALID_ROLE", "role must be trader, auditor or admin"))?;
    let user_id = UserId(uuid::Uuid::new_v4());
    let token = super::new_token();
    let now = crate::now_ms();
    let (account_id, position) = if role == Role::Trader {
        let command = Command::CreateAccount { user_id };
        let (_, reply, position) =
            submit(&state, &admin, &headers, "POST /v1/users", &body.bytes, command, move |_, decision| {
                let account = decision.events.iter().find_map(|e| match &e.event {
                    Event::AccountCreated(created) => Some(created.account_id),
                    _ => None,
                });
                (StatusCode::CREATED, json!({ "userId": user_id, "accountId": account }))
            })
            .await?;
        if reply["userId"] != json!(user_id) {
            // A retry under an idempotency key: the user exists; its token was shown once.
            return Ok((StatusCode::OK, Json(reply)).into_response());
        }
        (reply["accountId"].as_str().and_then(|a| a.parse().ok()), position)
    } else {
        (None, state.processor.head().borrow().position)
    };
    let user = User { user_id, name, role, account_id };
    super::insert_user(&state.db, &user, &token, now).await?;
    state.users.write().expect("users lock").insert(super::token_digest(&token), user);
    let body = json!({ "userId": user_id, "apiToken": token, "accountId": account_id, "role": role.as_str(), "position": position });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Amount {
    amount: Dec,
}

pub(super) async fn deposit(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body<Amount>,
) -> Result<Response, ApiError> {
    let account_id: AccountId = parse_path(&account, "account id")?;
    let what = format!("POST /v1/accounts/{account_id}/deposits");
    let command = Command::Deposit { account_id, amount: body.value.amount.0 };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, _| {
        (StatusCode::CREATED, json!({ "account": account_json(exchange, account_id) }))
    })
    .await
}

pub(super) async fn withdraw(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body<Amount>,
) -> Result<Response, ApiError> {
    let account_id = own_account(&user, parse_path(&account, "account id")?)?;
    let what = format!("POST /v1/accounts/{account_id}/withdrawals");
    let command = Command::Withdraw { account_id, amount: body.value.amount.0 };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, _| {
        (StatusCode::CREATED, json!({ "account": account_json(exchange, account_id) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewOrder {
    account_id: AccountId,
    symbol: Symbol,
    side: Side,
    #[serde(rename = "type")]
    order_type: OrderType,
    #[serde(default)]
    price: Option<Dec>,
    quantity: Dec,
    leverage: u32,
    #[serde(default)]
    margin_mode: Option<MarginMode>,
    #[serde(default)]
    time_in_force: Option<TimeInForce>,
    #[serde(default)]
    reduce_only: bool,
    #[serde(default)]
    post_only: bool,
    #[serde(default)]
    stp_mode: Option<StpMode>,
    #[serde(default)]
    client_order_id: Option<String>,
}

pub(super) async fn place_order(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    body: Body<NewOrder>,
) -> Result<Response, ApiError> {
    let order = body.value;
    let account_id = own_account(&user, order.account_id)?;
    let command = Command::PlaceOrder(PlaceOrder {
        account_id,
        symbol: order.symbol,
        side: order.side,
        order_type: order.order_type,
        price: order.price.map(|p| p.0),
        quantity: order.quantity.0,
        leverage: order.leverage,
        margin_mode: order.margin_mode.unwrap_or(MarginMode::Cross),
        time_in_force: order.time_in_force.unwrap_or(TimeInForce::Gtc),
        reduce_only: order.reduce_only,
        post_only: order.post_only,
        stp_mode: order.stp_mode.unwrap_or(StpMode::ExpireTaker),
        client_order_id: order.client_order_id,
    });
    let symbol = order.symbol;
    run(&state, &user, &headers, "POST /v1/orders", &body.bytes, command, move |exchange, decision| {
        let order_id = decision.events.iter().find_map(|e| match &e.event {
            Event::OrderPlaced(placed) => Some(placed.order_id),
            Event::OrderRejected(rejected) => Some(rejected.order_id),
            _ => None,
        });
        if let perpetua_core::Outcome::Rejected(code) = decision.outcome {
            let error = json!({ "code": code.as_str(), "message": format!("order rejected: {code}"), "orderId": order_id });
            return (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": error, "order": order_id.map(|id| order_json(exchange, id)) }));
        }
        let trades: Vec<Value> = decision
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::OrderMatched(m) if Some(m.order_id) == order_id && !m.is_maker => Some(json!({
                    "tradeId": m.trade_id,
                    "price": m.price,
                    "quantity": m.quantity,
                    "fee": m.fee,
                    "realizedPnl": m.realized_pnl,
                    "makerOrderId": m.counterparty_order_id,
                })),
                _ => None,
            })
            .collect();
        let order = order_id.map_or(Value::Null, |id| order_json(exchange, id));
        (
            StatusCode::CREATED,
            json!({ "order": order, "trades": trades, "openPosition": open_position_json(exchange, account_id, symbol) }),
        )
    })
    .await
}

pub(super) async fn cancel_order(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(order): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let order_id: OrderId = parse_path(&order, "order id")?;
    let account_id = trader_account(&user)?;
    let what = format!("DELETE /v1/orders/{order_id}");
    let command = Command::CancelOrder { account_id, order_id };
    run(&state, &user, &headers, &what, &[], command, move |exchange, _| {
        (StatusCode::OK, json!({ "order": order_json(exchange, order_id) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Leverage {
    leverage: u32,
}

pub(super) async fn change_leverage(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Body<Leverage>,
) -> Result<Response, ApiError> {
    let symbol: Symbol = parse_path(&symbol, "symbol")?;
    let account_id = trader_account(&user)?;
    let what = format!("POST /v1/positions/{symbol}/leverage");
    let command = Command::ChangeLeverage { account_id, symbol, leverage: body.value.leverage };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, _| {
        (StatusCode::OK, json!({ "openPosition": open_position_json(exchange, account_id, symbol) }))
    })
    .await
}

pub(super) async fn adjust_margin(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Body<Amount>,
) -> Result<Response, ApiError> {
    let symbol: Symbol = parse_path(&symbol, "symbol")?;
    let account_id = trader_account(&user)?;
    let what = format!("POST /v1/positions/{symbol}/margin");
    let command = Command::AdjustMargin { account_id, symbol, amount: body.value.amount.0 };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, _| {
        (StatusCode::OK, json!({ "openPosition": open_position_json(exchange, account_id, symbol) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Price {
    price: Dec,
}

fn market_json(exchange: &Exchange, symbol: Symbol, decision: &Decision) -> Value {
    let liquidated: Vec<Value> = decision
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::PositionLiquidated(l) => Some(json!(l.position_id)),
            _ => None,
        })
        .collect();
    json!({ "market": exchange.market(symbol), "liquidatedPositions": liquidated })
}

pub(super) async fn set_mark_price(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Body<Price>,
) -> Result<Response, ApiError> {
    let symbol: Symbol = parse_path(&symbol, "symbol")?;
    let what = format!("POST /v1/markets/{symbol}/mark-price");
    let command = Command::SetMarkPrice { symbol, price: body.value.price.0 };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, decision| {
        (StatusCode::OK, market_json(exchange, symbol, decision))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rate {
    rate: Dec,
}

pub(super) async fn settle_funding(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Body<Rate>,
) -> Result<Response, ApiError> {
    let symbol: Symbol = parse_path(&symbol, "symbol")?;
    let what = format!("POST /v1/markets/{symbol}/funding");
    let command = Command::SettleFunding { symbol, rate: body.value.rate.0 };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, decision| {
        (StatusCode::OK, market_json(exchange, symbol, decision))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Correction {
    corrected_version: u64,
    corrections: Vec<FieldCorrection>,
    reason: String,
}

pub(super) async fn correct_order(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(order): Path<String>,
    headers: HeaderMap,
    body: Body<Correction>,
) -> Result<Response, ApiError> {
    let order_id: OrderId = parse_path(&order, "order id")?;
    let version = body.value.corrected_version;
    let range = StreamRange { from_version: version.max(1), to_version: Some(version.max(1)), until: None };
    let corrected = state.store.read_stream(StreamId::order(order_id), range).await?;
    let event = corrected
        .first()
        .filter(|e| e.version == version)
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} has no event at version {version}")))?;
    let what = format!("POST /v1/orders/{order_id}/corrections");
    let command = Command::CorrectOrder {
        order_id,
        corrected_event_id: event.event_id,
        corrected_version: version,
        corrections: body.value.corrections,
        reason: body.value.reason,
        corrected_by: user.user_id,
    };
    run(&state, &user, &headers, &what, &body.bytes, command, move |exchange, _| {
        (StatusCode::CREATED, json!({ "order": order_json(exchange, order_id) }))
    })
    .await
}

pub(super) async fn rebuild_projection(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let names: Vec<&'static str> = if name == "all" {
        READ_MODELS.to_vec()
    } else {
        vec![read_model_name(&name).ok_or_else(|| {
            ApiError::not_found(format!("no read model {name:?}; they are {} (or all)", READ_MODELS.join(", ")))
        })?]
    };
    state
        .projector
        .rebuild(names.clone())
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", e))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "rebuilding": names }))).into_response())
}
