//! The sweep: the highest open-loop rate the server holds (p99 within a target, and at least
//! [`ACHIEVED_SHARE_MIN`] of the rate asked answered), then the latency at shares of it.
//!
//! From the start rate, the rate grows by [`GROWTH`] while it holds (or shrinks by it until
//! one holds), then the interval between the last rate held and the first one failed is
//! bisected. Each step is one open-loop run with its own warm-up.

use crate::lag::Probe;
use crate::open::{self, Schedule};
use crate::report::{self, Labels, Loop, Phase, Run};
use crate::workload::Workload;
use std::sync::Arc;

/// Factor between the rates of two search steps before the bisection.
const GROWTH: f64 = 1.5;
/// Most steps up (1,000/s grows to 130,000/s) or down (to 39/s) before the bisection.
const STEPS_MAX: usize = 12;
/// A run holds only if it was answered at this share of the rate asked, at least.
const ACHIEVED_SHARE_MIN: f64 = 0.95;
/// The shares of the rate found at which the latency is profiled.
const PROFILE_SHARES: [f64; 3] = [0.25, 0.5, 0.75];

/// What a sweep looks for, and how.
pub struct Settings {
    pub rate_start_per_s: f64,
    pub latency_ms_p99_target: f64,
    /// Halvings of the interval between the last rate held and the first failed.
    pub bisections: u32,
    /// The schedule of every step (its rate replaced by the step's).
    pub schedule: Schedule,
}

/// The runs of a sweep so far.
struct Sweep<'a> {
    workload: &'a Arc<Workload>,
    probe: &'a Probe,
    labels: Labels,
    settings: &'a Settings,
    runs: Vec<Run>,
}

/// Runs the sweep, printing each run as it ends, then the table of them all.
pub async fn run(workload: &Arc<Workload>, probe: &Probe, labels: Labels, settings: &Settings) {
    let mut sweep = Sweep { workload, probe, labels, settings, runs: Vec::new() };
    let found = sweep.search().await;
    if let Some(rate) = found {
        for share in PROFILE_SHARES {
            sweep.step(rate * share, Phase::Profile).await;
        }
    }
    println!();
    report::print_table(&sweep.runs);
    match found {
        Some(rate) => println!(
            "highest rate held (p99 ≤ {} ms, ≥ {:.0}% of the rate asked answered): {rate:.0} commands/s",
            settings.latency_ms_p99_target,
            ACHIEVED_SHARE_MIN * 100.0
        ),
        None => println!("no rate held (p99 ≤ {} ms) down to the last one tried", settings.latency_ms_p99_target),
    }
}

impl Sweep<'_> {
    /// The highest rate held, if any: the bracket, then its bisection.
    async fn search(&mut self) -> Option<f64> {
        let (mut held, failed) = self.bracket().await?;
        let Some(mut failed) = failed else { return Some(held) };
        for _ in 0..self.settings.bisections {
            let rate = (held + failed) / 2.0;
            if self.step(rate, Phase::Search).await {
                held = rate;
            } else {
                failed = rate;
            }
        }
        Some(held)
    }

    /// A rate held and the first rate failed above it (none if every step up held), or
    /// nothing if no step down held either.
    async fn bracket(&mut self) -> Option<(f64, Option<f64>)> {
        let start = self.settings.rate_start_per_s;
        if self.step(start, Phase::Search).await {
            let mut held = start;
            for _ in 0..STEPS_MAX {
                let rate = held * GROWTH;
                if !self.step(rate, Phase::Search).await {
                    return Some((held, Some(rate)));
                }
                held = rate;
            }
            Some((held, None))
        } else {
            let mut failed = start;
            for _ in 0..STEPS_MAX {
                let rate = failed / GROWTH;
                if self.step(rate, Phase::Search).await {
                    return Some((rate, Some(failed)));
                }
                failed = rate;
            }
            None
        }
    }

    /// One open-loop run at `rate_per_s`; prints it and tells whether it held.
    async fn step(&mut self, rate_per_s: f64, phase: Phase) -> bool {
        let schedule = Schedule { rate_per_s, ..self.settings.schedule };
        let (measured, lag) = self.probe.around(schedule.warmup, open::run(self.workload.clone(), schedule)).await;
        let summary = measured.recorder.summary();
        let seconds = measured.elapsed.as_secs_f64();
        let achieved_share = summary.commands as f64 / seconds / rate_per_s;
        let held =
            summary.latency_ms_p99 <= self.settings.latency_ms_p99_target && achieved_share >= ACHIEVED_SHARE_MIN;
        let run = Run {
            driven: Loop::Open { rate_asked_per_s: rate_per_s },
            labels: self.labels,
            phase: Some((phase, held)),
            summary,
            seconds,
            lag,
        };
        run.print();
        self.runs.push(run);
        held
    }
}
