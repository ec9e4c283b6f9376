//! The simulated disk: the log, its head, the idempotency records and the snapshots in memory,
//! with the guarantees of the real store ([`perpetua_server::store::Store::append`] writes all
//! of a batch or nothing, continuing the head; a recorded key answers a retry), and faults
//! drawn from the run's seed.
//!
//! A process reaches the disk through a [`SimJournal`] made for one generation of the disk.
//! A crash bumps the generation: from then on every operation through an older journal fails
//! and writes nothing, like a fenced writer whose lease another writer has taken. An append
//! checks the generation when it starts and again at its commit point, after its simulated
//! latency, so an append that was sleeping when the crash came cannot land after it.

use crate::rng::Rng;
use perpetua_core::audit::{self, HashChain};
use perpetua_core::event::{StoredEvent, StreamId};
use perpetua_server::processor::Journal;
use perpetua_server::store::{
    Appended, CommandAppend, ExpectedVersion, IdempotencyRecord, KeyRecord, SnapshotRecord, StoreError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// How often each fault strikes (per mille of the operations it applies to) and how long the
/// simulated latencies last.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Appends that fail before writing anything.
    pub append_fails: u64,
    /// Appends that write their batch and then report an error (landed, unconfirmed).
    pub append_lands_unconfirmed: u64,
    /// Reads (head, events, keys, records, snapshots) that fail.
    pub read_fails: u64,
    /// Snapshot saves that fail, half of them after the snapshot was written.
    pub snapshot_fails: u64,
    /// Operations that are slow.
    pub slow: u64,
    /// Longest latency of a slow operation.
    pub slow_ms_max: u64,
    /// Operations that stall.
    pub stalls: u64,
    /// Longest latency of a stalled operation.
    pub stall_ms_max: u64,
    /// Appends during which the process crashes: while the append sleeps before its commit
    /// point, or right after its batch landed.
    pub crash_in_append: u64,
    /// Whether the reads and snapshot saves of a crashed process are refused too. The real
    /// store fences appends only, so a writer that lost its lease still reads and may save a
    /// snapshot late; when this is off the simulation does the same.
    pub fence_reads: bool,
}

/// What the disk did, counted over a run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Appends that reached the commit point of a live generation.
    pub appends: u64,
    /// Batches written.
    pub committed: u64,
    /// Appends failed before writing.
    pub failed_before: u64,
    /// Batches written whose confirmation was lost.
    pub landed_unconfirmed: u64,
    /// Appends answered with an earlier command's idempotency record.
    pub replayed: u64,
    /// Operations through the journal of a crashed generation, refused.
    pub fenced: u64,
    /// Reads and snapshot saves through the journal of a crashed generation, let through.
    pub zombie_operations: u64,
    /// Idempotency records read one by one (retries of keys whose answer is not in memory).
    pub records_read: u64,
    /// Appends that were asleep at their await point when their generation crashed, refused
    /// at the commit point.
    pub fenced_at_commit: u64,
    /// Reads failed.
    pub read_failures: u64,
    /// Snapshots saved.
    pub snapshots_saved: u64,
    /// Snapshot saves failed.
    pub snapshot_failures: u64,
    /// Operations delayed.
    pub delayed: u64,
    /// Crashes asked for from inside an append.
    pub crash_requests: u64,
}

/// The disk's contents and its fault schedule.
pub struct Disk {
    /// The generation of the process that may write; older journals are fenced.
    pub generation: u64,
    /// The log, in position order (position `n` at index `n - 1`).
    pub events: Vec<StoredEvent>,
    /// The committed head.
    pub head: HashChain,
    /// The version of each stream.
    streams: BTreeMap<StreamId, u64>,
    /// Idempotency records by key.
    pub keys: BTreeMap<String, IdempotencyRecord>,
    /// Every snapshot saved (one per aggregate and version).
    pub snapshots: Vec<SnapshotRecord>,
    /// When set, no fault is drawn any more (the final checks run on a quiet disk).
    pub quiet: bool,
    /// The fault rates of the run.
    faults: Faults,
    /// The sequence faults are drawn from.
    rng: Rng,
    /// Counts of what happened.
    pub tally: Tally,
    /// Batches of a live generation that the store's rules refused: each one means the writer
    /// sent what it should never send (it decided on a state the log does not have).
    pub refusals: Vec<String>,
    /// Woken when an append asks for a crash; the nemesis listens.
    pub crash_requests: Arc<Notify>,
}

/// A disk shared by every journal.
pub type SharedDisk = Arc<Mutex<Disk>>;

/// Locks the disk (a panic elsewhere does not make it unreadable for the report).
pub fn lock(disk: &SharedDisk) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What an operation does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any read.
    Read,
    /// An append of a batch.
    Append,
    /// A snapshot saved.
    SaveSnapshot,
}

/// The fault drawn for one operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// It does what it is asked.
    Proceed,
    /// It fails and writes nothing.
    FailBefore,
    /// It writes, then fails (the caller cannot tell whether it landed).
    LandThenFail,
}

/// When an append asks for a crash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// Not during this append.
    Never,
    /// While it sleeps before its commit point: it must then write nothing.
    WhileAsleep,
    /// Right after its batch was written.
    AfterLanding,
}

/// The fault schedule of one operation.
struct Plan {
    /// Its latency.
    delay_ms: u64,
    /// Whether it fails.
    fate: Fate,
    /// Whether the process crashes during it.
    crash: Crash,
}

impl Disk {
    /// An empty disk at generation 1 with `faults` drawn from `rng`.
    pub fn new(faults: Faults, rng: Rng) -> SharedDisk {
        Arc::new(Mutex::new(Disk {
            generation: 1,
            events: Vec::new(),
            head: HashChain::default(),
            streams: BTreeMap::new(),
            keys: BTreeMap::new(),
            snapshots: Vec::new(),
            quiet: false,
            faults,
            rng,
            tally: Tally::default(),
            refusals: Vec::new(),
            crash_requests: Arc::new(Notify::new()),
        }))
    }

    /// The error of an operation of `kind` through the journal of `generation`, if that is
    /// not the live one and the operation is fenced.
    fn fenced(&mut self, generation: u64, kind: Kind) -> Option<StoreError> {
        if generation == self.generation {
            return None;
        }
        if kind != Kind::Append && !self.faults.fence_reads {
            self.tally.zombie_operations += 1;
            return None;
        }
        self.tally.fenced += 1;
        Some(StoreError::LeaseLost(format!(
            "the process of generation {generation} crashed; generation {} owns the disk",
            self.generation
        )))
    }

    /// Draws the faults of one operation.
    fn plan(&mut self, kind: Kind) -> Plan {
        if self.quiet {
            return Plan { delay_ms: 0, fate: Fate::Proceed, crash: Crash::Never };
        }
        let f = self.faults.clone();
        let rng = &mut self.rng;
        let mut delay_ms = if rng.chance(f.stalls) {
            rng.between(50, f.stall_ms_max)
        } else if rng.chance(f.slow) {
            rng.between(1, f.slow_ms_max)
        } else {
            0
        };
        let fate = match kind {
            Kind::Read if rng.chance(f.read_fails) => Fate::FailBefore,
            Kind::Append if rng.chance(f.append_fails) => Fate::FailBefore,
            Kind::Append if rng.chance(f.append_lands_unconfirmed) => Fate::LandThenFail,
            Kind::SaveSnapshot if rng.chance(f.snapshot_fails) => rng.pick(&[Fate::FailBefore, Fate::LandThenFail]),
            _ => Fate::Proceed,
        };
        let crash = match kind {
            Kind::Append if rng.chance(f.crash_in_append) => rng.pick(&[Crash::WhileAsleep, Crash::AfterLanding]),
            _ => Crash::Never,
        };
        if crash == Crash::WhileAsleep {
            delay_ms = delay_ms.max(1);
        }
        if delay_ms > 0 {
            self.tally.delayed += 1;
        }
        Plan { delay_ms, fate, crash }
    }

    /// Asks the nemesis to crash the running process now.
    fn request_crash(&mut self) {
        self.tally.crash_requests += 1;
        self.crash_requests.notify_one();
    }

    /// Appends a batch with the store's rules: checked on its own first, then against the
    /// recorded keys, then against the head; all of it is written, or nothing.
    fn append(&mut self, commands: &[CommandAppend]) -> Result<Appended, StoreError> {
        let expected = check_batch(commands)?;
        for (index, command) in commands.iter().enumerate() {
            let Some(idempotency) = &command.idempotency else { continue };
            if let Some(record) = self.keys.get(&idempotency.key) {
                if record.fingerprint != idempotency.fingerprint {
                    return Err(StoreError::IdempotencyKeyReused { key: idempotency.key.clone() });
                }
                self.tally.replayed += 1;
                return Ok(Appended::Replayed { command: index, record: record.clone() });
            }
        }
        if let Some(first) = commands.iter().flat_map(|c| &c.events).next() {
            if first.position != self.head.last_position + 1 {
                self.check_versions(&expected)?;
                return Err(StoreError::HeadMoved {
                    expected_head: first.position - 1,
                    actual_head: self.head.last_position,
                });
            }
            if first.prev_hash != self.head.last_hash {
                return Err(StoreError::InvalidBatch(format!(
                    "position {} does not continue the stored chain",
                    first.position
                )));
            }
        }
        self.check_versions(&expected)?;
        let mut position = self.head.last_position;
        for command in commands {
            for event in &command.events {
                let stream = StreamId { aggregate_type: event.aggregate_type, aggregate_id: event.aggregate_id };
                self.streams.insert(stream, event.version);
                self.head = HashChain { last_position: event.position, last_hash: event.hash };
                self.events.push(event.clone());
            }
            position = command.events.last().map_or(position, |e| e.position);
            if let Some(idempotency) = &command.idempotency {
                let record = IdempotencyRecord {
                    key: idempotency.key.clone(),
                    fingerprint: idempotency.fingerprint,
                    outcome: idempotency.outcome.clone(),
                    position,
                };
                self.keys.insert(idempotency.key.clone(), record);
            }
        }
        self.tally.committed += 1;
        Ok(Appended::Committed { head: self.head })
    }

    /// Every stream of the batch is at the version just before the batch's first event of it.
    fn check_versions(&self, expected: &BTreeMap<StreamId, u64>) -> Result<(), StoreError> {
        for (stream, before) in expected {
            let actual = self.streams.get(stream).copied().unwrap_or(0);
            if actual != *before {
                let expected = ExpectedVersion::before(before + 1);
                return Err(StoreError::VersionConflict { stream: *stream, expected, actual });
            }
        }
        Ok(())
    }

    /// Up to `limit` events from position `from`.
    fn read_all(&self, from: u64, limit: u32) -> Vec<StoredEvent> {
        let start = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX).min(self.events.len());
        let end = start.saturating_add(limit as usize).min(self.events.len());
        self.events[start..end].to_vec()
    }

    /// The keys recorded after position `after`, in position order.
    fn idempotency_keys(&self, after: u64) -> Vec<KeyRecord> {
        let mut records: Vec<KeyRecord> = self
            .keys
            .values()
            .filter(|record| record.position > after)
            .map(|record| KeyRecord {
                key: record.key.clone(),
                fingerprint: record.fingerprint,
                position: record.position,
            })
            .collect();
        records.sort_by_key(|record| record.position);
        records
    }

    /// The snapshot of an aggregate with the highest version at or below `version`.
    fn load_snapshot(&self, aggregate_type: &str, aggregate_id: &str, version: Option<u64>) -> Option<SnapshotRecord> {
        self.snapshots
            .iter()
            .filter(|s| s.aggregate_type == aggregate_type && s.aggregate_id == aggregate_id)
            .filter(|s| version.is_none_or(|version| s.version <= version))
            .max_by_key(|s| s.version)
            .cloned()
    }

    /// Saves a snapshot, replacing one of the same aggregate and version.
    fn save_snapshot(&mut self, snapshot: &SnapshotRecord) {
        let same = |s: &SnapshotRecord| {
            s.aggregate_type == snapshot.aggregate_type
                && s.aggregate_id == snapshot.aggregate_id
                && s.version == snapshot.version
        };
        self.snapshots.retain(|s| !same(s));
        self.snapshots.push(snapshot.clone());
        self.tally.snapshots_saved += 1;
    }
}

/// The checks the store makes of a batch before it reads anything: distinct keys, contiguous
/// positions, linked hashes that match their bytes, contiguous stream versions. Returns the
/// version each stream must be at before the batch.
fn check_batch(commands: &[CommandAppend]) -> Result<BTreeMap<StreamId, u64>, StoreError> {
    let invalid = |what: String| Err(StoreError::InvalidBatch(what));
    let mut keys = BTreeSet::new();
    for idempotency in commands.iter().filter_map(|c| c.idempotency.as_ref()) {
        if !keys.insert(idempotency.key.as_str()) {
            return invalid(format!("idempotency key {:?} appears twice in one batch", idempotency.key));
        }
    }
    let mut versions: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut expected = BTreeMap::new();
    let mut previous: Option<&StoredEvent> = None;
    for event in commands.iter().flat_map(|c| &c.events) {
        match previous {
            Some(prev) if event.position != prev.position + 1 || event.prev_hash != prev.hash => {
                return invalid(format!("position {} does not follow position {}", event.position, prev.position));
            }
            None if event.position == 0 => return invalid("positions start at 1".into()),
            _ => {}
        }
        if audit::chain_hash(&event.prev_hash, event) != event.hash {
            return invalid(format!("the hash of position {} does not match its bytes", event.position));
        }
        let stream = StreamId { aggregate_type: event.aggregate_type, aggregate_id: event.aggregate_id };
        match versions.get_mut(&stream) {
            Some(last) if event.version == *last + 1 => *last = event.version,
            Some(last) => return invalid(format!("{stream}: version {} follows version {last}", event.version)),
            None if event.version == 0 => return invalid(format!("{stream}: versions start at 1")),
            None => {
                versions.insert(stream, event.version);
                expected.insert(stream, event.version - 1);
            }
        }
        previous = Some(event);
    }
    Ok(expected)
}

/// The disk as one generation's process sees it.
#[derive(Clone)]
pub struct SimJournal {
    /// The disk.
    disk: SharedDisk,
    /// The generation of the process it belongs to.
    generation: u64,
}

impl SimJournal {
    /// A journal for the disk's live generation.
    pub fn live(disk: &SharedDisk) -> SimJournal {
        let generation = lock(disk).generation;
        SimJournal { disk: disk.clone(), generation }
    }

    /// The generation this journal was made for.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Checks the generation and draws the operation's faults, then sleeps its latency.
    async fn begin(&self, kind: Kind) -> Result<Plan, StoreError> {
        let plan = {
            let mut disk = lock(&self.disk);
            if let Some(fenced) = disk.fenced(self.generation, kind) {
                return Err(fenced);
            }
            let plan = disk.plan(kind);
            if plan.crash == Crash::WhileAsleep {
                disk.request_crash();
            }
            plan
        };
        if plan.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
        }
        Ok(plan)
    }

    /// Runs a read at its commit point: fenced if the generation crashed meanwhile, failed if
    /// the plan says so.
    async fn read<T>(&self, what: &str, read: impl FnOnce(&Disk) -> T) -> Result<T, StoreError> {
        let plan = self.begin(Kind::Read).await?;
        let mut disk = lock(&self.disk);
        if let Some(fenced) = disk.fenced(self.generation, Kind::Read) {
            return Err(fenced);
        }
        if plan.fate == Fate::FailBefore {
            disk.tally.read_failures += 1;
            return Err(injected(&format!("the read of {what} failed")));
        }
        Ok(read(&disk))
    }
}

/// An injected error, as the store reports a failed I/O.
fn injected(what: &str) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("simulated fault: {what}")))
}

impl Journal for SimJournal {
    async fn head(&self) -> Result<HashChain, StoreError> {
        self.read("the head", |disk| disk.head).await
    }

    async fn read_all(&self, from: u64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.read("events", |disk| disk.read_all(from, limit)).await
    }

    async fn append(&self, commands: &[CommandAppend]) -> Result<Appended, StoreError> {
        let plan = self.begin(Kind::Append).await?;
        let mut disk = lock(&self.disk);
        if let Some(fenced) = disk.fenced(self.generation, Kind::Append) {
            // Asleep at its await point when the crash came: nothing lands after a crash.
            disk.tally.fenced_at_commit += 1;
            return Err(fenced);
        }
        disk.tally.appends += 1;
        if plan.fate == Fate::FailBefore {
            disk.tally.failed_before += 1;
            return Err(injected("the append failed before writing"));
        }
        let appended = disk.append(commands);
        match &appended {
            Ok(Appended::Committed { .. }) => {
                if plan.crash == Crash::AfterLanding {
                    disk.request_crash();
                }
                if plan.fate == Fate::LandThenFail {
                    disk.tally.landed_unconfirmed += 1;
                    return Err(injected("the batch was written but its confirmation was lost"));
                }
            }
            Ok(Appended::Replayed { command, record }) => {
                let refusal = format!(
                    "generation {}: command {command} of the batch was committed before under key {:?}",
                    self.generation, record.key
                );
                disk.refusals.push(refusal);
            }
            Err(refused) => {
                let refusal = format!("generation {}: {refused} ({})", self.generation, refused.code());
                disk.refusals.push(refusal);
            }
        }
        appended
    }

    async fn idempotency_keys(&self, after: u64) -> Result<Vec<KeyRecord>, StoreError> {
        self.read("idempotency keys", |disk| disk.idempotency_keys(after)).await
    }

    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let record = self.read("an idempotency record", |disk| disk.keys.get(key).cloned()).await;
        lock(&self.disk).tally.records_read += 1;
        record
    }

    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: Option<u64>,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        self.read("a snapshot", |disk| disk.load_snapshot(aggregate_type, aggregate_id, version)).await
    }

    async fn save_snapshots(&self, snapshots: &[SnapshotRecord]) -> Result<(), StoreError> {
        let plan = self.begin(Kind::SaveSnapshot).await?;
        let mut disk = lock(&self.disk);
        if let Some(fenced) = disk.fenced(self.generation, Kind::SaveSnapshot) {
            return Err(fenced);
        }
        if plan.fate == Fate::FailBefore {
            disk.tally.snapshot_failures += 1;
            return Err(injected("the snapshot was not saved"));
        }
        snapshots.iter().for_each(|snapshot| disk.save_snapshot(snapshot));
        if plan.fate == Fate::LandThenFail {
            disk.tally.snapshot_failures += 1;
            return Err(injected("the snapshot was saved but its confirmation was lost"));
        }
        Ok(())
    }
}
