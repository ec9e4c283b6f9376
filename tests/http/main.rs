//! The HTTP contract as data: the authorization table, the malformed-input table and the
//! idempotency cases (`tests/http/*.json`), run in-process against the server's router (axum's
//! `oneshot`, no socket) over a fresh store, on SQLite, PostgreSQL and MariaDB. The spawned
//! binary suite (`tests/server`) keeps what needs a process: crashes, durability, drains and
//! connections.

#[path = "../server/support.rs"]
#[allow(dead_code)]
mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use perpetua_server::server::{ServeOptions, Started};
use perpetua_server::store::{Store, StoreOptions};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use support::{Backend, ADMIN_TOKEN};
use tower::ServiceExt;

macro_rules! on_every_backend {
    ($($suite:ident),+) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $suite() { super::$suite(super::Backend::Sqlite).await } )+ }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $suite() { super::$suite(super::Backend::Postgres).await } )+ }
        mod mysql { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $suite() { super::$suite(super::Backend::MySql).await } )+ }
    };
}

on_every_backend!(authorization, malformed_input, idempotency);

/// A server assembled in-process, with an owner trader (a resting order, and one with
/// clientOrderId `auth-1`), another trader and an auditor.
struct App {
    started: Started,
    tokens: HashMap<&'static str, String>,
    vars: Vec<(&'static str, String)>,
    _db: support::TestDb,
}

/// One answer: status and JSON body (`null` when the body is not JSON or never ends).
struct Answer {
    status: StatusCode,
    body: Value,
}

impl App {
    async fn start(backend: Backend, suite: &str) -> Option<App> {
        let db = support::database(backend, &format!("http_{suite}")).await?;
        let store = Store::open(&StoreOptions::new(&db.url)).await.expect("the store opens");
        let options = ServeOptions {
            standby: false,
            serving: Default::default(),
            listen: String::new(),
            demo: false,
            viewer: perpetua_server::http::Viewer::Embedded,
            cors: Default::default(),
            rate_limit_per_token: 0,
            processor: Default::default(),
            limits: Default::default(),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            nats: None,
            read_models_url: None,
            checkpoints: Default::default(),
        };
        let started = perpetua_server::server::start(store, &options).await.expect("the server starts");
        let mut app = App { started, tokens: HashMap::new(), vars: Vec::new(), _db: db };
        app.tokens.insert("admin", ADMIN_TOKEN.to_owned());
        let (auditor, _) = app.user("auditor", "auditor").await;
        app.tokens.insert("auditor", auditor);
        for name in ["owner", "other"] {
            let (token, account) = app.user(name, "trader").await;
            let deposit = app
                .send(
                    "admin",
                    Method::POST,
                    &format!("/v1/accounts/{account}/deposits"),
                    Some(json!({ "amount": "100000" }).to_string()),
                    &[],
                )
                .await;
            assert_eq!(deposit.status, StatusCode::CREATED, "{}", deposit.body);
            app.tokens.insert(name, token);
            if name == "owner" {
                app.vars.push(("{account}", account));
            }
        }
        let placed = app.send("owner", Method::POST, "/v1/orders", Some(app.order(&json!({})).to_string()), &[]).await;
        app.vars.push(("{order}", placed.body["order"]["orderId"].as_str().expect("an order id").to_owned()));
        let tagged = app
            .send(
                "owner",
                Method::POST,
                "/v1/orders",
                Some(app.order(&json!({ "clientOrderId": "auth-1" })).to_string()),
                &[],
            )
            .await;
        app.vars.push(("{taggedAt}", tagged.body["position"].to_string()));
        Some(app)
    }

    /// Creates a user; its token and account.
    async fn user(&self, name: &str, role: &str) -> (String, String) {
        let created = self
            .send("admin", Method::POST, "/v1/users", Some(json!({ "name": name, "role": role }).to_string()), &[])
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let token = created.body["apiToken"].as_str().expect("a token").to_owned();
        (token, created.body["accountId"].as_str().unwrap_or_default().to_owned())
    }

    /// The owner's standard LIMIT order (a resting bid), with `changes` merged in (a null
    /// removes the field).
    fn order(&self, changes: &Value) -> Value {
        let mut order = json!({
            "accountId": self.var("{account}"), "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
            "price": "40000", "quantity": "0.01", "leverage": 10, "marginMode": "CROSS", "timeInForce": "GTC",
            "reduceOnly": false, "postOnly": false,
        });
        for (field, value) in changes.as_object().into_iter().flatten() {
            match value {
                Value::Null => order.as_object_mut().expect("an object").remove(field).map(drop).unwrap_or(()),
                value => order[field] = value.clone(),
            }
        }
        order
    }

    fn var(&self, name: &str) -> String {
        self.vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// `text` with the placeholders filled in.
    fn fill(&self, text: &str) -> String {
        self.vars.iter().fold(text.to_owned(), |text, (name, value)| text.replace(name, value))
    }

    /// A case's body: `raw` as it is, `order` merged into the standard order, or `body` with
    /// `"$order"` and `{"$merge": …}` expanded and placeholders filled.
    fn body_of(&self, case: &Value) -> Option<String> {
        if let Some(raw) = case["raw"].as_str() {
            return Some(self.fill(raw));
        }
        if case.get("order").is_some() {
            return Some(self.order(&case["order"]).to_string());
        }
        case.get("body").map(|body| self.expand(body).to_string())
    }

    fn expand(&self, value: &Value) -> Value {
        match value {
            Value::String(s) if s == "$order" => self.order(&json!({})),
            Value::String(s) => Value::String(self.fill(s)),
            Value::Object(map) if map.contains_key("$merge") => self.order(&map["$merge"]),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.expand(v))).collect()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.expand(v)).collect()),
            other => other.clone(),
        }
    }

    /// Sends one request to the router, as `caller` (a role of the fixture, a raw token with
    /// `token:`, or `anonymous`).
    async fn send(
        &self,
        caller: &str,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        let token = match caller {
            "anonymous" => None,
            caller => Some(caller.strip_prefix("token:").map_or_else(|| self.tokens[caller].clone(), str::to_owned)),
        };
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.map_or_else(Body::empty, Body::from)).expect("a request");
        let response = self.started.app.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let streaming =
            response.headers().get("content-type").is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        let body = if streaming {
            Value::Null
        } else {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Answer { status, body }
    }

    async fn head(&self) -> u64 {
        self.started.processor.head().borrow().position
    }

    async fn stop(self) {
        self.started.processor.drain().await;
        self.started.release_lease().await;
    }
}

fn cases(file: &str) -> Vec<Value> {
    let path = format!("{}/../tests/http/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let document: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    document["cases"].as_array().unwrap_or_else(|| panic!("{path} has no cases")).clone()
}

fn method_of(case: &Value) -> Method {
    case["method"].as_str().expect("a method").parse().expect("an HTTP method")
}

/// `(status, code)` of a case's expectation: a status, or `[status, code]`.
fn expected(value: &Value, default: (u16, Option<&str>)) -> (u16, Option<String>) {
    match value {
        Value::Null => (default.0, default.1.map(str::to_owned)),
        Value::Number(status) => (status.as_u64().expect("a status") as u16, None),
        Value::Array(pair) => (pair[0].as_u64().expect("a status") as u16, pair[1].as_str().map(str::to_owned)),
        other => panic!("an expectation is a status or [status, code], not {other}"),
    }
}

async fn authorization(backend: Backend) {
    let Some(app) = App::start(backend, "authorization").await else { return };
    let table = cases("authorization.json");
    // The table covers every route that exists, and nothing else.
    let document = perpetua_server::http::openapi_document();
    let mut routes = BTreeSet::new();
    for (path, methods) in document["paths"].as_object().expect("paths") {
        for method in methods.as_object().expect("methods").keys() {
            routes.insert(format!("{} {path}", method.to_ascii_uppercase()));
        }
    }
    let covered: BTreeSet<String> = table.iter().map(|c| c["route"].as_str().expect("a route").to_owned()).collect();
    assert_eq!(routes, covered, "tests/http/authorization.json must cover exactly the routes of /openapi.json");

    const ROLES: [&str; 4] = ["owner", "other", "auditor", "admin"];
    for case in &table {
        let route = case["route"].as_str().expect("a route");
        let (method, _) = route.split_once(' ').expect("METHOD /path");
        let method: Method = method.parse().expect("a method");
        let path = app.fill(case["path"].as_str().expect("a path"));
        let body = app.body_of(case);
        let ask = async |caller: &str| {
            let answer = app.send(caller, method.clone(), &path, body.clone(), &[]).await;
            (answer.status.as_u16(), answer.body["error"]["code"].as_str().map(str::to_owned))
        };
        let allowed: [bool; 4] = match case["allowed"].as_str().expect("allowed") {
            "public" => {
                assert_eq!(ask("anonymous").await, (200, None), "{route} without a token");
                continue;
            }
            "owner" => [true, false, false, false],
            "traders" => [true, true, false, false],
            "users" => [true, true, true, true],
            "owner+staff" => [true, false, true, true],
            "staff" => [false, false, true, true],
            "admin" => [false, false, false, true],
            other => panic!("{route}: unknown rule {other}"),
        };
        for (caller, code) in [
            ("anonymous", "UNAUTHENTICATED"),
            ("token:not-a-token", "INVALID_TOKEN"),
            ("token:pp_0000000000000000000000000000000000000000000000000000000000000000", "INVALID_TOKEN"),
        ] {
            assert_eq!(ask(caller).await, (401, Some(code.to_owned())), "{route} as {caller}");
        }
        let ok = expected(&case["answer"], (200, None));
        let other = expected(&case["otherTrader"], (403, Some("FORBIDDEN")));
        let staff_route = !allowed[0] && !allowed[1];
        // Denied callers first, so that allowed calls with effects come last.
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by_key(|i| allowed[*i]);
        for i in order {
            let want = match (allowed[i], i) {
                (true, _) => ok.clone(),
                (false, 1) if !staff_route => other.clone(),
                (false, _) => (403, Some("FORBIDDEN".to_owned())),
            };
            assert_eq!(ask(ROLES[i]).await, want, "{route} as the {}", ROLES[i]);
        }
    }
    app.stop().await;
}

/// A message in the API's words: no Rust type names.
fn assert_api_words(context: &str, message: &str) {
    for rust in ["u32", "u64", "i64", "struct ", "enum ", "Decimal", "NewOrder", "Symbol", "a sequence", "a map"] {
        assert!(!message.contains(rust), "{context}: {message:?} names {rust:?}");
    }
}

async fn malformed_input(backend: Backend) {
    let Some(app) = App::start(backend, "malformed").await else { return };
    let head = app.head().await;
    for case in cases("malformed.json") {
        let caller = case["caller"].as_str().unwrap_or("owner");
        let path = app.fill(case["path"].as_str().expect("a path"));
        let headers: Vec<(&str, &str)> = case["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str(), value.as_str().expect("a header value")))
            .collect();
        let answer = app.send(caller, method_of(&case), &path, app.body_of(&case), &headers).await;
        let context = format!("{case}: {}", answer.body);
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{context}");
        assert_eq!(answer.body["error"]["code"], case["code"], "{context}");
        let message = answer.body["error"]["message"].as_str().expect("a message");
        assert!(!message.is_empty(), "{context}");
        assert_api_words(&context, message);
        assert!(answer.body["error"]["requestId"].is_string(), "every error names its request: {context}");
    }
    assert_eq!(app.head().await, head, "no event was written");
    app.stop().await;
}

async fn idempotency(backend: Backend) {
    let Some(app) = App::start(backend, "idempotency").await else { return };
    for case in cases("idempotency.json") {
        let name = case["name"].as_str().expect("a name");
        let caller = case["caller"].as_str().unwrap_or("owner");
        let key = case["key"].as_str().expect("a key");
        let path = app.fill(case["path"].as_str().expect("a path"));
        let body = app.body_of(&case);
        let times = case["times"].as_u64().expect("times") as usize;
        let before = app.head().await;
        let method = method_of(&case);
        let headers = [("idempotency-key", key)];
        let send = || app.send(caller, method.clone(), &path, body.clone(), &headers);
        let answers: Vec<Answer> = if case["concurrently"] == json!(true) {
            futures_util::future::join_all((0..times).map(|_| send())).await
        } else {
            let mut answers = Vec::new();
            for _ in 0..times {
                answers.push(send().await);
            }
            answers
        };
        // Identical but for the request's own id, which every error answer names.
        let answers: Vec<Answer> = answers
            .into_iter()
            .map(|mut a| {
                if let Some(error) = a.body.get_mut("error").and_then(Value::as_object_mut) {
                    error.remove("requestId");
                }
                a
            })
            .collect();
        let first = &answers[0];
        assert_eq!(first.status.as_u16() as u64, case["status"].as_u64().expect("a status"), "{name}: {}", first.body);
        for answer in &answers {
            assert_eq!((answer.status, &answer.body), (first.status, &first.body), "{name}: identical answers");
        }
        let events = case["events"].as_u64().expect("events");
        assert_eq!(app.head().await, before + events, "{name}: {events} events in all, whatever the retries");
        if events > 0 {
            assert_eq!(first.body["position"].as_u64(), Some(before + events), "{name}: the answer's position");
        }
        if let Some(conflict) = case.get("conflict") {
            let other = app.body_of(conflict);
            assert_ne!(other, body, "{name}: the conflicting body differs");
            let refused = app.send(caller, method_of(&case), &path, other, &[("idempotency-key", key)]).await;
            assert_eq!(refused.status, StatusCode::CONFLICT, "{name}: {}", refused.body);
            assert_eq!(refused.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED", "{name}");
            assert_eq!(app.head().await, before + events, "{name}: the refused reuse writes nothing");
        }
    }
    app.stop().await;
}
