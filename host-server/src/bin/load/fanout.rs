//! Stream fan-out (`--stream-clients N`): N live-stream clients held open beside the command
//! load. Each message's `id` is a log position; its delay is from the answer of the first
//! command at or after that position (the command's commit, as the load sees it) to the
//! message's arrival. Reports the clients still held at the end, the messages per second
//! they received together, and the delay's percentiles.

use hdrhistogram::Histogram;
use reqwest::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which stream the clients hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamKind {
    /// A market's public data (`/v1/markets/{symbol}/live`).
    Market,
    /// The whole log (`/v1/events/live`, as the admin).
    Log,
}

/// The answer times of the commands answered while measuring, by log position.
#[derive(Default)]
pub struct Answers {
    measuring: AtomicBool,
    by_position: Mutex<BTreeMap<u64, Instant>>,
}

impl Answers {
    /// Notes that the command with `position` was answered now (while measuring).
    pub fn note(&self, position: u64) {
        if self.measuring.load(Ordering::Relaxed) {
            self.by_position.lock().expect("answers lock").entry(position).or_insert_with(Instant::now);
        }
    }

    /// Whether the measured window is on.
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Starts or stops noting.
    pub fn measure(&self, on: bool) {
        self.measuring.store(on, Ordering::Relaxed);
    }
}

/// The held streams.
pub struct Fanout {
    clients: Vec<tokio::task::JoinHandle<Held>>,
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
}

/// What one stream client received: each message's position and arrival, and whether the
/// stream was still open at the end.
struct Held {
    arrivals: Vec<(u64, Instant)>,
    open: bool,
    dropped: bool,
}

/// The fan-out's figures.
pub struct Report {
    pub clients: usize,
    pub held: usize,
    pub dropped: usize,
    pub messages: u64,
    pub messages_per_s: f64,
    pub delay_ms_p50: f64,
    pub delay_ms_p99: f64,
    pub delay_ms_max: f64,
}

impl Fanout {
    /// Opens `clients` streams and waits until every one has answered 200 (at most 60 s).
    pub async fn open(
        url: &str,
        token: &str,
        symbol: &str,
        kind: StreamKind,
        clients: usize,
    ) -> Result<Fanout, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicU64::new(0));
        let client = Client::builder().pool_max_idle_per_host(0).build().map_err(|e| e.to_string())?;
        let path = match kind {
            StreamKind::Market => format!("{url}/v1/markets/{symbol}/live"),
            StreamKind::Log => format!("{url}/v1/events/live"),
        };
        let tasks = (0..clients)
            .map(|_| {
                let (client, path, token, stop, opened) =
                    (client.clone(), path.clone(), token.to_owned(), stop.clone(), opened.clone());
                tokio::spawn(async move { hold(client, path, token, stop, opened).await })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while opened.load(Ordering::Relaxed) < clients as u64 {
            if Instant::now() > deadline {
                return Err(format!("only {} of {clients} streams opened in 60 s", opened.load(Ordering::Relaxed)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Fanout { clients: tasks, stop, opened })
    }

    /// Closes the streams and reports what they received from `from` on, against `answers`.
    pub async fn close(self, answers: &Answers, from: Instant, window: Duration) -> Report {
        // Let the last messages arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.stop.store(true, Ordering::Relaxed);
        let answered = answers.by_position.lock().expect("answers lock").clone();
        let mut delay_us = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        let (mut messages, mut held, mut dropped) = (0, 0, 0);
        let clients = self.clients.len();
        for task in self.clients {
            let Ok(stream) = task.await else { continue };
            held += usize::from(stream.open);
            dropped += usize::from(stream.dropped);
            for (position, arrived) in stream.arrivals {
                if arrived < from || arrived > from + window {
                    continue;
                }
                messages += 1;
                if let Some((_, answered)) = answered.range(position..).next() {
                    let delay = arrived.saturating_duration_since(*answered);
                    delay_us.saturating_record((delay.as_micros() as u64).max(1));
                }
            }
        }
        let _ = self.opened;
        let ms = |q: f64| delay_us.value_at_quantile(q) as f64 / 1000.0;
        Report {
            clients,
            held,
            dropped,
            messages,
            messages_per_s: messages as f64 / window.as_secs_f64(),
            delay_ms_p50: ms(0.5),
            delay_ms_p99: ms(0.99),
            delay_ms_max: delay_us.max() as f64 / 1000.0,
        }
    }
}

/// One stream client: reads messages until stopped or the stream ends.
async fn hold(client: Client, path: String, token: String, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) -> Held {
    let mut held = Held { arrivals: Vec::new(), open: false, dropped: false };
    let Ok(mut response) = client.get(&path).bearer_auth(&token).send().await else { return held };
    if !response.status().is_success() {
        return held;
    }
    opened.fetch_add(1, Ordering::Relaxed);
    let mut text = String::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Err(_) => continue,
            Ok(Ok(Some(chunk))) => chunk,
            Ok(_) => return held,
        };
        let arrived = Instant::now();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            if message.contains("event: error") {
                held.dropped = true;
            }
            if let Some(id) = message.lines().find_map(|l| l.strip_prefix("id: ")).and_then(|id| id.parse().ok()) {
                held.arrivals.push((id, arrived));
            }
        }
    }
    held.open = !held.dropped;
    held
}
