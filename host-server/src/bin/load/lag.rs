//! The server's projection lag over a measured window, from the buckets of the
//! `perpetua_projection_lag_seconds` histogram in `/metrics` (read before and after). A server
//! without `/metrics` has no lag to report.

use reqwest::Client;
use std::future::Future;
use std::time::Duration;

/// Reads `/metrics` with the admin token.
pub struct Probe {
    pub client: Client,
    pub url: String,
    pub token: String,
}

/// Cumulative counts of the lag histogram by upper bound (seconds), ascending.
struct Buckets(Vec<(f64, u64)>);

/// The projection lag over a window (upper bounds of the buckets that hold the quantiles).
pub struct Lag {
    /// Projector commits in the window.
    pub commits: u64,
    pub seconds_p50: f64,
    pub seconds_p99: f64,
}

impl Probe {
    /// Runs `run`, whose measured window starts `warmup` after it does, and the projection
    /// lag over that window (from its start to the end of `run`).
    pub async fn around<T>(&self, warmup: Duration, run: impl Future<Output = T>) -> (T, Option<Lag>) {
        let before = async {
            tokio::time::sleep(warmup).await;
            self.buckets().await
        };
        let (result, before) = tokio::join!(run, before);
        let after = self.buckets().await;
        (result, after.since(&before))
    }

    /// The buckets now (none if the server has no `/metrics`).
    async fn buckets(&self) -> Buckets {
        let request = self.client.get(format!("{}/metrics", self.url)).bearer_auth(&self.token);
        let text = match request.send().await {
            Ok(response) if response.status().is_success() => response.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        Buckets(
            text.lines()
                .filter_map(|line| line.strip_prefix("perpetua_projection_lag_seconds_bucket{le=\""))
                .filter_map(|rest| {
                    let (bound, count) = rest.split_once("\"} ")?;
                    let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
                    Some((bound, count.trim().parse().ok()?))
                })
                .collect(),
        )
    }
}

impl Buckets {
    /// The lag of the commits between `before` and these buckets, if there were any.
    fn since(&self, before: &Buckets) -> Option<Lag> {
        let deltas: Vec<(f64, u64)> = self
            .0
            .iter()
            .map(|(bound, after)| {
                let before = before.0.iter().find(|(b, _)| b == bound).map_or(0, |(_, c)| *c);
                (*bound, after.saturating_sub(before))
            })
            .collect();
        let commits = deltas.last().map(|(_, total)| *total).filter(|total| *total > 0)?;
        let at =
            |q: f64| deltas.iter().find(|(_, c)| *c as f64 >= q * commits as f64).map_or(f64::INFINITY, |(b, _)| *b);
        Some(Lag { commits, seconds_p50: at(0.5), seconds_p99: at(0.99) })
    }
}
