//! The open loop: requests go out on a fixed schedule whatever the answers, so a slow server
//! cannot slow the load down and hide its own slowness (no coordinated omission). Each
//! request's latency runs from its intended send time, so a request held back (by the cap
//! on requests in flight, or by a late timer) counts its wait.

use crate::recorder::Recorder;
use crate::workload::{Answer, Workload};
use crate::Measured;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The schedule of a run.
#[derive(Clone, Copy)]
pub struct Schedule {
    /// Commands per second: the command `k` of the run is due at `k / rate_per_s` seconds.
    pub rate_per_s: f64,
    /// Most requests in flight at once.
    pub max_in_flight: u32,
    /// Sent but not measured, from the start.
    pub warmup: Duration,
    /// Measured: the requests due in it.
    pub window: Duration,
}

/// The requests of the measured window as they are answered, and when the last one was.
struct Tally {
    recorder: Recorder,
    last_answered: Instant,
}

/// Sends the schedule's requests, each in its own task, then waits for all their answers.
/// The elapsed time of the result runs from the window's start to its last answer.
pub async fn run(workload: Arc<Workload>, schedule: Schedule) -> Measured {
    let start = Instant::now();
    let window_start = start + schedule.warmup;
    let end = window_start + schedule.window;
    let tally = Arc::new(Mutex::new(Tally { recorder: Recorder::new(), last_answered: window_start }));
    let in_flight = Arc::new(Semaphore::new(schedule.max_in_flight as usize));
    let mut commands_due: u64 = 0;
    for n in 0.. {
        let due = start + Duration::from_secs_f64(commands_due as f64 / schedule.rate_per_s);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        // Requests go to the traders in a scattered order, so each trader gets both sides.
        let request = workload.next(scatter(n), n);
        commands_due += request.commands();
        let (workload, tally) = (workload.clone(), tally.clone());
        tokio::spawn(async move {
            let answer = workload.execute(request).await;
            if due >= window_start {
                tally.lock().expect("no panics while held").count(due, &answer);
            }
            drop(permit);
        });
    }
    let _all = in_flight.acquire_many(schedule.max_in_flight).await.expect("the semaphore is never closed");
    let mut tally = tally.lock().expect("no panics while held");
    let elapsed = (tally.last_answered - window_start).max(schedule.window);
    Measured { recorder: std::mem::replace(&mut tally.recorder, Recorder::new()), elapsed }
}

impl Tally {
    /// Records a request due at `due`, answered now.
    fn count(&mut self, due: Instant, answer: &Answer) {
        let now = Instant::now();
        self.recorder.record(now - due, answer);
        self.last_answered = self.last_answered.max(now);
    }
}

/// A trader index spread over the sequence (Fibonacci hashing of `n`).
fn scatter(n: u64) -> usize {
    (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}
