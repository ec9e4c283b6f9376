//! One simulated run: the configuration a seed draws (swarm testing: each seed gets its own
//! mix and rate of faults, so calm and stormy runs both occur), the state the tasks share, and
//! the run itself — genesis, concurrent clients and the nemesis, a quiet final round, checks.

use crate::checks;
use crate::clients::{self, Intent};
use crate::cluster::{self, Node};
use crate::disk::{self, Disk, Faults, SharedDisk, SimJournal};
use crate::rng::Rng;
use perpetua_server::processor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest a run may take, in simulated time, before it counts as stuck (a writer that never
/// answers again, a client that is never acknowledged).
const RUN_LIMIT: Duration = Duration::from_secs(30 * 60);

/// What a seed chose.
#[derive(Clone, Debug)]
pub struct Config {
    /// Concurrent clients, each with an account of its own.
    pub clients: usize,
    /// Intents each client sends after opening and funding its account.
    pub intents_per_client: usize,
    /// Share of intents sent with an idempotency key (per mille).
    pub keyed: u64,
    /// Crashes the nemesis causes at most.
    pub crashes: usize,
    /// Time between crashes, in ms.
    pub crash_gap_ms: (u64, u64),
    /// Longest time a crashed process stays down, in ms.
    pub downtime_ms_max: u64,
    /// The processor's engine snapshot interval, in events.
    pub snapshot_every: u64,
    /// How long a client waits for an answer before it gives up on the attempt, in ms.
    pub client_timeout_ms: u64,
    /// Longest pause of a client between intents, in ms.
    pub think_ms_max: u64,
    /// The disk's faults.
    pub faults: Faults,
}

impl Config {
    /// The configuration of a run, drawn from its sequence.
    pub fn draw(rng: &mut Rng) -> Config {
        let faults = Faults {
            append_fails: rng.pick(&[0, 20, 80]),
            append_lands_unconfirmed: rng.pick(&[0, 20, 80]),
            read_fails: rng.pick(&[0, 10, 40]),
            snapshot_fails: rng.pick(&[0, 100]),
            slow: rng.pick(&[0, 200, 600]),
            slow_ms_max: rng.pick(&[3, 20]),
            stalls: rng.pick(&[0, 10]),
            stall_ms_max: 400,
            crash_in_append: rng.pick(&[0, 10, 40]),
            fence_reads: rng.chance(500),
        };
        Config {
            clients: rng.between(2, 6) as usize,
            intents_per_client: rng.between(15, 50) as usize,
            keyed: rng.pick(&[500, 800, 1_000]),
            crashes: rng.between(0, 4) as usize,
            crash_gap_ms: (20, rng.pick(&[300, 1_000])),
            downtime_ms_max: 100,
            snapshot_every: rng.pick(&[5, 13, 40]),
            client_timeout_ms: rng.pick(&[400, 2_000]),
            think_ms_max: rng.pick(&[5, 30]),
            faults,
        }
    }
}

/// What happened in a run besides the disk's own tally.
#[derive(Clone, Debug, Default)]
pub struct Events {
    /// Crashes.
    pub crashes: u64,
    /// Crashes that began with the lease lost while the process ran.
    pub leases_lost: u64,
    /// Processors started (the first one included).
    pub starts: u64,
    /// Starts that failed on a store fault and were tried again.
    pub start_failures: u64,
    /// Attempts a client gave up on after its timeout.
    pub timeouts: u64,
    /// Attempts cut off by a crash.
    pub cut: u64,
    /// Attempts answered with an error.
    pub errors: u64,
    /// Intents acknowledged.
    pub acknowledged: u64,
    /// Intents never acknowledged (unkeyed ones that met a fault; they are not retried).
    pub unacknowledged: u64,
    /// Retries of an acknowledged intent, and concurrent duplicates.
    pub duplicates: u64,
    /// Requests that reused an acknowledged key for another request.
    pub conflicts: u64,
}

/// The state a run's tasks share.
pub struct Sim {
    /// The run's seed.
    pub seed: u64,
    /// What the seed chose.
    pub config: Config,
    /// The disk.
    pub disk: SharedDisk,
    /// The running process, `None` while it is down.
    pub current: Mutex<Option<Arc<Node>>>,
    /// Woken when a process starts.
    pub started: Notify,
    /// Every intent, by id.
    pub intents: Mutex<Vec<Intent>>,
    /// Broken promises, in the order they were seen.
    pub violations: Mutex<Vec<String>>,
    /// Counts.
    pub events: Mutex<Events>,
    /// Set when the clients are done: the nemesis stops.
    pub done: AtomicBool,
    /// The sequence new tasks fork theirs from.
    rng: Mutex<Rng>,
}

/// Locks a mutex, ignoring poisoning (a panicked task must not hide the report).
pub fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sim {
    /// Records a broken promise.
    pub fn violation(&self, what: String) {
        guard(&self.violations).push(what);
    }

    /// Counts something.
    pub fn count(&self, what: impl FnOnce(&mut Events)) {
        what(&mut guard(&self.events));
    }

    /// A sequence of its own for a new task.
    pub fn fork_rng(&self) -> Rng {
        guard(&self.rng).fork()
    }

    /// A journal for the disk's live generation.
    pub fn journal(&self) -> SimJournal {
        SimJournal::live(&self.disk)
    }
}

/// What a passing run reports.
#[derive(Debug)]
pub struct Report {
    /// The disk's tally.
    pub tally: disk::Tally,
    /// The run's counts.
    pub events: Events,
    /// Events in the log.
    pub log_len: u64,
    /// A digest of the log without its timestamps (event types, streams, versions, payloads
    /// left out) and of every answer: equal digests mean the same run.
    pub digest: String,
}

impl Report {
    /// The run's counts, by name.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let (tally, events) = (&self.tally, &self.events);
        vec![
            ("events", self.log_len),
            ("acknowledged intents", events.acknowledged),
            ("unacknowledged intents", events.unacknowledged),
            ("crashes", events.crashes),
            ("leases lost before a crash", events.leases_lost),
            ("starts failed", events.start_failures),
            ("client timeouts", events.timeouts),
            ("attempts cut by a crash", events.cut),
            ("attempts answered with an error", events.errors),
            ("concurrent or repeated deliveries", events.duplicates),
            ("keys reused for another request", events.conflicts),
            ("appends", tally.appends),
            ("batches committed", tally.committed),
            ("appends failed before writing", tally.failed_before),
            ("batches landed unconfirmed", tally.landed_unconfirmed),
            ("appends fenced at their commit point", tally.fenced_at_commit),
            ("operations of crashed processes refused", tally.fenced),
            ("operations of crashed processes let through", tally.zombie_operations),
            ("reads failed", tally.read_failures),
            ("idempotency records read", tally.records_read),
            ("snapshots saved", tally.snapshots_saved),
            ("snapshot saves failed", tally.snapshot_failures),
            ("operations delayed", tally.delayed),
            ("crashes asked for by an append", tally.crash_requests),
        ]
    }
}

/// Runs one seed to its end and checks it; `Err` lists what broke.
pub async fn run(seed: u64) -> Result<Report, String> {
    let mut rng = Rng::new(seed);
    let config = Config::draw(&mut rng);
    let disk = Disk::new(config.faults.clone(), rng.fork());
    let sim = Arc::new(Sim {
        seed,
        config: config.clone(),
        disk,
        current: Mutex::new(None),
        started: Notify::new(),
        intents: Mutex::new(Vec::new()),
        violations: Mutex::new(Vec::new()),
        events: Mutex::new(Events::default()),
        done: AtomicBool::new(false),
        rng: Mutex::new(rng),
    });
    match tokio::time::timeout(RUN_LIMIT, drive(&sim)).await {
        Ok(()) => {
            disk::lock(&sim.disk).quiet = true;
            let loaded = processor::load_engine(&sim.journal()).await;
            checks::check(&sim, loaded);
        }
        Err(_) => sim.violation(format!(
            "the run did not finish within {RUN_LIMIT:?} of simulated time: a writer or a client is stuck"
        )),
    }
    let violations = guard(&sim.violations).clone();
    if !violations.is_empty() {
        return Err(describe(&sim, &violations));
    }
    let (tally, log_len) = {
        let disk = disk::lock(&sim.disk);
        (disk.tally.clone(), disk.events.len() as u64)
    };
    let events = guard(&sim.events).clone();
    Ok(Report { tally, events, log_len, digest: checks::digest(&sim) })
}

/// The workload under faults, then a quiet final round.
async fn drive(sim: &Arc<Sim>) {
    cluster::start_node(sim).await;
    clients::genesis(sim).await;
    let nemesis = tokio::spawn(cluster::nemesis(sim.clone(), sim.fork_rng()));
    let tasks: Vec<_> = (0..sim.config.clients)
        .map(|index| tokio::spawn(clients::client(sim.clone(), index, sim.fork_rng())))
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            sim.violation(format!("a client task failed: {e}"));
        }
    }
    sim.done.store(true, Ordering::SeqCst);
    let crash_requests = disk::lock(&sim.disk).crash_requests.clone();
    crash_requests.notify_one();
    if let Err(e) = nemesis.await {
        sim.violation(format!("the nemesis failed: {e}"));
    }
    disk::lock(&sim.disk).quiet = true;
    clients::final_round(sim).await;
}

/// The failure report of a run: its configuration, what broke, and what happened.
fn describe(sim: &Sim, violations: &[String]) -> String {
    /// Violations listed in full; the rest are counted.
    const SHOWN: usize = 20;
    let mut text = format!("{} broken promise(s)", violations.len());
    for violation in violations.iter().take(SHOWN) {
        text.push_str("\n  - ");
        text.push_str(violation);
    }
    if violations.len() > SHOWN {
        text.push_str(&format!("\n  … and {} more", violations.len() - SHOWN));
    }
    let tally = disk::lock(&sim.disk).tally.clone();
    text.push_str(&format!("\n  config: {:?}\n  disk: {tally:?}\n  run: {:?}", sim.config, guard(&sim.events)));
    text
}
