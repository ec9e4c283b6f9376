//! The HTTP API: JSON, camelCase, decimals as strings. Every route is declared once, in
//! [`ROUTES`], with who may call it; the router, the access checks and `/openapi.json` are all
//! built from that table, so no route can exist without an access rule.

mod audit;
mod commands;
mod observe;
mod openapi;
mod queries;
mod streams;
mod viewer;
pub mod wire;

pub use observe::{request_id, REQUEST_ID_HEADER};
pub use openapi::{document as openapi_document, markdown as openapi_markdown};
pub use viewer::Viewer;

use crate::db::Db;
use crate::metrics::Metrics;
use crate::processor::{LeaseState, ProcessorHandle};
use crate::projector::ProjectorHandle;
use crate::store::{Store, StoreError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Json, Router};
use perpetua_core::ids::{AccountId, UserId};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Longest a query waits for `minPosition`.
pub const MIN_POSITION_WAIT: Duration = Duration::from_secs(5);

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trades with its own account.
    Trader,
    /// Reads everything, changes nothing.
    Auditor,
    /// Operates the exchange.
    Admin,
}

impl Role {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Trader => "trader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "trader" => Some(Role::Trader),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    fn is_staff(self) -> bool {
        matches!(self, Role::Auditor | Role::Admin)
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct User {
    /// The user's id.
    pub user_id: UserId,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The trader's account.
    pub account_id: Option<AccountId>,
}

impl User {
    /// True when this user may see data of `account`.
    pub fn may_read(&self, account: AccountId) -> bool {
        self.role.is_staff() || self.account_id == Some(account)
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any user; the handler limits a trader to its own data.
    User,
    /// Traders only, on their own account.
    Trader,
    /// Auditors and admins.
    Staff,
    /// Admins only.
    Admin,
}

impl Access {
    /// The wire spelling (in `/openapi.json` as `x-access`).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::User => "user",
            Access::Trader => "trader",
            Access::Staff => "staff",
            Access::Admin => "admin",
        }
    }

    fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::User => true,
            Access::Trader => role == Role::Trader,
            Access::Staff => role.is_staff(),
            Access::Admin => role == Role::Admin,
        }
    }
}

/// The schema of a wire type, by name (`<T as ToSchema>::name`): what `/openapi.json` refers to.
pub type SchemaName = fn() -> std::borrow::Cow<'static, str>;

/// What a query parameter holds (its schema in `/openapi.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A log position or a stream version: an integer from 0 to 2^63 − 1.
    Position,
    /// A count (a page size, a depth): a positive integer.
    Count,
    /// A market symbol.
    Symbol,
    /// A UUID.
    Uuid,
    /// A time, RFC 3339 in UTC.
    Time,
    /// An order status.
    OrderStatus,
    /// An aggregate type (`Order`, `Account`, `Position`, `Market`).
    AggregateType,
    /// A stream's id: a UUID, or a market's symbol.
    AggregateId,
    /// A candle interval (`1m`, `5m`, `15m`, `1h`, `4h`, `1d`).
    Interval,
    /// Free text.
    Text,
}

/// One query parameter of a route.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether the route refuses a request without it.
    pub required: bool,
}

/// The body of one answer of a route.
#[derive(Clone, Copy)]
pub enum Reply {
    /// JSON of a wire type.
    Json(SchemaName),
    /// Another media type (a live stream, JSON Lines, metrics text), described in words.
    Text(&'static str),
}

/// What a route does with the request: a command goes to the writer (and takes the
/// `Idempotency-Key` and `X-Correlation-Id` headers); a read answers from the read models or
/// the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Decided by the writer, in the log.
    Command,
    /// Read only.
    Read,
}

/// One route of the API.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` segments.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The operation's id in `/openapi.json` (a generated client's method name).
    pub operation_id: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Query parameters.
    pub query: &'static [Param],
    /// The request body's schema, if it takes one.
    pub body: Option<SchemaName>,
    /// Its answers by status, besides errors.
    pub answers: &'static [(u16, Reply)],
    /// The error codes of this route's own, by status (the codes every route of its kind
    /// shares are added by `/openapi.json`: see `openapi::common_errors`).
    pub errors: &'static [(u16, &'static str)],
    /// Command or read.
    pub effect: Effect,
    /// Builds the handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

macro_rules! schema_of {
    (-) => {
        None
    };
    ($name:ident) => {
        Some(<wire::$name as utoipa::ToSchema>::name as SchemaName)
    };
}

macro_rules! reply {
    ($name:ident) => {
        Reply::Json(<wire::$name as utoipa::ToSchema>::name)
    };
    ($media:literal) => {
        Reply::Text($media)
    };
}

macro_rules! route {
    ($method:ident $path:literal, $access:ident, $effect:ident, $op:literal, $summary:literal,
     query: [$($q:literal: $kind:ident $($required:ident)?),*], body: $body:tt,
     answers: [$($status:literal => $reply:tt),*], errors: [$($estatus:literal: $code:literal),*],
     $handler:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            operation_id: $op,
            summary: $summary,
            query: &[$(Param { name: $q, kind: Kind::$kind, required: false $(|| stringify!($required).len() > 0)? }),*],
            body: schema_of!($body),
            answers: &[$(($status, reply!($reply))),*],
            errors: &[$(($estatus, $code)),*],
            effect: Effect::$effect,
            handler: || $handler,
        }
    };
}

/// Every route, with its access rule: the role table.
pub static ROUTES: &[Route] = &[
    route!(POST "/v1/users", Admin, Command, "createUser", "Create a user (a trader gets an account); the token is shown once.",
        query: [], body: CreateUser, answers: [201 => UserCreated, 200 => UserCreated],
        errors: [400: "INVALID_NAME", 400: "INVALID_ROLE"], post(commands::create_user)),
    route!(POST "/v1/accounts/{accountId}/deposits", Admin, Command, "deposit", "Credit an account.",
        query: [], body: Amount, answers: [201 => AccountAnswer],
        errors: [400: "INVALID_PATH", 400: "INVALID_ARGUMENT", 400: "AMOUNT_OUT_OF_RANGE", 404: "ACCOUNT_NOT_FOUND"],
        post(commands::deposit)),
    route!(POST "/v1/accounts/{accountId}/withdrawals", Trader, Command, "withdraw", "Withdraw from the caller's own account.",
        query: [], body: Amount, answers: [201 => AccountAnswer],
        errors: [400: "INVALID_PATH", 400: "INVALID_ARGUMENT", 400: "AMOUNT_OUT_OF_RANGE", 404: "ACCOUNT_NOT_FOUND",
            422: "INSUFFICIENT_BALANCE"],
        post(commands::withdraw)),
    route!(GET "/v1/accounts/{accountId}", User, Read, "getAccount", "An account's balance, locked, available and position margin.",
        query: ["minPosition": Position], body: -, answers: [200 => Account],
        errors: [404: "NOT_FOUND"], get(queries::account)),
    route!(POST "/v1/orders", Trader, Command, "placeOrder", "Place an order for the caller's own account.",
        query: [], body: NewOrder, answers: [201 => OrderPlaced, 422 => OrderRejected],
        errors: [400: "INVALID_ARGUMENT", 400: "AMOUNT_OUT_OF_RANGE", 400: "MARKET_NOT_FOUND", 404: "ACCOUNT_NOT_FOUND",
            422: "ACCOUNT_NOT_TRADABLE"],
        post(commands::place_order)),
    route!(POST "/v1/orders/batch", Trader, Command, "placeOrders", "Place up to 50 orders for the caller's own account, each decided on its own, in one commit.",
        query: [], body: NewOrders, answers: [200 => BatchAnswer],
        errors: [400: "INVALID_BATCH"], post(commands::place_orders)),
    route!(DELETE "/v1/orders/{orderId}", Trader, Command, "cancelOrder", "Cancel one of the caller's open orders.",
        query: [], body: -, answers: [200 => OrderAnswer],
        errors: [400: "INVALID_PATH", 404: "ORDER_NOT_FOUND", 422: "ORDER_NOT_CANCELLABLE"], delete(commands::cancel_order)),
    route!(DELETE "/v1/orders", Trader, Command, "cancelAllOrders", "Cancel every open order of the caller's account in one market (symbol), in one commit.",
        query: ["symbol": Symbol required], body: -, answers: [200 => CancelledOrders],
        errors: [400: "INVALID_PATH", 400: "MARKET_NOT_FOUND"], delete(commands::cancel_all_orders)),
    route!(GET "/v1/orders/by-client-id/{clientOrderId}", User, Read, "getOrderByClientId", "The caller's newest order with a clientOrderId (staff: of the account named by accountId).",
        query: ["accountId": Uuid, "minPosition": Position], body: -, answers: [200 => Order],
        errors: [400: "INVALID_CLIENT_ORDER_ID", 404: "NOT_FOUND"], get(queries::order_by_client_id)),
    route!(DELETE "/v1/orders/by-client-id/{clientOrderId}", Trader, Command, "cancelOrderByClientId", "Cancel the caller's open order with a clientOrderId (minPosition: once the read models have its placement).",
        query: ["minPosition": Position], body: -, answers: [200 => OrderAnswer],
        errors: [400: "INVALID_CLIENT_ORDER_ID", 404: "NOT_FOUND", 404: "ORDER_NOT_FOUND", 409: "CLIENT_ORDER_ID_AMBIGUOUS",
            422: "ORDER_NOT_CANCELLABLE"],
        delete(commands::cancel_order_by_client_id)),
    route!(GET "/v1/orders/{orderId}", User, Read, "getOrder", "One order.",
        query: ["minPosition": Position], body: -, answers: [200 => Order],
        errors: [404: "NOT_FOUND"], get(queries::order)),
    route!(GET "/v1/orders", User, Read, "listOrders", "Order history, newest first, paged (staff: any account with accountId).",
        query: ["symbol": Symbol, "status": OrderStatus, "clientOrderId": Text, "startTime": Time, "endTime": Time,
            "page": Count, "limit": Count, "accountId": Uuid, "minPosition": Position],
        body: -, answers: [200 => OrderPage], errors: [400: "INVALID_CLIENT_ORDER_ID"], get(queries::orders)),
    route!(GET "/v1/orders/active", User, Read, "listActiveOrders", "Open orders (staff: any account with accountId).",
        query: ["accountId": Uuid, "minPosition": Position], body: -, answers: [200 => OrderList], errors: [],
        get(queries::active_orders)),
    route!(GET "/v1/positions", User, Read, "listPositions", "Open positions (staff: any account with accountId).",
        query: ["accountId": Uuid, "minPosition": Position], body: -, answers: [200 => PositionList], errors: [],
        get(queries::positions)),
    route!(POST "/v1/positions/{symbol}/leverage", Trader, Command, "changeLeverage", "Change the leverage of the caller's open position.",
        query: [], body: Leverage, answers: [200 => PositionAnswer],
        errors: [400: "INVALID_PATH", 400: "INVALID_ARGUMENT", 400: "MARKET_NOT_FOUND", 404: "ACCOUNT_NOT_FOUND",
            422: "NO_OPEN_POSITION", 422: "LEVERAGE_TOO_HIGH", 422: "INSUFFICIENT_BALANCE"],
        post(commands::change_leverage)),
    route!(POST "/v1/positions/{symbol}/margin", Trader, Command, "adjustMargin", "Add (positive) or remove (negative) isolated margin.",
        query: [], body: Amount, answers: [200 => PositionAnswer],
        errors: [400: "INVALID_PATH", 400: "INVALID_ARGUMENT", 400: "AMOUNT_OUT_OF_RANGE", 400: "MARKET_NOT_FOUND",
            404: "ACCOUNT_NOT_FOUND", 422: "NO_OPEN_POSITION", 422: "NOT_ISOLATED", 422: "MARGIN_REMOVAL_TOO_LARGE",
            422: "INSUFFICIENT_BALANCE"],
        post(commands::adjust_margin)),
    route!(GET "/v1/markets", Public, Read, "listMarkets", "Every market: its rules, mark price, last funding.",
        query: ["minPosition": Position], body: -, answers: [200 => MarketList], errors: [], get(queries::markets)),
    route!(GET "/v1/markets/{symbol}/book", Public, Read, "getBook", "The order book by price level.",
        query: ["depth": Count, "minPosition": Position], body: -, answers: [200 => Book],
        errors: [404: "NOT_FOUND"], get(queries::book)),
    route!(GET "/v1/markets/{symbol}/trades", Public, Read, "listTrades", "Recent trades, newest first.",
        query: ["limit": Count, "minPosition": Position], body: -, answers: [200 => TradeList],
        errors: [404: "NOT_FOUND"], get(queries::trades)),
    route!(GET "/v1/markets/{symbol}/candles", Public, Read, "listCandles", "Candles (klines) of one interval, oldest first: from startTime on, else the latest ones.",
        query: ["interval": Interval required, "startTime": Time, "endTime": Time, "limit": Count, "minPosition": Position],
        body: -, answers: [200 => CandleList], errors: [404: "NOT_FOUND"], get(queries::candles)),
    route!(POST "/v1/markets/{symbol}/mark-price", Admin, Command, "setMarkPrice", "Set the mark price (liquidations follow).",
        query: [], body: MarkPrice, answers: [200 => MarketAnswer],
        errors: [400: "INVALID_PATH", 400: "INVALID_ARGUMENT", 400: "AMOUNT_OUT_OF_RANGE", 400: "MARKET_NOT_FOUND"],
        post(commands::set_mark_price)),
    route!(POST "/v1/markets/{symbol}/funding", Admin, Command, "settleFunding", "Settle funding at a rate.",
        query: [], body: FundingRate, answers: [200 => MarketAnswer],
        errors: [400: "INVALID_PATH", 400: "INVALID_ARGUMENT", 400: "AMOUNT_OUT_OF_RANGE", 400: "MARKET_NOT_FOUND",
            422: "MARK_PRICE_NOT_SET"],
        post(commands::settle_funding)),
    route!(GET "/v1/streams/{aggregateType}/{aggregateId}/events", User, Read, "getStreamEvents", "A stream's events from a version, a page at a time (traders: own streams).",
        query: ["fromVersion": Position, "toVersion": Position, "until": Time, "limit": Count], body: -,
        answers: [200 => StreamEvents], errors: [400: "INVALID_PATH", 404: "NOT_FOUND"], get(audit::stream_events)),
    route!(GET "/v1/streams/{aggregateType}/{aggregateId}/state", User, Read, "getStreamState", "A stream's state at a version or time (traders: own streams).",
        query: ["version": Position, "at": Time], body: -, answers: [200 => StreamState],
        errors: [400: "INVALID_PATH", 404: "NOT_FOUND"], get(audit::stream_state)),
    route!(GET "/v1/events", Staff, Read, "listEvents", "The global log from a position, a page at a time, filtered by type or correlation id.",
        query: ["fromPosition": Position, "limit": Count, "eventType": Text, "correlationId": Uuid], body: -,
        answers: [200 => EventPage], errors: [], get(audit::events)),
    route!(GET "/v1/events/live", Staff, Read, "streamEvents", "Every event from a position, live, as server-sent events.",
        query: ["fromPosition": Position], body: -,
        answers: [200 => "text/event-stream: one `event` message per event (its data an Event, its id the position); a last `error` message (SLOW_CONSUMER, SERVER_SHUTTING_DOWN) says where to resume"],
        errors: [], get(streams::live)),
    route!(GET "/v1/accounts/{accountId}/live", User, Read, "streamAccount", "An account's own events from a position, live: its orders, fills, balance and positions (traders: their own account; nothing of anyone else's).",
        query: ["fromPosition": Position], body: -,
        answers: [200 => "text/event-stream: one `event` message per event of the account's streams (its data an Event, its id the position); a last `error` message (SLOW_CONSUMER, SERVER_SHUTTING_DOWN) says where to resume"],
        errors: [404: "NOT_FOUND"], get(streams::account_live)),
    route!(GET "/v1/markets/{symbol}/live", Public, Read, "streamMarket", "A market's public data, live: its book (a snapshot, then depth diffs chained by sequence), trades, mark price and funding.",
        query: ["depth": Count, "minPosition": Position], body: -,
        answers: [200 => "text/event-stream: first a `book` message (a Book with its sequence), then in log order `depth` (a DepthDiff: the levels that moved, with their new totals, and prevSequence to detect a gap), `trade` (a Trade) and `market` (a Market) messages; a last `error` message (SLOW_CONSUMER, SERVER_SHUTTING_DOWN) before it ends"],
        errors: [404: "NOT_FOUND"], get(streams::market_live)),
    route!(GET "/v1/audit/verify", Staff, Read, "verifyChain", "Verify the hash chain over a range.",
        query: ["from": Position, "to": Position], body: -, answers: [200 => Verification],
        errors: [400: "RANGE_BEYOND_HEAD", 400: "INVALID_RANGE"], get(audit::verify)),
    route!(GET "/v1/audit/tree", User, Read, "getTreeHead", "The root of the log's Merkle tree (RFC 9162) over its first treeSize events (the head when not given).",
        query: ["treeSize": Position], body: -, answers: [200 => TreeHead],
        errors: [400: "TREE_SIZE_BEYOND_HEAD"], get(audit::tree_head)),
    route!(GET "/v1/audit/proofs/inclusion", User, Read, "getInclusionProof", "The proof that the event at a position is in the log's Merkle tree of treeSize events (the head when not given).",
        query: ["position": Position required, "treeSize": Position], body: -, answers: [200 => InclusionProof],
        errors: [400: "INVALID_QUERY", 400: "TREE_SIZE_BEYOND_HEAD", 400: "POSITION_NOT_IN_TREE"], get(audit::inclusion_proof)),
    route!(GET "/v1/audit/proofs/consistency", User, Read, "getConsistencyProof", "The proof that the log's Merkle tree of second events (the head when not given) extends the one of first events: the log was only appended to.",
        query: ["first": Position required, "second": Position], body: -, answers: [200 => ConsistencyProof],
        errors: [400: "INVALID_QUERY", 400: "TREE_SIZE_BEYOND_HEAD", 400: "INVALID_RANGE"], get(audit::consistency_proof)),
    route!(GET "/v1/orders/{orderId}/receipt", User, Read, "getOrderReceipt", "An order's receipt: its events with their inclusion proofs under a signed checkpoint, verifiable with the signer's public key alone (traders: own orders).",
        query: [], body: -, answers: [200 => Receipt],
        errors: [400: "INVALID_PATH", 404: "NOT_FOUND", 409: "CHECKPOINT_PENDING"], get(audit::order_receipt)),
    route!(GET "/v1/audit/checkpoints", User, Read, "listCheckpoints", "Signed checkpoints of the log's head, smallest tree size first, from fromTreeSize.",
        query: ["fromTreeSize": Position, "limit": Count], body: -, answers: [200 => Checkpoints],
        errors: [], get(audit::checkpoints)),
    route!(GET "/v1/audit/checkpoints/latest", User, Read, "getLatestCheckpoint", "The newest signed checkpoint (of at most atMostTreeSize events when given).",
        query: ["atMostTreeSize": Position], body: -, answers: [200 => Checkpoint],
        errors: [404: "NO_CHECKPOINT"], get(audit::latest_checkpoint)),
    route!(POST "/v1/audit/checkpoints", Staff, Command, "signCheckpoint", "The checkpoint of the log's head: signed now, or the one signed already when the head has not moved since.",
        query: [], body: -, answers: [200 => Checkpoint], errors: [], post(audit::sign_checkpoint)),
    route!(GET "/v1/export", User, Read, "exportEvents", "JSON Lines of a range, a stream or a correlation id (traders: own streams).",
        query: ["fromPosition": Position, "toPosition": Position, "aggregateType": AggregateType, "aggregateId": AggregateId,
            "correlationId": Uuid], body: -,
        answers: [200 => "application/x-ndjson: one Event per line, exactly as stored, then one line `{\"checkpoint\": Checkpoint}`: the newest signed checkpoint of at most toPosition events (signed at the head for an export of the whole log from a writer)"],
        errors: [400: "INVALID_PATH", 404: "NOT_FOUND"], get(audit::export)),
    route!(POST "/v1/orders/{orderId}/corrections", Admin, Command, "correctOrder", "Record a correction of an order's event (OrderCorrected).",
        query: [], body: Correction, answers: [201 => OrderAnswer],
        errors: [400: "INVALID_PATH", 400: "OUT_OF_RANGE", 404: "NOT_FOUND", 404: "ORDER_NOT_FOUND", 422: "INVALID_CORRECTION"],
        post(commands::correct_order)),
    route!(GET "/v1/time", Public, Read, "getServerTime", "The server's clock (Unix milliseconds), for a client to measure its offset.",
        query: [], body: -, answers: [200 => ServerTime], errors: [], get(queries::time)),
    route!(GET "/healthz", Public, Read, "getHealth", "Liveness: log head and read-model position (the process answers).",
        query: [], body: -, answers: [200 => Health], errors: [], get(queries::healthz)),
    route!(GET "/readyz", Public, Read, "getReadiness", "Readiness: the database answers, the writer holds its lease, the read models are within the lag bound; 503 with the reasons otherwise.",
        query: [], body: -, answers: [200 => Ready, 503 => Ready], errors: [], get(queries::readyz)),
    route!(GET "/metrics", Staff, Read, "getMetrics", "Prometheus metrics.",
        query: [], body: -, answers: [200 => "text/plain: the Prometheus text format, version 0.0.4"], errors: [],
        get(queries::metrics)),
    route!(GET "/openapi.json", Public, Read, "getOpenApi", "This API's description.",
        query: [], body: -, answers: [200 => "application/json: this document (OpenAPI 3.1)"], errors: [],
        get(openapi::openapi)),
    route!(GET "/v1/admin/projections", Admin, Read, "getProjections", "Read models: generation, position, rebuilds.",
        query: [], body: -, answers: [200 => Projections], errors: [], get(queries::projections)),
    route!(POST "/v1/admin/projections/{name}/rebuild", Admin, Read, "rebuildProjection", "Rebuild a read model (or `all`) into fresh tables, then swap.",
        query: [], body: -, answers: [202 => Rebuilding], errors: [404: "NOT_FOUND", 503: "UNAVAILABLE"],
        post(commands::rebuild_projection)),
];

/// Everything a handler needs: a handle, cloned for each request (axum's `State` and the
/// guard take their own), so one reference count instead of a copy of every part (the
/// profile had the copies and their drops at 2–3 % of the server's CPU under load).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of an [`AppState`].
pub struct AppParts {
    /// The event store (the audit routes read the log itself).
    pub store: Store,
    /// Users (and, unless `read_models` is another database, the read-model tables).
    pub db: Db,
    /// The read-model tables: `db`, or the database a projector of its own writes them into
    /// (`--read-models-url`).
    pub read_models: Db,
    /// The single writer.
    pub processor: ProcessorHandle,
    /// The read models.
    pub projector: ProjectorHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Users by token digest.
    pub users: Arc<RwLock<HashMap<String, User>>>,
    /// Whether this writer still holds its lease (readiness).
    pub lease: LeaseState,
    /// True once the server is draining: live streams end with a final message, readiness
    /// says no.
    pub draining: tokio::sync::watch::Receiver<bool>,
    /// Requests per second each token may make.
    pub rate_limit: Arc<RateLimit>,
    /// Which part of the exchange this process is.
    pub serving: Serving,
    /// The log's Merkle tree, for the audit routes' proofs.
    pub audit_tree: Arc<crate::audit_tree::AuditTree>,
    /// The writer's checkpoint signer (none on the other roles).
    pub signer: Option<Arc<crate::checkpoints::Signer>>,
}

/// Which part of the exchange a server process is (`serve --role`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Serving {
    /// Writer, projector and queries in one process (the default).
    #[default]
    All,
    /// The single writer: the processor and the command routes, with the log's live streams;
    /// the read models are another process's (`--role projector`).
    Writer,
    /// The projector alone: tails the log (from the store or the relay's NATS stream) and
    /// writes the read models; serves the market streams (which follow its pages) and the
    /// admin's rebuilds.
    Projector,
    /// Queries only, over the read models and the log that other processes write: any number
    /// of them beside one writer.
    Query,
}

impl Serving {
    /// The role's name, as `--role` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Serving::All => "all",
            Serving::Writer => "writer",
            Serving::Projector => "projector",
            Serving::Query => "query",
        }
    }

    /// Whether this role serves `route`.
    pub fn serves(self, route: &Route) -> bool {
        self == Serving::All || route.home().is_none_or(|home| home == self)
    }
}

impl Route {
    /// The role that serves this route when the exchange runs as separate processes; `None`
    /// for those every role serves (probes, metrics, the API's description, the clock).
    /// Commands and the log's live streams are the writer's (they follow its commits), the
    /// market streams and rebuilds the projector's (they follow its pages), every other read
    /// a query server's.
    pub fn home(&self) -> Option<Serving> {
        const EVERY_ROLE: [&str; 5] = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/time"];
        if EVERY_ROLE.contains(&self.path) {
            None
        } else if self.effect == Effect::Command
            || (self.path.ends_with("/live") && !self.path.starts_with("/v1/markets/"))
        {
            Some(Serving::Writer)
        } else if self.path.ends_with("/live") || self.path.ends_with("/rebuild") {
            Some(Serving::Projector)
        } else {
            Some(Serving::Query)
        }
    }
}

/// Requests per second per token (per user: a user has one token), with bursts of twice
/// that; beyond it a request is answered 429 `RATE_LIMITED` with `Retry-After`. Routes that
/// need no token are not limited here.
pub struct RateLimit {
    per_second: u32,
    limiter: Option<governor::DefaultKeyedRateLimiter<UserId>>,
}

impl RateLimit {
    /// `per_second` requests per second per token; 0 for no limit.
    pub fn new(per_second: u32) -> Self {
        let limiter = std::num::NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::new(2).expect("2 is not 0"));
            governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
        });
        Self { per_second, limiter }
    }

    /// `None` when `user` may go on; otherwise how long it should wait.
    fn check(&self, user: UserId) -> Option<Duration> {
        use governor::clock::Clock as _;
        let limiter = self.limiter.as_ref()?;
        let refused = limiter.check_key(&user).err()?;
        Some(refused.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    fn refusal(&self, wait: Duration) -> Response {
        let message =
            format!("at most {} requests per second per token; retry after the Retry-After seconds", self.per_second);
        let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message).into_response();
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// An error answer: `{"error": {"code", "message", "requestId"}}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Human-readable, for the client.
    pub message: String,
    /// What went wrong inside, for the log only (a 5xx's driver error, say): never sent.
    pub detail: Option<String>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), detail: None }
    }
    /// The server's fault (or its database's): the client gets `message`, a fixed text; the
    /// log gets `detail` once, with the request id.
    pub fn server(status: StatusCode, code: &'static str, message: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), detail: Some(detail.into()) }
    }
    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 413: a body larger than [`MAX_BODY_BYTES`].
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    }
    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", what)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }
}

impl From<StoreError> for ApiError {
    /// Every store error a query can meet is the server's: logged here with its detail, while
    /// the client gets the stable code and a fixed message.
    fn from(e: StoreError) -> Self {
        let (status, message) = match e.code() {
            "LOG_GAP" | "STREAM_GAP" | "CORRUPT_ROW" => {
                (StatusCode::INTERNAL_SERVER_ERROR, "the stored log could not be read; operators have been told")
            }
            _ => (StatusCode::SERVICE_UNAVAILABLE, "the event store is unavailable; try again"),
        };
        ApiError::server(status, e.code(), message, e.to_string())
    }
}

impl From<crate::read_models::ReadError> for ApiError {
    /// A read model that cannot be read is the server's fault: logged with its detail.
    fn from(e: crate::read_models::ReadError) -> Self {
        match e {
            crate::read_models::ReadError::Store(e) => e.into(),
            corrupt => ApiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                "CORRUPT_ROW",
                "a read-model row could not be read; operators have been told",
                corrupt.to_string(),
            ),
        }
    }
}

/// The stable code of an error answer made by a layer below the handlers (the router, the
/// HTTP server), by its status.
fn code_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "INVALID_REQUEST",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "HEADERS_TOO_LARGE",
        s if s.is_server_error() => "INTERNAL",
        _ => "INVALID_REQUEST",
    }
}

/// Every error answer is `{"error": {"code", "message"}}`, whichever layer made it: an error
/// without a JSON body (axum's path and query rejections are plain text, a 405 is empty) is
/// replaced by one in the API's words, without the rejection's own text.
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not a method of this route (see /openapi.json)"),
        StatusCode::BAD_REQUEST => "the request's path or query could not be read (UTF-8 expected)".to_owned(),
        other => other.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut answer = ApiError::new(status, code_of_status(status), message).into_response();
    // Keep what the error said besides its body (`Allow` on a 405, `Content-Range` on a 416).
    for (name, value) in response.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// Longest a request's body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest total size of a request's headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses a request whose headers are larger than [`MAX_HEADER_BYTES`] with a 431 in JSON
/// (far larger headers are refused by the HTTP server itself, with an empty 431), and one
/// whose announced body is larger than [`MAX_BODY_BYTES`] with a 413 at once, before any of
/// it is read. (A body without a length is cut off at the limit as it is read.)
async fn limit_request(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return ApiError::payload_too_large().into_response();
    }
    let size: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if size > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!("the request's headers are larger than {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id();
        if self.status.is_server_error() {
            // Logged once, here, with what the client is not told.
            let detail = self.detail.as_deref().unwrap_or(&self.message);
            tracing::error!(
                request_id = request_id.as_deref().unwrap_or("-"),
                status = self.status.as_u16(),
                code = self.code,
                detail,
                "answered with a server error"
            );
        }
        let error = wire::ErrorDetail {
            code: self.code.to_owned(),
            message: self.message,
            request_id: request_id.map(|id| id.to_string()),
        };
        (self.status, Json(wire::Error { error })).into_response()
    }
}

/// A JSON body parsed with our error codes (`INVALID_JSON`, `INVALID_REQUEST`) instead of
/// axum's plain-text rejections.
pub struct Body<T> {
    /// The parsed value.
    pub value: T,
    /// The bytes as received (for the idempotency fingerprint).
    pub bytes: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            _ => ApiError::bad_request("INVALID_REQUEST", "the body could not be read"),
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("EMPTY_BODY", "the request needs a JSON body"));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            let code = if e.is_syntax() || e.is_eof() { "INVALID_JSON" } else { "INVALID_REQUEST" };
            ApiError::bad_request(code, api_words(&e.to_string()))
        })?;
        Ok(Body { value, bytes })
    }
}

/// Largest request body (axum's default limit, said here so the 413 can name it).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A deserializer's message in the API's own words: the wire's JSON types instead of the
/// Rust types the body is read into (`expected struct NewOrder` → `expected a JSON object`).
pub fn api_words(message: &str) -> String {
    const RUST_TYPES: [(&str, &str); 14] = [
        ("u8", "a non-negative integer"),
        ("u16", "a non-negative integer"),
        ("u32", "a non-negative integer"),
        ("u64", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("f64", "a number"),
        ("a borrowed string", "a string"),
        ("a sequence", "a JSON array"),
        ("a map", "a JSON object"),
        ("unit", "null"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected ") {
        let (before, after) = rest.split_at(at + "expected ".len());
        out.push_str(before);
        let word_end = |s: &str| s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
        if let Some(name) = after.strip_prefix("struct ").or_else(|| after.strip_prefix("tuple struct ")) {
            out.push_str("a JSON object");
            rest = &name[word_end(name)..];
        } else if let Some(name) = after.strip_prefix("enum ") {
            out.push_str("one of the documented values");
            rest = &name[word_end(name)..];
        } else if let Some((rust, wire)) = RUST_TYPES
            .iter()
            .find(|(rust, _)| after.starts_with(rust) && (rust.contains(' ') || word_end(after) == rust.len()))
        {
            out.push_str(wire);
            rest = &after[rust.len()..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// SHA-256 of a token, hex: what is stored.
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh API token: 244 random bits from the OS.
pub fn new_token() -> String {
    format!("pp_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

pub use crate::users::{insert as insert_user, load_all as load_users};

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 9110).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "send Authorization: Bearer <token>")
    })?;
    let digest = token_digest(token);
    if let Some(user) = state.users.read().expect("users lock").get(&digest) {
        return Ok(user.clone());
    }
    // Not cached (created by another process since start): one lookup.
    let user = crate::users::by_token_digest(&state.db, &digest)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "the token is not valid"))?;
    state.users.write().expect("users lock").insert(digest, user.clone());
    Ok(user)
}

async fn guard(State((state, route)): State<(AppState, &'static Route)>, mut request: Request, next: Next) -> Response {
    let mut served = observe::Served { route: route.path, user: None };
    if !state.serving.serves(route) {
        let home = route.home().map_or("all", Serving::name);
        let message = format!(
            "this is a {} server (serve --role {}); {} {} is served by the {home} role (serve --role {home}, or an \
             all-in-one perpetua serve)",
            state.serving.name(),
            state.serving.name(),
            route.method,
            route.path
        );
        return with_served(
            ApiError::new(StatusCode::MISDIRECTED_REQUEST, "WRONG_ROLE", message).into_response(),
            served,
        );
    }
    if route.access != Access::Public {
        let user = match authenticate(&state, request.headers()).await {
            Ok(user) => user,
            Err(e) => return with_served(e.into_response(), served),
        };
        served.user = Some(user.user_id);
        if let Some(wait) = state.rate_limit.check(user.user_id) {
            return with_served(state.rate_limit.refusal(wait), served);
        }
        if !route.access.allows(user.role) {
            let message = format!("this route is for {} users; you are {}", route.access.as_str(), user.role.as_str());
            return with_served(ApiError::forbidden(message).into_response(), served);
        }
        request.extensions_mut().insert(user);
    }
    with_served(next.run(request).await, served)
}

fn with_served(mut response: Response, served: observe::Served) -> Response {
    response.extensions_mut().insert(served);
    response
}

/// What a browser client on another origin may do: nothing unless `--cors-origin` names its
/// origin (or `*`).
#[derive(Clone, Debug, Default)]
pub struct Cors {
    /// Origins allowed; `*` allows any.
    pub origins: Vec<String>,
}

impl Cors {
    fn layer(&self) -> Option<tower_http::cors::CorsLayer> {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        if self.origins.is_empty() {
            return None;
        }
        let origin = if self.origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(self.origins.iter().filter_map(|o| o.parse::<axum::http::HeaderValue>().ok()))
        };
        let headers = ["authorization", "content-type", "idempotency-key", "x-correlation-id", REQUEST_ID_HEADER];
        Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers(headers.map(axum::http::HeaderName::from_static))
                .expose_headers(
                    [REQUEST_ID_HEADER, "retry-after", "content-disposition", "x-perpetua-position"]
                        .map(axum::http::HeaderName::from_static),
                )
                .max_age(Duration::from_secs(600)),
        )
    }
}

/// The router: every route of [`ROUTES`] behind its access check, the viewer at `/`.
pub fn router(state: AppState, viewer: Viewer, cors: &Cors) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in ROUTES {
        let guarded = (route.handler)().layer(axum::middleware::from_fn_with_state((state.clone(), route), guard));
        router = router.route(route.path, guarded);
    }
    // Any other path under /v1 is the API's, never the viewer's page.
    let router = router.route(
        "/v1/{*rest}",
        axum::routing::any(|| async { ApiError::not_found("no such route (see /openapi.json)") }),
    );
    let router = viewer
        .serve(router)
        .layer(axum::middleware::from_fn(limit_request))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A body trickling in (a byte every few seconds) holds its connection no longer than
        // this: the header timeout ends when the headers are in.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        // Event-stream bodies are not compressed (tower-http leaves text/event-stream alone),
        // so a live stream's frames are never held back in a compressor's buffer.
        .layer(tower_http::compression::CompressionLayer::new());
    let router = match cors.layer() {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(state.metrics.clone(), observe::observe)).with_state(state)
}

/// Waits until the read models reflect `minPosition` (if given), at most [`MIN_POSITION_WAIT`].
pub async fn wait_min_position(state: &AppState, min_position: Option<u64>) -> Result<(), ApiError> {
    let Some(position) = min_position else { return Ok(()) };
    let deadline = tokio::time::Instant::now() + MIN_POSITION_WAIT;
    let mut followed = state.processor.head();
    let mut head = followed.borrow().position;
    if position > head && state.serving != Serving::All {
        // This process follows the writer's head every few milliseconds, from a store that may
        // be a read replica behind the primary: a command answered a moment ago may be past
        // what it has seen. The store says at once; a replica catches up within the wait.
        head = head.max(state.store.head().await?.last_position);
        if position > head {
            let _ = tokio::time::timeout_at(deadline, followed.wait_for(|h| h.position >= position)).await;
            head = head.max(followed.borrow().position);
        }
    }
    if position > head {
        // No command has been answered with it: waiting could not help.
        return Err(ApiError::bad_request(
            "MIN_POSITION_BEYOND_HEAD",
            format!("minPosition={position} is beyond the head of the log, position {head}"),
        ));
    }
    if state.projector.wait_for(position, deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        Ok(())
    } else {
        let reached = state.projector.state.borrow().position;
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "MIN_POSITION_TIMEOUT",
            format!("the read models reached position {reached}, not {position}, within {MIN_POSITION_WAIT:?}"),
        ))
    }
}
