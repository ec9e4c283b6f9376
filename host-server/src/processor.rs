//! The command processor: the single writer. One task owns the in-memory engine; commands
//! queue on a channel, are decided one after another against that state, and the events of a
//! whole batch are appended in one transaction (group commit, one fsync). Only then is any
//! command of the batch answered. If the commit fails, none is acknowledged and the engine is
//! rebuilt from the store, so memory never runs ahead of the log.

use crate::metrics::Metrics;
use crate::store::{
    Appended, CommandAppend, Idempotency, SnapshotRecord, Store, StoreError, ENGINE_SNAPSHOT_ID, ENGINE_SNAPSHOT_TYPE,
};
use perpetua_core::audit::{Hash, HashChain};
use perpetua_core::event::{AggregateId, AggregateType, StoredEvent, StreamId};
use perpetua_core::ids::{AccountId, OrderId, PositionId};
use perpetua_core::snapshot::{AggregateSnapshot, SNAPSHOT_FORMAT_VERSION};
use perpetua_core::time::Timestamp;
use perpetua_core::timetravel::AggregateState;
use perpetua_core::{Command, CommandContext, CommandError, Decision, Exchange, Metadata};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Most commands decided into one transaction.
pub const MAX_BATCH: usize = 1_000;
/// Every this many versions of a stream, its state is saved as a snapshot (time travel starts
/// from the newest one at or below the version asked for).
pub const AGGREGATE_SNAPSHOT_EVERY: u64 = 100;

/// The answer to a command, as the HTTP API sends it; stored with an idempotency key so a
/// retry gets exactly this.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

/// Turns the engine's decision into the reply, while the processor still holds the engine
/// state right after the command.
pub type Render = Box<dyn FnOnce(&Exchange, &Decision) -> Reply + Send>;

/// A command's idempotency key (already scoped to its user) and the digest of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key as stored.
    pub key: String,
    /// SHA-256 of the request (method, path, body).
    pub fingerprint: Hash,
}

/// A command handed to the processor.
pub struct Submission {
    /// What to do.
    pub command: Command,
    /// Who asked (user, correlation, client address).
    pub metadata: Metadata,
    /// The `Idempotency-Key`, if any.
    pub idempotency: Option<IdempotencyKey>,
    /// How to answer an accepted command.
    pub render: Render,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Outcome, ProcessorError>>,
}

/// What became of a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Committed (or answered from its idempotency record): the reply and the global position
    /// of its last event (the head at the time when it wrote nothing).
    Done {
        /// The reply.
        reply: Reply,
        /// `position` of the reply.
        position: u64,
    },
    /// Refused by the engine; nothing was written.
    Refused(CommandError),
}

/// Why a command got no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// The idempotency key was used before with another request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyKeyReused(String),
    /// The batch could not be committed; nothing of it was written.
    #[error("the event store did not commit the command: {0}")]
    Store(String),
    /// The processor has stopped.
    #[error("the command processor is not running")]
    Stopped,
    /// This writer lost its lease: nothing of the batch was written and it takes no more
    /// commands.
    #[error("this server lost the writer lease and takes no more commands: {0}")]
    LeaseLost(String),
}

impl ProcessorError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ProcessorError::IdempotencyKeyReused(_) => "IDEMPOTENCY_KEY_REUSED",
            ProcessorError::Store(_) => "STORE_UNAVAILABLE",
            ProcessorError::Stopped => "UNAVAILABLE",
            ProcessorError::LeaseLost(_) => "WRITER_LEASE_LOST",
        }
    }
}

/// The log's committed head, as the processor last committed it.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    /// Last committed global position.
    pub position: u64,
    /// When it was committed (for the projection-lag metric).
    pub committed_at: Instant,
}

/// One committed batch, as live tails receive it. An encoding of its events (the live
/// stream's frames) is made once, by the first subscriber that asks, and shared by all the
/// others: a commit costs the same however many tails follow the log.
#[derive(Debug)]
pub struct Committed {
    /// The events, in position order.
    pub events: Vec<StoredEvent>,
    encoded: std::sync::OnceLock<Vec<axum::body::Bytes>>,
}

impl Committed {
    /// A batch just committed.
    pub fn new(events: Vec<StoredEvent>) -> Self {
        Self { events, encoded: std::sync::OnceLock::new() }
    }

    /// Each event encoded by `encode`, in the order of [`Committed::events`]; made on the
    /// first call (every subscriber passes the same encoding).
    pub fn encoded(&self, encode: fn(&StoredEvent) -> axum::body::Bytes) -> &[axum::body::Bytes] {
        self.encoded.get_or_init(|| self.events.iter().map(encode).collect())
    }
}

/// The processor's front door, cloned into every request handler.
#[derive(Clone)]
pub struct ProcessorHandle {
    queue: mpsc::Sender<Submission>,
    head: watch::Receiver<Head>,
    events: broadcast::Sender<Arc<Committed>>,
}

impl ProcessorHandle {
    /// Queues a command and waits for its outcome (after its batch is committed).
    pub async fn submit(
        &self,
        command: Command,
        metadata: Metadata,
        idempotency: Option<IdempotencyKey>,
        render: Render,
    ) -> Result<Outcome, ProcessorError> {
        let (reply, answer) = oneshot::channel();
        let submission = Submission { command, metadata, idempotency, render, reply };
        self.queue.send(submission).await.map_err(|_| ProcessorError::Stopped)?;
        answer.await.map_err(|_| ProcessorError::Stopped)?
    }

    /// The committed head, updated after every commit.
    pub fn head(&self) -> watch::Receiver<Head> {
        self.head.clone()
    }

    /// Every committed batch of events, in order (for live tails).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.events.subscribe()
    }
}

/// Settings of the processor.
#[derive(Clone, Debug)]
pub struct ProcessorOptions {
    /// Take an engine snapshot after this many events since the last one.
    pub engine_snapshot_every: u64,
}

impl Default for ProcessorOptions {
    fn default() -> Self {
        Self { engine_snapshot_every: 100_000 }
    }
}

/// Whether this writer still holds its lease: `None` while it does, the reason once it was
/// lost. Set by the lease monitor or by the processor itself (a commit refused for a lost
/// lease); once set, the processor commits nothing more and the server exits.
#[derive(Clone, Debug)]
pub struct LeaseState {
    lost: Arc<watch::Sender<Option<String>>>,
}

impl Default for LeaseState {
    fn default() -> Self {
        Self { lost: Arc::new(watch::channel(None).0) }
    }
}

impl LeaseState {
    /// Records that the lease was lost (the first reason is kept).
    pub fn lose(&self, reason: String) {
        self.lost.send_if_modified(|lost| match lost {
            None => {
                *lost = Some(reason);
                true
            }
            Some(_) => false,
        });
    }

    /// Why the lease was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Waits until the lease is lost; returns the reason.
    pub async fn wait_lost(&self) -> String {
        let mut watch = self.lost.subscribe();
        let reason = match watch.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        };
        reason
    }
}

/// Rebuilds the engine from the newest engine snapshot plus the tail of the log, and returns
/// it with the chain head it continues.
pub async fn load_engine(store: &Store) -> Result<(Exchange, HashChain), String> {
    let fail = |e: StoreError| format!("{e} ({})", e.code());
    let head = store.head().await.map_err(fail)?;
    let snapshot = store.load_snapshot(ENGINE_SNAPSHOT_TYPE, ENGINE_SNAPSHOT_ID, None).await.map_err(fail)?;
    let mut exchange = match snapshot {
        Some(record) if record.position <= head.last_position => Exchange::from_snapshot_json(&record.state)
            .map_err(|e| format!("the engine snapshot at position {} does not load: {e}", record.position))?,
        _ => Exchange::new(),
    };
    let mut from = exchange.last_position() + 1;
    while from <= head.last_position {
        let page = store.read_all(from, 10_000).await.map_err(fail)?;
        if page.is_empty() {
            break;
        }
        for stored in &page {
            let envelope = stored.decode().map_err(|e| format!("position {}: {e} ({})", stored.position, e.code()))?;
            exchange.apply(&envelope);
        }
        from = exchange.last_position() + 1;
    }
    if exchange.last_position() != head.last_position {
        return Err(format!(
            "the log ends at position {} but its head says {}",
            exchange.last_position(),
            head.last_position
        ));
    }
    Ok((exchange, head))
}

/// Saves a snapshot of the whole engine at its last position.
pub async fn save_engine_snapshot(store: &Store, exchange: &Exchange) -> Result<(), StoreError> {
    let state = serde_json::to_string(&exchange.snapshot()).expect("engine snapshots serialize");
    store
        .save_snapshot(&SnapshotRecord {
            aggregate_type: ENGINE_SNAPSHOT_TYPE.into(),
            aggregate_id: ENGINE_SNAPSHOT_ID.into(),
            version: exchange.last_position(),
            position: exchange.last_position(),
            format_version: SNAPSHOT_FORMAT_VERSION,
            state,
            taken_at: exchange.last_timestamp(),
        })
        .await
}

/// Starts the processor task over `store` (whose writer lease the caller holds, and reports
/// the loss of in `lease`).
pub async fn start(
    store: Store,
    metrics: Arc<Metrics>,
    options: ProcessorOptions,
    lease: LeaseState,
) -> Result<ProcessorHandle, String> {
    let (exchange, chain) = load_engine(&store).await?;
    let (queue, inbox) = mpsc::channel(8 * MAX_BATCH);
    let (head_tx, head) = watch::channel(Head { position: chain.last_position, committed_at: Instant::now() });
    let (events, _) = broadcast::channel(1_024);
    let last_engine_snapshot = exchange.last_position();
    metrics.log_head.set(chain.last_position);
    let snapshots = SnapshotWriter::start(store.clone(), metrics.clone());
    let processor = Processor {
        snapshots,
        store,
        exchange,
        chain,
        metrics,
        options,
        head: head_tx,
        events: events.clone(),
        last_engine_snapshot,
        lease,
    };
    tokio::spawn(processor.run(inbox));
    Ok(ProcessorHandle { queue, head, events })
}

struct Processor {
    store: Store,
    exchange: Exchange,
    chain: HashChain,
    metrics: Arc<Metrics>,
    options: ProcessorOptions,
    head: watch::Sender<Head>,
    events: broadcast::Sender<Arc<Committed>>,
    last_engine_snapshot: u64,
    lease: LeaseState,
    snapshots: SnapshotWriter,
}

/// A decided command waiting for its batch's commit.
struct Pending {
    reply: oneshot::Sender<Result<Outcome, ProcessorError>>,
    result: Result<Outcome, ProcessorError>,
    /// Other submissions of the same batch with the same key and request: they get the same.
    followers: Vec<oneshot::Sender<Result<Outcome, ProcessorError>>>,
}

impl Processor {
    async fn run(mut self, mut inbox: mpsc::Receiver<Submission>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = inbox.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.process(std::mem::take(&mut batch)).await;
            if let Some(reason) = self.lease.lost() {
                // Fenced: answer whatever is still queued, take nothing more.
                inbox.close();
                while let Ok(queued) = inbox.try_recv() {
                    let _ = queued.reply.send(Err(ProcessorError::LeaseLost(reason.clone())));
                }
                return;
            }
        }
    }

    /// Now, in milliseconds, never before the last event (the log's time does not go back).
    fn now(&self) -> Timestamp {
        Timestamp(crate::now_ms().max(self.exchange.last_timestamp().millis()))
    }

    async fn process(&mut self, batch: Vec<Submission>) {
        let started = Instant::now();
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
        let mut appends: Vec<CommandAppend> = Vec::new();
        // Keys decided in this batch: index into `pending` and the request's digest.
        let mut keys: HashMap<String, (usize, Hash)> = HashMap::new();

        for submission in batch {
            let Submission { command, metadata, idempotency, render, reply } = submission;
            if let Some(idem) = &idempotency {
                if let Some(&(index, fingerprint)) = keys.get(&idem.key) {
                    if fingerprint == idem.fingerprint {
                        pending[index].followers.push(reply);
                    } else {
                        let _ = reply.send(Err(ProcessorError::IdempotencyKeyReused(idem.key.clone())));
                    }
                    continue;
                }
                match self.store.idempotency_record(&idem.key).await {
                    Ok(Some(record)) => {
                        let _ = reply.send(if record.fingerprint == idem.fingerprint {
                            match serde_json::from_str::<Reply>(&record.outcome) {
                                Ok(stored) => Ok(Outcome::Done { reply: stored, position: record.position }),
                                Err(e) => Err(ProcessorError::Store(format!("stored outcome unreadable: {e}"))),
                            }
                        } else {
                            Err(ProcessorError::IdempotencyKeyReused(idem.key.clone()))
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Only this command goes unanswered by the engine; the batch goes on.
                        let _ = reply.send(Err(ProcessorError::Store(e.to_string())));
                        continue;
                    }
                }
            }
            let ctx = CommandContext { now: self.now(), metadata };
            let result = match self.exchange.execute(&command, &ctx) {
                Err(refusal) => Ok(Outcome::Refused(refusal)),
                Ok(mut decision) => {
                    let stored = self.chain.seal(&mut decision.events);
                    let position = self.chain.last_position;
                    let reply = render(&self.exchange, &decision);
                    let outcome = serde_json::to_string(&reply).expect("replies serialize");
                    let idempotency = idempotency.as_ref().map(|idem| Idempotency {
                        key: idem.key.clone(),
                        fingerprint: idem.fingerprint,
                        outcome,
                    });
                    appends.push(CommandAppend { events: stored, idempotency });
                    Ok(Outcome::Done { reply, position })
                }
            };
            if let Some(idem) = idempotency {
                keys.insert(idem.key, (pending.len(), idem.fingerprint));
            }
            pending.push(Pending { reply, result, followers: Vec::new() });
        }

        let committed = if appends.is_empty() {
            Ok(())
        } else if let Some(reason) = self.lease.lost() {
            Err(ProcessorError::LeaseLost(reason))
        } else {
            match self.store.append(&appends).await {
                Ok(Appended::Committed { .. }) => Ok(()),
                Ok(Appended::Replayed { command, .. }) => Err(ProcessorError::Store(format!(
                    "command {command} of the batch was committed before under its key"
                ))),
                Err(e @ StoreError::LeaseLost(_)) => {
                    self.lease.lose(e.to_string());
                    Err(ProcessorError::LeaseLost(e.to_string()))
                }
                Err(e) => Err(ProcessorError::Store(format!("{e} ({})", e.code()))),
            }
        };

        match committed {
            Ok(()) => {
                let events: Vec<StoredEvent> = appends.into_iter().flat_map(|a| a.events).collect();
                let count = events.len() as u64;
                if count > 0 {
                    self.metrics.log_head.set(self.chain.last_position);
                    let _ = self.head.send(Head { position: self.chain.last_position, committed_at: Instant::now() });
                    let versions = stream_versions_crossing_snapshot(&events);
                    let _ = self.events.send(Arc::new(Committed::new(events)));
                    self.metrics.record_commit(pending.len() as u64, count, started.elapsed());
                    for pending in pending {
                        answer(pending);
                    }
                    self.save_aggregate_snapshots(versions);
                    self.maybe_snapshot_engine();
                } else {
                    for pending in pending {
                        answer(pending);
                    }
                }
            }
            Err(error) => {
                self.metrics.commit_failures.inc();
                eprintln!("perpetua: a batch of {} commands was not committed: {error}", pending.len());
                for pending in pending {
                    for follower in pending.followers {
                        let _ = follower.send(Err(error.clone()));
                    }
                    let _ = pending.reply.send(Err(error.clone()));
                }
                if self.lease.lost().is_none() {
                    self.recover().await;
                }
            }
        }
    }

    /// After a failed commit: memory has run ahead of the log; rebuild it from the store.
    async fn recover(&mut self) {
        while self.lease.lost().is_none() {
            match load_engine(&self.store).await {
                Ok((exchange, chain)) => {
                    // A commit whose answer was lost may have landed: publish the head as the
                    // store has it, so the projector and live tails follow.
                    if chain.last_position != self.head.borrow().position {
                        self.metrics.log_head.set(chain.last_position);
                        let _ = self.head.send(Head { position: chain.last_position, committed_at: Instant::now() });
                    }
                    self.exchange = exchange;
                    self.chain = chain;
                    return;
                }
                Err(e) => {
                    eprintln!("perpetua: cannot reload the engine from the store, retrying in 1 s: {e}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Hands the state of each stream that crossed a snapshot version to the snapshot writer
    /// (a clone of a few records; the saves are the writer's, in their own transactions).
    fn save_aggregate_snapshots(&self, streams: Vec<StreamId>) {
        let (position, taken_at) = (self.exchange.last_position(), self.exchange.last_timestamp());
        for stream in streams {
            let Some(state) = aggregate_state(&self.exchange, stream) else { continue };
            self.snapshots.send(SnapshotJob::Aggregate { stream, state: Box::new(state), position, taken_at });
        }
    }

    /// Every `engine_snapshot_every` events, hands a copy of the engine to the snapshot writer
    /// (a memory copy on this task; serializing and saving it are the writer's).
    fn maybe_snapshot_engine(&mut self) {
        let position = self.exchange.last_position();
        if position - self.last_engine_snapshot < self.options.engine_snapshot_every {
            return;
        }
        if self.snapshots.send(SnapshotJob::Engine(Box::new(self.exchange.clone()))) {
            self.last_engine_snapshot = position;
        }
    }
}

/// A snapshot to save, off the writer's path.
enum SnapshotJob {
    /// One stream's state at `position`.
    Aggregate { stream: StreamId, state: Box<AggregateState>, position: u64, taken_at: Timestamp },
    /// The whole engine at its last position.
    Engine(Box<Exchange>),
}

/// The snapshot writer: a task of its own that serializes and saves the snapshots the
/// processor hands it, so that no snapshot's transaction is on the commit path. Its queue is
/// bounded; a snapshot that finds it full is skipped (a snapshot only shortens a later fold:
/// time travel folds from the one before, start-up from the previous engine snapshot).
struct SnapshotWriter {
    queue: mpsc::Sender<SnapshotJob>,
}

/// Snapshots waiting to be saved, at most.
const SNAPSHOT_QUEUE: usize = 256;

impl SnapshotWriter {
    fn start(store: Store, metrics: Arc<Metrics>) -> Self {
        let (queue, mut jobs) = mpsc::channel::<SnapshotJob>(SNAPSHOT_QUEUE);
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                match job {
                    SnapshotJob::Aggregate { stream, state, position, taken_at } => {
                        let snapshot = AggregateSnapshot::new(stream, *state);
                        let record = SnapshotRecord {
                            aggregate_type: stream.aggregate_type.as_str().into(),
                            aggregate_id: stream.aggregate_id.to_string(),
                            version: snapshot.version,
                            position,
                            format_version: SNAPSHOT_FORMAT_VERSION,
                            state: serde_json::to_string(&snapshot).expect("snapshots serialize"),
                            taken_at,
                        };
                        if let Err(e) = store.save_snapshot(&record).await {
                            eprintln!(
                                "perpetua: snapshot of {stream} not saved (time travel folds from further back): {e}"
                            );
                        }
                    }
                    SnapshotJob::Engine(exchange) => match save_engine_snapshot(&store, &exchange).await {
                        Ok(()) => metrics.engine_snapshots.inc(),
                        Err(e) => eprintln!(
                            "perpetua: engine snapshot at {} not saved (start-up folds from the previous one): {e}",
                            exchange.last_position()
                        ),
                    },
                }
            }
        });
        Self { queue }
    }

    /// Queues a job; false (and the job dropped) when the queue is full.
    fn send(&self, job: SnapshotJob) -> bool {
        self.queue.try_send(job).is_ok()
    }
}

fn answer(pending: Pending) {
    for follower in pending.followers {
        let _ = follower.send(pending.result.clone());
    }
    let _ = pending.reply.send(pending.result);
}

/// Streams of the batch that reached a multiple of [`AGGREGATE_SNAPSHOT_EVERY`].
fn stream_versions_crossing_snapshot(events: &[StoredEvent]) -> Vec<StreamId> {
    let mut streams: Vec<StreamId> = Vec::new();
    for event in events.iter().filter(|e| e.version % AGGREGATE_SNAPSHOT_EVERY == 0) {
        let stream = StreamId { aggregate_type: event.aggregate_type, aggregate_id: event.aggregate_id };
        if !streams.contains(&stream) {
            streams.push(stream);
        }
    }
    streams
}

/// The engine's current state of one stream.
pub fn aggregate_state(exchange: &Exchange, stream: StreamId) -> Option<AggregateState> {
    match (stream.aggregate_type, stream.aggregate_id) {
        (AggregateType::Order, AggregateId::Uuid(id)) => {
            exchange.order(OrderId(id)).cloned().map(AggregateState::Order)
        }
        (AggregateType::Account, AggregateId::Uuid(id)) => {
            exchange.account(AccountId(id)).cloned().map(AggregateState::Account)
        }
        (AggregateType::Position, AggregateId::Uuid(id)) => {
            exchange.position(PositionId(id)).cloned().map(AggregateState::Position)
        }
        (AggregateType::Market, AggregateId::Symbol(symbol)) => {
            exchange.market(symbol).cloned().map(AggregateState::Market)
        }
        _ => None,
    }
}
