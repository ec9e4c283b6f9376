//! `perpetua`: the exchange's command-line entry point.
//!
//! `serve` runs the exchange (HTTP API, command processor, projector, audit viewer) over the
//! event store (SQLite by default, PostgreSQL or MariaDB with `--database-url`); `rebuild`,
//! `verify`, `export`, `import` and `snapshot` operate on the store; `demo` and `replay` work
//! on exported files.

use clap::{Args, Parser, Subcommand};
use perpetua_core::event::{parse_export, Export, StoredEvent};
use perpetua_core::projection::ReadModels;
use perpetua_core::{audit, checkpoint};
use perpetua_core::{invariants, EventEnvelope, Exchange};
use perpetua_server::checkpoints::CheckpointOptions;
use perpetua_server::db::Db;
use perpetua_server::http::{Cors, Serving, Viewer};
use perpetua_server::listener::ConnectionLimits;
use perpetua_server::logging::LogFormat;
use perpetua_server::metrics::Metrics;
use perpetua_server::processor::{self, ProcessorOptions};
use perpetua_server::projector::{read_model_name, Projector, READ_MODELS};
use perpetua_server::relay::RelayOptions;
use perpetua_server::server::{self, ServeOptions};
use perpetua_server::store::{Appended, CommandAppend, Store, StoreOptions, StreamRange};
use std::collections::BTreeMap;
use std::io::Write;
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
    /// How log lines are written to stderr: `text` for people, `json` (one object per line)
    /// for a log collector. Levels come from `RUST_LOG` (default `info`; for example
    /// `RUST_LOG=perpetua=debug,sqlx=warn`).
    #[arg(long, global = true, env = "PERPETUA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
        /// Address to listen on, `host:port`: a host name or an address (`localhost:8080`,
        /// `0.0.0.0:8080`, `[::]:8080`); port 0 picks a free port (the address is printed).
        #[arg(long, env = "PERPETUA_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Fill an empty store with the demo story (traders, orders, fills, a liquidation, …)
        /// and print a token for each demo user.
        #[arg(long)]
        demo: bool,
        /// Serve the audit viewer from this directory (a build of `web/`) instead of the
        /// one built into the binary.
        #[arg(long, env = "PERPETUA_WEB_DIR")]
        web_dir: Option<PathBuf>,
        /// An origin browser clients may call the API from (`https://desk.example.com`), or
        /// `*` for any; repeat it, or give a comma-separated list. None by default.
        #[arg(long, env = "PERPETUA_CORS_ORIGINS", value_delimiter = ',')]
        cors_origin: Vec<String>,
        /// Seconds the server takes at most to stop after SIGTERM or SIGINT: live streams
        /// end at once with a last message, requests in progress and queued commands finish
        /// within it, and then the process exits whatever its clients do.
        #[arg(long, env = "PERPETUA_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
        drain_timeout_secs: u64,
        /// Requests per second each token may make (bursts of twice that); beyond it, 429
        /// RATE_LIMITED with Retry-After. 0 turns the limit off.
        #[arg(long, env = "PERPETUA_RATE_LIMIT_PER_TOKEN", default_value_t = 1_000)]
        rate_limit_per_token: u32,
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
        /// Run as a hot standby: wait for the writer lease instead of refusing to start while
        /// another server holds it. Until then it answers 503 STANDBY (and /readyz 503); when
        /// the active server dies or loses its database session, it takes the lease over,
        /// loads the engine from snapshot and tail, and serves (docs/SCALING.md).
        #[arg(long, env = "PERPETUA_STANDBY", value_parser = clap::builder::BoolishValueParser::new())]
        standby: bool,
        /// `all` (writer, projector and queries: the default), or one part: `writer` (the
        /// processor, the command routes and the log's live streams; holds the writer lease),
        /// `projector` (tails the log and writes the read models; holds the projector lease;
        /// serves the market streams and rebuilds) or `query` (the query and audit routes,
        /// any number of them; `minPosition` waits for the projector). A route of another
        /// role answers 421 WRONG_ROLE naming it (docs/SCALING.md).
        #[arg(long, env = "PERPETUA_ROLE", default_value = "all", value_parser = ["all", "writer", "projector", "query"])]
        role: String,
        /// A projector (`--role projector`) reads the log from this NATS server's JetStream
        /// stream, which `perpetua relay` keeps, instead of from the store; its read models
        /// go to --database-url, which then need not be the log's database.
        #[arg(long, env = "PERPETUA_PROJECTOR_NATS_URL")]
        nats_url: Option<String>,
        /// The read models' database, when it is not the log's (roles writer, projector and
        /// query; PostgreSQL or MariaDB): a projector writes them there, writers and query
        /// servers read them there; users and the log stay in --database-url.
        #[arg(long, env = "PERPETUA_READ_MODELS_URL")]
        read_models_url: Option<String>,
        /// The writer's checkpoint signing key: a file holding an Ed25519 secret seed as 64 hex
        /// digits, made (mode 0600) when missing. Default on SQLite: `<file>-signing.key`
        /// beside the database; elsewhere a key made for this process only (docs/AUDIT.md §10).
        #[arg(long, env = "PERPETUA_SIGNING_KEY")]
        signing_key: Option<PathBuf>,
        /// How often the writer signs the log's head while it moves, in milliseconds (0: only
        /// when asked, by `POST /v1/audit/checkpoints` or an export).
        #[arg(long, env = "PERPETUA_CHECKPOINT_EVERY_MS", default_value_t = 1000)]
        checkpoint_every_ms: u64,
        /// The relay's stream, with --nats-url.
        #[arg(long, env = "PERPETUA_NATS_STREAM", default_value = "PERPETUA_EVENTS")]
        nats_stream: String,
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
    /// Print the API's description (OpenAPI 3.1, as `/openapi.json` serves it), for client
    /// generators, without a server.
    Openapi {
        /// The route table in Markdown instead (the README's API section).
        #[arg(long)]
        markdown: bool,
        /// Every route with its parameters and error codes in Markdown (docs/API.md).
        #[arg(long, conflicts_with = "markdown")]
        markdown_detail: bool,
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
        /// A public key (64 hex digits) the file's checkpoint must be signed by; repeat for
        /// several (a rotation). With it, a file without a checkpoint fails.
        #[arg(long = "public-key")]
        public_keys: Vec<String>,
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
    /// Publish the committed log, in position order, to a NATS JetStream stream (a subject per
    /// aggregate type; the stored bytes with their hashes; the event id as `Nats-Msg-Id`),
    /// resuming after the stream's last message; runs until SIGTERM or SIGINT. With
    /// `--check`, read the stream back instead, as a consumer would, and check it.
    Relay {
        /// The NATS server.
        #[arg(long, env = "PERPETUA_NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The JetStream stream (created if missing, with file storage).
        #[arg(long, env = "PERPETUA_NATS_STREAM", default_value = "PERPETUA_EVENTS")]
        stream: String,
        /// Subjects are `<prefix>.<aggregateType>`.
        #[arg(long, default_value = "perpetua.events")]
        subject_prefix: String,
        /// Check the stream instead of publishing: every position from 1 once and in order,
        /// the chain verified, its last event the store's at that position.
        #[arg(long)]
        check: bool,
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
    let cli = Cli::parse();
    perpetua_server::logging::init(cli.log_format);
    let result = match cli.command {
        Cmd::Serve {
            listen,
            demo,
            web_dir,
            cors_origin,
            drain_timeout_secs,
            rate_limit_per_token,
            snapshot_every,
            max_connections,
            header_timeout_secs,
            standby,
            role,
            nats_url,
            nats_stream,
            read_models_url,
            signing_key,
            checkpoint_every_ms,
            database,
        } => with_store(&database, |store| {
            let options = ServeOptions {
                listen,
                demo,
                viewer: web_dir.map_or(Viewer::Embedded, Viewer::Directory),
                cors: Cors { origins: cors_origin.into_iter().map(|o| o.trim().to_owned()).collect() },
                rate_limit_per_token,
                processor: ProcessorOptions { engine_snapshot_every: snapshot_every.max(1) },
                limits: ConnectionLimits {
                    max_connections: max_connections.max(1),
                    header_timeout: std::time::Duration::from_secs(header_timeout_secs.max(1)),
                    drain_timeout: std::time::Duration::from_secs(drain_timeout_secs.max(1)),
                },
                admin_token: std::env::var("PERPETUA_ADMIN_TOKEN").ok().map(|t| t.trim().to_owned()),
                standby,
                serving: match role.as_str() {
                    "writer" => Serving::Writer,
                    "projector" => Serving::Projector,
                    "query" => Serving::Query,
                    _ => Serving::All,
                },
                nats: nats_url.map(|nats_url| RelayOptions {
                    nats_url,
                    stream: nats_stream,
                    ..RelayOptions::default()
                }),
                read_models_url,
                checkpoints: CheckpointOptions {
                    key_file: signing_key
                        .or_else(|| perpetua_server::checkpoints::default_key_file(&database.database_url)),
                    every: (checkpoint_every_ms > 0).then(|| std::time::Duration::from_millis(checkpoint_every_ms)),
                },
            };
            server::serve(store, options)
        }),
        Cmd::Rebuild { read_model, database } => with_store(&database, |store| rebuild(store, read_model)),
        Cmd::Export { out, from, to, stream, correlation_id, database } => {
            with_store(&database, |store| export(store, out, from, to, stream, correlation_id))
        }
        Cmd::Snapshot { database } => with_store(&database, snapshot),
        Cmd::Relay { nats_url, stream, subject_prefix, check, database } => {
            let options = RelayOptions { nats_url, stream, subject_prefix, ..RelayOptions::default() };
            if check {
                with_store(&database, |store| check_relayed(store, options))
            } else {
                with_store(&database, |store| relay(store, options))
            }
        }
        Cmd::Demo { out } => demo(&out),
        Cmd::Openapi { markdown, markdown_detail } => {
            if markdown || markdown_detail {
                print!("{}", perpetua_server::http::openapi_markdown(markdown_detail));
            } else {
                println!("{}", serde_json::to_string_pretty(perpetua_server::http::openapi_document()).expect("JSON"));
            }
            Ok(())
        }
        Cmd::Verify { file: Some(file), public_keys, .. } => {
            read_export(&file).and_then(|export| verify_export(&export, &public_keys))
        }
        Cmd::Verify { file: None, from, to, database, .. } => {
            with_store(&database, |store| verify_store(store, from, to))
        }
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
    read_export(file).map(|export| export.events)
}

fn read_export(file: &PathBuf) -> Result<Export, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    parse_export(&text).map_err(|e| format!("{}: {e} ({})", file.display(), e.code()))
}

/// Verifies an export's chain, then its events against the last checkpoint it carries: the
/// signature (by one of `public_keys` when given), and that the file holds the log the
/// checkpoint states (not cut short of it, not rewritten under it).
fn verify_export(export: &Export, public_keys: &[String]) -> Result<(), String> {
    verify(&export.events)?;
    let trusted = public_keys
        .iter()
        .map(|key| {
            checkpoint::parse_public_key(key).ok_or_else(|| format!("--public-key {key:?} is not 64 hex digits"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(signed) = export.checkpoints.last() else {
        if !trusted.is_empty() {
            return Err("the file carries no signed checkpoint: that it is the whole log is not proven".into());
        }
        say!("no signed checkpoint in the file: that it is not cut short is not proven");
        return Ok(());
    };
    let head = &signed.head;
    checkpoint::verify(signed, (!trusted.is_empty()).then_some(trusted.as_slice())).map_err(|e| {
        format!("the checkpoint of {} events (key {}) does not verify: {e}", head.tree_size, signed.key_id)
    })?;
    let by = if trusted.is_empty() { "not checked against a trusted key (give --public-key)" } else { "a trusted key" };
    match checkpoint::coverage(&export.events, signed) {
        checkpoint::Coverage::Covered { tree_size, after } => {
            say!(
                "checkpoint: the file's first {tree_size} events are the log signed at {} by key {} ({by}); root {}{}",
                head.timestamp,
                signed.key_id,
                head.root_hash,
                if after > 0 { format!("; {after} events after them are under no checkpoint") } else { String::new() }
            );
            Ok(())
        }
        checkpoint::Coverage::Truncated { tree_size, last_position } => Err(format!(
            "truncated: the checkpoint signed at {} covers {tree_size} events, the file ends at position {last_position}",
            head.timestamp
        )),
        checkpoint::Coverage::ChainHashMismatch { tree_size, expected, actual } => Err(format!(
            "not the log the checkpoint states: the event at {tree_size} has hash {actual}, the checkpoint {expected}"
        )),
        checkpoint::Coverage::RootMismatch { tree_size, expected, actual } => Err(format!(
            "not the log the checkpoint states: the Merkle root over {tree_size} events is {actual}, the checkpoint's {expected}"
        )),
        checkpoint::Coverage::NotWholeLog => {
            say!(
                "checkpoint of {} events signed by key {} ({by}); the file is not the whole log from position 1, so it \
                 is not checked against it",
                head.tree_size,
                signed.key_id
            );
            Ok(())
        }
    }
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
    let report = audit::verify_range(events);
    let bad = report.first_bad_position.and_then(|p| events.iter().find(|e| e.position == p));
    // A file that does not start at position 1 is checked as a range: its first prevHash is
    // taken on trust, and nothing before it is proven (said, so a cut-off start is not missed).
    let what = match events.first() {
        Some(first) if first.position > 1 => format!(
            "events from position {} (a range: its first prevHash {} is not checked)",
            first.position, first.prev_hash
        ),
        _ => "events".to_owned(),
    };
    report_chain(&report, bad, &what)
}

/// An id shortened for a person: its first and last four characters (`6163…0002`).
fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().filter(|c| *c != '-').collect();
    if chars.len() <= 10 {
        return chars.into_iter().collect();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// What a chain fault means, in words.
fn fault_words(fault: &audit::ChainFault) -> String {
    match fault {
        audit::ChainFault::PositionGap { expected } => format!("position {expected} is missing"),
        audit::ChainFault::PrevHashMismatch => "its prevHash is not the previous event's hash".to_owned(),
        audit::ChainFault::HashMismatch => "the hash does not match its bytes".to_owned(),
        audit::ChainFault::HeadMismatch => "the chain does not end at the head the store recorded".to_owned(),
    }
}

/// Prints a verified chain, or turns a broken one into the error that names its position,
/// what is wrong there and (when known) the event's stream and version.
fn report_chain(report: &audit::VerifyReport, bad: Option<&StoredEvent>, what: &str) -> Result<(), String> {
    match (report.first_bad_position, &report.fault) {
        (Some(position), Some(fault)) => {
            let event = bad.map_or(String::new(), |e| {
                format!(
                    " ({} {}, version {})",
                    e.aggregate_type.as_str(),
                    short_id(&e.aggregate_id.to_string()),
                    e.version
                )
            });
            Err(format!(
                "chain broken at position {position}: {}{event}; {} events verified before it",
                fault_words(fault),
                report.verified
            ))
        }
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
    let first = from.max(1);
    let bar = progress_bar("verify", (last + 1).saturating_sub(first));
    let mut verified = 0;
    let mut start = first;
    let mut report = loop {
        let end = if start + CHUNK <= last { Some(start + CHUNK - 1) } else { to };
        let report = store.verify(start, end).await.map_err(store_error)?;
        if !report.is_ok() || end.is_none_or(|end| end >= last) {
            break report;
        }
        verified += report.verified;
        start += CHUNK;
        bar.set_position(start - first);
    };
    bar.finish_and_clear();
    report.verified += verified;
    // The bad event itself, to name its stream; there is none to read at a missing position
    // (a gap), and failing to read it must not hide the report.
    let bad = match report.first_bad_position {
        Some(position) => store
            .read_all(position, 1)
            .await
            .ok()
            .and_then(|events| events.into_iter().next())
            .filter(|event| event.position == position),
        None => None,
    };
    let result = report_chain(&report, bad.as_ref(), "events in the store");
    if result.is_ok() {
        say!(
            "verify: {} events in {:.2} s ({})",
            report.verified,
            bar.elapsed().as_secs_f64(),
            rate(report.verified, bar.elapsed())
        );
    }
    result
}

/// A progress bar on stderr with rate and ETA (drawn only on a terminal).
fn progress_bar(label: &'static str, total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:40}] {percent:>3}% {human_pos}/{human_len} events, {per_sec}, ETA {eta}",
    )
    .expect("a valid template")
    .progress_chars("#>.");
    bar.set_style(style);
    bar.set_prefix(label);
    bar
}

/// Events per second, in words.
fn rate(events: u64, elapsed: std::time::Duration) -> String {
    format!("{:.0} events/s", events as f64 / elapsed.as_secs_f64().max(1e-9))
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
    let total: usize = commands.iter().map(|c| c.events.len()).sum();
    let bar = progress_bar("import", total as u64);
    let mut imported = 0;
    for group in commands.chunks(100) {
        match store.append(group).await.map_err(store_error)? {
            Appended::Committed { .. } => imported += group.iter().map(|c| c.events.len()).sum::<usize>(),
            Appended::Replayed { .. } => unreachable!("imported commands carry no idempotency key"),
        }
        bar.set_position(imported as u64);
    }
    bar.finish_and_clear();
    let head = store.head().await.map_err(store_error)?;
    say!(
        "import: {imported} events appended ({} store) in {:.2} s ({}), head at position {} {}",
        store.backend().name(),
        bar.elapsed().as_secs_f64(),
        rate(imported as u64, bar.elapsed()),
        head.last_position,
        head.last_hash
    );
    Ok(())
}

fn store_error(e: perpetua_server::store::StoreError) -> String {
    format!("{e} ({})", e.code())
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
    // And the projector's: no projector process writes the read models meanwhile.
    let projector_lease = perpetua_server::projector::take_lease(&store, &db).await.map_err(store_error)?;
    let started = std::time::Instant::now();
    let source = perpetua_server::feed::Source::Store(store.clone());
    let mut projector = Projector::open(source, db, Arc::new(Metrics::default()), Some(&projector_lease))
        .await
        .map_err(|e| e.to_string())?;
    let head = store.head().await.map_err(store_error)?.last_position;
    projector.catch_up(head).await.map_err(|e| e.to_string())?;
    projector.start_rebuild(&names).await.map_err(store_error)?;
    let total = projector.state().position;
    let rebuild_started = std::time::Instant::now();
    let bar = progress_bar("rebuild", total);
    loop {
        let done = projector.step_rebuild(50_000).await.map_err(|e| e.to_string())?;
        let reached = projector.state().rebuilding.values().map(|(_, p)| *p).min().unwrap_or(total);
        bar.set_position(if done { total } else { reached });
        if done {
            break;
        }
    }
    bar.finish_and_clear();
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
    let started = std::time::Instant::now();
    // A file is written beside its name and renamed into place once complete, so a failure
    // half-way leaves no partial export under the name asked for.
    let partial = out.as_ref().map(|path| partial_path(path));
    let mut writer: Box<dyn Write> = match &partial {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = export_into(&store, &mut *writer, &out, (from, to), stream, correlation_id).await;
    let written = written.and_then(|written| writer.flush().map(|()| written).map_err(|e| write_error(&e, &out)));
    drop(writer);
    let (Some(path), Some(partial)) = (&out, &partial) else { return written.map(|_| ()) };
    let written = match written {
        Ok(written) => written,
        Err(e) => {
            let _ = std::fs::remove_file(partial);
            return Err(e);
        }
    };
    std::fs::rename(partial, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    say!(
        "export: {written} events written to {} in {:.2} s ({})",
        path.display(),
        started.elapsed().as_secs_f64(),
        rate(written, started.elapsed())
    );
    Ok(())
}

/// `<file>.partial`, beside `path`.
fn partial_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsString::from).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// Writes the export's events; returns how many.
async fn export_into(
    store: &Store,
    writer: &mut dyn Write,
    out: &Option<PathBuf>,
    (from, to): (u64, Option<u64>),
    stream: Option<String>,
    correlation_id: Option<uuid::Uuid>,
) -> Result<u64, String> {
    let written = if let Some(stream) = stream {
        let (kind, id) = stream.split_once('/').ok_or("--stream is Type/id, e.g. Market/BTCUSDT")?;
        let aggregate_type = perpetua_core::event::AggregateType::parse(kind)
            .ok_or_else(|| format!("{kind:?} is not Order, Account, Position or Market"))?;
        let aggregate_id = id.parse().map_err(|_| format!("{id:?} is not a stream id"))?;
        let stream = perpetua_core::event::StreamId { aggregate_type, aggregate_id };
        let events = store.read_stream(stream, StreamRange::default()).await.map_err(store_error)?;
        write_lines(writer, &events, out)?
    } else if let Some(correlation) = correlation_id {
        let events = store.read_by_correlation(correlation).await.map_err(store_error)?;
        write_lines(writer, &events, out)?
    } else {
        // A range is read and written a page at a time: memory stays bounded whatever the
        // log's size.
        const PAGE: u32 = 10_000;
        let to = match to {
            Some(to) => to,
            None => store.head().await.map_err(store_error)?.last_position,
        };
        let first = from.max(1);
        let bar = progress_bar("export", to.saturating_add(1).saturating_sub(first));
        let mut next = first;
        let mut written = 0;
        while next <= to {
            let limit = PAGE.min(u32::try_from(to - next + 1).unwrap_or(PAGE));
            let page = store.read_all(next, limit).await.map_err(store_error)?;
            let Some(last) = page.last() else { break };
            next = last.position + 1;
            written += write_lines(writer, &page, out)?;
            bar.set_position(next - first);
        }
        bar.finish_and_clear();
        // The newest checkpoint the range reaches, so a cut-off tail is caught.
        if let Some(signed) = store.latest_signed_checkpoint(to).await.map_err(store_error)? {
            let line = checkpoint::export_line(&signed);
            writer
                .write_all(line.as_bytes())
                .and_then(|()| writer.write_all(b"\n"))
                .map_err(|e| write_error(&e, out))?;
        }
        written
    };
    Ok(written)
}

/// Writes events as JSON Lines; returns how many. A reader that went away (`| head`) ends
/// the program quietly.
fn write_lines(writer: &mut dyn Write, events: &[StoredEvent], out: &Option<PathBuf>) -> Result<u64, String> {
    for event in events {
        let line = serde_json::to_string(event).expect("stored events serialize");
        writer.write_all(line.as_bytes()).and_then(|()| writer.write_all(b"\n")).map_err(|e| write_error(&e, out))?;
    }
    Ok(events.len() as u64)
}

fn write_error(e: &std::io::Error, out: &Option<PathBuf>) -> String {
    if out.is_none() && e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    match out {
        Some(path) => format!("cannot write {}: {e}", path.display()),
        None => format!("cannot write to stdout: {e}"),
    }
}

async fn snapshot(store: Store) -> Result<(), String> {
    let _lease = store.acquire_writer_lease().await.map_err(store_error)?;
    let started = std::time::Instant::now();
    let spinner = indicatif::ProgressBar::new_spinner().with_message("snapshot: loading the engine from the log");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let (exchange, _) = processor::load_engine(&store).await.map_err(|e| e.to_string())?;
    spinner.set_message("snapshot: saving");
    processor::save_engine_snapshot(&store, &exchange).await.map_err(store_error)?;
    spinner.finish_and_clear();
    say!("snapshot: engine saved at position {} in {:.2} s", exchange.last_position(), started.elapsed().as_secs_f64());
    Ok(())
}

async fn relay(store: Store, options: RelayOptions) -> Result<(), String> {
    let started = std::time::Instant::now();
    let stop = async {
        let signal = server::interrupted().await;
        tracing::info!(signal, "relay: stopping");
    };
    let summary = perpetua_server::relay::run(store, options, stop).await?;
    let mut lags = summary.lags_ms.clone();
    lags.sort_unstable();
    let at = |q: f64| lags.get(((lags.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "perpetua relay: {} events published in {seconds:.1} s ({:.0}/s), the stream at position {}; {} resyncs, {} duplicates; \
         lag from commit to acknowledgement per page: p50 {} ms, p99 {} ms, max {} ms ({} pages)",
        summary.published,
        summary.published as f64 / seconds.max(1e-9),
        summary.last_position,
        summary.resyncs,
        summary.duplicates,
        at(0.50),
        at(0.99),
        lags.last().copied().unwrap_or(0),
        lags.len()
    );
    Ok(())
}

async fn check_relayed(store: Store, options: RelayOptions) -> Result<(), String> {
    let check = perpetua_server::relay::check_stream(&options).await?;
    if !check.report.is_ok() {
        return Err(format!(
            "stream {}: the chain breaks at position {:?} ({:?})",
            options.stream, check.report.first_bad_position, check.report.fault
        ));
    }
    if check.messages > 0 {
        let stored = store.read_all(check.messages, 1).await.map_err(store_error)?;
        let same = stored.first().is_some_and(|e| e.hash == check.report.last_hash);
        if !same {
            return Err(format!(
                "stream {}: its last event (position {}) is not the store's",
                options.stream, check.messages
            ));
        }
    }
    let head = store.head().await.map_err(store_error)?.last_position;
    println!(
        "perpetua relay --check: stream {}: positions 1 to {} each once and in order, chain verified, \
         last hash {} (the store's); the store's head is {head} ({} behind); read in {:.1} s",
        options.stream,
        check.messages,
        check.report.last_hash,
        head.saturating_sub(check.messages),
        check.took.as_secs_f64()
    );
    Ok(())
}
