//! Event-store load generator (figures in BENCHMARKS.md). For each backend, on a fresh
//! database, with real events (the engine's mixed workload, sealed):
//!
//! - appends with 1, 10 and 100 events per transaction;
//! - one transaction per command (the command's own events and an idempotency record);
//! - group commit: 100 and 1,000 commands per transaction, each with its idempotency record;
//! - reading the whole log back in pages of 10,000 (rows decoded into stored events);
//! - on PostgreSQL, side by side: `postgres-es` (the PostgreSQL store of cqrs-es) persisting
//!   the same events one command at a time, as its repository does.
//!
//! Each append measurement runs for about `PERPETUA_BENCH_SECONDS` (default 4) or until the
//! workload is used up; the figure is events committed per second of wall time. A single
//! appender, as the server's single writer. Run:
//!
//! ```text
//! cargo bench -p perpetua-server --bench store
//! ```
//!
//! `PERPETUA_BENCH_POSTGRES_URL` / `PERPETUA_BENCH_MYSQL_URL` name the servers (defaults:
//! the local ones); a server that cannot be reached is skipped with a message.

use perpetua_core::audit::{Hash, HashChain};
use perpetua_core::event::StoredEvent;
use perpetua_core::workload::Setup;
use perpetua_server::store::{CommandAppend, Idempotency, Store, StoreOptions};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};

/// The events of one command, sealed.
type Command = Vec<StoredEvent>;

fn workload(commands: usize) -> Vec<Command> {
    let mut setup = Setup::new(16, 1_000, 7);
    setup.mixed_workload(commands, 11);
    let mut log = setup.log;
    let stored = HashChain::default().seal(&mut log);
    let mut grouped: Vec<Command> = Vec::new();
    for event in stored {
        match grouped.last_mut() {
            Some(last) if last[0].metadata.causation_id == event.metadata.causation_id => last.push(event),
            _ => grouped.push(vec![event]),
        }
    }
    grouped
}

fn budget() -> Duration {
    let seconds = std::env::var("PERPETUA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    Duration::from_secs_f64(seconds)
}

struct Figure {
    events: usize,
    transactions: usize,
    elapsed: Duration,
}

impl Figure {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

fn row(backend: &str, what: &str, figure: &Figure) {
    println!(
        "| {backend} | {what} | {:>12.0} | {:>10.0} | {:>9} | {:>7.2} |",
        figure.per_second(),
        figure.transactions as f64 / figure.elapsed.as_secs_f64(),
        figure.events,
        figure.elapsed.as_secs_f64()
    );
}

/// Appends transactions until the time budget is spent.
async fn append_all(store: &Store, transactions: Vec<Vec<CommandAppend>>) -> Figure {
    let budget = budget();
    let (mut events, mut count) = (0, 0);
    let start = Instant::now();
    for transaction in &transactions {
        store.append(transaction).await.expect("append");
        events += transaction.iter().map(|c| c.events.len()).sum::<usize>();
        count += 1;
        if start.elapsed() >= budget {
            break;
        }
    }
    Figure { events, transactions: count, elapsed: start.elapsed() }
}

fn with_key(n: usize, events: Command) -> CommandAppend {
    let outcome = format!(r#"{{"position":{}}}"#, events.last().map_or(0, |e| e.position));
    CommandAppend {
        events,
        idempotency: Some(Idempotency { key: format!("bench-{n}"), fingerprint: Hash([(n % 251) as u8; 32]), outcome }),
    }
}

async fn fresh(url: &str) -> Option<String> {
    let database = "perpetua_bench";
    let (drop, create) = (format!("DROP DATABASE IF EXISTS {database}"), format!("CREATE DATABASE {database}"));
    let result = if url.starts_with("postgres") {
        recreate::<sqlx::PgConnection>(url, &[&format!("{drop} WITH (FORCE)"), &create]).await
    } else {
        recreate::<sqlx::MySqlConnection>(url, &[&drop, &create]).await
    };
    match result {
        Ok(()) => Some(format!("{}/{database}", &url[..url.rfind('/').expect("a database in the URL")])),
        Err(e) => {
            println!("skipping {url}: {e}");
            None
        }
    }
}

async fn recreate<C>(url: &str, statements: &[&str]) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c>,
{
    let mut conn = C::connect(url).await?;
    for statement in statements {
        (&mut conn).execute(*statement).await?;
    }
    conn.close().await
}

/// Opens a fresh store: a new SQLite file, or a recreated server database.
async fn open(backend: &str, dir: &std::path::Path, n: usize) -> Option<Store> {
    let url = match backend {
        "SQLite" => format!("sqlite://{}", dir.join(format!("bench-{n}.db")).display()),
        "PostgreSQL" => {
            fresh(&env_or("PERPETUA_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")).await?
        }
        _ => fresh(&env_or("PERPETUA_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")).await?,
    };
    Some(Store::open(&StoreOptions::new(url)).await.expect("open the store"))
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Runs every measurement on one backend; returns the events/s of one command per
/// transaction and of group commit.
async fn bench_backend(backend: &str, commands: &[Command], dir: &std::path::Path) -> Option<(f64, f64)> {
    let flat: Vec<StoredEvent> = commands.iter().flatten().cloned().collect();
    let mut n = 0;
    for per_tx in [1, 10, 100] {
        n += 1;
        let store = open(backend, dir, n).await?;
        let transactions = flat.chunks(per_tx).map(|c| vec![CommandAppend::new(c.to_vec())]).collect();
        row(backend, &format!("append, {per_tx} events/tx"), &append_all(&store, transactions).await);
        store.close().await;
    }

    n += 1;
    let store = open(backend, dir, n).await?;
    let transactions = commands.iter().enumerate().map(|(i, c)| vec![with_key(i, c.clone())]).collect();
    let per_command = append_all(&store, transactions).await;
    row(backend, "append, 1 command/tx (+ idempotency)", &per_command);
    store.close().await;

    let mut group_rate = 0.0;
    let mut store = None;
    for commands_per_tx in [100, 1000] {
        n += 1;
        if let Some(previous) = store.take() {
            Store::close(&previous).await;
        }
        let fresh = open(backend, dir, n).await?;
        let mut numbered = commands.iter().cloned().enumerate();
        let mut transactions = Vec::new();
        loop {
            let group: Vec<CommandAppend> =
                numbered.by_ref().take(commands_per_tx).map(|(i, c)| with_key(i, c)).collect();
            if group.is_empty() {
                break;
            }
            transactions.push(group);
        }
        let group = append_all(&fresh, transactions).await;
        row(backend, &format!("group commit, {commands_per_tx} commands/tx (+ idempotency)"), &group);
        group_rate = f64::max(group_rate, group.per_second());
        store = Some(fresh);
    }
    let store = store.expect("a store");

    // Read everything the last group-commit run wrote, three times; the best run counts.
    let head = store.head().await.expect("head").last_position;
    let mut best: Option<Figure> = None;
    for _ in 0..3 {
        let start = Instant::now();
        let (mut next, mut events) = (1, 0);
        while next <= head {
            let page = store.read_all(next, 10_000).await.expect("read");
            events += page.len();
            next += page.len() as u64;
        }
        let figure = Figure { events, transactions: head.div_ceil(10_000) as usize, elapsed: start.elapsed() };
        if best.as_ref().is_none_or(|b| figure.elapsed < b.elapsed) {
            best = Some(figure);
        }
    }
    row(backend, "read all, pages of 10,000 (tx = page)", &best.expect("three runs"));
    store.close().await;
    Some((per_command.per_second(), group_rate))
}

// --- The peer: cqrs-es's PostgreSQL event repository -------------------------------------

/// cqrs-es needs an aggregate type to persist events; the events are ours, as JSON.
#[derive(Default, Serialize, Deserialize)]
struct Peer;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PeerEvent;

impl cqrs_es::DomainEvent for PeerEvent {
    fn event_type(&self) -> String {
        "Event".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

impl cqrs_es::Aggregate for Peer {
    const TYPE: &'static str = "Exchange";
    type Command = ();
    type Event = PeerEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(&mut self, _: (), _: &(), _: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, _: PeerEvent) {}
}

/// The schema from postgres-es's `db/init.sql`.
const POSTGRES_ES_SCHEMA: &str = "CREATE TABLE events (
    aggregate_type text NOT NULL, aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL,
    event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence))";

async fn bench_postgres_es(commands: &[Command]) -> Option<f64> {
    use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
    let url = fresh(&env_or("PERPETUA_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")).await?;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    pool.execute(POSTGRES_ES_SCHEMA).await.expect("postgres-es schema");
    let repository = postgres_es::PostgresEventRepository::new(pool.clone());
    let serialized: Vec<Vec<SerializedEvent>> = commands
        .iter()
        .map(|command| {
            command
                .iter()
                .map(|e| SerializedEvent {
                    aggregate_id: format!("{}/{}", e.aggregate_type.as_str(), e.aggregate_id),
                    sequence: e.version as usize,
                    aggregate_type: Peer::TYPE.into(),
                    event_type: e.event_type.clone(),
                    event_version: e.schema_version.to_string(),
                    payload: serde_json::from_str(e.payload.get()).expect("payload"),
                    metadata: serde_json::to_value(&e.metadata).expect("metadata"),
                })
                .collect()
        })
        .collect();
    let budget = budget();
    let (mut events, mut count) = (0, 0);
    let start = Instant::now();
    for command in &serialized {
        repository.persist::<Peer>(command, None).await.expect("persist");
        events += command.len();
        count += 1;
        if start.elapsed() >= budget {
            break;
        }
    }
    let figure = Figure { events, transactions: count, elapsed: start.elapsed() };
    row("PostgreSQL", "postgres-es 0.5, 1 command/tx", &figure);
    pool.close().await;
    Some(figure.per_second())
}

use cqrs_es::Aggregate as _;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let commands = workload(200_000);
    let events: usize = commands.iter().map(Vec::len).sum();
    let bytes: usize = commands.iter().flatten().map(|e| e.payload.get().len()).sum();
    println!(
        "workload: {} commands, {events} events, {:.0} bytes of payload per event; {:?} per measurement",
        commands.len(),
        bytes as f64 / events as f64,
        budget()
    );
    println!("| backend | measurement | events/s | tx/s | events | seconds |");
    println!("|---|---|---:|---:|---:|---:|");
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime.block_on(async {
        let only = std::env::var("PERPETUA_BENCH_BACKENDS").unwrap_or_default();
        for backend in ["SQLite", "PostgreSQL", "MariaDB"].into_iter().filter(|b| only.is_empty() || only.contains(b)) {
            let ours = bench_backend(backend, &commands, dir.path()).await;
            if backend == "PostgreSQL" {
                if let (Some((per_command, group)), Some(peer)) = (ours, bench_postgres_es(&commands).await) {
                    println!("\nPerpetua / postgres-es, same events: one command per transaction {:.1}x; group commit (best) {:.1}x\n", per_command / peer, group / peer);
                }
            }
        }
    });
}
