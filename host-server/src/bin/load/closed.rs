//! The closed loop: each client sends its next request when the previous one is answered,
//! so the rate is what the server gives; latency runs from send to answer.

use crate::recorder::Recorder;
use crate::workload::Workload;
use crate::Measured;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `clients` clients for `warmup` unmeasured, then `window` measured; client `c` acts
/// for trader `c` (modulo their count).
pub async fn run(workload: Arc<Workload>, clients: usize, warmup: Duration, window: Duration) -> Measured {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> =
        (0..clients).map(|c| tokio::spawn(client(workload.clone(), c, measuring.clone(), stop.clone()))).collect();
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut recorder = Recorder::new();
    for task in tasks {
        recorder.merge(&task.await.expect("clients do not panic"));
    }
    Measured { recorder, elapsed }
}

/// One client's loop until `stop`, recording the requests answered while `measuring`.
async fn client(workload: Arc<Workload>, c: usize, measuring: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Recorder {
    let mut recorder = Recorder::new();
    let mut n = c as u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let request = workload.next(c, n);
        let started = Instant::now();
        let answer = workload.execute(request).await;
        if measuring.load(Ordering::Relaxed) {
            recorder.record(started.elapsed(), &answer);
        }
    }
    recorder
}
