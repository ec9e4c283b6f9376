//! Command routes: parse the request into a core command, hand it to the single writer, and
//! answer once its batch is committed. Every answer carries `position`, the global position
//! of the command's last event.

use super::wire::{self, Amount, Correction, FundingRate, Leverage, MarkPrice, NewOrder, NewOrders};
use super::{ApiError, AppState, Body, Role, User};
use crate::processor::{IdempotencyKey, Outcome, ProcessorError};
use crate::projector::{read_model_name, READ_MODELS};
use crate::store::StreamRange;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use perpetua_core::audit::Hash;
use perpetua_core::event::StreamId;
use perpetua_core::ids::{AccountId, OrderId, UserId};
use perpetua_core::symbol::Symbol;
use perpetua_core::types::{MarginMode, StpMode, TimeInForce};
use perpetua_core::{Command, CommandError, ErrorCode, Metadata, PlaceOrder, Receipt};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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
    ApiError { detail: Some(error.to_string()), ..ApiError::new(status, error.code(), message) }
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

/// How the answer to an accepted command is shaped from its receipt and its position.
type Shape = fn(&Receipt, u64) -> (StatusCode, Value);

/// A wire answer as JSON.
fn body(answer: impl Serialize) -> Value {
    serde_json::to_value(answer).expect("wire types serialize")
}

/// An outcome as the HTTP answer: status and body (with `position`), or the refusal.
fn shape(outcome: &Outcome, shape: Shape) -> Result<(StatusCode, Value), ApiError> {
    match outcome {
        Outcome::Done { receipt, position } => Ok(shape(receipt, *position)),
        Outcome::Refused(error) => Err(refusal(error.clone())),
        // Stored by an earlier version: answered as stored.
        Outcome::Reply { status, body } => Ok((StatusCode::from_u16(*status).unwrap_or(StatusCode::OK), body.clone())),
    }
}

/// Submits a command and shapes its outcome into the answer.
async fn submit(
    state: &AppState,
    user: &User,
    headers: &HeaderMap,
    request: (&str, &[u8]),
    command: Command,
    shape_with: Shape,
) -> Result<(StatusCode, Value), ApiError> {
    let (what, body) = request;
    let idempotency = idempotency(user, headers, what, body)?;
    let metadata = metadata(user, headers)?;
    let outcome = state.processor.submit(command, metadata, idempotency).await.map_err(processor_error)?;
    shape(&outcome, shape_with)
}

async fn run(
    state: &AppState,
    user: &User,
    headers: &HeaderMap,
    request: (&str, &[u8]),
    command: Command,
    shape_with: Shape,
) -> Result<Response, ApiError> {
    let (status, body) = submit(state, user, headers, request, command, shape_with).await?;
    Ok((status, Json(body)).into_response())
}

fn account_of(receipt: &Receipt) -> wire::Account {
    wire::Account::from(receipt.account.as_ref().expect("an account command's receipt has its account"))
}

fn order_of(receipt: &Receipt) -> wire::Order {
    wire::Order::from(receipt.order.as_ref().expect("an order command's receipt has its order"))
}

fn open_position_of(receipt: &Receipt) -> Option<wire::Position> {
    receipt.position.as_ref().map(wire::Position::from)
}

fn account_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    (StatusCode::CREATED, body(wire::AccountAnswer { account: account_of(receipt), position }))
}

fn order_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    (StatusCode::OK, body(wire::OrderAnswer { order: order_of(receipt), position }))
}

fn position_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    (StatusCode::OK, body(wire::PositionAnswer { open_position: open_position_of(receipt), position }))
}

fn corrected_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    (StatusCode::CREATED, body(wire::OrderAnswer { order: order_of(receipt), position }))
}

fn market_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    let market = wire::Market::from(receipt.market.as_ref().expect("a market command's receipt has its market"));
    (StatusCode::OK, body(wire::MarketAnswer { market, liquidated_positions: receipt.liquidated.clone(), position }))
}

/// A placed order: 201 with its taker fills and the open position after it, or 422 with the
/// rejection (the order is recorded as rejected).
fn placed_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    let order = order_of(receipt);
    if let Some(code) = receipt.order.as_ref().and_then(|o| o.reject_reason) {
        let error = wire::RejectionDetail {
            code: code.into(),
            message: format!("order rejected: {code}"),
            order_id: order.order_id,
        };
        return (StatusCode::UNPROCESSABLE_ENTITY, body(wire::OrderRejected { error, order, position }));
    }
    let fills = receipt.fills.iter().map(wire::Fill::from).collect();
    (StatusCode::CREATED, body(wire::OrderPlaced { order, fills, open_position: open_position_of(receipt), position }))
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

pub(super) async fn create_user(
    State(state): State<AppState>,
    Extension(admin): Extension<User>,
    headers: HeaderMap,
    body: Body<wire::CreateUser>,
) -> Result<Response, ApiError> {
    let wire::CreateUser { name, role } = body.value;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("INVALID_NAME", "name must be 1 to 200 printable characters"));
    }
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::bad_request("INVALID_ROLE", "role must be trader, auditor or admin"))?;
    let mut user_id = UserId(uuid::Uuid::new_v4());
    // The first try's answer, when this retry stores the user that try did not.
    let mut recovered = None;
    let token = super::new_token();
    let now = crate::now_ms();
    let (account_id, position) = if role == Role::Trader {
        let command = Command::CreateAccount { user_id };
        let (_, reply) =
            submit(&state, &admin, &headers, ("POST /v1/users", &body.bytes), command, created_shape).await?;
        if reply["userId"] != json!(user_id) {
            // A retry under an idempotency key: the first try opened the account. Its user is
            // stored, and its token was shown once — unless the server that took the first try
            // stopped between the two (a crash, a failover): then the user is stored now, with
            // a new token, so the account is never left without its user.
            match reply["userId"].as_str().and_then(|u| u.parse().ok()) {
                Some(first) => {
                    user_id = first;
                    recovered = Some(reply.clone());
                }
                None => return Ok((StatusCode::OK, Json(reply)).into_response()),
            }
        }
        (reply["accountId"].as_str().and_then(|a| a.parse().ok()), reply["position"].as_u64().unwrap_or_default())
    } else {
        (None, state.processor.head().borrow().position)
    };
    let user = User { user_id, name, role, account_id };
    match recovered {
        // Stored already (by the first try, or by a retry at the same moment): answered as a
        // retry is.
        Some(reply) => {
            if !crate::users::insert_if_absent(&state.db, &user, &token, now).await? {
                return Ok((StatusCode::OK, Json(reply)).into_response());
            }
        }
        None => super::insert_user(&state.db, &user, &token, now).await?,
    }
    state.users.write().expect("users lock").insert(super::token_digest(&token), user);
    let created = wire::UserCreated { user_id, api_token: Some(token), account_id, role: Some(role.into()), position };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// A trader's account opened: its user and account (what a retry under the key is told).
fn created_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    let user_id = receipt.account.as_ref().map_or(UserId(uuid::Uuid::nil()), |a| a.state.user_id);
    let created =
        wire::UserCreated { user_id, api_token: None, account_id: receipt.created_account, role: None, position };
    (StatusCode::CREATED, body(created))
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
    run(&state, &user, &headers, (&what, &body.bytes), command, account_shape).await
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
    run(&state, &user, &headers, (&what, &body.bytes), command, account_shape).await
}

/// The command of a new order, for the caller's own account.
fn place_command(order: NewOrder, user: &User) -> Result<Command, ApiError> {
    let account_id = own_account(user, order.account_id)?;
    Ok(Command::PlaceOrder(PlaceOrder {
        account_id,
        symbol: order.symbol,
        side: order.side.into(),
        order_type: order.order_type.into(),
        price: order.price.map(|p| p.0),
        quantity: order.quantity.0,
        leverage: order.leverage,
        margin_mode: order.margin_mode.map_or(MarginMode::Cross, Into::into),
        time_in_force: order.time_in_force.map_or(TimeInForce::Gtc, Into::into),
        reduce_only: order.reduce_only,
        post_only: order.post_only,
        stp_mode: order.stp_mode.map_or(StpMode::ExpireTaker, Into::into),
        client_order_id: order.client_order_id,
    }))
}

pub(super) async fn place_order(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    body: Body<NewOrder>,
) -> Result<Response, ApiError> {
    let command = place_command(body.value, &user)?;
    run(&state, &user, &headers, ("POST /v1/orders", &body.bytes), command, placed_shape).await
}

/// Most orders in one batch request.
pub const MAX_BATCH_ORDERS: usize = 50;

/// `POST /v1/orders/batch`: up to [`MAX_BATCH_ORDERS`] orders, decided one after another in
/// the same commit, each on its own (one may be refused or rejected while the others trade).
/// 200 with one result per order, in order: its status and what `POST /v1/orders` would have
/// answered. A malformed order, or one for another account, refuses the whole request before
/// anything is decided. An `Idempotency-Key` covers the whole request.
pub(super) async fn place_orders(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    headers: HeaderMap,
    body: Body<NewOrders>,
) -> Result<Response, ApiError> {
    let orders = body.value.orders;
    if orders.is_empty() || orders.len() > MAX_BATCH_ORDERS {
        return Err(ApiError::bad_request(
            "INVALID_BATCH",
            format!("a batch holds 1 to {MAX_BATCH_ORDERS} orders, not {}", orders.len()),
        ));
    }
    let commands = orders.into_iter().map(|order| place_command(order, &user)).collect::<Result<Vec<_>, _>>()?;
    let idempotency = idempotency(&user, &headers, "POST /v1/orders/batch", &body.bytes)?;
    let metadata = metadata(&user, &headers)?;
    let answer = state.processor.submit_all(commands, metadata, idempotency).await.map_err(processor_error)?;
    let results: Vec<wire::BatchResult> = answer.iter().map(batch_result).collect();
    let position = answer.iter().rev().find_map(|outcome| match outcome {
        Outcome::Done { position, .. } => Some(*position),
        _ => None,
    });
    let position = position.unwrap_or_else(|| state.processor.head().borrow().position);
    Ok((StatusCode::OK, Json(wire::BatchAnswer { results, position })).into_response())
}

/// One order's result in a batch: what `POST /v1/orders` would have answered, with its status.
fn batch_result(outcome: &Outcome) -> wire::BatchResult {
    let mut result =
        wire::BatchResult { status: 0, order: None, fills: None, open_position: None, error: None, position: None };
    let (status, value) = match shape(outcome, placed_shape) {
        Ok(shaped) => shaped,
        Err(error) => {
            result.status = error.status.as_u16();
            result.error =
                Some(wire::ErrorDetail { code: error.code.to_owned(), message: error.message, request_id: None });
            return result;
        }
    };
    result.status = status.as_u16();
    // Read back from its JSON: the same answer whether it was just decided or stored.
    result.order = serde_json::from_value(value["order"].clone()).ok();
    result.position = value["position"].as_u64();
    if let Ok(error) = serde_json::from_value::<wire::ErrorDetail>(value["error"].clone()) {
        result.error = Some(error);
    } else {
        result.fills = serde_json::from_value(value["fills"].clone()).ok();
        result.open_position = serde_json::from_value(value["openPosition"].clone()).ok();
    }
    result
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
    run(&state, &user, &headers, (&what, &[]), command, order_shape).await
}

/// `DELETE /v1/orders/by-client-id/{clientOrderId}`: cancels the caller's open order with that
/// `clientOrderId`, found in the read models (with `minPosition`, once they have reached the
/// order's placement). Several open orders with the same id are refused: name one by its id.
/// Under an `Idempotency-Key` the request is the path (not the order it resolved to), so a
/// retry after the cancel landed gets the first answer even once the order is no longer open.
pub(super) async fn cancel_order_by_client_id(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(client_order_id): Path<String>,
    params: super::queries::Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account_id = trader_account(&user)?;
    let open = super::queries::orders_by_client_id(&state, &user, &params, &client_order_id, true).await?;
    let order_id = match open.as_slice() {
        [order] => order.order_id,
        [] if headers.contains_key("idempotency-key") => {
            // Perhaps a retry of a cancel that landed: the newest order with the id answers
            // (the key's stored answer if so; else the order is not cancellable).
            let any = super::queries::orders_by_client_id(&state, &user, &params, &client_order_id, false).await?;
            any.first().map(|o| o.order_id).ok_or_else(|| ApiError::not_found("no order with that clientOrderId"))?
        }
        [] => return Err(ApiError::not_found("no open order with that clientOrderId")),
        several => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "CLIENT_ORDER_ID_AMBIGUOUS",
                format!("{} open orders have that clientOrderId; cancel one by its orderId", several.len()),
            ))
        }
    };
    let what = format!("DELETE /v1/orders/by-client-id/{client_order_id}");
    let command = Command::CancelOrder { account_id, order_id };
    run(&state, &user, &headers, (&what, &[]), command, order_shape).await
}

/// A cancel-all: the orders it cancelled, in the book's order, and the account after it.
fn cancelled_shape(receipt: &Receipt, position: u64) -> (StatusCode, Value) {
    let answer = wire::CancelledOrders { cancelled: receipt.cancelled.clone(), account: account_of(receipt), position };
    (StatusCode::OK, body(answer))
}

/// `DELETE /v1/orders?symbol=`: cancels every open order of the caller's account in one
/// market, decided against the engine's book in one command (so an order placed a moment
/// before is cancelled too), in one commit.
pub(super) async fn cancel_all_orders(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    params: super::queries::Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let symbol = params.text("symbol").ok_or_else(|| {
        ApiError::bad_request("INVALID_QUERY", "symbol is required (the market whose orders to cancel)")
    })?;
    let symbol: Symbol = parse_path(symbol, "symbol")?;
    let account_id = trader_account(&user)?;
    let what = format!("DELETE /v1/orders?symbol={symbol}");
    let command = Command::CancelAllOrders { account_id, symbol };
    run(&state, &user, &headers, (&what, &[]), command, cancelled_shape).await
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
    run(&state, &user, &headers, (&what, &body.bytes), command, position_shape).await
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
    run(&state, &user, &headers, (&what, &body.bytes), command, position_shape).await
}

pub(super) async fn set_mark_price(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Body<MarkPrice>,
) -> Result<Response, ApiError> {
    let symbol: Symbol = parse_path(&symbol, "symbol")?;
    let what = format!("POST /v1/markets/{symbol}/mark-price");
    let command = Command::SetMarkPrice { symbol, price: body.value.price.0 };
    run(&state, &user, &headers, (&what, &body.bytes), command, market_shape).await
}

pub(super) async fn settle_funding(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Body<FundingRate>,
) -> Result<Response, ApiError> {
    let symbol: Symbol = parse_path(&symbol, "symbol")?;
    let what = format!("POST /v1/markets/{symbol}/funding");
    let command = Command::SettleFunding { symbol, rate: body.value.rate.0 };
    run(&state, &user, &headers, (&what, &body.bytes), command, market_shape).await
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
    if i64::try_from(version).is_err() {
        return Err(ApiError::bad_request(
            "OUT_OF_RANGE",
            format!("correctedVersion={version} is beyond the largest version, {}", i64::MAX),
        ));
    }
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
        corrections: body.value.corrections.into_iter().map(Into::into).collect(),
        reason: body.value.reason,
        corrected_by: user.user_id,
    };
    run(&state, &user, &headers, (&what, &body.bytes), command, corrected_shape).await
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
    state.projector.rebuild(names.clone()).await.map_err(|e| {
        ApiError::server(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "the projector is not running", e.to_string())
    })?;
    let rebuilding = names.iter().map(|name| (*name).to_owned()).collect();
    Ok((StatusCode::ACCEPTED, Json(wire::Rebuilding { rebuilding })).into_response())
}
