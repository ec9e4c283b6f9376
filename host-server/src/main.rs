//! `perpetua`: the exchange's command-line entry point.
//!
//! `serve` runs the exchange (HTTP API, command processor, projector, audit viewer) over the
//! event store (SQLite by default, PostgreSQL or MariaDB with `--database-url`); `rebuild`,
//! `verify`, `export`, `import` and `snapshot` operate on the store; `demo` and `replay` work
//! on exported files.

use clap::{Args, Parser, Subcommand};
use perpetua_core::audit;
use perpetua_core::event::{parse_stored_events, StoredEvent};
use perpetua_core::projection::ReadModels;
use perpetua_core::{invariants, EventEnvelope, Exchange};
use perpetua_server::db::Db;
use perpetua_server::listener::ConnectionLimits;
use perpetua_server::metrics::Metrics;
use perpetua_server::processor::{self, ProcessorOptions};
use perpetua_server::projector::{read_model_name, Projector, READ_MODELS};
use perpetua_server::server::{self, ServeOptions};
use perpetua_server::store::{Appended, CommandAppend, Store, StoreOptions, StreamRange};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the exchange: the HTTP API, the command processor, the projector and the audit
    /// viewer. Takes the writer lease: one server per store.
    Serve {
        /// Address to listen on (`127.0.0.1:0` picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Fill an empty store with the demo story (traders, orders, fills, a liquidation, …)
        /// and print a token for each demo user.
        #[arg(long)]
        demo: bool,
        /// The audit viewer's production build, served at `/`.
        #[arg(long, default_value = "web/dist")]
        web_dir: PathBuf,
        /// Save an engine snapshot after this many events (start-up replays only the tail).
        #[arg(long, default_value_t = 100_000)]
        snapshot_every: u64,
        /// Most client connections open at once; one more is answered 503 and closed. (Also
        /// bounded by the open-file limit, which is raised to its hard limit at start.)
        #[arg(long, default_value_t = 10_000)]
        max_connections: usize,
        /// Seconds a client may take to send a request's headers, or to start its next
        /// request on a kept-alive connection, before the connection is closed.
        #[arg(long, default_value_t = 10)]
        header_timeout_secs: u64,
        #[command(flatten)]
        database: Database,
    },
    /// Rebuild read models from the log into fresh tables, then swap them in. Takes the
    /// writer lease (stop the server first, or use POST /v1/admin/projections/{name}/rebuild).
    Rebuild {
        /// `orders`, `accounts`, `positions`, `trades`, `markets`, or `all`.
        #[arg(default_value = "all")]
        read_model: String,
        #[command(flatten)]
        database: Database,
    },
    /// Write events of the store as JSON Lines, each with `prevHash` and `hash`, so the file
    /// verifies offline (`perpetua verify FILE`, or the audit viewer).
    Export {
        /// Where to write; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// First position of a range.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last position of a range; the head when absent.
        #[arg(long)]
        to: Option<u64>,
        /// One stream, as `Type/id` (`Order/…`, `Account/…`, `Position/…`, `Market/BTCUSDT`).
        #[arg(long, conflicts_with = "correlation_id")]
        stream: Option<String>,
        /// Everything one request caused.
        #[arg(long)]
        correlation_id: Option<uuid::Uuid>,
        #[command(flatten)]
        database: Database,
    },
    /// Save a snapshot of the whole engine at the log's head, so start-up replays only what
    /// follows. Takes the writer lease.
    Snapshot {
        #[command(flatten)]
        database: Database,
    },
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
        Cmd::Serve { listen, demo, web_dir, snapshot_every, max_connections, header_timeout_secs, database } => {
            with_store(&database, |store| {
                let options = ServeOptions {
                    listen,
                    demo,
                    web_dir: Some(web_dir),
                    processor: ProcessorOptions { engine_snapshot_every: snapshot_every.max(1) },
                    limits: ConnectionLimits {
                        max_connections: max_connections.max(1),
                        header_timeout: std::time::Duration::from_secs(header_timeout_secs.max(1)),
                        ..ConnectionLimits::default()
                    },
                };
                server::serve(store, options)
            })
        }
        Cmd::Rebuild { read_model, database } => with_store(&database, |store| rebuild(store, read_model)),
        Cmd::Export { out, from, to, stream, correlation_id, database } => {
            with_store(&database, |store| export(store, out, from, to, stream, correlation_id))
        }
        Cmd::Snapshot { database } => with_store(&database, snapshot),
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
    let jsonl = perpetua_core::event::to_json_lines(&stored);
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
    // In chunks, with progress; the last chunk (to the end) also checks the recorded head.
    const CHUNK: u64 = 100_000;
    let last = match to {
        Some(to) => to,
        None => store.head().await.map_err(store_error)?.last_position,
    };
    let mut verified = 0;
    let mut start = from.max(1);
    while start + CHUNK <= last {
        let report = store.verify(start, Some(start + CHUNK - 1)).await.map_err(store_error)?;
        if !report.is_ok() {
            eprintln!();
            return report_chain(&report, "events in the store");
        }
        verified += report.verified;
        start += CHUNK;
        progress("verify", start - from.max(1), last + 1 - from.max(1));
    }
    let mut report = store.verify(start, to).await.map_err(store_error)?;
    if verified > 0 {
        eprintln!();
    }
    report.verified += verified;
    report_chain(&report, "events in the store")
}

async fn import(store: Store, events: Vec<StoredEvent>) -> Result<(), String> {
    let _lease = store.acquire_writer_lease().await.map_err(store_error)?;
    let head = store.head().await.map_err(store_error)?;
    // What the store already holds must be this very log.
    if let Some(held) = events.iter().find(|e| e.position == head.last_position) {
        if held.hash != head.last_hash {
            return Err(format!("the store holds a different log: position {} has another hash", head.last_position));
        }
    }
    let commands = CommandAppend::per_command(events.into_iter().filter(|e| e.position > head.last_position));
    let mut imported = 0;
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

fn store_error(e: perpetua_server::store::StoreError) -> String {
    format!("{e} ({})", e.code())
}

/// Draws a progress bar on stderr.
fn progress(label: &str, done: u64, total: u64) {
    let width = 40;
    let filled = (done.min(total) * width).checked_div(total).unwrap_or(width);
    let bar: String = (0..width).map(|i| if i < filled { '#' } else { '.' }).collect();
    let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
    eprint!("\r{label} [{bar}] {percent:>3}% {done}/{total}");
    let _ = std::io::stderr().flush();
}

async fn rebuild(store: Store, read_model: String) -> Result<(), String> {
    let names: Vec<&'static str> = if read_model == "all" {
        READ_MODELS.to_vec()
    } else {
        vec![read_model_name(&read_model)
            .ok_or_else(|| format!("no read model {read_model:?}; they are {} (or all)", READ_MODELS.join(", ")))?]
    };
    let _lease = store.acquire_writer_lease().await.map_err(store_error)?;
    let db = Db::open(store.url(), 4).await.map_err(store_error)?;
    let started = std::time::Instant::now();
    let mut projector =
        Projector::open(store.clone(), db, Arc::new(Metrics::default())).await.map_err(|e| e.to_string())?;
    let head = store.head().await.map_err(store_error)?.last_position;
    projector.catch_up(head).await.map_err(|e| e.to_string())?;
    projector.start_rebuild(&names).await.map_err(store_error)?;
    let total = projector.state().position;
    let rebuild_started = std::time::Instant::now();
    loop {
        let done = projector.step_rebuild(50_000).await.map_err(|e| e.to_string())?;
        let reached = projector.state().rebuilding.values().map(|(_, p)| *p).min().unwrap_or(total);
        progress("rebuild", if done { total } else { reached }, total);
        if done {
            break;
        }
    }
    eprintln!();
    let seconds = rebuild_started.elapsed().as_secs_f64();
    say!(
        "rebuilt {} from {total} events in {seconds:.2} s ({:.0} events/s; {:.2} s in all with start-up)",
        names.join(", "),
        total as f64 / seconds.max(1e-9),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn export(
    store: Store,
    out: Option<PathBuf>,
    from: u64,
    to: Option<u64>,
    stream: Option<String>,
    correlation_id: Option<uuid::Uuid>,
) -> Result<(), String> {
    let events = if let Some(stream) = stream {
        let (kind, id) = stream.split_once('/').ok_or("--stream is Type/id, e.g. Market/BTCUSDT")?;
        let aggregate_type = perpetua_core::event::AggregateType::parse(kind)
            .ok_or_else(|| format!("{kind:?} is not Order, Account, Position or Market"))?;
        let aggregate_id = id.parse().map_err(|_| format!("{id:?} is not a stream id"))?;
        let stream = perpetua_core::event::StreamId { aggregate_type, aggregate_id };
        store.read_stream(stream, StreamRange::default()).await.map_err(store_error)?
    } else if let Some(correlation) = correlation_id {
        store.read_by_correlation(correlation).await.map_err(store_error)?
    } else {
        let to = match to {
            Some(to) => to,
            None => store.head().await.map_err(store_error)?.last_position,
        };
        store.read_range(from, to).await.map_err(store_error)?
    };
    let text = perpetua_core::event::to_json_lines(&events);
    match out {
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            say!("export: {} events written to {}", events.len(), path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout.write_all(text.as_bytes()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(format!("cannot write to stdout: {e}"));
                }
            }
        }
    }
    Ok(())
}

async fn snapshot(store: Store) -> Result<(), String> {
    let _lease = store.acquire_writer_lease().await.map_err(store_error)?;
    let (exchange, _) = processor::load_engine(&store).await.map_err(|e| e.to_string())?;
    processor::save_engine_snapshot(&store, &exchange).await.map_err(store_error)?;
    say!("snapshot: engine saved at position {}", exchange.last_position());
    Ok(())
}
