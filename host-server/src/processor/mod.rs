//! The command processor: the single writer. One task owns the in-memory engine; commands
//! queue on a channel and are decided one after another against that state, and the events
//! of a whole batch are appended in one transaction (group commit, one fsync).
//!
//! The writer is pipelined, two batches deep: while batch N commits (on a task of its own),
//! batch N+1 is decided against the state after N, taking every command that arrives until N
//! is durable (so batches grow with the load, up to [`MAX_BATCH`]). A command is answered only
//! once its own batch has committed, and a batch is committed only after the one before it.
//! If a commit fails, that batch and the one decided after it are answered
//! `STORE_UNAVAILABLE`, and the engine is rebuilt from the store: memory never runs ahead of
//! the log by more than the two batches.
//!
//! Nothing on the writer's task but deciding: each decision leaves a [`Receipt`] (plain data;
//! the HTTP handler shapes it), idempotency keys are answered from memory ([`keys`]), and
//! snapshots are saved by a task of their own ([`snapshots`]).

mod journal;
mod keys;
mod snapshots;

pub use journal::Journal;
pub use keys::RECENT_ANSWERS;
pub use snapshots::{aggregate_state, save_engine_snapshot, AGGREGATE_SNAPSHOT_EVERY};

use crate::metrics::{Metrics, SetPosition as _};
use crate::store::{Appended, CommandAppend, Idempotency, StoreError, ENGINE_SNAPSHOT_ID, ENGINE_SNAPSHOT_TYPE};
use keys::Keys;
use perpetua_core::audit::{Hash, HashChain};
use perpetua_core::event::StoredEvent;
use perpetua_core::time::Timestamp;
use perpetua_core::{Command, CommandContext, CommandError, ErrorCode, Exchange, Metadata, Receipt};
use serde::{Deserialize, Serialize};
use snapshots::{SnapshotJob, SnapshotWriter};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// Most commands decided into one transaction.
pub const MAX_BATCH: usize = 1_000;

/// A command's idempotency key (already scoped to its user) and the digest of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key as stored.
    pub key: String,
    /// SHA-256 of the request (method, path, body).
    pub fingerprint: Hash,
}

/// What became of one command.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Committed: what it did, and the global position of its last event (the head at the
    /// time when it wrote nothing).
    Done {
        /// The receipt of the decision.
        receipt: Box<Receipt>,
        /// `position` of the answer.
        position: u64,
    },
    /// Refused by the engine; nothing was written.
    Refused(CommandError),
    /// An answer stored under an idempotency key by an earlier version of the server, which
    /// kept the HTTP reply itself: it is sent as it was.
    Reply {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: serde_json::Value,
    },
}

/// The outcomes of one submission's commands, in order (shared by every retry answered with
/// it).
pub type Answer = Arc<[Outcome]>;

/// Why a command got no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// The idempotency key was used before with another request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyKeyReused(String),
    /// The batch could not be committed; nothing of it was written, or it was and the store
    /// could not confirm it.
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

    fn of_store(error: StoreError) -> Self {
        ProcessorError::Store(format!("{error} ({})", error.code()))
    }
}

/// Why the engine could not be loaded from the store.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error("{0} ({code})", code = .0.code())]
    Store(#[from] StoreError),
    /// The newest engine snapshot does not load.
    #[error("the engine snapshot at position {position} does not load: {detail}")]
    Snapshot {
        /// Its position.
        position: u64,
        /// Why.
        detail: String,
    },
    /// A stored event does not decode.
    #[error("position {position}: {detail}")]
    Event {
        /// Its position.
        position: u64,
        /// Why.
        detail: String,
    },
    /// The events end before or after the recorded head.
    #[error("the log ends at position {log_end} but its head says {head}")]
    HeadMismatch {
        /// Position of the last event read.
        log_end: u64,
        /// The recorded head.
        head: u64,
    },
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

/// A submission: one command, or the orders of one batch request, decided in order into the
/// same group commit and answered together.
struct Submission {
    commands: Vec<Command>,
    metadata: Metadata,
    idempotency: Option<IdempotencyKey>,
    reply: oneshot::Sender<Result<Answer, ProcessorError>>,
}

/// The processor's front door, cloned into every request handler.
#[derive(Clone)]
pub struct ProcessorHandle {
    queue: mpsc::Sender<Submission>,
    head: watch::Receiver<Head>,
    events: broadcast::Sender<Arc<Committed>>,
    /// Set to stop taking submissions (see [`ProcessorHandle::drain`]).
    closing: Arc<watch::Sender<bool>>,
    /// True once the processor's task has ended.
    finished: watch::Receiver<bool>,
}

impl ProcessorHandle {
    /// Queues a command and waits for its outcome (after its batch is committed).
    pub async fn submit(
        &self,
        command: Command,
        metadata: Metadata,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Outcome, ProcessorError> {
        let answer = self.submit_all(vec![command], metadata, idempotency).await?;
        answer.first().cloned().ok_or(ProcessorError::Stopped)
    }

    /// Queues several commands, decided one after another (each on its own: one may be
    /// refused while the others go through) into the same commit, under one idempotency key;
    /// waits for their outcomes, in order.
    pub async fn submit_all(
        &self,
        commands: Vec<Command>,
        metadata: Metadata,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Answer, ProcessorError> {
        let (reply, answer) = oneshot::channel();
        let submission = Submission { commands, metadata, idempotency, reply };
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

    /// Stops taking submissions (a later one is answered [`ProcessorError::Stopped`]), lets
    /// everything already queued be decided and committed and its callers answered, and
    /// returns once the processor's task has ended. Its end closes the head channel, which
    /// stops the projector after its last page.
    pub async fn drain(&self) {
        self.closing.send_replace(true);
        let mut finished = self.finished.clone();
        let _ = finished.wait_for(|finished| *finished).await;
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
pub async fn load_engine<J: Journal>(journal: &J) -> Result<(Exchange, HashChain), LoadError> {
    let head = journal.head().await?;
    let snapshot = journal.load_snapshot(ENGINE_SNAPSHOT_TYPE, ENGINE_SNAPSHOT_ID, None).await?;
    let mut exchange = match snapshot {
        Some(record) if record.position <= head.last_position => Exchange::from_snapshot_json(&record.state)
            .map_err(|e| LoadError::Snapshot { position: record.position, detail: e.to_string() })?,
        _ => Exchange::new(),
    };
    let mut from = exchange.last_position() + 1;
    while from <= head.last_position {
        let page = journal.read_all(from, 10_000).await?;
        if page.is_empty() {
            break;
        }
        for stored in &page {
            let envelope = stored
                .decode()
                .map_err(|e| LoadError::Event { position: stored.position, detail: format!("{e} ({})", e.code()) })?;
            exchange.apply(&envelope);
        }
        from = exchange.last_position() + 1;
    }
    if exchange.last_position() != head.last_position {
        return Err(LoadError::HeadMismatch { log_end: exchange.last_position(), head: head.last_position });
    }
    Ok((exchange, head))
}

/// Starts the processor task over `journal` (whose writer lease the caller holds, and reports
/// the loss of in `lease`).
pub async fn start<J: Journal>(
    journal: J,
    metrics: Arc<Metrics>,
    options: ProcessorOptions,
    lease: LeaseState,
) -> Result<ProcessorHandle, LoadError> {
    let (exchange, chain) = load_engine(&journal).await?;
    let mut keys = Keys::default();
    keys.load(journal.idempotency_keys(0).await?);
    let (queue, inbox) = mpsc::channel(8 * MAX_BATCH);
    let (head_tx, head) = watch::channel(Head { position: chain.last_position, committed_at: Instant::now() });
    let (events, _) = broadcast::channel(1_024);
    metrics.log_head.set_position(chain.last_position);
    let processor = Processor {
        snapshots: SnapshotWriter::start(journal.clone(), metrics.clone()),
        journal,
        last_engine_snapshot: exchange.last_position(),
        exchange,
        chain,
        keys,
        metrics,
        options,
        head: head_tx,
        events: events.clone(),
        lease,
    };
    let (closing, closing_rx) = watch::channel(false);
    let (finished_tx, finished) = watch::channel(false);
    tokio::spawn(async move {
        processor.run(inbox, closing_rx).await;
        finished_tx.send_replace(true);
    });
    Ok(ProcessorHandle { queue, head, events, closing: Arc::new(closing), finished })
}

/// A handle over a writer in another process (`serve --role query`): its head, read once
/// now (an error fails the start) and then from the store every `poll`; it decides nothing
/// (a submission is answered [`ProcessorError::Stopped`]; the query role refuses command
/// routes before that) and publishes no live batches.
pub async fn follow(
    store: crate::store::Store,
    poll: std::time::Duration,
) -> Result<ProcessorHandle, crate::store::StoreError> {
    let first = store.head().await?.last_position;
    let (head_tx, head) = watch::channel(Head { position: first, committed_at: Instant::now() });
    tokio::spawn(async move {
        let (mut last, mut failing) = (first, false);
        while !head_tx.is_closed() {
            match store.head().await {
                Ok(chain) => {
                    failing = false;
                    if chain.last_position != last {
                        last = chain.last_position;
                        head_tx.send_replace(Head { position: last, committed_at: Instant::now() });
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, code = e.code(), "the log's head cannot be read; reading again");
                    }
                    failing = true;
                }
            }
            let pause = if failing { std::time::Duration::from_millis(500) } else { poll };
            tokio::time::sleep(pause).await;
        }
    });
    Ok(following(head))
}

/// A handle over a writer in another process whose head is `head` (a projector reading the
/// relay's stream follows the stream's last position).
/// Its head channel closes when the handle is drained, which stops a projector following it.
pub fn following(mut source: watch::Receiver<Head>) -> ProcessorHandle {
    let (queue, _) = mpsc::channel(1);
    let (events, _) = broadcast::channel(1);
    let (closing, mut closing_rx) = watch::channel(false);
    let (finished_tx, finished) = watch::channel(false);
    let (head_tx, head) = watch::channel(*source.borrow_and_update());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = source.changed() => match changed {
                    Ok(()) => { head_tx.send_replace(*source.borrow_and_update()); }
                    Err(_) => break,
                },
                _ = closing_rx.wait_for(|closing| *closing) => break,
            }
        }
        drop(head_tx);
        finished_tx.send_replace(true);
    });
    ProcessorHandle { queue, head, events, closing: Arc::new(closing), finished }
}

struct Processor<J: Journal> {
    journal: J,
    exchange: Exchange,
    /// The chain after the last decided command (ahead of the store by what is in flight).
    chain: HashChain,
    keys: Keys,
    metrics: Arc<Metrics>,
    options: ProcessorOptions,
    head: watch::Sender<Head>,
    events: broadcast::Sender<Arc<Committed>>,
    last_engine_snapshot: u64,
    lease: LeaseState,
    snapshots: SnapshotWriter,
}

/// A decided submission waiting for its batch's commit.
struct Entry {
    reply: oneshot::Sender<Result<Answer, ProcessorError>>,
    answer: Answer,
    /// Its key, if it has one and wrote events (then the record is written with them).
    key: Option<IdempotencyKey>,
    /// Later submissions with the same key and request: they get the same answer.
    followers: Vec<oneshot::Sender<Result<Answer, ProcessorError>>>,
}

impl Entry {
    /// Answers it (and its followers) with its own outcomes.
    fn succeed(self) {
        let answer = self.answer.clone();
        self.answer(Ok(answer));
    }

    fn answer(self, result: Result<Answer, ProcessorError>) {
        for follower in self.followers {
            let _ = follower.send(result.clone());
        }
        let _ = self.reply.send(result);
    }
}

/// A batch being decided, or decided and committing.
struct Batch {
    entries: Vec<Entry>,
    /// The events of each entry that wrote some, with the index of its entry.
    writes: Vec<(usize, Vec<StoredEvent>)>,
    /// Keys decided in this batch: the index of their entry and their request's digest.
    keys: HashMap<String, (usize, Hash)>,
    /// The chain before the batch's first event.
    start: HashChain,
    /// Commands decided.
    commands: usize,
}

impl Batch {
    fn new(start: HashChain) -> Self {
        Batch { entries: Vec::new(), writes: Vec::new(), keys: HashMap::new(), start, commands: 0 }
    }

    fn is_full(&self) -> bool {
        self.commands >= MAX_BATCH
    }

    /// Where a submission with `key` goes if this batch decided the key: a follower of its
    /// entry (same request), or refused (another request). Hands the reply back otherwise.
    fn follow(
        &mut self,
        key: &IdempotencyKey,
        reply: oneshot::Sender<Result<Answer, ProcessorError>>,
    ) -> Option<oneshot::Sender<Result<Answer, ProcessorError>>> {
        let Some(&(index, fingerprint)) = self.keys.get(&key.key) else { return Some(reply) };
        if fingerprint == key.fingerprint {
            self.entries[index].followers.push(reply);
        } else {
            let _ = reply.send(Err(ProcessorError::IdempotencyKeyReused(key.key.clone())));
        }
        None
    }

    /// Answers every entry with `error`.
    fn fail(self, error: &ProcessorError) {
        for entry in self.entries {
            entry.answer(Err(error.clone()));
        }
    }
}

/// What a commit task hands back: the appends it wrote (or tried to) and the store's answer.
type Commit = (Vec<CommandAppend>, Result<Appended, StoreError>);

/// What woke the writer while a commit was running.
enum Step {
    Committed(Result<Commit, tokio::task::JoinError>),
    Submitted(Submission),
    /// The server is draining: take nothing new.
    Closing,
}

/// A batch whose commit is running, with what its success hands on.
struct InFlight {
    batch: Batch,
    /// The chain the store must report after the commit.
    end: HashChain,
    /// Snapshots of the states the batch leaves, saved once it is durable.
    snapshots: Vec<SnapshotJob>,
    commit: JoinHandle<Commit>,
    started: Instant,
}

impl<J: Journal> Processor<J> {
    async fn run(mut self, mut inbox: mpsc::Receiver<Submission>, mut closing: watch::Receiver<bool>) {
        let mut next: Option<Batch> = None;
        let mut flight: Option<InFlight> = None;
        // Once closed, the inbox hands out what was queued, then ends the loop.
        let mut closed = false;
        loop {
            let Some(committing) = flight.as_mut() else {
                // Nothing committing: the batch decided so far (or the next submission and
                // whatever queued behind it) goes to the store now.
                let mut batch = match next.take() {
                    Some(batch) => batch,
                    None => {
                        let received = tokio::select! {
                            received = inbox.recv() => received,
                            _ = closing.wait_for(|closing| *closing), if !closed => {
                                inbox.close();
                                closed = true;
                                continue;
                            }
                        };
                        match received {
                            Some(first) => self.decide(Batch::new(self.chain), None, first),
                            None => return,
                        }
                    }
                };
                while !batch.is_full() {
                    let Ok(submission) = inbox.try_recv() else { break };
                    batch = self.decide(batch, None, submission);
                }
                match self.launch(batch) {
                    Ok(launched) => flight = launched,
                    Err(()) => self.recover().await,
                }
                continue;
            };
            let room = next.as_ref().is_none_or(|batch| !batch.is_full());
            let step = tokio::select! {
                biased;
                done = &mut committing.commit => Step::Committed(done),
                Some(submission) = inbox.recv(), if room => Step::Submitted(submission),
                _ = closing.wait_for(|closing| *closing), if !closed => Step::Closing,
            };
            match step {
                Step::Committed(done) => {
                    let committed = flight.take().expect("a commit is in flight");
                    if let Err(error) = self.finish(committed, done) {
                        if let Some(batch) = next.take() {
                            batch.fail(&error);
                        }
                        if self.lease.lost().is_none() {
                            self.recover().await;
                        }
                    }
                    if let Some(reason) = self.lease.lost() {
                        return self.fenced(inbox, next, reason);
                    }
                }
                Step::Submitted(submission) => {
                    let batch = next.take().unwrap_or_else(|| Batch::new(self.chain));
                    let committing = flight.as_mut().map(|flight| &mut flight.batch);
                    next = Some(self.decide(batch, committing, submission));
                }
                Step::Closing => {
                    inbox.close();
                    closed = true;
                }
            }
        }
    }

    /// Fenced: answers what is decided and queued, takes nothing more.
    fn fenced(&self, mut inbox: mpsc::Receiver<Submission>, next: Option<Batch>, reason: String) {
        let error = ProcessorError::LeaseLost(reason);
        if let Some(batch) = next {
            batch.fail(&error);
        }
        inbox.close();
        while let Ok(queued) = inbox.try_recv() {
            let _ = queued.reply.send(Err(error.clone()));
        }
    }

    /// Now, in milliseconds, never before the last event (the log's time does not go back).
    fn now(&self) -> Timestamp {
        Timestamp(crate::now_ms().max(self.exchange.last_timestamp().millis()))
    }

    /// Decides one submission into `batch`, unless its key answers it: a key decided in this
    /// batch or in the one committing makes it a follower of that entry; a committed key is
    /// answered from memory (or, for an old one, from its stored record, off this task).
    fn decide(&mut self, mut batch: Batch, committing: Option<&mut Batch>, submission: Submission) -> Batch {
        let Submission { commands, metadata, idempotency, mut reply } = submission;
        if let Some(key) = &idempotency {
            for decided in std::iter::once(&mut batch).chain(committing) {
                match decided.follow(key, reply) {
                    Some(back) => reply = back,
                    None => return batch,
                }
            }
            if let Some(known) = self.keys.get(&key.key) {
                if known.fingerprint != key.fingerprint {
                    let _ = reply.send(Err(ProcessorError::IdempotencyKeyReused(key.key.clone())));
                } else if let Some(answer) = &known.answer {
                    let _ = reply.send(Ok(answer.clone()));
                } else {
                    self.replay_stored(key.key.clone(), reply);
                }
                return batch;
            }
        }
        let mut outcomes = Vec::with_capacity(commands.len());
        let mut events = Vec::new();
        for command in &commands {
            let ctx = CommandContext { now: self.now(), metadata: metadata.clone() };
            outcomes.push(match self.exchange.execute(command, &ctx) {
                Err(refusal) => {
                    self.metrics.record_decision(command.name(), Some(refusal.code.as_str()));
                    Outcome::Refused(refusal)
                }
                Ok(mut decision) => {
                    self.metrics.record_decision(command.name(), None);
                    events.extend(self.chain.seal(&mut decision.events));
                    let receipt = Box::new(self.exchange.receipt(command, &decision));
                    Outcome::Done { receipt, position: self.chain.last_position }
                }
            });
        }
        batch.commands += commands.len();
        let index = batch.entries.len();
        let wrote = !events.is_empty();
        if wrote {
            batch.writes.push((index, events));
        }
        if let Some(key) = &idempotency {
            batch.keys.insert(key.key.clone(), (index, key.fingerprint));
        }
        let key = idempotency.filter(|_| wrote);
        batch.entries.push(Entry { reply, answer: outcomes.into(), key, followers: Vec::new() });
        batch
    }

    /// Answers a retry of an old key (whose answer memory let go) from its stored record, on
    /// a task of its own.
    fn replay_stored(&self, key: String, reply: oneshot::Sender<Result<Answer, ProcessorError>>) {
        let journal = self.journal.clone();
        tokio::spawn(async move {
            let answer = match journal.idempotency_record(&key).await {
                Ok(Some(record)) => decode_answer(&record.outcome)
                    .ok_or_else(|| ProcessorError::Store(format!("the stored outcome of key {key:?} does not read"))),
                Ok(None) => Err(ProcessorError::Store(format!("the record of key {key:?} is gone"))),
                Err(e) => Err(ProcessorError::of_store(e)),
            };
            let _ = reply.send(answer);
        });
    }

    /// Starts committing `batch` on a task of its own; a batch that writes nothing is
    /// answered at once (its decisions rest only on what is committed). Fails, answering the
    /// batch, when the sealed events do not continue the chain (the engine must be reloaded).
    fn launch(&mut self, mut batch: Batch) -> Result<Option<InFlight>, ()> {
        if batch.writes.is_empty() {
            batch.entries.into_iter().for_each(Entry::succeed);
            return Ok(None);
        }
        let writes = std::mem::take(&mut batch.writes);
        let answers: Vec<Answer> = writes.iter().map(|(index, _)| batch.entries[*index].answer.clone()).collect();
        let appends: Vec<CommandAppend> = writes
            .into_iter()
            .map(|(index, events)| CommandAppend {
                events,
                idempotency: batch.entries[index].key.as_ref().map(|key| Idempotency {
                    key: key.key.clone(),
                    fingerprint: key.fingerprint,
                    outcome: String::new(),
                }),
            })
            .collect();
        if let Err(fault) = check_sealed(batch.start, &appends) {
            // A bug of the writer, never of the client: nothing is written.
            tracing::error!(%fault, "a sealed batch failed its check and was not written");
            self.metrics.commit_failures.inc();
            batch.fail(&ProcessorError::Store(fault.to_string()));
            return Err(());
        }
        let snapshots = self.snapshots_after(&appends);
        let end = self.chain;
        let journal = self.journal.clone();
        let lease = self.lease.clone();
        let span = tracing::debug_span!(
            "processor_batch",
            commands = batch.commands,
            from = batch.start.last_position + 1,
            to = end.last_position
        );
        let commit = tokio::spawn(
            async move {
                let mut appends = appends;
                // The stored outcomes are serialized here, off the writer's task.
                for (append, answer) in appends.iter_mut().zip(answers) {
                    if let Some(idempotency) = append.idempotency.as_mut() {
                        idempotency.outcome = encode_answer(&answer);
                    }
                }
                if let Some(reason) = lease.lost() {
                    return (appends, Err(StoreError::LeaseLost(reason)));
                }
                let result = journal.append(&appends).await;
                (appends, result)
            }
            .instrument(span),
        );
        Ok(Some(InFlight { batch, end, snapshots, commit, started: Instant::now() }))
    }

    /// The snapshots the batch of `appends` calls for, taken now, while the engine is at its
    /// end.
    fn snapshots_after(&mut self, appends: &[CommandAppend]) -> Vec<SnapshotJob> {
        let mut jobs = snapshots::aggregate_jobs(&self.exchange, appends.iter().flat_map(|a| &a.events));
        let position = self.exchange.last_position();
        if position - self.last_engine_snapshot >= self.options.engine_snapshot_every {
            jobs.push(SnapshotJob::Engine(Box::new(self.exchange.clone())));
            self.last_engine_snapshot = position;
        }
        jobs
    }

    /// Handles a finished commit: on success publishes the head, answers the batch, hands
    /// its snapshots on and remembers its keys; otherwise answers the batch with the error
    /// and returns it (the caller fails the batch decided after it and recovers).
    fn finish(&mut self, flight: InFlight, done: Result<Commit, tokio::task::JoinError>) -> Result<(), ProcessorError> {
        let InFlight { batch, end, snapshots, started, .. } = flight;
        let (appends, result) = match done {
            Ok(done) => done,
            Err(e) => (Vec::new(), Err(StoreError::Io(std::io::Error::other(format!("the commit task failed: {e}"))))),
        };
        let error = match result {
            Ok(Appended::Committed { head }) if head == end => None,
            Ok(Appended::Committed { head }) => Some(ProcessorError::Store(format!(
                "the store's head after the commit is position {}, the chain's {}",
                head.last_position, end.last_position
            ))),
            Ok(Appended::Replayed { command, .. }) => Some(ProcessorError::Store(format!(
                "command {command} of the batch was committed before under its key"
            ))),
            Err(e @ StoreError::LeaseLost(_)) => {
                self.lease.lose(e.to_string());
                Some(ProcessorError::LeaseLost(e.to_string()))
            }
            Err(e) => Some(ProcessorError::of_store(e)),
        };
        if let Some(error) = error {
            self.metrics.commit_failures.inc();
            tracing::error!(commands = batch.commands, code = error.code(), %error, "a batch was not committed");
            batch.fail(&error);
            return Err(error);
        }
        let events: Vec<StoredEvent> = appends.into_iter().flat_map(|a| a.events).collect();
        self.metrics.log_head.set_position(end.last_position);
        let _ = self.head.send(Head { position: end.last_position, committed_at: Instant::now() });
        self.metrics.record_commit(batch.commands as u64, events.len() as u64, started.elapsed());
        let _ = self.events.send(Arc::new(Committed::new(events)));
        for entry in batch.entries {
            if let Some(key) = &entry.key {
                self.keys.committed(key.key.clone(), key.fingerprint, entry.answer.clone());
            }
            entry.succeed();
        }
        self.snapshots.send(snapshots);
        Ok(())
    }

    /// After a failed commit: memory has run ahead of the log; rebuild it from the store,
    /// with the keys of any commit that landed unconfirmed.
    async fn recover(&mut self) {
        let confirmed = self.head.borrow().position;
        while self.lease.lost().is_none() {
            match self.reload(confirmed).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, "the engine could not be reloaded from the store; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn reload(&mut self, confirmed: u64) -> Result<(), LoadError> {
        let (exchange, chain) = load_engine(&self.journal).await?;
        self.keys.load(self.journal.idempotency_keys(confirmed).await?);
        // A commit whose answer was lost may have landed: publish its events and the head as
        // the store has them, so live tails and the projector follow at once.
        if chain.last_position != confirmed {
            let landed = chain.last_position.saturating_sub(confirmed);
            let events = self.journal.read_all(confirmed + 1, u32::try_from(landed).unwrap_or(u32::MAX)).await?;
            self.metrics.log_head.set_position(chain.last_position);
            let _ = self.head.send(Head { position: chain.last_position, committed_at: Instant::now() });
            let _ = self.events.send(Arc::new(Committed::new(events)));
        }
        self.last_engine_snapshot = self.last_engine_snapshot.min(exchange.last_position());
        self.exchange = exchange;
        self.chain = chain;
        Ok(())
    }
}

/// A sealed batch that does not continue the chain it was decided after: a bug of the
/// writer, never of a client.
#[derive(Debug, thiserror::Error)]
#[error("position {position} does not continue position {after} of the chain")]
struct SealFault {
    position: u64,
    after: u64,
}

/// The seam between deciding and the store: the sealed batch continues the chain it was
/// decided after, position by position and hash link by hash link (the store recomputes
/// each hash from its bytes; this check is the writer's own, and cheap).
fn check_sealed(start: HashChain, appends: &[CommandAppend]) -> Result<(), SealFault> {
    let mut previous = start;
    for event in appends.iter().flat_map(|a| &a.events) {
        if event.position != previous.last_position + 1 || event.prev_hash != previous.last_hash {
            return Err(SealFault { position: event.position, after: previous.last_position });
        }
        previous = HashChain { last_position: event.position, last_hash: event.hash };
    }
    Ok(())
}

/// One outcome as stored with an idempotency key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum StoredOutcome {
    Done { receipt: Box<Receipt>, position: u64 },
    Refused { code: String, message: String },
}

/// An answer as stored with an idempotency key.
#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    outcomes: Vec<StoredOutcome>,
}

/// The stored form of an answer.
fn encode_answer(answer: &[Outcome]) -> String {
    let outcomes = answer
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Done { receipt, position } => {
                Some(StoredOutcome::Done { receipt: receipt.clone(), position: *position })
            }
            Outcome::Refused(error) => {
                Some(StoredOutcome::Refused { code: error.code.as_str().into(), message: error.message.clone() })
            }
            Outcome::Reply { .. } => None,
        })
        .collect();
    serde_json::to_string(&StoredAnswer { outcomes }).expect("answers serialize")
}

/// An answer from its stored form, or from the HTTP reply an earlier version stored.
fn decode_answer(stored: &str) -> Option<Answer> {
    #[derive(Deserialize)]
    struct LegacyReply {
        status: u16,
        body: serde_json::Value,
    }
    if let Ok(answer) = serde_json::from_str::<StoredAnswer>(stored) {
        let outcomes: Option<Vec<Outcome>> = answer
            .outcomes
            .into_iter()
            .map(|outcome| match outcome {
                StoredOutcome::Done { receipt, position } => Some(Outcome::Done { receipt, position }),
                StoredOutcome::Refused { code, message } => {
                    let code = ErrorCode::ALL.iter().copied().find(|c| c.as_str() == code)?;
                    Some(Outcome::Refused(CommandError::new(code, message)))
                }
            })
            .collect();
        return outcomes.map(Into::into);
    }
    let legacy: LegacyReply = serde_json::from_str(stored).ok()?;
    Some(vec![Outcome::Reply { status: legacy.status, body: legacy.body }].into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_read_back_and_legacy_replies_are_kept() {
        let refused = Outcome::Refused(CommandError::new(ErrorCode::AccountNotFound, "no such account"));
        let done = Outcome::Done { receipt: Box::default(), position: 7 };
        let answer: Answer = vec![done, refused].into();
        assert_eq!(decode_answer(&encode_answer(&answer)).as_deref(), Some(&*answer));
        let legacy = r#"{"status":201,"body":{"order":null,"position":3}}"#;
        let read = decode_answer(legacy).expect("a legacy reply reads");
        assert!(matches!(&read[0], Outcome::Reply { status: 201, body } if body["position"] == 3));
        assert!(decode_answer("{\"outcomes\":[{\"refused\":{\"code\":\"NO_SUCH\",\"message\":\"\"}}]}").is_none());
    }
}
