//! `perpetua-load`: a load generator for a running `perpetua serve`, over HTTP.
//!
//! - Closed loop (the default): N clients, each sending its next request when the previous
//!   one is answered, for a fixed time. Reports commands/s and latency percentiles.
//! - Open loop (`--rate`): commands on a fixed schedule whatever the answers; latency from
//!   each request's intended send time.
//! - Sweep (`--sweep`): the highest open-loop rate held within a p99 target, then the latency
//!   at 25, 50 and 75% of it.
//!
//! The workload is either orders (place limit orders around a mid price, about half of which
//! trade, and cancel resting ones; `--mix realistic` adds idempotency keys and batch requests)
//! or deposits (the admin credits accounts). Every run also reports the server's projection
//! lag from its `/metrics` (before/after difference), when the server has them, and ends
//! with a `RESULT <json>` line.
//!
//! With `--stream-clients N`, N live streams are held open beside the load (a market's, or
//! the whole log's) and the run also reports their fan-out: clients held, messages per
//! second, and the delay from a command's answer to its message (a `STREAMS <json>` line).

mod closed;
mod fanout;
mod lag;
mod open;
mod recorder;
mod report;
mod sweep;
mod workload;

use clap::Parser;
use recorder::Recorder;
use report::{Labels, Loop, Run};
use reqwest::Client;
use std::sync::Arc;
use std::time::Duration;
use workload::{Kind, Mix, Workload};

/// A request unanswered after this is an error (this bounds the wait for an open-loop run's last answers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(name = "perpetua-load", about = "Load generator for a running perpetua server")]
struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin token (creates the traders, and funds or credits them).
    #[arg(long, env = "PERPETUA_ADMIN_TOKEN")]
    token: String,
    /// Concurrent clients (closed loop).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Traders the requests share (in the deposits workload: the accounts credited).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    traders: u32,
    /// How long each run is measured, after its warm-up.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Load before each measured window, not measured.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Market to trade.
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Kind::Orders)]
    workload: Kind,
    /// The orders workload's mix [default: simple in closed loop, realistic in open loop].
    #[arg(long, value_enum)]
    mix: Option<Mix>,
    /// Realistic mix: share of the requests sent to `POST /v1/orders/batch`.
    #[arg(long, default_value_t = 0.1)]
    batch_share: f64,
    /// Realistic mix: orders in one batch request (each one a command).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    batch_size: u32,
    /// Open loop at this many commands per second.
    #[arg(long, conflicts_with = "sweep")]
    rate: Option<f64>,
    /// Open loop: most requests in flight at once. A request held back by the cap is still
    /// timed from its intended send time.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: u32,
    /// Open loop: find the highest rate held (p99 within the target, ≥ 95% of the rate asked
    /// answered), then profile the latency at 25, 50 and 75% of it.
    #[arg(long)]
    sweep: bool,
    /// Sweep: the first rate tried, commands per second.
    #[arg(long, default_value_t = 1000.0)]
    sweep_start: f64,
    /// Sweep: halvings of the interval between the last rate held and the first failed.
    #[arg(long, default_value_t = 3)]
    sweep_bisections: u32,
    /// Sweep: the p99 latency a rate must stay within to hold, in milliseconds.
    #[arg(long, default_value_t = 20.0)]
    p99_target_ms: f64,
    /// Live streams held open during the run (closed or open loop), to measure their fan-out.
    #[arg(long, default_value_t = 0)]
    stream_clients: u32,
    /// Which stream they hold.
    #[arg(long, value_enum, default_value_t = fanout::StreamKind::Market)]
    stream: fanout::StreamKind,
    /// Another server (a query server, `serve --role query`) on which each command answered
    /// while measuring is read back at once: `GET /v1/accounts/{id}?minPosition=<its
    /// position>`. The wait is reported apart (read-your-writes across processes); a
    /// client's next command waits for its read, so the command rate is lower with it.
    #[arg(long)]
    read_url: Option<String>,
}

/// How the load is driven, as the arguments mean it.
enum Mode {
    Closed { clients: usize },
    Open { rate_per_s: f64 },
    Sweep { rate_start_per_s: f64 },
}

/// A run's measured requests and the length of its measured window.
pub struct Measured {
    pub recorder: Recorder,
    pub elapsed: Duration,
}

impl Args {
    /// The mode, or why the arguments have none.
    fn mode(&self) -> Result<Mode, String> {
        let positive = |x: f64, what: &str| {
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(format!("{what} must be a positive number of commands per second"))
            }
        };
        if !(0.0..=1.0).contains(&self.batch_share) {
            return Err("--batch-share must be within 0 and 1".to_owned());
        }
        if self.seconds == 0 {
            return Err("--seconds must be at least 1".to_owned());
        }
        Ok(match (self.rate, self.sweep) {
            (Some(rate), _) => Mode::Open { rate_per_s: positive(rate, "--rate")? },
            (None, true) => Mode::Sweep { rate_start_per_s: positive(self.sweep_start, "--sweep-start")? },
            (None, false) => Mode::Closed { clients: self.clients as usize },
        })
    }

    fn stream_name(&self) -> &'static str {
        match self.stream {
            fanout::StreamKind::Market => "market",
            fanout::StreamKind::Log => "log",
        }
    }

    /// The mix: as asked, or simple in closed loop and realistic in open loop.
    fn mix(&self, mode: &Mode) -> Mix {
        self.mix.unwrap_or(match mode {
            Mode::Closed { .. } => Mix::Simple,
            Mode::Open { .. } | Mode::Sweep { .. } => Mix::Realistic,
        })
    }

    /// The open loop's schedule at `rate_per_s`.
    fn schedule(&self, rate_per_s: f64) -> open::Schedule {
        open::Schedule {
            rate_per_s,
            max_in_flight: self.max_in_flight,
            warmup: Duration::from_secs(self.warmup_seconds),
            window: Duration::from_secs(self.seconds),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let mode = args.mode()?;
    let mix = args.mix(&mode);
    // Thousands of requests in flight need as many sockets (as the server does, see listener.rs).
    rlimit::increase_nofile_limit(u64::MAX).map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    let pool = match mode {
        Mode::Closed { clients } => clients,
        Mode::Open { .. } | Mode::Sweep { .. } => args.max_in_flight as usize,
    };
    let client =
        Client::builder().pool_max_idle_per_host(pool).timeout(REQUEST_TIMEOUT).build().map_err(|e| e.to_string())?;
    let settings = workload::Settings {
        url: args.url.clone(),
        admin_token: args.token.clone(),
        symbol: args.symbol.clone(),
        traders: args.traders as usize,
        kind: args.workload,
        mix,
        batch_share: args.batch_share,
        batch_size: args.batch_size as usize,
        read_url: args.read_url.clone(),
    };
    let workload = Arc::new(Workload::setup(client.clone(), settings).await?);
    let probe = lag::Probe { client, url: args.url.clone(), token: args.token.clone() };
    let labels = Labels { workload: args.workload.name(), mix: (args.workload == Kind::Orders).then(|| mix.name()) };
    let warmup = Duration::from_secs(args.warmup_seconds);
    let streams = match args.stream_clients {
        0 => None,
        n => Some(fanout::Fanout::open(&args.url, &args.token, &args.symbol, args.stream, n as usize).await?),
    };
    // The measured window starts after the warm-up (the loops measure from then on).
    let (answers, window_start) = (workload.clone(), std::time::Instant::now() + warmup);
    let measure = {
        let workload = workload.clone();
        async move {
            tokio::time::sleep(warmup).await;
            workload.answers.measure(true);
        }
    };
    tokio::spawn(measure);
    let (driven, (measured, lag)) = match mode {
        Mode::Closed { clients } => {
            let run = closed::run(workload, clients, warmup, Duration::from_secs(args.seconds));
            (Loop::Closed { clients }, probe.around(warmup, run).await)
        }
        Mode::Open { rate_per_s } => {
            let run = open::run(workload, args.schedule(rate_per_s));
            (Loop::Open { rate_asked_per_s: rate_per_s }, probe.around(warmup, run).await)
        }
        Mode::Sweep { rate_start_per_s } => {
            let settings = sweep::Settings {
                rate_start_per_s,
                latency_ms_p99_target: args.p99_target_ms,
                bisections: args.sweep_bisections,
                schedule: args.schedule(rate_start_per_s),
            };
            sweep::run(&workload, &probe, labels, &settings).await;
            return Ok(());
        }
    };
    answers.answers.measure(false);
    if let Some(read_url) = &args.read_url {
        answers.reads.print(read_url);
    }
    if let Some(streams) = streams {
        let report = streams.close(&answers.answers, window_start, measured.elapsed).await;
        println!(
            "{} {} streams, {} held, {} dropped: {} messages, {:.0} messages/s; delay from the command's answer ms p50 {:.2} p99 {:.2} max {:.2}",
            report.clients, args.stream_name(), report.held, report.dropped, report.messages, report.messages_per_s,
            report.delay_ms_p50, report.delay_ms_p99, report.delay_ms_max
        );
        println!(
            "STREAMS {}",
            serde_json::json!({
                "stream": args.stream_name(), "clients": report.clients, "held": report.held, "dropped": report.dropped,
                "messages": report.messages, "messagesPerSecond": report.messages_per_s,
                "delayMsP50": report.delay_ms_p50, "delayMsP99": report.delay_ms_p99, "delayMsMax": report.delay_ms_max,
            })
        );
    }
    let run = Run {
        driven,
        labels,
        phase: None,
        summary: measured.recorder.summary(),
        seconds: measured.elapsed.as_secs_f64(),
        lag,
    };
    run.print();
    Ok(())
}
