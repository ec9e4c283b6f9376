//! Issue 12, item 2: a hot-standby writer on PostgreSQL. Two servers on one database, the
//! second with `--standby`; eight clients deposit under load with an `Idempotency-Key` each,
//! retrying on the other server when one does not answer. The active one is SIGKILLed ten
//! times (each time a new standby is started beside the one that took over), then its lease
//! session is ended from the database. Checked: every acknowledged deposit is in the log
//! exactly once (each account's deposits and balance are its client's acknowledged ones),
//! retries with a key are answered with the first answer and change nothing, the chain
//! verifies and the read models equal a rebuild. The time from each kill to the standby's
//! first commit is printed (BENCHMARKS.md, docs/SCALING.md), not asserted: the machines vary.

use super::support::{database, Backend, Launch, Server, TestDb, ADMIN_TOKEN};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const KILLS: usize = 10;

/// Snapshots every 200 events, so that most takeovers load the engine from a snapshot and a
/// tail.
const SNAPSHOT_EVERY: &[&str] = &["--snapshot-every", "200"];

fn standby(db: &TestDb) -> Server {
    Server::launch(db, false, Launch { args: &["--standby", "--snapshot-every", "200"], ..Launch::default() })
}

/// One deposit of 1 under `key`, tried on each server in turn (the active one first) until
/// one acknowledges it: a server that is gone, a standby, or a writer that lost its lease
/// is not an answer. Returns the acknowledged position.
async fn deposit(client: &Client, servers: &Mutex<Vec<String>>, account: &str, key: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bases = servers.lock().expect("servers").clone();
        for base in bases {
            let sent = client
                .post(format!("{base}/v1/accounts/{account}/deposits"))
                .bearer_auth(ADMIN_TOKEN)
                .header("Idempotency-Key", key)
                .json(&json!({ "amount": "1" }))
                .send()
                .await;
            let Ok(response) = sent else { continue };
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return body["position"].as_u64().unwrap_or_else(|| panic!("a position: {body}"));
            }
            // 503: a standby (STANDBY), or a writer that lost its lease or its database.
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "deposit {key}: {body}");
        }
        assert!(Instant::now() < deadline, "deposit {key} was not acknowledged within 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until `server`, a standby that should be taking over, commits a deposit;
/// returns how long that took from `since`.
async fn first_commit(client: &Client, server: &Server, account: &str, key: &str, since: Instant) -> Duration {
    let alone = Mutex::new(vec![server.base.clone()]);
    deposit(client, &alone, account, key).await;
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_writer() {
    let Some(db) = database(Backend::Postgres, "failover").await else { return };
    let mut active = Server::start_with(&db, false, SNAPSHOT_EVERY);
    let client = Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let mut accounts = Vec::new();
    for i in 0..=CLIENTS {
        let (_, account) = active.user(&format!("client{i}"), "trader").await;
        accounts.push(account.expect("a trader's account"));
    }
    // The last account is the probe's: the test's own deposits that time each takeover.
    let probe = accounts.pop().expect("the probe's account");
    let mut spare = standby(&db);
    // A standby is alive but not ready, and sends clients to the active writer.
    let (status, health) = spare.call(None, reqwest::Method::GET, "/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (StatusCode::OK, Some("standby")), "{health}");
    let (status, _) = spare.call(None, reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let refused = client.get(format!("{}/v1/markets", spare.base)).send().await.expect("the standby answers");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let body: Value = refused.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "STANDBY", "{body}");
    let servers = Arc::new(Mutex::new(vec![active.base.clone(), spare.base.clone()]));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (i, account) in accounts.iter().cloned().enumerate() {
        let (client, servers, stop) = (client.clone(), servers.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let key = format!("client{i}-{}", acknowledged.len());
                let position = deposit(&client, &servers, &account, &key).await;
                acknowledged.push((key, position));
            }
            acknowledged
        }));
    }

    let mut takeovers = Vec::new();
    for kill in 0..=KILLS {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let since = Instant::now();
        if kill < KILLS {
            active.kill(); // SIGKILL: the process and its database sessions are gone
        } else {
            super::support::end_postgres_lease_session(&db).await; // the process lives, its lease does not
        }
        let took = first_commit(&client, &spare, &probe, &format!("probe-{kill}"), since).await;
        takeovers.push(took);
        if kill == KILLS {
            // The writer whose session was ended stops by itself, non-zero.
            let exited = active.exited().await;
            assert!(exited.is_some_and(|s| !s.success()), "the fenced writer exited non-zero: {exited:?}");
        }
        active = std::mem::replace(&mut spare, standby(&db));
        *servers.lock().expect("servers") = vec![active.base.clone(), spare.base.clone()];
    }
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for task in clients {
        acknowledged.push(task.await.expect("a client"));
    }

    let mut sorted: Vec<u128> = takeovers.iter().map(Duration::as_millis).collect();
    sorted.sort_unstable();
    println!(
        "failover: {KILLS} SIGKILLs and 1 ended session; kill to the standby's first commit (ms): {:?}; \
         max {} ms; {} deposits acknowledged",
        takeovers.iter().map(Duration::as_millis).collect::<Vec<_>>(),
        sorted.last().expect("takeovers"),
        acknowledged.iter().map(Vec::len).sum::<usize>(),
    );

    active.settle().await;
    let (status, ready) = active.call(None, reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "the writer that took over last is ready: {ready}");
    let head = active.head().await;
    for (account, acks) in accounts.iter().zip(&acknowledged) {
        assert!(!acks.is_empty(), "client of {account} made progress");
        // Exactly once: the account's deposits are its client's acknowledged ones.
        let events = active.get(ADMIN_TOKEN, &format!("/v1/streams/Account/{account}/events?limit=10000")).await;
        let deposits: Vec<u64> = events["data"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["eventType"] == "BalanceDeposited")
            .map(|e| e["position"].as_u64().expect("position"))
            .collect();
        let mut positions: Vec<u64> = acks.iter().map(|(_, p)| *p).collect();
        positions.sort_unstable();
        assert_eq!(deposits, positions, "account {account}: each acknowledged deposit once, where it was acknowledged");
        let state = active.get(ADMIN_TOKEN, &format!("/v1/accounts/{account}")).await;
        assert_eq!(state["balance"].as_str().map(|b| b.parse::<f64>().expect("decimal")), Some(acks.len() as f64));
        // A retry of an acknowledged command is answered as the first time and changes nothing.
        let (key, position) = &acks[acks.len() / 2];
        let alone = Mutex::new(vec![active.base.clone()]);
        assert_eq!(deposit(&client, &alone, account, key).await, *position, "retry of {key}");
    }
    assert_eq!(active.head().await, head, "the retries appended nothing");
    assert_eq!(active.get(ADMIN_TOKEN, "/v1/audit/verify").await["verified"], true);
    let mut all = accounts.clone();
    all.push(probe);
    let live = active.read_models(&all).await;
    active.rebuild_all().await;
    assert_eq!(live, active.read_models(&all).await, "the read models after the takeovers equal a rebuild");

    // A standby stops on SIGTERM while it waits, with status 0.
    let pid = spare.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill ran").success());
    let exited = spare.exited().await;
    assert!(exited.is_some_and(|s| s.success()), "the standby stopped cleanly: {exited:?}");
}
