//! `perpetua`: the exchange's command-line entry point.
//!
//! What exists today: `demo` runs the demo story through the engine and writes its sealed log
//! (JSON Lines); `import` appends such a log to the event store (SQLite by default,
//! PostgreSQL or MariaDB with `--database-url`); `verify` checks the hash chain of a file or
//! of the store; `replay` folds a log (or a prefix of it) and prints the read models. The HTTP
//! server and the projector are not built yet; `serve` arrives with them.

use clap::{Args, Parser, Subcommand};
use perpetua_core::audit;
use perpetua_core::event::{parse_stored_events, StoredEvent};
use perpetua_core::projection::ReadModels;
use perpetua_core::{invariants, EventEnvelope, Exchange};
use perpetua_server::store::{Appended, CommandAppend, Store, StoreOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints a line to stdout; when the reader has gone away (`perpetua replay … | head`), the
/// program ends quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("perpetua: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }};
}

#[derive(Parser)]
#[command(name = "perpetua", version, about = "Perpetua: an event-sourced perpetual-futures exchange core")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Where the event store is.
#[derive(Args)]
struct Database {
    /// `sqlite://FILE`, `postgres://user@host/db` or `mysql://user@host/db`.
    #[arg(long, env = "PERPETUA_DATABASE_URL", default_value = "sqlite://perpetua.db")]
    database_url: String,
    /// Open a PostgreSQL or MariaDB whose settings let a commit be acknowledged before it is
    /// durable (fsync or synchronous_commit off, innodb_flush_log_at_trx_commit != 1).
    /// Acknowledged events can then be lost in a crash.
    #[arg(long)]
    unsafe_allow_non_durable_database: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo story through the engine, seal its hash chain and write it as JSON Lines;
    /// then read the file back, verify it and replay it, as an auditor would.
    Demo {
        /// Where to write the log.
        #[arg(long, default_value = "perpetua-demo.jsonl")]
        out: PathBuf,
    },
    /// Verify the hash chain of an exported log (JSON Lines or a JSON array), or of the event
    /// store when no file is given.
    Verify {
        /// The exported log; the store when absent.
        file: Option<PathBuf>,
        /// First position to check (the store only).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last position to check (the store only); the last event when absent.
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        database: Database,
    },
    /// Append a sealed log (JSON Lines, as `demo` writes it) to the event store, continuing its
    /// chain; the events the store already holds (same positions, same hashes) are skipped, so
    /// an interrupted import can be run again. Takes the writer lease: it refuses to run
    /// while another writer holds the store.
    Import {
        /// The log to import.
        file: PathBuf,
        #[command(flatten)]
        database: Database,
    },
    /// Replay an exported log and print the accounts, open positions and chain head as JSON.
    Replay {
        /// The exported log.
        file: PathBuf,
        /// Stop after this global position (time travel); the whole log by default.
        #[arg(long)]
        at: Option<u64>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Cmd::Demo { out } => demo(&out),
        Cmd::Verify { file: Some(file), .. } => read_log(&file).and_then(|events| verify(&events)),
        Cmd::Verify { file: None, from, to, database } => with_store(&database, |store| verify_store(store, from, to)),
        Cmd::Import { file, database } => {
            read_log(&file).and_then(|events| with_store(&database, |store| import(store, events)))
        }
        Cmd::Replay { file, at } => read_log(&file).and_then(|events| replay(&events, at)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("perpetua: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_log(file: &PathBuf) -> Result<Vec<StoredEvent>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    parse_stored_events(&text).map_err(|e| format!("{}: {e} ({})", file.display(), e.code()))
}

fn decode(events: &[StoredEvent]) -> Result<Vec<EventEnvelope>, String> {
    events
        .iter()
        .map(|e| e.decode().map_err(|err| format!("position {}: {err} ({})", e.position, err.code())))
        .collect()
}

fn demo(out: &PathBuf) -> Result<(), String> {
    let (exchange, stored) = perpetua_core::demo::sealed_log();
    let jsonl: String = stored.iter().map(|e| serde_json::to_string(e).expect("events serialize") + "\n").collect();
    std::fs::write(out, &jsonl).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    say!("demo: {} events written to {}", stored.len(), out.display());

    let read_back = read_log(out)?;
    verify(&read_back)?;
    let replayed = Exchange::replay(&decode(&read_back)?);
    if replayed != exchange {
        return Err("the replayed log differs from the engine that wrote it".into());
    }
    invariants::check(&replayed).map_err(|v| format!("invariant broken: {v}"))?;
    say!("replay: the log folds back into the same exchange; invariants hold");

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &stored {
        *counts.entry(event.event_type.as_str()).or_default() += 1;
    }
    say!("events by type:");
    for (event_type, count) in counts {
        say!("  {event_type:<24} {count:>6}");
    }
    say!("next: `perpetua replay {0}` prints the state; `perpetua verify {0}` checks the chain", out.display());
    Ok(())
}

fn verify(events: &[StoredEvent]) -> Result<(), String> {
    report_chain(&audit::verify_range(events), "events")
}

/// Prints a verified chain, or turns a broken one into the error that names its position.
fn report_chain(report: &audit::VerifyReport, what: &str) -> Result<(), String> {
    match (report.first_bad_position, &report.fault) {
        (Some(position), Some(fault)) => Err(format!(
            "chain broken at position {position}: {fault:?} ({} events verified before it)",
            report.verified
        )),
        _ => {
            say!("verified: {} {what}, chain head {}", report.verified, report.last_hash);
            Ok(())
        }
    }
}

fn replay(events: &[StoredEvent], at: Option<u64>) -> Result<(), String> {
    let decoded = decode(events)?;
    let mut models = ReadModels::default();
    let mut exchange = Exchange::new();
    for envelope in decoded.iter().take_while(|e| at.is_none_or(|limit| e.position <= limit)) {
        exchange.apply(envelope);
        models.apply(envelope);
    }
    let output = serde_json::json!({
        "lastPosition": exchange.last_position(),
        "lastTimestamp": exchange.last_timestamp(),
        "accounts": models.accounts().summaries(),
        "openPositions": models.open_positions(),
    });
    say!("{}", serde_json::to_string_pretty(&output).expect("serializes"));
    Ok(())
}

/// Opens the store and runs `job` on a Tokio runtime.
fn with_store<F: std::future::Future<Output = Result<(), String>>>(
    database: &Database,
    job: impl FnOnce(Store) -> F,
) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let options = StoreOptions {
            allow_unsafe_durability: database.unsafe_allow_non_durable_database,
            ..StoreOptions::new(&database.database_url)
        };
        let store = Store::open(&options).await.map_err(|e| format!("{e} ({})", e.code()))?;
        if !store.durability().durable {
            eprintln!(
                "perpetua: WARNING: {} does not make commits durable: {:?}",
                database.database_url,
                store.durability().settings
            );
        }
        let result = job(store.clone()).await;
        store.close().await;
        result
    })
}

async fn verify_store(store: Store, from: u64, to: Option<u64>) -> Result<(), String> {
    let report = store.verify(from, to).await.map_err(|e| format!("{e} ({})", e.code()))?;
    report_chain(&report, "events in the store")
}

async fn import(store: Store, events: Vec<StoredEvent>) -> Result<(), String> {
    let store_error = |e: perpetua_server::store::StoreError| format!("{e} ({})", e.code());
    let _lease = store.acquire_writer_lease().await.map_err(store_error)?;
    let head = store.head().await.map_err(store_error)?;
    // What the store already holds must be this very log.
    if let Some(held) = events.iter().find(|e| e.position == head.last_position) {
        if held.hash != head.last_hash {
            return Err(format!("the store holds a different log: position {} has another hash", head.last_position));
        }
    }
    let fresh: Vec<StoredEvent> = events.into_iter().filter(|e| e.position > head.last_position).collect();
    let (mut commands, mut imported) = (Vec::new(), 0);
    for event in fresh {
        match commands.last_mut() {
            Some(CommandAppend { events, .. })
                if events
                    .last()
                    .is_some_and(|l: &StoredEvent| l.metadata.causation_id == event.metadata.causation_id) =>
            {
                events.push(event)
            }
            _ => commands.push(CommandAppend::new(vec![event])),
        }
    }
    for group in commands.chunks(100) {
        match store.append(group).await.map_err(store_error)? {
            Appended::Committed { .. } => imported += group.iter().map(|c| c.events.len()).sum::<usize>(),
            Appended::Replayed { .. } => unreachable!("imported commands carry no idempotency key"),
        }
    }
    let head = store.head().await.map_err(store_error)?;
    say!(
        "import: {imported} events appended ({} store), head at position {} {}",
        store.backend().name(),
        head.last_position,
        head.last_hash
    );
    Ok(())
}
