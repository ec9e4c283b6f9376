//! The measured requests of a run: a latency histogram and the counts.

use crate::workload::Answer;
use hdrhistogram::Histogram;
use std::time::Duration;

/// Longest latency told apart; longer ones count as this (requests time out before it).
const LATENCY_US_MAX: u64 = 600_000_000;

/// Latencies of the expected answers, and counts of commands, requests and errors.
pub struct Recorder {
    latency_us: Histogram<u64>,
    commands: u64,
    requests: u64,
    errors: u64,
}

/// A run's figures, latencies in milliseconds.
pub struct Summary {
    /// Commands answered as expected.
    pub commands: u64,
    /// Requests answered as expected (a batch request is one request, several commands).
    pub requests: u64,
    /// Requests that failed or got an unexpected answer.
    pub errors: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    pub latency_ms_max: f64,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        let latency_us = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds");
        Recorder { latency_us, commands: 0, requests: 0, errors: 0 }
    }

    /// Counts one answered request; its latency only if the answer was an expected one.
    pub fn record(&mut self, latency: Duration, answer: &Answer) {
        if answer.ok {
            let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
            self.latency_us.saturating_record(latency_us);
            self.commands += answer.commands;
            self.requests += 1;
        } else {
            self.errors += 1;
        }
    }

    /// Adds another recorder's requests to this one's.
    pub fn merge(&mut self, other: &Recorder) {
        self.latency_us.add(&other.latency_us).expect("histograms of the same bounds");
        self.commands += other.commands;
        self.requests += other.requests;
        self.errors += other.errors;
    }

    /// The figures so far.
    pub fn summary(&self) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |q: f64| if self.requests == 0 { 0.0 } else { ms(self.latency_us.value_at_quantile(q)) };
        Summary {
            commands: self.commands,
            requests: self.requests,
            errors: self.errors,
            latency_ms_p50: at(0.5),
            latency_ms_p90: at(0.9),
            latency_ms_p99: at(0.99),
            latency_ms_p999: at(0.999),
            latency_ms_max: if self.requests == 0 { 0.0 } else { ms(self.latency_us.max()) },
        }
    }
}
