//! Prometheus metrics, written in the text exposition format. A handful of counters, gauges
//! and fixed-bucket histograms on atomics: small enough that a metrics framework would add
//! more than it saves.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
/// Upper bounds of the size buckets.
const SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// A histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    /// Commands committed.
    pub commands: Counter,
    /// Events committed.
    pub events: Counter,
    /// Batches committed (transactions).
    pub batches: Counter,
    /// Batches whose commit failed (none of their commands was acknowledged).
    pub commit_failures: Counter,
    /// Engine snapshots saved.
    pub engine_snapshots: Counter,
    /// Commands per committed batch.
    pub batch_size: Histogram,
    /// Time from a batch's first decision to its commit.
    pub commit_seconds: Histogram,
    /// HTTP requests answered.
    pub http_requests: Counter,
    /// HTTP requests answered with a 4xx or 5xx status.
    pub http_errors: Counter,
    /// Time to answer an HTTP request.
    pub http_seconds: Histogram,
    /// Last committed global position.
    pub log_head: Gauge,
    /// Global position the read models have reached.
    pub projection_position: Gauge,
    /// Time from an event's commit to the commit of its projection.
    pub projection_lag_seconds: Histogram,
    /// Events projected.
    pub projected_events: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            commands: Counter::default(),
            events: Counter::default(),
            batches: Counter::default(),
            commit_failures: Counter::default(),
            engine_snapshots: Counter::default(),
            batch_size: Histogram::new(&SIZE_BUCKETS),
            commit_seconds: Histogram::new(&LATENCY_BUCKETS),
            http_requests: Counter::default(),
            http_errors: Counter::default(),
            http_seconds: Histogram::new(&LATENCY_BUCKETS),
            log_head: Gauge::default(),
            projection_position: Gauge::default(),
            projection_lag_seconds: Histogram::new(&LATENCY_BUCKETS),
            projected_events: Counter::default(),
        }
    }
}

impl Metrics {
    /// Records one committed batch.
    pub fn record_commit(&self, commands: u64, events: u64, elapsed: Duration) {
        self.commands.add(commands);
        self.events.add(events);
        self.batches.inc();
        self.batch_size.observe(commands as f64);
        self.commit_seconds.observe_duration(elapsed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters: [(&str, &str, &Counter); 8] = [
            ("perpetua_commands_total", "Commands committed.", &self.commands),
            ("perpetua_events_total", "Events committed.", &self.events),
            ("perpetua_batches_total", "Group-commit transactions committed.", &self.batches),
            ("perpetua_commit_failures_total", "Batches whose commit failed.", &self.commit_failures),
            ("perpetua_engine_snapshots_total", "Engine snapshots saved.", &self.engine_snapshots),
            ("perpetua_http_requests_total", "HTTP requests answered.", &self.http_requests),
            ("perpetua_http_errors_total", "HTTP requests answered with 4xx or 5xx.", &self.http_errors),
            ("perpetua_projected_events_total", "Events applied by the projector.", &self.projected_events),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", counter.get());
        }
        let head = self.log_head.get();
        let projected = self.projection_position.get();
        let gauges = [
            ("perpetua_log_head_position", "Last committed global position.", head),
            ("perpetua_projection_position", "Global position the read models reflect.", projected),
            (
                "perpetua_projection_lag_events",
                "Events committed but not yet projected.",
                head.saturating_sub(projected),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        self.batch_size.write(&mut out, "perpetua_batch_commands", "Commands per group-commit transaction.");
        self.commit_seconds.write(
            &mut out,
            "perpetua_commit_seconds",
            "Time from a batch's first decision to its commit.",
        );
        self.http_seconds.write(&mut out, "perpetua_http_request_seconds", "Time to answer an HTTP request.");
        self.projection_lag_seconds.write(
            &mut out,
            "perpetua_projection_lag_seconds",
            "Time from an event's commit to the commit of its projection.",
        );
        out
    }
}
