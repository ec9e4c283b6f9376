//! What an operator relies on: a log line per request with its request id, a 5xx that leaks
//! nothing but is logged with its detail, readiness that says why not, complete metrics that
//! `promtool` accepts, compression, CORS, export file names, a host name to listen on, a
//! bounded drain on SIGTERM with live streams open, and the viewer served from inside the
//! binary whatever the working directory.

use crate::support::{self, Launch, Server, TestDb, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The URL of the database that holds the read-model tables (on SQLite a file of its own).
fn read_model_url(db: &TestDb) -> String {
    if db.url.starts_with("sqlite://") {
        format!("{}-read-models.db", db.url)
    } else {
        db.url.clone()
    }
}

/// Waits until `check` holds for a log line, at most 10 s; returns that line.
async fn log_line(server: &Server, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(line) = server.log_lines().into_iter().find(|line| check(line)) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no log line {what}; the log:\n{:#?}", server.log_lines());
}

/// Waits until `/readyz` answers `status`, at most 15 s; returns its body.
async fn readiness(server: &Server, status: StatusCode) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (got, body) = server.call(None, Method::GET, "/readyz", None).await;
        if got == status {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz did not answer {status}: {last}");
}

/// `promtool check metrics` over the exposition text. promtool comes with Debian's
/// `prometheus` package (scripts/setup.sh installs it); without it the test fails, unless
/// `PERPETUA_SKIP_PROMTOOL` says to skip that check (counted apart as a skip).
fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var_os("PERPETUA_SKIP_PROMTOOL").is_some() => {
            support::record_skip(&format!("promtool not run ({e})"));
            return;
        }
        Err(e) => panic!("promtool could not be run ({e}): install Debian's prometheus package"),
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("metrics written to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every metric a panel of the Grafana dashboard queries is one the server exposes.
fn dashboard_matches(exposition: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/perpetua.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).expect("JSON");
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("perpetua_") || word.starts_with("process_") {
                    queried.push(word.to_owned());
                }
            }
        }
    }
    assert!(queried.len() >= 10, "the dashboard queries the server's metrics: {queried:?}");
    for metric in queried {
        let base = ["_bucket", "_sum", "_count"].iter().fold(metric.as_str(), |m, s| m.strip_suffix(s).unwrap_or(m));
        assert!(
            exposition.lines().any(|line| line.starts_with(&format!("# TYPE {base} "))),
            "the dashboard queries {metric}, which /metrics does not have"
        );
    }
}

pub async fn operations(db: TestDb) {
    let args = ["--log-format", "json", "--cors-origin", "https://desk.example"];
    let launch = Launch { args: &args, capture_log: true, listen: Some("localhost:0"), ..Launch::default() };
    let server = Server::launch(&db, false, launch);
    let trader = server.trader("olive", "1000").await;
    // The account is read below without minPosition: the read models must have it first.
    server.settle().await;
    let account_path = format!("/v1/accounts/{}", trader.account);

    // A request id is taken from the client, or made, and echoed.
    let response = server
        .client
        .get(format!("{}{account_path}", server.base))
        .bearer_auth(&trader.token)
        .header("x-request-id", "ops-read-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "ops-read-1");
    let response = server.client.get(format!("{}/healthz", server.base)).send().await.expect("sent");
    let made = response.headers()["x-request-id"].to_str().expect("ASCII").to_owned();
    assert!(made.parse::<uuid::Uuid>().is_ok(), "a made request id is a UUID: {made}");

    // One line per request: method, route template, status, latency, user, request id.
    let line = log_line(&server, "for ops-read-1", |l| l["request_id"] == "ops-read-1").await;
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["route"], "/v1/accounts/{accountId}", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    assert!(line["user_id"].as_str().is_some_and(|u| u.parse::<uuid::Uuid>().is_ok()), "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    // A refused order and a bad token leave their trace too.
    let bad = support::limit(&trader.account, "BTCUSDT", "BUY", "-1", "1");
    let (status, _) = server.call(Some(&trader.token), Method::POST, "/v1/orders", Some(bad)).await;
    assert!(status.is_client_error());
    let (status, _) = server.call(Some("not-a-token-at-all"), Method::GET, &account_path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let client_error = |l: &Value| l["status"].as_u64().is_some_and(|s| (400..500).contains(&s));
    log_line(&server, "for the refused order", |l| l["route"] == "/v1/orders" && client_error(l)).await;
    log_line(&server, "for the bad token", |l| l["route"] == "/v1/accounts/{accountId}" && l["status"] == 401).await;

    // Ready: the database answers, the lease is held, the read models are current.
    let ready = readiness(&server, StatusCode::OK).await;
    assert_eq!(ready["checks"]["writerLease"], "held", "{ready}");
    assert_eq!(ready["checks"]["database"], "ok", "{ready}");

    // A 5xx: the accounts table is gone. The client gets a fixed message, the stable code and
    // the request id; the log gets the driver's words, once, with the same id.
    let projections = server.get(ADMIN_TOKEN, "/v1/admin/projections").await;
    let generation = projections["readModels"]
        .as_array()
        .expect("read models")
        .iter()
        .find(|m| m["name"] == "accounts")
        .and_then(|m| m["generation"].as_u64())
        .expect("the accounts generation");
    let table = format!("rm_accounts_{generation}");
    let tables = TestDb::at(read_model_url(&db));
    crate::execute_sql(&tables, &[&format!("ALTER TABLE {table} RENAME TO ops_hidden")]).await;
    let response = server
        .client
        .get(format!("{}{account_path}", server.base))
        .bearer_auth(&trader.token)
        .header("x-request-id", "ops-fault-1")
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert!(status.is_server_error(), "{status} {text}");
    let body: Value = serde_json::from_str(&text).expect("a JSON body");
    assert_eq!(body["error"]["requestId"], "ops-fault-1", "{body}");
    assert!(body["error"]["code"].as_str().is_some_and(|c| c.chars().all(|c| c.is_ascii_uppercase() || c == '_')));
    for internal in [table.as_str(), "ops_hidden", "no such table", "does not exist", "doesn't exist", "sqlx", "SQL"] {
        assert!(!text.contains(internal), "the 5xx body leaks {internal:?}: {text}");
    }
    let logged =
        log_line(&server, "with the 5xx's detail", |l| l["request_id"] == "ops-fault-1" && l["level"] == "ERROR").await;
    assert!(logged["detail"].as_str().is_some_and(|d| d.contains(&table)), "the log has the detail: {logged}");
    let errors =
        server.log_lines().iter().filter(|l| l["request_id"] == "ops-fault-1" && l["level"] == "ERROR").count();
    assert_eq!(errors, 1, "a 5xx is logged once with its detail");

    // Not ready while the projector cannot write (a deposit makes it try), ready again after.
    server.post(ADMIN_TOKEN, &format!("{account_path}/deposits"), json!({ "amount": "5" })).await;
    let not_ready = readiness(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(not_ready["error"]["code"], "NOT_READY", "{not_ready}");
    assert_eq!(not_ready["checks"]["projectionFailing"], true, "{not_ready}");
    assert!(not_ready["error"]["message"].as_str().is_some_and(|m| m.contains("projector")), "{not_ready}");
    crate::execute_sql(&tables, &[&format!("ALTER TABLE ops_hidden RENAME TO {table}")]).await;
    readiness(&server, StatusCode::OK).await;

    // Metrics: labelled by route and status, commands by type and outcome, refusals by code,
    // process and build; promtool accepts them; the dashboard queries only what exists.
    let response = server.client.get(format!("{}/metrics", server.base)).bearer_auth(ADMIN_TOKEN).send().await;
    let metrics = response.expect("sent").text().await.expect("text");
    for expected in [
        "perpetua_http_requests_total{method=\"GET\",route=\"/v1/accounts/{accountId}\",status=\"200\"}",
        "perpetua_http_requests_total{method=\"GET\",route=\"/v1/accounts/{accountId}\",status=\"401\"}",
        "perpetua_http_request_seconds_bucket{method=\"GET\",route=\"/v1/accounts/{accountId}\",le=\"0.005\"}",
        "perpetua_commands_total{command=\"Deposit\",outcome=\"accepted\"}",
        "perpetua_commands_total{command=\"CreateAccount\",outcome=\"accepted\"}",
        "perpetua_batch_commands_bucket",
        "perpetua_commit_seconds_bucket",
        "perpetua_projection_lag_seconds_bucket",
        "perpetua_stream_clients{stream=\"log\"}",
        "perpetua_writer_lease_held 1",
        "perpetua_build_info{",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(metrics.contains(expected), "/metrics has no {expected}:\n{metrics}");
    }
    promtool_accepts(&metrics);
    dashboard_matches(&metrics);

    // An export is a named file, compressed for a client that accepts gzip.
    let response = server
        .client
        .get(format!("{}/v1/export?fromPosition=1", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let disposition = response.headers()["content-disposition"].to_str().expect("ASCII").to_owned();
    assert!(disposition.starts_with("attachment; filename=\"perpetua-1-") && disposition.ends_with(".jsonl\""));

    // CORS: the named origin may call, another may not.
    for (origin, allowed) in [("https://desk.example", true), ("https://elsewhere.example", false)] {
        let response = server
            .client
            .request(Method::OPTIONS, format!("{}/v1/orders", server.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,idempotency-key")
            .send()
            .await
            .expect("sent");
        let granted = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap_or(""));
        assert_eq!(granted == Some(origin), allowed, "{origin}: {:?}", response.headers());
    }
}

/// Reads a live stream until it ends; returns what it sent. Reports when the first bytes came.
async fn read_stream(server_base: String, ready: tokio::sync::oneshot::Sender<()>) -> String {
    let client = reqwest::Client::new();
    let mut response = client
        .get(format!("{server_base}/v1/events/live?fromPosition=1"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("the stream opened");
    let mut text = String::new();
    let mut ready = Some(ready);
    while let Ok(Some(chunk)) = response.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
    }
    text
}

/// SIGTERM with live streams open and commands on their way: every stream gets a last message
/// and ends, the commands that were answered are in the log, and the process exits 0 well
/// within its bound (the streams do not hold it up); the lease is free for the next server.
pub async fn drain(db: TestDb) {
    const BOUND_SECS: u64 = 5;
    let bound = BOUND_SECS.to_string();
    let server = Server::launch(&db, false, Launch { args: &["--drain-timeout-secs", &bound], ..Launch::default() });
    let trader = server.trader("sasha", "1000").await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let (ready, opened) = tokio::sync::oneshot::channel();
        streams.push(tokio::spawn(read_stream(server.base.clone(), ready)));
        opened.await.expect("the stream sent its first events");
    }
    let deposits: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) =
                (server.client.clone(), format!("{}/v1/accounts/{}/deposits", server.base, trader.account));
            tokio::spawn(async move {
                let sent = client.post(url).bearer_auth(ADMIN_TOKEN).json(&json!({ "amount": "1" })).send().await;
                match sent {
                    Ok(response) => Some(response.status()),
                    Err(_) => None,
                }
            })
        })
        .collect();
    let started = Instant::now();
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill ran");
    assert!(killed.success());
    let mut server = server;
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(BOUND_SECS + 10), "the server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = started.elapsed();
    assert!(status.success(), "the drain ended in order (not by its watchdog): {status}");
    // The bound is a promise of the design (whatever the clients do), not a speed figure.
    assert!(took < Duration::from_secs(BOUND_SECS + 1), "exited {took:?} after SIGTERM, bound {BOUND_SECS} s");
    for stream in streams {
        let text = stream.await.expect("the reader ran");
        assert!(text.contains("SERVER_SHUTTING_DOWN"), "a stream ends with a last message: …{}", tail(&text));
    }
    let mut acknowledged = 0u64;
    for deposit in deposits {
        match deposit.await.expect("the client ran") {
            Some(status) if status.is_success() => acknowledged += 1,
            Some(status) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a refused deposit says why"),
            None => {}
        }
    }
    // The next server starts at once (the lease was released) and holds every answered deposit.
    let next = Server::start(&db, false);
    next.settle().await;
    let account = next.get(ADMIN_TOKEN, &format!("/v1/accounts/{}", trader.account)).await;
    let balance: f64 = account["balance"].as_str().expect("balance").parse().expect("a decimal");
    assert!(
        balance >= 1000.0 + acknowledged as f64 && balance <= 1020.0,
        "{balance} after {acknowledged} answered deposits"
    );
}

fn tail(text: &str) -> &str {
    let start = text.char_indices().rev().nth(300).map_or(0, |(i, _)| i);
    &text[start..]
}

/// The viewer inside the binary: served at `/` from a working directory with no `web/` in it.
pub async fn embedded_viewer(db: TestDb) {
    let built = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/dist/index.html"));
    if !built.is_file() {
        support::record_skip("embedded_viewer: web/dist was not built before the server (scripts/web-build.sh)");
        return;
    }
    let elsewhere = tempfile::tempdir().expect("a directory");
    let launch = Launch { cwd: Some(elsewhere.path()), embedded_viewer: true, ..Launch::default() };
    let server = Server::launch(&db, false, launch);
    let response = server.client.get(format!("{}/", server.base)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().expect("ASCII").starts_with("text/html"));
    let page = response.text().await.expect("the page");
    assert_eq!(page, std::fs::read_to_string(built).expect("index.html"), "the page is the build's");
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a script")
        .to_owned();
    let response = server.client.get(format!("{}{script}", server.base)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK, "{script}");
    assert!(response.headers()["content-type"].to_str().expect("ASCII").contains("javascript"), "{script}");
    // A path of the viewer's own routing gets the page; the API's routes are still the API's.
    let response = server.client.get(format!("{}/streams/somewhere", server.base)).send().await.expect("sent");
    assert_eq!(response.text().await.expect("the page"), page);
    let (status, body) = server.call(None, Method::GET, "/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
}

/// The environment a deployment file gives the server, and the arguments after the binary.
struct Deployment {
    env: Vec<(String, String)>,
    args: Vec<String>,
}

/// `Environment=` lines and `ExecStart=` of the systemd unit.
fn systemd_unit(text: &str) -> Deployment {
    let mut deployment = Deployment { env: Vec::new(), args: Vec::new() };
    for line in text.lines() {
        if let Some(pair) = line.strip_prefix("Environment=") {
            let (name, value) = pair.split_once('=').expect("NAME=value");
            deployment.env.push((name.to_owned(), value.to_owned()));
        } else if let Some(command) = line.strip_prefix("ExecStart=") {
            deployment.args = command.split_whitespace().skip(1).map(str::to_owned).collect();
        }
    }
    deployment
}

/// `ENV` (one `NAME=value` per line, with `\` continuations) and `ENTRYPOINT` + `CMD` of the
/// container recipe.
fn container_recipe(text: &str) -> Deployment {
    let mut deployment = Deployment { env: Vec::new(), args: Vec::new() };
    let mut in_env = false;
    let words = |json: &str| -> Vec<String> { serde_json::from_str(json).expect("a JSON array of words") };
    for line in text.lines() {
        let line = line.trim();
        let body = if let Some(rest) = line.strip_prefix("ENV ") {
            rest
        } else if in_env {
            line
        } else {
            if let Some(cmd) = line.strip_prefix("CMD ") {
                deployment.args.extend(words(cmd));
            }
            continue;
        };
        in_env = body.ends_with('\\');
        let (name, value) = body.trim_end_matches('\\').trim().split_once('=').expect("NAME=value");
        deployment.env.push((name.to_owned(), value.to_owned()));
    }
    deployment
}

/// The `perpetua` service's `environment` map and `command` of the compose file.
fn compose_service(text: &str) -> Deployment {
    let mut deployment = Deployment { env: Vec::new(), args: Vec::new() };
    let service = text.split("\n  perpetua:\n").nth(1).expect("a perpetua service");
    let mut in_env = false;
    for line in service.lines() {
        if !line.starts_with("    ") {
            break;
        }
        if line.starts_with("    environment:") {
            in_env = true;
        } else if let Some(command) = line.trim().strip_prefix("command: ") {
            deployment.args = serde_json::from_str(command).expect("a JSON array of words");
            in_env = false;
        } else if in_env && line.starts_with("      ") {
            let (name, value) = line.trim().split_once(": ").expect("NAME: value");
            deployment.env.push((name.to_owned(), value.trim_matches('"').to_owned()));
        } else {
            in_env = false;
        }
    }
    deployment
}

/// Starts the binary as a deployment file says — its arguments and environment exactly, but
/// for the database (the test's) and the port (a free one) — and checks it is ready and logs
/// as configured.
async fn starts_as_deployed(name: &str, deployment: Deployment, db: &TestDb) {
    assert!(
        deployment.args.first().is_some_and(|a| a == "serve"),
        "{name}: the server is started: {:?}",
        deployment.args
    );
    let names: Vec<&str> = deployment.env.iter().map(|(n, _)| n.as_str()).collect();
    for needed in ["PERPETUA_DATABASE_URL", "PERPETUA_LISTEN", "PERPETUA_LOG_FORMAT"] {
        assert!(names.contains(&needed), "{name} sets {needed}");
    }
    let dir = tempfile::tempdir().expect("a directory");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_perpetua"));
    command
        .args(&deployment.args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in &deployment.env {
        let value = match key.as_str() {
            "PERPETUA_DATABASE_URL" => db.url.clone(),
            "PERPETUA_LISTEN" => "127.0.0.1:0".to_owned(),
            "PERPETUA_ADMIN_TOKEN" => ADMIN_TOKEN.to_owned(),
            _ => value.clone(),
        };
        command.env(key, value);
    }
    let log = tempfile::NamedTempFile::new().expect("a log file");
    command.stdout(std::process::Stdio::piped()).stderr(log.reopen().expect("the log file"));
    let mut child = command.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let base = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("the server printed its address").expect("a line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        base
    })
    .await
    .expect("read the address");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == StatusCode::OK {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().expect("the server exits");
    let text = std::fs::read_to_string(log.path()).expect("the log");
    assert!(ready, "{name}: the server became ready; its log:\n{text}");
    assert!(status.success(), "{name}: SIGTERM drains and exits 0: {status}\n{text}");
    let json = deployment.env.iter().any(|(k, v)| k == "PERPETUA_LOG_FORMAT" && v == "json");
    assert!(json, "{name}: logs for a collector");
    for line in text.lines() {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "{name}: every log line is JSON: {line}");
    }
}

/// The systemd unit, the container recipe and the compose file start the server.
pub async fn deployment_files(db: TestDb) {
    let read = |file: &str| {
        std::fs::read_to_string(format!("{}/../deploy/{file}", env!("CARGO_MANIFEST_DIR"))).expect("a deployment file")
    };
    if db.url.starts_with("postgres") {
        starts_as_deployed("compose.yaml", compose_service(&read("compose.yaml")), &db).await;
    } else {
        starts_as_deployed("perpetua.service", systemd_unit(&read("perpetua.service")), &db).await;
        let again = support::database(support::Backend::Sqlite, "deployment_files_container").await.expect("SQLite");
        starts_as_deployed("Containerfile", container_recipe(&read("Containerfile")), &again).await;
    }
}

/// Per-token rate limits: beyond the rate (and its burst of twice that) a token gets 429
/// `RATE_LIMITED` with `Retry-After`; another token is not held back; public routes are not
/// limited.
pub async fn rate_limit(db: TestDb) {
    let server = Server::launch(&db, false, Launch { args: &["--rate-limit-per-token", "5"], ..Launch::default() });
    let (token, _) = server.user("busy", "auditor").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..30 {
        let response = server
            .client
            .get(format!("{}/v1/orders/active", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned());
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(ok >= 10 && limited > 0 && ok + limited == 30, "a burst of 10, then limited: {statuses:?}");
    let seconds: u64 = retry_after.expect("Retry-After").parse().expect("whole seconds");
    assert!(seconds >= 1, "Retry-After: {seconds}");
    // Another token is not held back by this one; a route without a token is not limited.
    let (other, _) = server.user("calm", "auditor").await;
    let (status, _) = server.call(Some(&other), Method::GET, "/v1/orders/active", None).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..30 {
        let (status, _) = server.call(None, Method::GET, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
    }
}
