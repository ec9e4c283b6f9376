//! `perpetua-load`: a load generator for a running `perpetua serve`. N concurrent clients
//! place limit orders around a mid price (about half of them cross and trade) and cancel
//! their resting ones, over HTTP, for a fixed time. Reports commands/s, latency percentiles,
//! and the server's projection lag from its `/metrics` (before/after difference).

use clap::Parser;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "perpetua-load", about = "Load generator for a running perpetua server")]
struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin token (creates and funds the traders).
    #[arg(long, env = "PERPETUA_ADMIN_TOKEN")]
    token: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Traders the clients share (each client trades for one).
    #[arg(long, default_value_t = 16)]
    traders: usize,
    /// How long to run, after a 2-second warm-up.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Market to trade.
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
}

struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn post(client: &Client, url: &str, token: &str, body: &Value) -> Result<(StatusCode, Value), String> {
    let response = client.post(url).bearer_auth(token).json(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    Ok((status, response.json().await.map_err(|e| e.to_string())?))
}

/// Sums of the projection-lag histogram buckets (upper bound → cumulative count).
async fn lag_buckets(client: &Client, args: &Args) -> Vec<(f64, u64)> {
    let Ok(response) = client.get(format!("{}/metrics", args.url)).bearer_auth(&args.token).send().await else {
        return Vec::new();
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("perpetua_projection_lag_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let client = Client::builder().pool_max_idle_per_host(args.clients).build().map_err(|e| e.to_string())?;
    let mut traders = Vec::new();
    for i in 0..args.traders {
        let (_, user) = post(
            &client,
            &format!("{}/v1/users", args.url),
            &args.token,
            &json!({"name": format!("load-{i}"), "role": "trader"}),
        )
        .await?;
        let token = user["apiToken"].as_str().ok_or(format!("cannot create a trader: {user}"))?.to_owned();
        let account = user["accountId"].as_str().ok_or("no account")?.to_owned();
        let deposit = format!("{}/v1/accounts/{account}/deposits", args.url);
        post(&client, &deposit, &args.token, &json!({"amount": "1000000000"})).await?;
        traders.push((token, account));
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (token, account) = traders[c % traders.len()].clone();
        let (client, url, symbol) = (client.clone(), args.url.clone(), args.symbol.clone());
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut result = ClientResult { latencies_us: Vec::with_capacity(100_000), errors: 0 };
            let mut resting: Vec<String> = Vec::new();
            let mut n: u64 = c as u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let outcome = if n.is_multiple_of(3) && !resting.is_empty() {
                    let order = resting.swap_remove(0);
                    let response = client.delete(format!("{url}/v1/orders/{order}")).bearer_auth(&token).send().await;
                    response.map(|r| r.status()).map_err(|e| e.to_string())
                } else {
                    let side = if n.is_multiple_of(2) { "BUY" } else { "SELL" };
                    // Prices within ±1% of 50,000: buys and sells overlap, so about half trade.
                    let offset = (n * 7919 % 100) as i64 - 50;
                    let price = format!("{}", 50_000 + offset * 5);
                    let body = json!({
                        "accountId": account, "symbol": symbol, "side": side, "type": "LIMIT", "price": price,
                        "quantity": "0.001", "leverage": 10, "marginMode": "CROSS", "timeInForce": "GTC",
                        "reduceOnly": false, "postOnly": false,
                    });
                    match post(&client, &format!("{url}/v1/orders"), &token, &body).await {
                        Ok((status, answer)) => {
                            if answer["order"]["status"] == "ACTIVE" {
                                if let Some(id) = answer["order"]["orderId"].as_str() {
                                    resting.push(id.to_owned());
                                }
                            }
                            Ok(status)
                        }
                        Err(e) => Err(e),
                    }
                };
                let elapsed = started.elapsed();
                if measuring.load(Ordering::Relaxed) {
                    match outcome {
                        Ok(status)
                            if status.is_success()
                                || status == StatusCode::UNPROCESSABLE_ENTITY
                                || status == StatusCode::NOT_FOUND =>
                        {
                            result.latencies_us.push(elapsed.as_micros().min(u32::MAX as u128) as u32)
                        }
                        _ => result.errors += 1,
                    }
                }
            }
            result
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lag_before = lag_buckets(&client, &args).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let lag_after = lag_buckets(&client, &args).await;
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let result = task.await.map_err(|e| e.to_string())?;
        latencies.extend(result.latencies_us);
        errors += result.errors;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{} clients, {:.1} s: {} commands, {:.0} commands/s, {errors} errors; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        args.clients,
        elapsed,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    // Projection lag p99 from the histogram's buckets over the measured window.
    let deltas: Vec<(f64, u64)> = lag_after
        .iter()
        .map(|(bound, after)| {
            let before = lag_before.iter().find(|(b, _)| b == bound).map_or(0, |(_, c)| *c);
            (*bound, after - before)
        })
        .collect();
    if let Some((_, total)) = deltas.last().filter(|(_, t)| *t > 0) {
        let p = |q: f64| deltas.iter().find(|(_, c)| *c as f64 >= q * *total as f64).map_or(f64::INFINITY, |(b, _)| *b);
        println!(
            "projection lag (commit → read model committed), {total} projector commits: p50 ≤ {} s, p99 ≤ {} s (bucket bounds)",
            p(0.5),
            p(0.99)
        );
    }
    Ok(())
}
