//! `perpetua`: the exchange's command-line entry point.
//!
//! What exists today works on exported logs (JSON Lines): `demo` runs the demo story through
//! the engine and writes its sealed log, `verify` checks a log's hash chain, `replay` folds a
//! log (or a prefix of it) and prints the read models. The HTTP server, the SQL event store
//! and the projector are not built yet; `serve` arrives with them.

use clap::{Parser, Subcommand};
use perpetua_core::audit;
use perpetua_core::event::{parse_stored_events, StoredEvent};
use perpetua_core::projection::ReadModels;
use perpetua_core::{invariants, EventEnvelope, Exchange};
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

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo story through the engine, seal its hash chain and write it as JSON Lines;
    /// then read the file back, verify it and replay it, as an auditor would.
    Demo {
        /// Where to write the log.
        #[arg(long, default_value = "perpetua-demo.jsonl")]
        out: PathBuf,
    },
    /// Verify the hash chain of an exported log (JSON Lines or a JSON array).
    Verify {
        /// The exported log.
        file: PathBuf,
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
        Cmd::Verify { file } => read_log(&file).and_then(|events| verify(&events)),
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
    let report = audit::verify_range(events);
    match (report.first_bad_position, &report.fault) {
        (Some(position), Some(fault)) => Err(format!(
            "chain broken at position {position}: {fault:?} ({} events verified before it)",
            report.verified
        )),
        _ => {
            say!("verified: {} events, chain head {}", report.verified, report.last_hash);
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
