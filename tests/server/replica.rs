//! Issue 12, item 1: the query side on a PostgreSQL read replica. A primary and a hot standby
//! of the test's own (initdb, then `pg_basebackup -R` streaming from it), on free ports, the
//! standby applying what it receives 200 ms late (`recovery_min_apply_delay`) so that every
//! command's position is past the replica's head when it is asked for at once.
//!
//! On the primary a `--role writer`; a `--role projector` reading the log from the replica and
//! writing the read models on the primary (`--read-models-url`); a `--role query` on the
//! replica alone. Checked: the query server, which can write nothing, answers reads of
//! commands made a moment ago on the writer with `minPosition` (it waits for the replica, then
//! for the projector); it verifies the chain from the replica; `perpetua relay` publishes the
//! whole log from the replica to NATS; and a store is not migrated on
//! a replica: one whose schema is not this build's is refused with `REPLICA_SCHEMA_MISMATCH`.

use super::relay::{check, relay, Nats};
use super::support::{limit, record_skip, skip_unreachable, Launch, Server, TestDb, ADMIN_TOKEN};
use serde_json::json;
use sqlx::{Connection as _, Executor as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How late the standby applies the primary's commits.
const APPLY_DELAY: &str = "200ms";

/// The newest PostgreSQL server binaries installed (Debian's `/usr/lib/postgresql/N/bin`).
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A primary and its streaming standby, each a server process of the test's own in a
/// temporary directory; both stopped (immediately) when dropped.
struct Replicated {
    bin: PathBuf,
    dir: tempfile::TempDir,
    primary: u16,
    replica: u16,
}

impl Replicated {
    fn start() -> Option<Replicated> {
        let Some(bin) = postgres_bin() else {
            let message = "PostgreSQL's server binaries (initdb) are not installed, for replica::*".to_owned();
            assert!(
                skip_unreachable("postgres"),
                "{message}: install Debian's postgresql, or set PERPETUA_SKIP_BACKENDS"
            );
            record_skip(&message);
            return None;
        };
        let dir = tempfile::tempdir().expect("a directory");
        let free = || std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
        let (primary, replica) = (free(), free());
        let cluster = Replicated { bin, dir, primary, replica };
        // PostgreSQL refuses to run as root: as root, its files are the postgres user's.
        if is_root() {
            cluster.run("chown", &["postgres:postgres", &cluster.dir.path().display().to_string()], false);
        }
        let data = cluster.data("primary");
        cluster.pg("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        cluster.configure("primary", primary, "");
        cluster.pg_ctl("primary", "start");
        let standby = cluster.data("replica");
        let port = primary.to_string();
        cluster.pg(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", &standby, "-R", "-X", "stream"],
        );
        cluster.configure("replica", replica, &format!("recovery_min_apply_delay = '{APPLY_DELAY}'\n"));
        cluster.pg_ctl("replica", "start");
        Some(cluster)
    }

    fn data(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Its port and sockets, appended to the configuration (the later line wins).
    fn configure(&self, name: &str, port: u16, extra: &str) {
        let conf = Path::new(&self.data(name)).join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nshared_buffers = 32MB\n{extra}",
            self.dir.path().display()
        ));
        std::fs::write(&conf, text).expect("postgresql.conf written");
    }

    /// `pg_ctl ACTION` on the cluster `name`, its log beside it; "stop" stops it at once.
    fn pg_ctl_args(&self, name: &str, action: &'static str) -> Vec<String> {
        let log = self.dir.path().join(format!("{name}.log")).display().to_string();
        let mut args = vec!["-D".to_owned(), self.data(name), "-l".to_owned(), log, "-w".to_owned(), action.to_owned()];
        if action == "stop" {
            args.extend(["-m".to_owned(), "immediate".to_owned()]);
        }
        args
    }

    fn pg_ctl(&self, name: &str, action: &'static str) {
        let args = self.pg_ctl_args(name, action);
        self.pg("pg_ctl", &args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// A PostgreSQL program, as the postgres user when this is root.
    fn pg(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program).display().to_string();
        self.run(&path, args, is_root());
    }

    /// `program`, run as the postgres user when asked, in the cluster's directory.
    fn command(&self, program: &str, as_postgres: bool) -> Command {
        let mut command = if as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", program]);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&str], as_postgres: bool) {
        let output = self.command(program, as_postgres).args(args).output().expect("the program runs");
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn url(port: u16, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{database}")
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        for name in ["replica", "primary"] {
            let mut command = self.command(&pg_ctl, is_root());
            let _ = command.args(self.pg_ctl_args(name, "stop")).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Opens the store at `url`, retrying while the replica has not replayed what it needs (10 s).
async fn open_when_replayed(url: &str) -> perpetua_server::store::Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match perpetua_server::store::Store::open(&perpetua_server::store::StoreOptions::new(url)).await {
            Ok(store) => return store,
            Err(e) => assert!(Instant::now() < deadline, "the replica's store did not open: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn role(db: &TestDb, args: &[&str]) -> Server {
    Server::launch(db, false, Launch { args, ..Launch::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_side_on_a_read_replica() {
    let Some(cluster) = Replicated::start() else { return };
    let mut admin = sqlx::PgConnection::connect(&Replicated::url(cluster.primary, "postgres")).await.expect("primary");
    admin.execute("CREATE DATABASE perpetua").await.expect("a database");
    let primary = TestDb::at(Replicated::url(cluster.primary, "perpetua"));
    let replica = TestDb::at(Replicated::url(cluster.replica, "perpetua"));
    let writer = role(&primary, &["--role", "writer"]);
    let trader = writer.trader("alice", "1000").await;
    // The replica has the schema the writer made (and the projector's registry) once it has
    // replayed them: a query server or projector started before would be refused.
    drop(open_when_replayed(&replica.url).await);
    let projector = role(&replica, &["--role", "projector", "--read-models-url", &primary.url]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while perpetua_server::db::Db::open(&replica.url, 1)
        .await
        .expect("the replica")
        .fetch("SELECT name FROM read_models", &[])
        .await
        .map_or(true, |rows| rows.is_empty())
    {
        assert!(Instant::now() < deadline, "the projector's registry did not reach the replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let query = role(&replica, &["--role", "query"]);

    // A deposit on the writer, read at once on the query server: its position is past what the
    // replica has applied (200 ms late), so the read waits for the replica, then for the
    // projector (which reads the log from the replica too).
    let account = format!("/v1/accounts/{}", trader.account);
    let mut waits = Vec::new();
    for round in 1..=10u32 {
        let deposit = writer.post(ADMIN_TOKEN, &format!("{account}/deposits"), json!({ "amount": "1" })).await;
        let position = deposit["position"].as_u64().expect("the command's position");
        let asked = Instant::now();
        let read = query.get(ADMIN_TOKEN, &format!("{account}?minPosition={position}")).await;
        waits.push(asked.elapsed());
        let balance: rust_decimal::Decimal = read["balance"].as_str().expect("a balance").parse().expect("a decimal");
        assert_eq!(balance, rust_decimal::Decimal::from(1000 + round), "round {round}: {read}");
    }
    waits.sort();
    println!("minPosition wait on a replica {APPLY_DELAY} late, 10 reads: p50 {:?}, max {:?}", waits[5], waits[9]);
    assert!(waits[0] > Duration::from_millis(50), "each read waited for the replica: {waits:?}");
    // An order too, and the chain verified from the replica's copy of the log.
    let order =
        writer.post(&trader.token, "/v1/orders", limit(&trader.account, "BTCUSDT", "BUY", "40000", "0.01")).await;
    let at = order["position"].as_u64().expect("position");
    let orders = query.get(ADMIN_TOKEN, &format!("/v1/orders?accountId={}&minPosition={at}", trader.account)).await;
    assert_eq!(orders["total"], 1, "{orders}");
    let verified = query.get(ADMIN_TOKEN, "/v1/audit/verify").await;
    assert_eq!(verified["verified"], true, "{verified}");
    assert!(verified["checked"].as_u64() >= Some(at), "{verified}");

    // The relay reads the log from the replica too: the stream holds it all, once, in order.
    if let Some(nats) = Nats::start() {
        let mut relayed = relay(&replica.url, &nats);
        let head = writer.head().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = check(&replica.url, &nats, "PERPETUA_EVENTS");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            if output.status.success() && text.contains(&format!("positions 1 to {head} each once")) {
                break;
            }
            assert!(Instant::now() < deadline, "the relay on the replica did not reach {head}: {text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = relayed.kill();
        let _ = relayed.wait();
    }

    // A database on the replica with none of the schema: not migrated (it cannot be), refused.
    admin.execute("CREATE DATABASE unmigrated").await.expect("a database");
    let unmigrated = Replicated::url(cluster.replica, "unmigrated");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let opened = perpetua_server::store::Store::open(&perpetua_server::store::StoreOptions::new(&unmigrated)).await;
        match opened {
            Err(e) if e.code() == "REPLICA_SCHEMA_MISMATCH" => break e,
            other => {
                assert!(Instant::now() < deadline, "the unmigrated replica database: {other:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(refused.to_string().contains("read-only replica whose schema is at migration 0"), "{refused}");
    drop((writer, projector, query));
}
