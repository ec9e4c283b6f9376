//! Issue 12, item 3: the log on NATS JetStream. A NATS server of the test's own (file storage,
//! `sync_interval: always` where the server knows it — 2.10 and later; Debian 12's 2.9.10 does
//! not — on a free port, so it can be killed and restarted), a writer on
//! PostgreSQL under load, and `perpetua relay` between them. The relay is SIGKILLed and
//! restarted three times mid-stream, then NATS is SIGKILLed and restarted under it. Checked,
//! by `perpetua relay --check` (a consumer reading the stream back): every position from 1 to
//! the head once and in order, the chain verified over the bytes on NATS, the last one the
//! store's. A stream with a gap fails that check loudly.

use super::support::{database, record_skip, skip_unreachable, Backend, Server, ADMIN_TOKEN};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A NATS server with JetStream on disk in a directory of the test's own.
pub(super) struct Nats {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    pub(super) fn start() -> Option<Nats> {
        if !std::path::Path::new(NATS_SERVER).exists() {
            let message = format!("{NATS_SERVER} is not installed, for relay::the_log_on_jetstream");
            assert!(skip_unreachable("nats"), "{message}: install Debian's nats-server, or set PERPETUA_SKIP_BACKENDS");
            record_skip(&message);
            return None;
        }
        let dir = tempfile::tempdir().expect("a directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port();
        let mut nats = Nats { child: Self::spawn(dir.path(), port), port, dir };
        nats.wait_ready();
        Some(nats)
    }

    fn spawn(dir: &std::path::Path, port: u16) -> Child {
        let config = dir.join("nats.conf");
        let store = dir.join("jetstream");
        let sync = if fsync_setting_known() { "  sync_interval: always\n" } else { "" };
        std::fs::write(
            &config,
            format!("listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n{sync}}}\n", store.display()),
        )
        .expect("the NATS configuration");
        Command::new(NATS_SERVER)
            .args(["-c", &config.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(super) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(self.dir.path(), self.port);
        self.wait_ready();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether this nats-server has the `sync_interval` setting (2.10 and later).
fn fsync_setting_known() -> bool {
    let output = Command::new(NATS_SERVER).arg("--version").output().expect("nats-server --version");
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.trim().trim_start_matches("nats-server: v");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 10)
}

/// `perpetua relay` from the store at `database_url` to `nats`, its summary line on stdout.
pub(super) fn relay(database_url: &str, nats: &Nats) -> Child {
    Command::new(env!("CARGO_BIN_EXE_perpetua"))
        .args(["relay", "--database-url", database_url, "--nats-url", &nats.url()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start perpetua relay")
}

pub(super) fn check(database_url: &str, nats: &Nats, stream: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perpetua"))
        .args(["relay", "--check", "--database-url", database_url, "--nats-url", &nats.url(), "--stream", stream])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run perpetua relay --check")
}

/// The stream `GAPPY` on `nats`, holding the first four events of `server`'s log but the
/// third (positions 1, 2 and 4, each with its position header); and the log, exported.
pub(super) async fn gappy_stream(nats: &Nats, server: &Server) -> (async_nats::jetstream::Context, String) {
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "GAPPY".into(),
        subjects: vec!["gappy.>".into()],
        ..Default::default()
    })
    .await
    .expect("a stream");
    let log = server.client.get(format!("{}/v1/export", server.base)).bearer_auth(ADMIN_TOKEN).send().await;
    let log = log.expect("export").text().await.expect("the log");
    for line in log.lines().take(4).enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| l.to_owned()) {
        let position = serde_json::from_str::<serde_json::Value>(&line).expect("an event")["position"].to_string();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(perpetua_server::relay::POSITION_HEADER, position.as_str());
        let ack = js.publish_with_headers("gappy.Order", headers, line.into()).await.expect("published");
        ack.await.expect("stored");
    }
    (js, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_on_jetstream() {
    let Some(db) = database(Backend::Postgres, "relay").await else { return };
    let Some(mut nats) = Nats::start() else { return };
    let server = Server::start(&db, true);
    let (_, account) = server.user("relayed", "trader").await;
    let account = account.expect("an account");
    // Load: deposits from four clients until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, base, account, stop) = (server.client.clone(), server.base.clone(), account.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let url = format!("{base}/v1/accounts/{account}/deposits");
                let sent = client.post(url).bearer_auth(ADMIN_TOKEN).json(&json!({ "amount": "1" })).send().await;
                assert!(sent.expect("the server answers").status().is_success());
            }
        }));
    }

    let mut relayed = relay(&db.url, &nats);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let _ = relayed.kill(); // SIGKILL, mid-stream
        let _ = relayed.wait();
        relayed = relay(&db.url, &nats);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    nats.restart(); // the bus goes away under the relay (SIGKILL) and comes back
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load client");
    }
    let head = server.head().await;

    // The relay catches up with the head; then its summary, on SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(60);
    let checked = loop {
        let output = check(&db.url, &nats, "PERPETUA_EVENTS");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && text.contains(&format!("positions 1 to {head} each once")) {
            break text;
        }
        assert!(Instant::now() < deadline, "the stream did not reach the head {head}: {text} {:?}", output.stderr);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(checked.contains("chain verified") && checked.contains("(the store's)"), "{checked}");
    let pid = relayed.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill ran").success());
    let stdout = relayed.stdout.take().expect("stdout");
    let summary: Vec<String> = BufReader::new(stdout).lines().map_while(Result::ok).collect();
    assert!(relayed.wait().expect("the relay exits").success(), "{summary:?}");
    println!("relay: head {head}; {checked}; last relay: {summary:?}");
    // The last relay resumed after the stream's last message: it re-published at most what
    // was in flight (a page), not the log from position 1 (which the stream's duplicate
    // window would have hidden).
    let duplicates: u64 = summary
        .iter()
        .find_map(|line| line.split(" resyncs, ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a duplicates count in {summary:?}"));
    assert!(duplicates < 1_000, "the last relay re-published {duplicates} events");

    // A consumer fails loudly on a gap: a stream holding positions 1, 2 and 4.
    let (js, log) = gappy_stream(&nats, &server).await;
    let gappy = check(&db.url, &nats, "GAPPY");
    let error = String::from_utf8_lossy(&gappy.stderr);
    assert!(!gappy.status.success(), "a stream with a gap was accepted");
    assert!(error.contains("a gap or a repeat at position 3"), "{error}");

    // A stream of another log (its event at position 2 is not this store's) stops the relay
    // with an error instead of being continued.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "FOREIGN".into(),
        subjects: vec!["foreign.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("a stream");
    for (i, line) in log.lines().take(2).enumerate() {
        let mut event: serde_json::Value = serde_json::from_str(line).expect("an event");
        if i == 1 {
            event["hash"] = serde_json::Value::String("00".repeat(32));
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(perpetua_server::relay::POSITION_HEADER, (i + 1).to_string().as_str());
        let ack = js.publish_with_headers("foreign.Order", headers, event.to_string().into()).await.expect("published");
        ack.await.expect("stored");
    }
    let mut foreign = Command::new(env!("CARGO_BIN_EXE_perpetua"))
        .args(["relay", "--database-url", &db.url, "--nats-url", &nats.url(), "--stream", "FOREIGN"])
        .args(["--subject-prefix", "foreign"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start perpetua relay");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = foreign.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the relay went on with another log's stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut error = String::new();
    std::io::Read::read_to_string(&mut foreign.stderr.take().expect("stderr"), &mut error).expect("stderr");
    assert!(!status.success(), "the relay accepted another log's stream");
    assert!(error.contains("is not the store's"), "{error}");
}
