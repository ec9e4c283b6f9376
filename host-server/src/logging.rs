//! Log lines, on stderr: `tracing` events and spans, filtered by `RUST_LOG` (default
//! `info,sqlx=warn`),
//! written for people (`text`) or as one JSON object per line (`json`) for a log collector.
//! stdout stays for what a person or a script reads once: the listening address, tokens, a
//! command's result.

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, its fields at the top level.
    Json,
}

/// Installs the process's subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // sqlx's own info lines (a PostgreSQL notice per `DROP TABLE IF EXISTS`) are noise to an
    // operator; its warnings (slow statements) are not.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
    // A second call (tests start several servers in one process) keeps the first.
    drop(installed);
}
