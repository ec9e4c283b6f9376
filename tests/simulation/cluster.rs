//! Processes over the one disk: starting a processor (the first start and every restart),
//! watching what it publishes, and the nemesis that crashes it.
//!
//! A crash is abrupt for the clients (their requests in flight to the crashed process get no
//! answer, as when its connections reset) and for the disk (its generation moves on, so the
//! crashed process's journal writes nothing more). The crashed processor itself is not told at
//! once: it runs on as a fenced zombie until its lease is marked lost a little later; its
//! appends are refused, and on half the seeds its reads and snapshot saves too (the real store
//! fences appends only).

use crate::disk;
use crate::rng::Rng;
use crate::sim::{guard, Sim};
use perpetua_server::metrics::Metrics;
use perpetua_server::processor::{self, LeaseState, LoadError, ProcessorHandle, ProcessorOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

/// One process: a processor over the journal of one generation.
pub struct Node {
    /// Its front door.
    pub handle: ProcessorHandle,
    /// Set when it crashed.
    down: Flag,
    /// Its writer lease, marked lost a little after the crash.
    lease: LeaseState,
}

impl Node {
    /// Waits until this process has crashed.
    pub async fn crashed(&self) {
        self.down.wait().await;
    }
}

/// A flag tasks wait for, woken in the order they began to wait. (Tokio's `watch` wakes its
/// waiters in a random order, which would make two runs of one seed differ.)
#[derive(Default)]
pub struct Flag {
    /// Whether it is set.
    set: AtomicBool,
    /// Wakes the waiters when it is set.
    woken: Notify,
}

impl Flag {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.woken.notify_waiters();
    }

    /// Waits until the flag is set.
    pub async fn wait(&self) {
        loop {
            let woken = self.woken.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.set.load(Ordering::SeqCst) {
                return;
            }
            woken.await;
        }
    }
}

/// Starts a processor over the disk's live generation (trying again after a store fault, as a
/// supervisor restarts a server that failed to start) and makes it the running process.
pub async fn start_node(sim: &Arc<Sim>) {
    let journal = sim.journal();
    let lease = LeaseState::default();
    let options = ProcessorOptions { engine_snapshot_every: sim.config.snapshot_every };
    let handle = loop {
        let metrics = Arc::new(Metrics::default());
        match processor::start(journal.clone(), metrics, options.clone(), lease.clone()).await {
            Ok(handle) => break handle,
            Err(LoadError::Store(_)) => {
                sim.count(|c| c.start_failures += 1);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                // Not a fault of the disk: the log does not load. Nothing can run on it.
                sim.violation(format!("generation {}: the processor does not start: {e}", journal.generation()));
                return std::future::pending().await;
            }
        }
    };
    sim.count(|c| c.starts += 1);
    watch_heads(sim.clone(), journal.generation(), handle.head());
    watch_commits(sim.clone(), journal.generation(), handle.subscribe());
    let node = Node { handle, down: Flag::default(), lease };
    *guard(&sim.current) = Some(Arc::new(node));
    sim.started.notify_waiters();
}

/// Checks every head a processor publishes against the disk: never above the committed head
/// (nothing unacknowledged is published as committed), never going back.
fn watch_heads(sim: Arc<Sim>, generation: u64, mut heads: watch::Receiver<processor::Head>) {
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            let position = heads.borrow_and_update().position;
            let committed = disk::lock(&sim.disk).head.last_position;
            if position > committed {
                sim.violation(format!(
                    "generation {generation} published head {position} while the disk's committed head is {committed}"
                ));
            }
            if position < last {
                sim.violation(format!("generation {generation} published head {position} after head {last}"));
            }
            last = position;
            if heads.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Checks every batch a processor announces to live tails: each event is on the disk, with the
/// same hash, at or below the committed head.
fn watch_commits(sim: Arc<Sim>, generation: u64, mut commits: broadcast::Receiver<Arc<processor::Committed>>) {
    tokio::spawn(async move {
        loop {
            let batch = match commits.recv().await {
                Ok(batch) => batch,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let disk = disk::lock(&sim.disk);
            for event in &batch.events {
                let stored = disk.events.get(event.position as usize - 1);
                if stored.is_none_or(|stored| stored.hash != event.hash) || event.position > disk.head.last_position {
                    sim.violation(format!(
                        "generation {generation} announced position {} ({}) which the disk does not hold",
                        event.position, event.event_type
                    ));
                }
            }
        }
    });
}

/// Crashes the running process now and then (after a random while, or at once when an append
/// asks for it) and restarts it after a random downtime, until the clients are done.
pub async fn nemesis(sim: Arc<Sim>, mut rng: Rng) {
    let requests = disk::lock(&sim.disk).crash_requests.clone();
    let mut crashes = 0;
    while crashes < sim.config.crashes {
        let (low, high) = sim.config.crash_gap_ms;
        tokio::select! {
            biased;
            _ = requests.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(rng.between(low, high))) => {}
        }
        if sim.done.load(Ordering::SeqCst) {
            return;
        }
        crash(&sim, &mut rng).await;
        crashes += 1;
        tokio::time::sleep(Duration::from_millis(rng.between(0, sim.config.downtime_ms_max))).await;
        start_node(&sim).await;
    }
}

/// The running process crashes: the disk's generation moves on, its clients lose their
/// requests in flight, and a moment later its lease is marked lost (the zombie stops).
///
/// A third of the crashes begin with the lease lost while the process still runs (its
/// session ended): the processor fences itself and answers what it holds, and what comes
/// after, with an error, until the process exits a moment later.
async fn crash(sim: &Sim, rng: &mut Rng) {
    if rng.chance(333) {
        let running = guard(&sim.current).clone();
        if let Some(node) = running {
            node.lease.lose("the lease's session ended".into());
            sim.count(|c| c.leases_lost += 1);
            tokio::time::sleep(Duration::from_millis(rng.between(0, 50))).await;
        }
    }
    let crashed = guard(&sim.current).take();
    disk::lock(&sim.disk).generation += 1;
    sim.count(|c| c.crashes += 1);
    let Some(node) = crashed else { return };
    node.down.set();
    let lease = node.lease.clone();
    let delay = Duration::from_millis(rng.between(0, 50));
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        lease.lose("the process crashed".into());
    });
}

/// The running process, waiting while it is down.
pub async fn running(sim: &Sim) -> Arc<Node> {
    loop {
        let started = sim.started.notified();
        tokio::pin!(started);
        started.as_mut().enable();
        if let Some(node) = guard(&sim.current).clone() {
            return node;
        }
        started.await;
    }
}
