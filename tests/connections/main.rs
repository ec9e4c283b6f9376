//! Connections that would exhaust a server (issue 14, item 3), against the real binary on
//! SQLite: idle and slowloris connections are closed after the header timeout while
//! `/healthz` keeps answering at once and memory stays bounded; a connection beyond the
//! bound is refused with a 503 in JSON; live streams whose consumers never read are dropped,
//! and the other clients' writes and queries keep their latency. The only test of its binary,
//! so that no other test shares the machine with its measurements.

#[path = "../server/support.rs"]
#[allow(dead_code)]
mod support;

use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{limit, Server, ADMIN_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server process's resident memory, in MiB.
fn rss_mib(server: &Server) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).expect("/proc status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// The `q`-quantile of `samples`.
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * q).round() as usize]
}

/// True once the server has closed `socket` (everything it sent is read and discarded).
async fn closed_by_server(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Waits (30 s at most) until the server's `/metrics` count `clients` live log streams.
async fn log_streams_reach(server: &Server, clients: u32) {
    let wanted = format!(r#"perpetua_stream_clients{{stream="log"}} {clients}"#);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = server.client.get(format!("{}/metrics", server.base)).bearer_auth(ADMIN_TOKEN).send().await;
        let text = metrics.expect("metrics").text().await.expect("the metrics' text");
        if text.lines().any(|l| l == wanted) {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not reach {wanted}: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Latencies of commands and queries: each of 4 clients places `per_client` orders that rest
/// away from the book and cancels each (so the state the queries read stays the same size),
/// and asks for its open orders after each.
async fn workload(server: &Server, traders: &[support::Trader], per_client: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut tasks = Vec::new();
    for trader in traders {
        let (client, base, token, account) =
            (server.client.clone(), server.base.clone(), trader.token.clone(), trader.account.clone());
        tasks.push(tokio::spawn(async move {
            let (mut writes, mut reads) = (Vec::new(), Vec::new());
            for n in 0..per_client {
                let body = limit(&account, "BTCUSDT", "BUY", &format!("{}", 30_000 + (n % 10) * 10), "0.001");
                let started = Instant::now();
                let response = client.post(format!("{base}/v1/orders")).bearer_auth(&token).json(&body).send().await;
                let response = response.expect("answer");
                assert_eq!(response.status(), StatusCode::CREATED);
                writes.push(started.elapsed());
                let placed: Value = response.json().await.expect("JSON");
                let order = placed["order"]["orderId"].as_str().expect("order id").to_owned();
                let started = Instant::now();
                let response = client.get(format!("{base}/v1/orders/active")).bearer_auth(&token).send().await;
                assert_eq!(response.expect("answer").status(), StatusCode::OK);
                reads.push(started.elapsed());
                let started = Instant::now();
                let response = client.delete(format!("{base}/v1/orders/{order}")).bearer_auth(&token).send().await;
                assert_eq!(response.expect("answer").status(), StatusCode::OK);
                writes.push(started.elapsed());
            }
            (writes, reads)
        }));
    }
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for task in tasks {
        let (w, r) = task.await.expect("client");
        writes.extend(w);
        reads.extend(r);
    }
    (writes, reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_cannot_exhaust_the_server() {
    let db = support::database(support::Backend::Sqlite, "connections").await.expect("SQLite");
    let server = Server::start_with(&db, true, &["--header-timeout-secs", "2"]);
    let mut traders = Vec::new();
    for name in ["c1", "c2", "c3", "c4"] {
        traders.push(server.trader(name, "10000000").await);
    }
    server.settle().await;
    let rss_before = rss_mib(&server);

    // 2,000 idle connections and 200 slowloris ones (a header byte every 300 ms).
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(address(&server)).await.expect("connect"));
    }
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut socket = TcpStream::connect(address(&server)).await.expect("connect");
        socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("send");
        slow.push(socket);
    }
    let mut healthz = Vec::new();
    let mut rss_peak: f64 = 0.0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        for socket in &mut slow {
            let _ = socket.write_all(b"a").await;
        }
        let asked = Instant::now();
        let (status, _) = server.call(None, reqwest::Method::GET, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        healthz.push(asked.elapsed());
        rss_peak = rss_peak.max(rss_mib(&server));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let slowest = *healthz.iter().max().expect("probes");
    println!(
        "2,000 idle + 200 slowloris connections: /healthz at worst {slowest:?} over {} probes; \
         memory {rss_before:.0} MiB before, {rss_peak:.0} MiB at most",
        healthz.len()
    );
    assert!(slowest < Duration::from_millis(100), "/healthz answered within 100 ms throughout: {slowest:?}");
    assert!(rss_peak - rss_before < 64.0, "memory stayed bounded: {rss_before:.0} → {rss_peak:.0} MiB");
    let mut closed = 0;
    for socket in idle.iter_mut().chain(slow.iter_mut()) {
        closed += usize::from(closed_by_server(socket, Duration::from_secs(3)).await);
    }
    assert_eq!(closed, 2_200, "every idle and slowloris connection was closed after the header timeout");

    // Live streams (from the head, as a live tail starts) whose consumers never read, beside
    // the same writes and queries as without them.
    workload(&server, &traders, 20).await; // warm-up
    let (writes_alone, reads_alone) = workload(&server, &traders, 150).await;
    let mut stuck = Vec::new();
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("a small receive buffer");
        let mut socket = socket.connect(address(&server).parse().expect("address")).await.expect("connect");
        let request = format!("GET /v1/events/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n");
        socket.write_all(request.as_bytes()).await.expect("send");
        stuck.push(socket);
    }
    // Every stream is open before the workload starts: one the server opened late (from a
    // later head) would get fewer events than the others.
    log_streams_reach(&server, 200).await;
    let (writes_beside, reads_beside) = workload(&server, &traders, 150).await;
    let p99 = |mut samples: Vec<Duration>| quantile(&mut samples, 0.99);
    let (w0, r0, w1, r1) = (p99(writes_alone), p99(reads_alone), p99(writes_beside), p99(reads_beside));
    println!("p99 without / beside 200 stuck streams: writes {w0:?} / {w1:?}, queries {r0:?} / {r1:?}");
    // The fault this reproduces held queries for 1.1–1.6 s (docs/FAULTS.md). A bound far
    // above any healthy figure (tens of ms here) and far below the fault's tells them apart on
    // a machine shared with other tests; the ratio itself is a figure for docs/FAULTS.md, not
    // an assertion (a 2× ratio failed on noise alone: 16.7 → 35.9 ms).
    let starved = Duration::from_millis(500);
    assert!(w1 < starved, "writes beside stuck streams were not held up: p99 {w0:?} → {w1:?}");
    assert!(r1 < starved, "queries beside stuck streams were not held up: p99 {r0:?} → {r1:?}");
    // Each stuck stream ends once its consumer has read nothing for the grace; read before
    // that, a stream would be a slow consumer that caught up (its connection kept).
    log_streams_reach(&server, 0).await;
    let mut dropped = 0;
    for socket in &mut stuck {
        dropped += usize::from(closed_by_server(socket, Duration::from_secs(10)).await);
    }
    assert_eq!(dropped, 200, "every stuck stream was dropped");
    println!("memory after the stuck streams: {:.0} MiB", rss_mib(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_bound_is_refused_in_json() {
    let db = support::database(support::Backend::Sqlite, "bound").await.expect("SQLite");
    let server = Server::start_with(&db, false, &["--max-connections", "20"]);
    server.settle().await;
    // reqwest keeps its own connection; 19 more fill the bound.
    let mut open = Vec::new();
    for _ in 0..19 {
        open.push(TcpStream::connect(address(&server)).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(address(&server)).await.expect("connect");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_string(&mut answer))
        .await
        .expect("answered at once")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("a body")).expect("JSON");
    assert_eq!(body["error"]["code"], "TOO_MANY_CONNECTIONS");
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = server.call(None, reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "served again once connections closed");
}
