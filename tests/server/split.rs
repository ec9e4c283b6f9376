//! Issue 12, items 1, 3 and 4: the exchange in separate processes. On one PostgreSQL database
//! a `--role writer`, a `--role projector` (tailing the log from SQL) and a `--role query`;
//! `perpetua relay` to a NATS server of the test's own; and a second `--role projector` that
//! reads the log from NATS only and writes its read models into a database of its own.
//!
//! Checked: a command on the writer is read at once on the query server with `minPosition`
//! (the wait reported); each role refuses another's routes with 421 `WRONG_ROLE` naming the
//! role that serves them; a second projector cannot take the projector lease while the first
//! holds it; the read models the NATS-fed projector wrote equal, table by table and row by
//! row, a rebuild from SQL (`perpetua rebuild all`) of the log; and a projector fed a stream
//! with a gap stops with `LOG_GAP` instead of skipping the position.

use super::relay::{gappy_stream, relay, Nats};
use super::support::{database, limit, Backend, Launch, Server, TestDb, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Every read-model table of the database at `url`, served generation, as JSON rows in key
/// order (the table named without its generation).
async fn read_model_tables(url: &str) -> Value {
    let db = perpetua_server::db::Db::open(url, 1).await.expect("the read models' database");
    let registry = db.fetch("SELECT name, generation FROM read_models", &[]).await.expect("the registry");
    let generations: std::collections::BTreeMap<String, i64> =
        registry.iter().map(|row| (perpetua_server::db::text(row, 0), perpetua_server::db::int(row, 1))).collect();
    let mut tables = serde_json::Map::new();
    let mut pool = sqlx::PgConnection::connect(url).await.expect("a connection");
    for def in perpetua_server::read_models::tables() {
        let generation = generations.get(def.read_model).unwrap_or_else(|| panic!("{} registered", def.read_model));
        let sql = format!(
            "SELECT COALESCE(json_agg(t ORDER BY {key}), '[]')::text FROM rm_{name}_{generation} t",
            key = def.key,
            name = def.name
        );
        let rows: String = sqlx::query_scalar(&sql).fetch_one(&mut pool).await.expect("a table");
        tables.insert(def.name.to_owned(), serde_json::from_str(&rows).expect("JSON rows"));
    }
    Value::Object(tables)
}

/// A child process killed when the test ends, passed or not.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/healthz`'s projection position of `server`, once it has reached `head` (60 s at most).
async fn projected(server: &Server, head: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = server.call(None, Method::GET, "/healthz", None).await;
        let position = body["projectionPosition"].as_u64().unwrap_or(0);
        if position >= head {
            return position;
        }
        assert!(Instant::now() < deadline, "the projector did not reach {head}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A refusal by role: 421 `WRONG_ROLE`, naming the role that serves the route.
async fn refused(server: &Server, token: &str, method: Method, path: &str, body: Option<Value>, home: &str) {
    let (status, answer) = server.call(Some(token), method, path, body).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}: {answer}");
    assert_eq!(answer["error"]["code"], "WRONG_ROLE", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("--role {home}")), "{path} names the {home} role: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_in_parts() {
    let Some(db) = database(Backend::Postgres, "split").await else { return };
    let Some(other) = database(Backend::Postgres, "split_nats").await else { return };
    let Some(nats) = Nats::start() else { return };
    let role =
        |db: &TestDb, args: &'static [&'static str]| Server::launch(db, false, Launch { args, ..Launch::default() });
    let writer = role(&db, &["--role", "writer"]);
    let projector = role(&db, &["--role", "projector"]);
    let query = role(&db, &["--role", "query"]);
    let relayed = KilledOnDrop(relay(&db.url, &nats));
    let nats_url = nats.url();
    // Its read models in another database; the log and the users stay in the first.
    let from_nats = Server::launch(
        &db,
        false,
        Launch {
            args: &["--role", "projector", "--nats-url", &nats_url, "--read-models-url", &other.url],
            ..Launch::default()
        },
    );
    let query_other = Server::launch(
        &db,
        false,
        Launch { args: &["--role", "query", "--read-models-url", &other.url], ..Launch::default() },
    );

    // Commands on the writer, each read at once on the query server: it waits for the
    // projector (another process) to reach the command's position.
    let alice = writer.trader("alice", "100000").await;
    let bob = writer.trader("bob", "100000").await;
    let mut waits = Vec::new();
    for round in 0..20 {
        let price = format!("{}", 50_000 + 10 * (round % 5));
        writer.post(&alice.token, "/v1/orders", limit(&alice.account, "BTCUSDT", "SELL", &price, "0.01")).await;
        let bid = writer.post(&bob.token, "/v1/orders", limit(&bob.account, "BTCUSDT", "BUY", &price, "0.01")).await;
        let position = bid["position"].as_u64().expect("the command's position");
        let asked = Instant::now();
        let orders = query.get(&bob.token, &format!("/v1/orders?minPosition={position}&limit=100")).await;
        waits.push(asked.elapsed());
        assert_eq!(orders["total"].as_u64(), Some(round + 1), "round {round}: the query server has bob's orders");
    }
    let last = writer.head().await;
    let account_path = format!("/v1/accounts/{}", alice.account);
    let balance = async |at: u64| -> rust_decimal::Decimal {
        let account = query.get(&alice.token, &format!("{account_path}?minPosition={at}")).await;
        account["balance"].as_str().expect("a balance").parse().expect("a decimal")
    };
    let earlier = balance(last).await;
    let deposit = writer.post(ADMIN_TOKEN, &format!("{account_path}/deposits"), json!({ "amount": "7" })).await;
    let at = deposit["position"].as_u64().expect("position");
    let balance = balance(at).await;
    assert_eq!(balance - earlier, rust_decimal::Decimal::from(7), "the deposit at {at} is in the balance");
    waits.sort();
    println!(
        "minPosition wait on the query server, 20 reads: p50 {:?}, max {:?}",
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );

    // Each role says which serves what it does not.
    refused(&writer, &alice.token, Method::GET, &account_path, None, "query").await;
    refused(
        &query,
        &alice.token,
        Method::POST,
        &format!("{account_path}/withdrawals"),
        Some(json!({"amount": "1"})),
        "writer",
    )
    .await;
    refused(&projector, &alice.token, Method::GET, "/v1/orders", None, "query").await;
    refused(
        &projector,
        ADMIN_TOKEN,
        Method::POST,
        &format!("{account_path}/deposits"),
        Some(json!({"amount": "1"})),
        "writer",
    )
    .await;
    refused(&query, ADMIN_TOKEN, Method::POST, "/v1/admin/projections/all/rebuild", None, "projector").await;
    let (status, _) = writer.call(None, Method::GET, "/v1/markets/BTCUSDT/live", None).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "the market streams follow the projector's pages");
    // ... and the projector serves them: the stream opens with the book.
    let mut market =
        projector.client.get(format!("{}/v1/markets/BTCUSDT/live", projector.base)).send().await.expect("a stream");
    assert_eq!(market.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(10), market.chunk()).await.expect("in time").expect("read");
    let first = String::from_utf8_lossy(&first.expect("a message")).into_owned();
    assert!(first.contains("event: book"), "{first}");
    drop(market);

    // One projector at a time: the lease is the first one's.
    let store = perpetua_server::store::Store::open(&perpetua_server::store::StoreOptions::new(&db.url))
        .await
        .expect("the store");
    let tables = perpetua_server::db::Db::open(&db.url, 1).await.expect("the read models");
    let second = perpetua_server::projector::take_lease(&store, &tables).await;
    assert_eq!(second.err().map(|e| e.code()), Some("PROJECTOR_LEASE_HELD"));

    // The projector fed from NATS reaches the head, into its own database.
    let head = writer.head().await;
    projected(&projector, head).await;
    projected(&from_nats, head).await;
    let from_bus = read_model_tables(&other.url).await;
    // A query server over those read models answers as the one over the first database.
    let orders = format!("/v1/orders?minPosition={head}&limit=100");
    assert_eq!(query_other.get(&bob.token, &orders).await, query.get(&bob.token, &orders).await);
    assert!(!from_bus["orders"].as_array().expect("orders").is_empty(), "the NATS-fed projector wrote orders");

    // A rebuild from SQL of the same log gives the same read models, row for row.
    for server in [&writer, &projector] {
        let pid = server.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill ran").success());
    }
    for server in [writer, projector] {
        let mut server = server;
        assert!(server.exited().await.is_some_and(|s| s.success()), "a role stops cleanly on SIGTERM");
    }
    // The stopped projector gave its lease back: it was the holder.
    let freed = perpetua_server::projector::take_lease(&store, &tables).await.expect("the lease is free");
    freed.lock.release().await;
    let rebuilt = Command::new(env!("CARGO_BIN_EXE_perpetua"))
        .args(["rebuild", "all", "--database-url", &db.url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("perpetua rebuild");
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    assert_eq!(read_model_tables(&db.url).await, from_bus, "read models from NATS = a rebuild from SQL");
    drop(relayed);

    // A projector given a stream with a gap (positions 1, 2, 4) stops there, loudly.
    let Some(gappy) = database(Backend::Postgres, "split_gap").await else { return };
    gappy_stream(&nats, &query).await;
    let mut stopped = Server::launch(
        &gappy,
        false,
        Launch {
            args: &["--role", "projector", "--nats-url", &nats_url, "--nats-stream", "GAPPY", "--log-format", "json"],
            capture_log: true,
            ..Launch::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = stopped.call(None, Method::GET, "/healthz", None).await;
        if body["projectionFailing"] == true {
            assert_eq!(body["projectionPosition"], 0, "nothing past the gap (one page: nothing at all): {body}");
            break;
        }
        assert!(Instant::now() < deadline, "the projector went on past a gap: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It retries, and stays where it is: it never goes past the gap.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (_, body) = stopped.call(None, Method::GET, "/healthz", None).await;
    assert_eq!((&body["projectionPosition"], &body["projectionFailing"]), (&json!(0), &json!(true)), "{body}");
    let (status, _) = stopped.call(None, Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a projector stuck at a gap is not ready");
    let said = stopped.log_lines();
    assert!(
        said.iter()
            .any(|line| line["code"] == "LOG_GAP" && line["error"].as_str().is_some_and(|e| e.contains("position 3"))),
        "the gap is logged with its code and position: {said:?}"
    );
    stopped.kill();
}
