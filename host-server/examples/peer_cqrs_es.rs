//! The HTTP peer of `scripts/bench-peer.sh`: deposits the way a classic CQRS/ES design does
//! them, measured side by side with Perpetua's writer under the same load generator.
//!
//! Every command is handled on its own: the account aggregate is loaded from PostgreSQL, the
//! command is decided on it, and its events are appended in one transaction of their own.
//! Concurrency is optimistic: two commands decided on the same version of an aggregate both
//! try to append the same sequence number, the primary key refuses the second, and the peer
//! decides that command again on a fresh load (the client sees one answer). Perpetua instead
//! keeps its state in memory, decides commands one after another in a single writer and
//! commits many of them per transaction (group commit); that difference is what the
//! comparison measures.
//!
//! The framework is [cqrs-es](https://crates.io/crates/cqrs-es) with its PostgreSQL event
//! repository, [postgres-es](https://crates.io/crates/postgres-es): the best-known CQRS/ES
//! framework for Rust, used as its documentation shows (`CqrsFramework` over a
//! `PersistedEventStore`), so the peer is the framework's way rather than one written to lose.
//!
//! Routes (the ones `perpetua-load --workload deposits` uses; any `Authorization` accepted):
//!
//! - `POST /v1/users` `{"name": …, "role": "trader"}` → `201 {"userId", "accountId",
//!   "apiToken": "peer", "role"}`: opens an account aggregate;
//! - `POST /v1/accounts/{accountId}/deposits` `{"amount": "1"}` → `201 {"account":
//!   {"accountId", "balance"}}`; 404 for an unknown account, 422 for a non-positive amount;
//! - `GET /healthz` → `200`.
//!
//! How the aggregate is loaded (`--store`):
//!
//! - `aggregate` (the default): cqrs-es's aggregate store. The aggregate's state is kept in
//!   the `snapshots` table and rewritten in the same transaction as each command's events;
//!   a load is one row, whatever the account's history.
//! - `snapshot`: a snapshot every `--snapshot-size` events; a load is the snapshot and the
//!   events after it.
//! - `event`: no snapshots; a load replays the account's whole stream, which grows with
//!   every deposit (so the rate falls as a run goes on).
//!
//! The tables are postgres-es's (`db/init.sql` of its repository), created at start if
//! missing. Durability is PostgreSQL's default (`synchronous_commit = on`). On SIGTERM or
//! Ctrl-C the peer stops and prints the commands it committed and the conflicts it retried.
//!
//! ```text
//! cargo build --release -p perpetua-server --example peer_cqrs_es
//! target/release/examples/peer_cqrs_es --listen 127.0.0.1:18390 \
//!     --database-url postgres://postgres@127.0.0.1:5432/perpetua_peer
//! ```

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, DomainEvent};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;
use uuid::Uuid;

// The allocator of Perpetua's own binaries, so that the two servers differ in design only.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A command decided again after this many conflicts in a row is answered 409.
const MAX_ATTEMPTS: u32 = 1_000;

/// postgres-es's tables, from `db/init.sql` of its repository (`IF NOT EXISTS` added).
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS events (
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        sequence bigint CHECK (sequence >= 0) NOT NULL,
        event_type text NOT NULL,
        event_version text NOT NULL,
        payload json NOT NULL,
        metadata json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE IF NOT EXISTS snapshots (
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
        current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
        payload json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
];

#[derive(Parser)]
#[command(name = "peer_cqrs_es", about = "Deposits over cqrs-es and postgres-es, for scripts/bench-peer.sh")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18390")]
    listen: String,
    /// The PostgreSQL database (it must exist; the tables are created if missing).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/perpetua_peer")]
    database_url: String,
    /// Connections in the pool.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// How an aggregate is loaded: its stored state, a snapshot and the events after it, or
    /// every event.
    #[arg(long, value_enum, default_value_t = StoreKind::Aggregate)]
    store: StoreKind,
    /// Events between snapshots (`--store snapshot`).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_size: u64,
}

/// cqrs-es's three kinds of `PersistedEventStore`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum StoreKind {
    Aggregate,
    Snapshot,
    Event,
}

// --- The aggregate ---------------------------------------------------------------------

/// An account: opened or not, and its balance.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Account {
    opened: bool,
    balance: Decimal,
}

impl Account {
    /// Emits `event` and returns the state it leads to, `self` left as loaded.
    ///
    /// `EventSink::write` applies the event to the aggregate it is given, and the aggregate
    /// and snapshot stores of cqrs-es 0.5 apply the command's events once more to the
    /// aggregate `handle` was called on before storing it: written to `self`, each deposit
    /// would be counted twice in the stored state. The copy takes the first application.
    async fn emit(&self, sink: &EventSink<Self>, event: AccountEvent) -> Account {
        let mut after = self.clone();
        sink.write(event, &mut after).await;
        after
    }
}

enum AccountCommand {
    Open {
        user_id: Uuid,
    },
    /// The balance after the deposit is sent on `balance` once decided; it is read only if
    /// the command's events are committed.
    Deposit {
        amount: Decimal,
        balance: oneshot::Sender<Decimal>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Opened { user_id: Uuid },
    Deposited { amount: Decimal },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::Opened { .. } => "AccountOpened".into(),
            AccountEvent::Deposited { .. } => "Deposited".into(),
        }
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
enum AccountError {
    #[error("account not found")]
    NotFound,
    #[error("account already opened")]
    AlreadyOpened,
    #[error("amount must be positive")]
    NonPositive,
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AccountError> {
        match command {
            AccountCommand::Open { user_id } => {
                if self.opened {
                    return Err(AccountError::AlreadyOpened);
                }
                self.emit(sink, AccountEvent::Opened { user_id }).await;
            }
            AccountCommand::Deposit { amount, balance } => {
                if !self.opened {
                    return Err(AccountError::NotFound);
                }
                if amount <= Decimal::ZERO {
                    return Err(AccountError::NonPositive);
                }
                let after = self.emit(sink, AccountEvent::Deposited { amount }).await;
                // The receiver is gone only if the handler was dropped; nothing to answer then.
                let _ = balance.send(after.balance);
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.opened = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

// --- HTTP --------------------------------------------------------------------------------

struct Peer {
    cqrs: PostgresCqrs<Account>,
    /// Commands whose events were committed.
    committed: AtomicU64,
    /// Attempts refused by the optimistic check and decided again.
    conflicts: AtomicU64,
}

type Shared = Arc<Peer>;

/// The body of `POST /v1/users`; the name is accepted and not kept (the peer has no users).
#[derive(Deserialize)]
struct NewUser {
    role: String,
}

#[derive(Deserialize)]
struct NewDeposit {
    amount: Decimal,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

impl Peer {
    /// Runs a command, deciding it again (on a fresh load) while the optimistic check
    /// refuses it. `command` makes each attempt's command.
    async fn execute<T>(
        &self,
        account_id: &str,
        command: impl Fn() -> (AccountCommand, T),
    ) -> Result<T, AggregateError<AccountError>> {
        for _ in 0..MAX_ATTEMPTS {
            let (command, reply) = command();
            match self.cqrs.execute(account_id, command).await {
                Ok(()) => {
                    self.committed.fetch_add(1, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(AggregateError::AggregateConflict) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        Err(AggregateError::AggregateConflict)
    }
}

/// The answer to a command the framework refused.
fn refused(e: AggregateError<AccountError>) -> Response {
    match e {
        AggregateError::UserError(e @ AccountError::NotFound) => error(StatusCode::NOT_FOUND, e),
        AggregateError::UserError(e @ AccountError::AlreadyOpened) => error(StatusCode::CONFLICT, e),
        AggregateError::UserError(e @ AccountError::NonPositive) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        AggregateError::AggregateConflict => error(StatusCode::CONFLICT, "too many concurrent commands"),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn create_user(State(peer): State<Shared>, body: Result<Json<NewUser>, JsonRejection>) -> Response {
    let Json(user) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if user.role != "trader" {
        return error(StatusCode::BAD_REQUEST, "the peer opens traders only");
    }
    let (user_id, account_id) = (Uuid::new_v4(), Uuid::new_v4());
    match peer.execute(&account_id.to_string(), || (AccountCommand::Open { user_id }, ())).await {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({ "userId": user_id, "accountId": account_id, "apiToken": "peer", "role": "trader" })),
        )
            .into_response(),
        Err(e) => refused(e),
    }
}

async fn deposit(
    State(peer): State<Shared>,
    Path(account_id): Path<String>,
    body: Result<Json<NewDeposit>, JsonRejection>,
) -> Response {
    let Json(NewDeposit { amount }) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Ok(account_id) = account_id.parse::<Uuid>() else {
        return error(StatusCode::NOT_FOUND, AccountError::NotFound);
    };
    let attempt = || {
        let (sender, receiver) = oneshot::channel();
        (AccountCommand::Deposit { amount, balance: sender }, receiver)
    };
    match peer.execute(&account_id.to_string(), attempt).await {
        Ok(mut balance) => match balance.try_recv() {
            Ok(balance) => (
                StatusCode::CREATED,
                Json(json!({ "account": { "accountId": account_id, "balance": balance.to_string() } })),
            )
                .into_response(),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "a deposit committed without a balance"),
        },
        Err(e) => refused(e),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let pool = PgPoolOptions::new()
        .max_connections(args.pool_size)
        .connect(&args.database_url)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.database_url))?;
    for statement in SCHEMA {
        pool.execute(statement).await.map_err(|e| format!("cannot create the tables: {e}"))?;
    }
    let repository = PostgresEventRepository::new(pool);
    let store = match args.store {
        StoreKind::Aggregate => PersistedEventStore::new_aggregate_store(repository),
        StoreKind::Snapshot => PersistedEventStore::new_snapshot_store(repository, args.snapshot_size as usize),
        StoreKind::Event => PersistedEventStore::new_event_store(repository),
    };
    let peer = Arc::new(Peer {
        cqrs: CqrsFramework::new(store, Vec::new(), ()),
        committed: AtomicU64::new(0),
        conflicts: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/v1/users", post(create_user))
        .route("/v1/accounts/{accountId}/deposits", post(deposit))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(peer.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    eprintln!("peer_cqrs_es: listening on {}", args.listen);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.map_err(|e| e.to_string())?;
    println!(
        "peer_cqrs_es: {} commands committed, {} conflicts retried",
        peer.committed.load(Ordering::Relaxed),
        peer.conflicts.load(Ordering::Relaxed)
    );
    Ok(())
}
