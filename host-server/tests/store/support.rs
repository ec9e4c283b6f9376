//! What the conformance tests need around the store: a fresh database per test on each
//! backend, raw SQL for tampering, and sealed events built from the core's own types.

use perpetua_core::account::events::BalanceDeposited;
use perpetua_core::audit::HashChain;
use perpetua_core::event::{Event, EventEnvelope, Metadata, StoredEvent, StreamId};
use perpetua_core::ids::{AccountId, EventId};
use perpetua_core::time::Timestamp;
use perpetua_core::Decimal;
use perpetua_server::store::{Store, StoreOptions};
use sqlx::{Connection, Executor};
use std::collections::HashMap;
use std::sync::Arc;

/// The backends the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Sqlite,
    Postgres,
    MySql,
}

/// Set in the child process of the crash test: the database it appends to.
pub const CRASH_CHILD_URL: &str = "PERPETUA_CRASH_CHILD_URL";

impl Target {
    fn admin_url(self) -> Option<String> {
        let (var, default) = match self {
            Target::Sqlite => return None,
            Target::Postgres => ("PERPETUA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
            Target::MySql => ("PERPETUA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
        };
        Some(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    }

    pub fn module(self) -> &'static str {
        match self {
            Target::Sqlite => "sqlite",
            Target::Postgres => "postgres",
            Target::MySql => "mysql",
        }
    }
}

/// A database of its own for one test.
pub struct TestDb {
    pub target: Target,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn open(&self) -> Store {
        Store::open(&StoreOptions::new(&self.url)).await.expect("open the store")
    }

    /// Runs SQL directly against the database, around the store.
    pub async fn execute(&self, statements: &[&str]) -> Result<(), sqlx::Error> {
        match self.target {
            Target::Sqlite => run_all(sqlx::SqliteConnection::connect(&self.url).await?, statements).await,
            Target::Postgres => run_all(sqlx::PgConnection::connect(&self.url).await?, statements).await,
            Target::MySql => run_all(sqlx::MySqlConnection::connect(&self.url).await?, statements).await,
        }
    }
}

async fn run_all<C>(mut conn: C, statements: &[&str]) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c>,
{
    for statement in statements {
        (&mut conn).execute(*statement).await?;
    }
    conn.close().await
}

fn with_database(admin_url: &str, name: &str) -> String {
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    format!("{}/{name}", &base[..cut])
}

/// A fresh database for `test` on `target`, or `None` (said on the output) when the server is
/// not reachable and the user asked to skip it (see [`skip_unreachable`]); otherwise an
/// unreachable server fails the test.
pub async fn provision(target: Target, test: &str) -> Option<TestDb> {
    if let Ok(url) = std::env::var(CRASH_CHILD_URL) {
        return Some(TestDb { target, url, _dir: None });
    }
    let name = format!("perpetua_t_{test}");
    let result = match target {
        Target::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", dir.path().join("events.db").display());
            return Some(TestDb { target, url, _dir: Some(dir) });
        }
        Target::Postgres => {
            let admin = target.admin_url().expect("server backend");
            recreate::<sqlx::PgConnection>(
                &admin,
                &[&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), &format!("CREATE DATABASE {name}")],
            )
            .await
            .map(|()| with_database(&admin, &name))
        }
        Target::MySql => {
            let admin = target.admin_url().expect("server backend");
            recreate::<sqlx::MySqlConnection>(
                &admin,
                &[&format!("DROP DATABASE IF EXISTS {name}"), &format!("CREATE DATABASE {name}")],
            )
            .await
            .map(|()| with_database(&admin, &name))
        }
    };
    match result {
        Ok(url) => Some(TestDb { target, url, _dir: None }),
        Err(e) => {
            let message = format!("{} is not reachable ({e}) for {}::{test}", target.module(), target.module());
            if !skip_unreachable(target.module()) {
                panic!("{message}: start it, or set PERPETUA_SKIP_BACKENDS to skip it");
            }
            record_skip(&message);
            None
        }
    }
}

async fn recreate<C>(admin_url: &str, statements: &[&str]) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c>,
{
    run_all(C::connect(admin_url).await?, statements).await
}

/// Builds sealed events continuing `head`: each event goes to its own stream's next version
/// (tracked in `versions`), all with one metadata and time.
pub struct Sealer {
    pub head: HashChain,
    pub versions: HashMap<StreamId, u64>,
    pub time: Timestamp,
}

impl Sealer {
    pub fn new(head: HashChain) -> Self {
        Sealer { head, versions: HashMap::new(), time: Timestamp(1_767_225_600_000) }
    }

    pub fn seal(&mut self, events: Vec<Event>, metadata: Metadata) -> Vec<StoredEvent> {
        let metadata = Arc::new(metadata);
        self.time = Timestamp(self.time.millis() + 1000);
        let mut envelopes: Vec<EventEnvelope> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                let stream = event.stream();
                let version = self.versions.entry(stream).or_insert(0);
                *version += 1;
                let position = self.head.last_position + 1 + i as u64;
                EventEnvelope {
                    position,
                    event_id: EventId::derive(position),
                    stream,
                    version: *version,
                    schema_version: event.schema_version(),
                    timestamp: self.time,
                    event,
                    metadata: metadata.clone(),
                    prev_hash: Default::default(),
                    hash: Default::default(),
                }
            })
            .collect();
        self.head.seal(&mut envelopes)
    }
}

/// A deposit of `amount` into account number `n`.
pub fn deposit(n: u64, amount: i64) -> Event {
    Event::BalanceDeposited(BalanceDeposited { account_id: account(n), amount: Decimal::new(amount, 2) })
}

pub fn account(n: u64) -> AccountId {
    AccountId::derive(n)
}

/// Metadata with a correlation id of its own.
pub fn metadata(correlation: u128) -> Metadata {
    Metadata {
        user_id: None,
        correlation_id: Some(uuid::Uuid::from_u128(correlation)),
        causation_id: Some(uuid::Uuid::from_u128(correlation + 1)),
        ip_address: Some("2001:db8::1 café ☃ 𝄞".into()),
    }
}

/// Real events of every type, as the engine produced them running the shared vectors.
pub fn events_of_every_type() -> Vec<Event> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut per_type: HashMap<&'static str, usize> = HashMap::new();
    let mut events = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("tests/vectors").map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let report = perpetua_core::vectors::run_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for envelope in report.logs.into_iter().flatten() {
            let seen = per_type.entry(envelope.event.event_type()).or_insert(0);
            if *seen < 4 {
                *seen += 1;
                events.push(envelope.event);
            }
        }
    }
    events
}

#[path = "../../../tests/common/skip.rs"]
mod skip;
pub use skip::{record_skip, skip_unreachable};
