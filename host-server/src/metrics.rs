//! Prometheus metrics, on the `prometheus` crate (TiKV's client): labelled families, and on
//! Linux the process collector (CPU seconds, resident memory, open files, start time) that a
//! hand-written exposition would have to read from `/proc` itself.
//!
//! Every metric is named `perpetua_…` except the process collector's standard `process_…`.
//! The families, their labels and what each answers are listed in `docs/OPERATIONS.md`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
/// Upper bounds of the size buckets.
const SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// The live streams, as their metrics label them (`log`: the staff's tail of the log).
pub const STREAMS: [&str; 1] = ["log"];

/// Records a duration, in seconds.
pub trait ObserveDuration {
    /// Records `d` in seconds.
    fn observe_duration(&self, d: Duration);
}

impl ObserveDuration for Histogram {
    fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }
}

/// Sets a gauge to a position (positions fit an `i64` long before they could be reached).
pub trait SetPosition {
    /// Sets the gauge to `position`.
    fn set_position(&self, position: u64);
}

impl SetPosition for IntGauge {
    fn set_position(&self, position: u64) {
        self.set(i64::try_from(position).unwrap_or(i64::MAX));
    }
}

/// Every metric of the server, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// Commands decided, by command and outcome (`accepted`: it wrote events; `refused`).
    pub commands: IntCounterVec,
    /// Commands refused, by the refusal's stable code.
    pub refusals: IntCounterVec,
    /// Events committed.
    pub events: IntCounter,
    /// Batches committed (transactions).
    pub batches: IntCounter,
    /// Batches whose commit failed (none of their commands was acknowledged).
    pub commit_failures: IntCounter,
    /// Engine snapshots saved.
    pub engine_snapshots: IntCounter,
    /// Commands per committed batch.
    pub batch_size: Histogram,
    /// Time from a batch's first decision to its commit.
    pub commit_seconds: Histogram,
    /// HTTP requests answered, by method, route (its template) and status.
    pub http_requests: IntCounterVec,
    /// Time to answer an HTTP request, by method and route.
    pub http_seconds: HistogramVec,
    /// Last committed global position.
    pub log_head: IntGauge,
    /// Global position the read models have reached.
    pub projection_position: IntGauge,
    /// Events committed but not yet projected (set when rendered).
    projection_lag_events: IntGauge,
    /// Time from an event's commit to the commit of its projection.
    pub projection_lag_seconds: Histogram,
    /// Events projected.
    pub projected_events: IntCounter,
    /// Live-stream clients connected, by stream.
    pub stream_clients: IntGaugeVec,
    /// Live-stream clients dropped for reading too slowly, by stream.
    pub stream_drops: IntCounterVec,
    /// 1 while this process holds the writer lease.
    pub writer_lease_held: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let metric =
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

impl Metrics {
    /// Every metric at zero, with the build's information and (on Linux) the process's.
    pub fn new() -> Self {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        let build = IntGaugeVec::new(
            Opts::new("perpetua_build_info", "The running build: version (always 1)."),
            &["version", "rustc_target"],
        )
        .expect("a valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), std::env::consts::ARCH]).set(1);
        registry.register(Box::new(build)).expect("registered once");
        let http_seconds = HistogramVec::new(
            HistogramOpts::new("perpetua_http_request_seconds", "Time to answer an HTTP request.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("a valid metric");
        registry.register(Box::new(http_seconds.clone())).expect("registered once");
        let stream_clients =
            IntGaugeVec::new(Opts::new("perpetua_stream_clients", "Live-stream clients connected."), &["stream"])
                .expect("a valid metric");
        registry.register(Box::new(stream_clients.clone())).expect("registered once");
        let r = &registry;
        let metrics = Self {
            commands: counters(r, "perpetua_commands_total", "Commands decided, by outcome.", &["command", "outcome"]),
            refusals: counters(r, "perpetua_command_refusals_total", "Commands refused, by code.", &["code"]),
            events: counter(r, "perpetua_events_total", "Events committed."),
            batches: counter(r, "perpetua_batches_total", "Group-commit transactions committed."),
            commit_failures: counter(r, "perpetua_commit_failures_total", "Batches whose commit failed."),
            engine_snapshots: counter(r, "perpetua_engine_snapshots_total", "Engine snapshots saved."),
            batch_size: histogram(
                r,
                "perpetua_batch_commands",
                "Commands per group-commit transaction.",
                &SIZE_BUCKETS,
            ),
            commit_seconds: histogram(
                r,
                "perpetua_commit_seconds",
                "Time from a batch's first decision to its commit.",
                &LATENCY_BUCKETS,
            ),
            http_requests: counters(
                r,
                "perpetua_http_requests_total",
                "HTTP requests answered.",
                &["method", "route", "status"],
            ),
            http_seconds,
            log_head: gauge(r, "perpetua_log_head_position", "Last committed global position."),
            projection_position: gauge(r, "perpetua_projection_position", "Global position the read models reflect."),
            projection_lag_events: gauge(
                r,
                "perpetua_projection_lag_events",
                "Events committed but not yet projected.",
            ),
            projection_lag_seconds: histogram(
                r,
                "perpetua_projection_lag_seconds",
                "Time from an event's commit to the commit of its projection.",
                &LATENCY_BUCKETS,
            ),
            projected_events: counter(r, "perpetua_projected_events_total", "Events applied by the projector."),
            stream_clients,
            stream_drops: counters(
                r,
                "perpetua_stream_drops_total",
                "Live-stream clients dropped for reading too slowly.",
                &["stream"],
            ),
            writer_lease_held: gauge(r, "perpetua_writer_lease_held", "1 while this process holds the writer lease."),
            registry,
        };
        // Every stream is exposed from the start, at zero.
        for stream in STREAMS {
            metrics.stream_clients.with_label_values(&[stream]);
            metrics.stream_drops.with_label_values(&[stream]);
        }
        metrics
    }

    /// Records one committed batch.
    pub fn record_commit(&self, commands: u64, events: u64, elapsed: Duration) {
        self.events.inc_by(events);
        self.batches.inc();
        self.batch_size.observe(commands as f64);
        self.commit_seconds.observe_duration(elapsed);
    }

    /// Records one decided command.
    pub fn record_decision(&self, command: &'static str, refusal: Option<&'static str>) {
        match refusal {
            None => self.commands.with_label_values(&[command, "accepted"]).inc(),
            Some(code) => {
                self.commands.with_label_values(&[command, "refused"]).inc();
                self.refusals.with_label_values(&[code]).inc();
            }
        }
    }

    /// Records one answered HTTP request.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests.with_label_values(&[method, route, &status.to_string()]).inc();
        self.http_seconds.with_label_values(&[method, route]).observe_duration(elapsed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        self.projection_lag_events.set((self.log_head.get() - self.projection_position.get()).max(0));
        let mut out = Vec::with_capacity(8192);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
