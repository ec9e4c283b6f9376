//! Query routes: answered from the read-model tables (never from the writer's memory). Each
//! accepts `minPosition` and first waits, bounded, until the read models have reached it.

use super::wire;
use super::{wait_min_position, ApiError, AppState, User};
use crate::read_models::{self, candles::Interval, Tables};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use perpetua_core::ids::AccountId;
use perpetua_core::symbol::Symbol;
use perpetua_core::types::OrderStatus;

use serde::Serialize;
use std::collections::HashMap;

/// Query parameters, parsed one by one so a bad value gets a 400 naming it.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub(super) fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::bad_request("INVALID_QUERY", format!("query parameter {name}={text:?} is not valid"))
            }),
        }
    }

    /// A position, version or count: an integer from 0 to 2^63 − 1 (what the store can hold),
    /// checked before any arithmetic on it.
    pub(super) fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(value) = self.get::<u64>(name)? else { return Ok(None) };
        if i64::try_from(value).is_err() {
            return Err(ApiError::bad_request(
                "OUT_OF_RANGE",
                format!("query parameter {name}={value} is beyond the largest position, {}", i64::MAX),
            ));
        }
        Ok(Some(value))
    }

    pub(super) fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))?;
        Ok(Params(map))
    }
}

/// With the read models' position as a header.
fn answer(state: &AppState, body: impl Serialize) -> Response {
    let position = state.projector.state.borrow().position;
    ([("x-perpetua-position", position.to_string())], Json(body)).into_response()
}

async fn ready(state: &AppState, params: &Params) -> Result<(), ApiError> {
    wait_min_position(state, params.number("minPosition")?).await
}

/// The read models' tables serving queries now.
fn tables(state: &AppState) -> Tables {
    Tables::new(state.projector.state.borrow().generations.clone())
}

/// The account a query is about: a trader's own; staff may name one (or see all with `None`).
fn account_scope(user: &User, params: &Params) -> Result<Option<AccountId>, ApiError> {
    let asked: Option<AccountId> = params.get("accountId")?;
    if user.role == super::Role::Trader {
        let own = user.account_id.ok_or_else(|| ApiError::forbidden("this user has no trading account"))?;
        if asked.is_some_and(|a| a != own) {
            return Err(ApiError::forbidden("a trader sees only its own account"));
        }
        return Ok(Some(own));
    }
    Ok(asked)
}

pub(super) async fn account(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(account): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let account_id: AccountId = account.parse().map_err(|_| ApiError::not_found("no such account"))?;
    if !user.may_read(account_id) {
        return Err(ApiError::forbidden("a trader sees only its own account"));
    }
    ready(&state, &params).await?;
    let account = read_models::accounts::get(&state.read_models, &tables(&state), account_id).await?;
    Ok(answer(&state, account.ok_or_else(|| ApiError::not_found("no such account"))?))
}

pub(super) async fn order(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(order): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let order_id: perpetua_core::ids::OrderId = order.parse().map_err(|_| ApiError::not_found("no such order"))?;
    ready(&state, &params).await?;
    let found = read_models::orders::get(&state.read_models, &tables(&state), order_id).await?;
    match found {
        // Another trader's order is "not found": its existence is not disclosed.
        Some((owner, order)) if owner.is_some_and(|a| user.may_read(a)) => Ok(answer(&state, order)),
        _ => Err(ApiError::not_found("no such order")),
    }
}

/// A `clientOrderId` as a client may send it: 1 to 64 bytes (what an order may carry).
fn client_order_id(text: &str) -> Result<&str, ApiError> {
    if text.is_empty() || text.len() > perpetua_core::order::decide::CLIENT_ORDER_ID_MAX_LEN {
        return Err(ApiError::bad_request("INVALID_CLIENT_ORDER_ID", "clientOrderId must be 1 to 64 bytes"));
    }
    Ok(text)
}

/// The caller's orders (`open_only`: its open ones) whose `clientOrderId` is `id`, newest
/// first. Staff name the account with `accountId`.
pub(super) async fn orders_by_client_id(
    state: &AppState,
    user: &User,
    params: &Params,
    id: &str,
    open_only: bool,
) -> Result<Vec<wire::Order>, ApiError> {
    let id = client_order_id(id)?;
    let account = account_scope(user, params)?.ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_QUERY",
            "accountId is required: a clientOrderId is unique only within an account",
        )
    })?;
    ready(state, params).await?;
    Ok(read_models::orders::by_client_id(&state.read_models, &tables(state), account, id, open_only).await?)
}

/// `GET /v1/orders/by-client-id/{clientOrderId}`: the caller's newest order with that id.
pub(super) async fn order_by_client_id(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let orders = orders_by_client_id(&state, &user, &params, &id, false).await?;
    let order = orders.into_iter().next().ok_or_else(|| ApiError::not_found("no order with that clientOrderId"))?;
    Ok(answer(&state, order))
}

pub(super) async fn orders(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    params: Params,
) -> Result<Response, ApiError> {
    let status = match params.text("status") {
        None => None,
        Some(status) => Some(OrderStatus::parse(status).ok_or_else(|| {
            ApiError::bad_request("INVALID_QUERY", format!("status={status:?} is not an order status"))
        })?),
    };
    let query = read_models::orders::History {
        account: account_scope(&user, &params)?,
        symbol: params.get::<Symbol>("symbol")?,
        status,
        client_order_id: params.text("clientOrderId").map(client_order_id).transpose()?.map(str::to_owned),
        start: params.get("startTime")?,
        end: params.get("endTime")?,
        page: params.get("page")?.unwrap_or(1).max(1),
        limit: params.get("limit")?.unwrap_or(20).clamp(1, 100),
    };
    ready(&state, &params).await?;
    Ok(answer(&state, read_models::orders::history(&state.read_models, &tables(&state), &query).await?))
}

pub(super) async fn active_orders(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    params: Params,
) -> Result<Response, ApiError> {
    let scope = account_scope(&user, &params)?;
    ready(&state, &params).await?;
    let data = read_models::orders::active(&state.read_models, &tables(&state), scope).await?;
    Ok(answer(&state, wire::OrderList { data }))
}

pub(super) async fn positions(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    params: Params,
) -> Result<Response, ApiError> {
    let scope = account_scope(&user, &params)?;
    ready(&state, &params).await?;
    let data = read_models::positions::open(&state.read_models, &tables(&state), scope).await?;
    Ok(answer(&state, wire::PositionList { data }))
}

pub(super) async fn markets(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    ready(&state, &params).await?;
    let data = read_models::markets::all(&state.read_models, &tables(&state)).await?;
    Ok(answer(&state, wire::MarketList { data }))
}

pub(super) async fn known_symbol(state: &AppState, symbol: &str) -> Result<Symbol, ApiError> {
    let symbol: Symbol = symbol.parse().map_err(|_| ApiError::not_found(format!("no market {symbol:?}")))?;
    if !read_models::markets::exists(&state.read_models, &tables(state), symbol).await? {
        return Err(ApiError::not_found(format!("no market {symbol}")));
    }
    Ok(symbol)
}

pub(super) async fn book(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let depth: usize = params.get("depth")?.unwrap_or(20).clamp(1, 500);
    ready(&state, &params).await?;
    let symbol = known_symbol(&state, &symbol).await?;
    Ok(answer(&state, book_of(&state, symbol, depth).await?))
}

/// A market's book by price level, `depth` levels a side, from the read models. Its
/// `sequence` is the read models' position read before the rows: the rows are at that
/// position or later, so a market stream's diffs after `sequence` bring it up to date.
pub(super) async fn book_of(state: &AppState, symbol: Symbol, depth: usize) -> Result<wire::Book, ApiError> {
    let sequence = state.projector.state.borrow().position;
    Ok(read_models::orders::book(&state.read_models, &tables(state), symbol, depth, sequence).await?)
}

/// `GET /v1/markets/{symbol}/candles`: a market's candles of one interval, oldest first:
/// from `startTime` on when it is given, else the latest `limit`.
pub(super) async fn candles(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let interval = params
        .text("interval")
        .ok_or_else(|| ApiError::bad_request("INVALID_QUERY", "interval is required: 1m, 5m, 15m, 1h, 4h or 1d"))?;
    let interval = Interval::parse(interval).ok_or_else(|| {
        ApiError::bad_request("INVALID_QUERY", format!("interval={interval:?} is not 1m, 5m, 15m, 1h, 4h or 1d"))
    })?;
    let range = (params.get("startTime")?, params.get("endTime")?);
    let limit: u32 = params.get("limit")?.unwrap_or(500).clamp(1, 1_500);
    ready(&state, &params).await?;
    let symbol = known_symbol(&state, &symbol).await?;
    let data = read_models::candles::list(&state.read_models, &tables(&state), symbol, interval, range, limit).await?;
    Ok(answer(&state, wire::CandleList { data }))
}

pub(super) async fn trades(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit: u32 = params.get("limit")?.unwrap_or(50).clamp(1, 1000);
    ready(&state, &params).await?;
    let symbol = known_symbol(&state, &symbol).await?;
    let data = read_models::trades::recent(&state.read_models, &tables(&state), symbol, limit).await?;
    Ok(answer(&state, wire::TradeList { data }))
}

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let head = state.processor.head().borrow().position;
    let (projected, failing) = {
        let projection = state.projector.state.borrow();
        (projection.position, projection.failing.is_some())
    };
    Json(wire::Health {
        status: "ok".to_owned(),
        backend: state.store.backend().name().to_owned(),
        head_position: head,
        projection_position: projected,
        projection_failing: failing,
    })
    .into_response()
}

/// Most events the read models may be behind the log for the server to say it is ready.
pub const READY_MAX_LAG_EVENTS: u64 = 10_000;
/// Longest a readiness check waits for the database.
const READY_DATABASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: the database answers (the store and the read models' pool), this writer holds
/// its lease, the read models are within [`READY_MAX_LAG_EVENTS`] of the log and not failing,
/// and the server is not draining. 503 with every reason otherwise.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    if *state.draining.borrow() {
        reasons.push("the server is shutting down".to_owned());
    }
    let (store, tables) = tokio::join!(
        tokio::time::timeout(READY_DATABASE_TIMEOUT, state.store.head()),
        tokio::time::timeout(READY_DATABASE_TIMEOUT, state.read_models.fetch("SELECT 1", &[])),
    );
    let database = match (store, tables) {
        (Ok(Ok(_)), Ok(Ok(_))) => "ok",
        (Err(_), _) | (_, Err(_)) => {
            reasons.push(format!("the database did not answer within {READY_DATABASE_TIMEOUT:?}"));
            "timeout"
        }
        (Ok(Err(e)), _) | (_, Ok(Err(e))) => {
            // The driver's words go to the log; the answer says what kind of failure it was.
            tracing::warn!(code = e.code(), error = %e, "readiness: the database failed");
            reasons.push(format!("the database failed ({})", e.code()));
            "failed"
        }
    };
    let lease = match state.lease.lost() {
        // A query server holds no lease; the writer's is the writer's readiness.
        None if state.serving == super::Serving::Query => "not this role",
        None if state.serving == super::Serving::Projector => "held (projector lease)",
        None => "held",
        Some(_) => {
            reasons.push("this server lost its lease".to_owned());
            "lost"
        }
    };
    let head = state.processor.head().borrow().position;
    let (projected, failing) = {
        let projection = state.projector.state.borrow();
        (projection.position, projection.failing.is_some())
    };
    let lag = head.saturating_sub(projected);
    // A writer without its projector reports the read models' state but is ready without
    // them: its commands do not wait for another process's projector.
    let gated = state.serving != super::Serving::Writer;
    if failing && gated {
        reasons.push("the projector cannot write the read models (see the log)".to_owned());
    }
    if lag > READY_MAX_LAG_EVENTS && gated {
        reasons.push(format!("the read models are {lag} events behind the log (at most {READY_MAX_LAG_EVENTS})"));
    }
    let checks = wire::ReadyChecks {
        database: database.to_owned(),
        writer_lease: lease.to_owned(),
        projection_lag_events: lag,
        projection_failing: failing,
    };
    if reasons.is_empty() {
        return Json(wire::Ready { status: "ready".to_owned(), error: None, checks }).into_response();
    }
    let error = wire::ErrorDetail {
        code: "NOT_READY".to_owned(),
        message: reasons.join("; "),
        request_id: super::request_id().map(|id| id.to_string()),
    };
    let body = wire::Ready { status: "not ready".to_owned(), error: Some(error), checks };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `GET /v1/time`: the server's clock in Unix milliseconds, with the log's head position.
pub(super) async fn time(State(state): State<AppState>) -> Response {
    let head = *state.processor.head().borrow();
    Json(wire::ServerTime { server_time: crate::now_ms(), head_position: head.position }).into_response()
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

pub(super) async fn projections(State(state): State<AppState>) -> Response {
    let head = state.processor.head().borrow().position;
    let projection = state.projector.state.borrow().clone();
    let read_models = projection
        .generations
        .iter()
        .map(|(name, generation)| wire::ReadModel {
            name: name.clone(),
            generation: *generation,
            position: projection.position,
            rebuilding: projection
                .rebuilding
                .get(name)
                .map(|(generation, position)| wire::RebuildProgress { generation: *generation, position: *position }),
        })
        .collect();
    let body =
        wire::Projections { head_position: head, lag_events: head.saturating_sub(projection.position), read_models };
    (StatusCode::OK, Json(body)).into_response()
}
