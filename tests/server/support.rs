//! Runs the real `perpetua` binary against a database of its own and talks to it over HTTP.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// A database for one test: a file in a temporary directory, or a fresh PostgreSQL database.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A database that exists already (another file of a test's database, say).
    pub fn at(url: String) -> TestDb {
        TestDb { url, _dir: None }
    }
}

pub async fn database(backend: Backend, test: &str) -> Option<TestDb> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", dir.path().join("perpetua.db").display());
            Some(TestDb { url, _dir: Some(dir) })
        }
        Backend::Postgres | Backend::MySql => {
            use sqlx::{Connection, Executor};
            let (admin, drop) = if backend == Backend::Postgres {
                let url = std::env::var("PERPETUA_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                (url, " WITH (FORCE)")
            } else {
                let url = std::env::var("PERPETUA_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
                (url, "")
            };
            let name = format!("perpetua_e2e_{test}");
            let statements = [format!("DROP DATABASE IF EXISTS {name}{drop}"), format!("CREATE DATABASE {name}")];
            let created = async {
                if backend == Backend::Postgres {
                    let mut conn = sqlx::PgConnection::connect(&admin).await?;
                    for statement in &statements {
                        conn.execute(statement.as_str()).await?;
                    }
                    conn.close().await
                } else {
                    let mut conn = sqlx::MySqlConnection::connect(&admin).await?;
                    for statement in &statements {
                        conn.execute(statement.as_str()).await?;
                    }
                    conn.close().await
                }
            };
            match created.await {
                Ok(()) => {
                    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                    Some(TestDb { url: format!("{base}/{name}"), _dir: None })
                }
                Err(e) => {
                    let message = format!("{backend:?} is not reachable ({e}) for {backend:?}::{test}");
                    if !skip_unreachable(if backend == Backend::Postgres { "postgres" } else { "mysql" }) {
                        panic!("{message}: start it, or set PERPETUA_SKIP_BACKENDS to skip it");
                    }
                    record_skip(&message);
                    None
                }
            }
        }
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    pub base: String,
    pub child: Child,
    pub client: Client,
    /// Its stderr (the log), when captured.
    pub log: Option<tempfile::NamedTempFile>,
}

/// How a test server is started, beyond its database.
#[derive(Default)]
pub struct Launch<'a> {
    /// Extra arguments of `serve`.
    pub args: &'a [&'a str],
    /// Its working directory (the test's own by default).
    pub cwd: Option<&'a std::path::Path>,
    /// Serve the viewer built into the binary (by default the tests name a directory that
    /// does not exist, so `/` is a 404).
    pub embedded_viewer: bool,
    /// Capture stderr into [`Server::log`] instead of passing it through.
    pub capture_log: bool,
    /// Listen on this `host:port` instead of `127.0.0.1:0`.
    pub listen: Option<&'a str>,
}

impl Server {
    pub fn start(db: &TestDb, demo: bool) -> Server {
        Self::start_with(db, demo, &[])
    }

    pub fn start_with(db: &TestDb, demo: bool, extra: &[&str]) -> Server {
        Self::launch(db, demo, Launch { args: extra, ..Launch::default() })
    }

    pub fn launch(db: &TestDb, demo: bool, launch: Launch) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_perpetua"));
        command
            .args(["serve", "--listen", launch.listen.unwrap_or("127.0.0.1:0"), "--database-url", &db.url])
            .env("PERPETUA_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::piped());
        if !launch.embedded_viewer {
            command.args(["--web-dir", "/nonexistent"]);
        }
        if let Some(cwd) = launch.cwd {
            command.current_dir(cwd);
        }
        let log = launch.capture_log.then(|| tempfile::NamedTempFile::new().expect("a log file"));
        // A log passed through to the test's output says only what went wrong, unless
        // PERPETUA_TEST_SERVER_LOG asks for more (`info`: every request).
        let level = if log.is_some() {
            "info".to_owned()
        } else {
            std::env::var("PERPETUA_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned())
        };
        command.env("RUST_LOG", level);
        // Tests send bursts from one token; the limit is tested on its own (`rate_limit`).
        command.env("PERPETUA_RATE_LIMIT_PER_TOKEN", "0");
        match &log {
            Some(file) => command.stderr(file.reopen().expect("the log file")),
            None => command.stderr(Stdio::inherit()),
        };
        if demo {
            command.arg("--demo");
        }
        command.args(launch.args);
        let mut child = command.spawn().expect("start perpetua serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("the server printed its address").expect("stdout line");
            // A server's address, or a standby's (which listens while it waits for the lease).
            if let Some(rest) = line.split("listening on ").nth(1).or_else(|| line.split("standby on ").nth(1)) {
                break rest.split_whitespace().next().expect("an address").trim_end_matches(':').to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let client = Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Server { base, child, client, log }
    }

    /// The log's lines so far, each parsed as JSON (the server runs with `--log-format json`).
    pub fn log_lines(&self) -> Vec<Value> {
        let file = self.log.as_ref().expect("the log was captured");
        let text = std::fs::read_to_string(file.path()).expect("the log is readable");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}")))
            .collect()
    }

    /// Waits (at most 10 s) for the process to exit by itself; its status, if it did.
    pub async fn exited(&mut self) -> Option<std::process::ExitStatus> {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        let (status, body) = self.call(Some(token), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, body) = self.call(Some(token), Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    pub async fn head(&self) -> u64 {
        let (_, body) = self.call(None, Method::GET, "/healthz", None).await;
        body["headPosition"].as_u64().expect("headPosition")
    }

    /// Waits until the read models have caught up with the head.
    pub async fn settle(&self) {
        for _ in 0..600 {
            let (_, body) = self.call(None, Method::GET, "/healthz", None).await;
            if body["headPosition"] == body["projectionPosition"] && body["projectionFailing"] == false {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the read models did not catch up");
    }

    /// Creates a user; returns (token, accountId).
    pub async fn user(&self, name: &str, role: &str) -> (String, Option<String>) {
        let body = self.post(ADMIN_TOKEN, "/v1/users", json!({ "name": name, "role": role })).await;
        (body["apiToken"].as_str().expect("token").to_owned(), body["accountId"].as_str().map(str::to_owned))
    }

    /// A funded trader.
    pub async fn trader(&self, name: &str, deposit: &str) -> Trader {
        let (token, account) = self.user(name, "trader").await;
        let account = account.expect("a trader has an account");
        self.post(ADMIN_TOKEN, &format!("/v1/accounts/{account}/deposits"), json!({ "amount": deposit })).await;
        Trader { token, account }
    }

    /// Every read model, as the API serves it, in a stable order.
    pub async fn read_models(&self, accounts: &[String]) -> Value {
        let a = ADMIN_TOKEN;
        let mut orders = Vec::new();
        let mut account_docs = Vec::new();
        for account in accounts {
            account_docs.push(self.get(a, &format!("/v1/accounts/{account}")).await);
            let mut page = 1;
            loop {
                let body = self.get(a, &format!("/v1/orders?accountId={account}&limit=100&page={page}")).await;
                orders.extend(body["data"].as_array().cloned().unwrap_or_default());
                if page >= body["totalPages"].as_u64().unwrap_or(0) {
                    break;
                }
                page += 1;
            }
        }
        let markets = self.get(a, "/v1/markets").await;
        let mut trades = Vec::new();
        let mut books = Vec::new();
        for market in markets["data"].as_array().expect("markets") {
            let symbol = market["symbol"].as_str().expect("symbol");
            trades.push(self.get(a, &format!("/v1/markets/{symbol}/trades?limit=1000")).await);
            books.push(self.get(a, &format!("/v1/markets/{symbol}/book?depth=500")).await);
        }
        json!({
            "accounts": account_docs,
            "orders": orders,
            "active": self.get(a, "/v1/orders/active").await,
            "positions": self.get(a, "/v1/positions").await,
            "markets": markets,
            "trades": trades,
            "books": books,
        })
    }

    /// Rebuilds every read model through the API and waits for the swap.
    pub async fn rebuild_all(&self) {
        let before = self.get(ADMIN_TOKEN, "/v1/admin/projections").await;
        let generation = |body: &Value| body["readModels"][0]["generation"].as_u64().unwrap_or(0);
        let old = generation(&before);
        let (status, body) =
            self.call(Some(ADMIN_TOKEN), Method::POST, "/v1/admin/projections/all/rebuild", None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        for _ in 0..600 {
            let now = self.get(ADMIN_TOKEN, "/v1/admin/projections").await;
            let done = now["readModels"].as_array().expect("read models").iter().all(|m| m["rebuilding"].is_null());
            if done && generation(&now) > old {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the rebuild did not finish");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Trader {
    pub token: String,
    pub account: String,
}

pub fn limit(account: &str, symbol: &str, side: &str, price: &str, quantity: &str) -> Value {
    json!({
        "accountId": account, "symbol": symbol, "side": side, "type": "LIMIT", "price": price,
        "quantity": quantity, "leverage": 10, "marginMode": "CROSS", "timeInForce": "GTC",
        "reduceOnly": false, "postOnly": false,
    })
}

/// Every account id of the log (from its export), in order of creation.
pub async fn all_accounts(server: &Server) -> Vec<String> {
    let response =
        server.client.get(format!("{}/v1/export", server.base)).bearer_auth(ADMIN_TOKEN).send().await.expect("export");
    let text = response.text().await.expect("export body");
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["eventType"] == "AccountCreated")
        .filter_map(|e| e["aggregateId"].as_str().map(str::to_owned))
        .collect()
}

#[path = "../common/skip.rs"]
mod skip;
pub use skip::{record_skip, skip_unreachable};

/// The advisory-lock key of the writer lease ("perpetua" in ASCII; the projector's is one more).
pub const WRITER_LEASE_KEY: i64 = 0x7065_7270_6574_7561;

/// Ends, from outside, the PostgreSQL session that holds the writer lease on this test's
/// database, as a lost connection would.
pub async fn end_postgres_lease_session(db: &TestDb) {
    use sqlx::Connection;
    let name = db.url.rsplit('/').next().expect("database name").to_owned();
    let admin = db.url.replace(&format!("/{name}"), "/postgres");
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = $1) \
         AND ((classid::bigint << 32) | objid::bigint) = $2",
    )
    .bind(&name)
    .bind(WRITER_LEASE_KEY)
    .execute(&mut conn)
    .await
    .expect("end the lease's session");
}
