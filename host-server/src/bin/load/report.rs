//! A run's figures as people read them, and as one `RESULT <json>` line for scripts.

use crate::lag::Lag;
use crate::recorder::Summary;
use serde_json::{json, Value};

/// How the load was driven.
#[derive(Clone, Copy)]
pub enum Loop {
    /// A fixed number of clients, each waiting for its answer.
    Closed { clients: usize },
    /// A fixed schedule of commands per second.
    Open { rate_asked_per_s: f64 },
}

/// Which part of a sweep a run belongs to.
#[derive(Clone, Copy)]
pub enum Phase {
    /// Looking for the highest rate held.
    Search,
    /// A share of the rate found.
    Profile,
}

/// What a run sent: the workload's and the mix's names (no mix for deposits).
#[derive(Clone, Copy)]
pub struct Labels {
    pub workload: &'static str,
    pub mix: Option<&'static str>,
}

/// One measured run.
pub struct Run {
    pub driven: Loop,
    pub labels: Labels,
    /// Set in a sweep, with whether the run held its target.
    pub phase: Option<(Phase, bool)>,
    pub summary: Summary,
    /// From the measured window's start to its end (closed loop) or to its last answer (open).
    pub seconds: f64,
    pub lag: Option<Lag>,
}

impl Run {
    /// Commands answered as expected per second.
    pub fn rate_achieved_per_s(&self) -> f64 {
        self.summary.commands as f64 / self.seconds
    }

    /// Prints the lines for people, then the `RESULT` line.
    pub fn print(&self) {
        for line in self.lines() {
            println!("{line}");
        }
        println!("{}", self.result_line());
    }

    /// The lines for people: the figures, then the projection lag if the server reports it.
    fn lines(&self) -> Vec<String> {
        let s = &self.summary;
        let head = match self.driven {
            // The closed loop's line as the benchmark scripts have always printed it.
            Loop::Closed { clients } => format!(
                "{clients} clients, {:.1} s: {} commands, {:.0} commands/s, {} errors; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
                self.seconds, s.commands, self.rate_achieved_per_s(), s.errors, s.latency_ms_p50, s.latency_ms_p90,
                s.latency_ms_p99, s.latency_ms_max
            ),
            Loop::Open { rate_asked_per_s } => format!(
                "open loop {rate_asked_per_s:.0}/s asked, {:.1} s: {} commands in {} requests, {:.0} commands/s, {} errors; latency ms from the intended send p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
                self.seconds, s.commands, s.requests, self.rate_achieved_per_s(), s.errors, s.latency_ms_p50,
                s.latency_ms_p99, s.latency_ms_p999, s.latency_ms_max
            ),
        };
        let lag = self.lag.as_ref().map(|lag| {
            format!(
                "projection lag (commit → read model committed), {} projector commits: p50 ≤ {} s, p99 ≤ {} s (bucket bounds)",
                lag.commits, lag.seconds_p50, lag.seconds_p99
            )
        });
        std::iter::once(head).chain(lag).collect()
    }

    /// `RESULT ` and the run as one JSON object (absent figures are null; so is a lag
    /// beyond the histogram's last finite bucket).
    fn result_line(&self) -> String {
        let s = &self.summary;
        let (driven, clients) = match self.driven {
            Loop::Closed { clients } => ("closed", Some(clients)),
            Loop::Open { .. } => ("open", None),
        };
        let value: Value = json!({
            "loop": driven, "phase": self.phase_name(), "workload": self.labels.workload, "mix": self.labels.mix,
            "clients": clients, "rate_asked_per_s": self.rate_asked_per_s().map(|rate| round(rate, 1)),
            "rate_achieved_per_s": round(self.rate_achieved_per_s(), 1), "seconds": round(self.seconds, 3),
            "commands": s.commands, "requests": s.requests, "errors": s.errors,
            "latency_ms_p50": s.latency_ms_p50, "latency_ms_p90": s.latency_ms_p90, "latency_ms_p99": s.latency_ms_p99,
            "latency_ms_p999": s.latency_ms_p999, "latency_ms_max": s.latency_ms_max,
            "lag_commits": self.lag.as_ref().map(|lag| lag.commits),
            "lag_seconds_p50": self.lag.as_ref().map(|lag| lag.seconds_p50),
            "lag_seconds_p99": self.lag.as_ref().map(|lag| lag.seconds_p99),
            "held": self.phase.map(|(_, held)| held),
        });
        format!("RESULT {value}")
    }

    /// The rate asked, in the open loop.
    fn rate_asked_per_s(&self) -> Option<f64> {
        match self.driven {
            Loop::Closed { .. } => None,
            Loop::Open { rate_asked_per_s } => Some(rate_asked_per_s),
        }
    }

    /// The sweep phase's name, in a sweep.
    fn phase_name(&self) -> Option<&'static str> {
        self.phase.map(|(phase, _)| match phase {
            Phase::Search => "search",
            Phase::Profile => "profile",
        })
    }
}

/// Prints a sweep's runs as one table.
pub fn print_table(runs: &[Run]) {
    println!(
        "{:<8} {:>9} {:>11} {:>8} {:>8} {:>9} {:>8} {:>7} {:>10} {:>5}",
        "phase", "asked/s", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "lag p99 s", "held"
    );
    for run in runs {
        let s = &run.summary;
        let held = match run.phase {
            Some((_, true)) => "yes",
            Some((_, false)) => "no",
            None => "-",
        };
        println!(
            "{:<8} {:>9.0} {:>11.0} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>7} {:>10} {held:>5}",
            run.phase_name().unwrap_or("-"),
            run.rate_asked_per_s().unwrap_or(f64::NAN),
            run.rate_achieved_per_s(),
            s.latency_ms_p50,
            s.latency_ms_p99,
            s.latency_ms_p999,
            s.latency_ms_max,
            s.errors,
            run.lag.as_ref().map_or("-".to_owned(), |lag| format!("≤ {}", lag.seconds_p99)),
        );
    }
}

/// `x` to `digits` decimals (for a readable JSON line).
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}
