//! Snapshots off the writer's path: the processor takes a copy of the states a committed batch
//! leaves (a stream that crossed a snapshot version, or every so many events the whole engine)
//! and a task of its own serializes and saves them.

use super::journal::Journal;
use crate::metrics::Metrics;
use crate::store::{SnapshotRecord, StoreError, ENGINE_SNAPSHOT_ID, ENGINE_SNAPSHOT_TYPE};
use perpetua_core::event::{AggregateId, AggregateType, StoredEvent, StreamId};
use perpetua_core::ids::{AccountId, OrderId, PositionId};
use perpetua_core::snapshot::{AggregateSnapshot, SNAPSHOT_FORMAT_VERSION};
use perpetua_core::time::Timestamp;
use perpetua_core::timetravel::AggregateState;
use perpetua_core::Exchange;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Every this many versions of a stream, its state is saved as a snapshot (time travel starts
/// from the newest one at or below the version asked for).
pub const AGGREGATE_SNAPSHOT_EVERY: u64 = 100;

/// Snapshots waiting to be saved, at most.
const SNAPSHOT_QUEUE: usize = 1024;

/// The snapshot writer gathers what queues for this long after a first snapshot, then saves
/// it all in one transaction. Saved one transaction each, snapshots took the store's write gate (and a sync)
/// about 200 times a second under load, and the log's writer waited behind them for a quarter
/// of its time (BENCHMARKS.md, "Snapshots saved together").
const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A snapshot to save.
pub(super) enum SnapshotJob {
    /// One stream's state at `position`.
    Aggregate { stream: StreamId, state: Box<AggregateState>, position: u64, taken_at: Timestamp },
    /// The whole engine at its last position.
    Engine(Box<Exchange>),
}

/// The snapshot writer's queue. It is bounded; a snapshot that finds it full is skipped (a
/// snapshot only shortens a later fold: time travel folds from the one before, start-up from
/// the previous engine snapshot).
pub(super) struct SnapshotWriter {
    queue: mpsc::Sender<SnapshotJob>,
}

impl SnapshotWriter {
    pub(super) fn start<J: Journal>(journal: J, metrics: Arc<Metrics>) -> Self {
        let (queue, mut jobs) = mpsc::channel::<SnapshotJob>(SNAPSHOT_QUEUE);
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            while jobs.recv_many(&mut waiting, SNAPSHOT_QUEUE).await > 0 {
                // What else queues until the deadline; saved at once when the writer ends.
                let deadline = tokio::time::Instant::now() + SNAPSHOT_EVERY;
                let open = loop {
                    match tokio::time::timeout_at(deadline, jobs.recv_many(&mut waiting, SNAPSHOT_QUEUE)).await {
                        Ok(0) => break false,
                        Ok(_) => {}
                        Err(_) => break true,
                    }
                };
                save(&journal, &metrics, std::mem::take(&mut waiting)).await;
                if !open {
                    break;
                }
            }
        });
        Self { queue }
    }

    /// Queues jobs; those that find the queue full are dropped.
    pub(super) fn send(&self, jobs: Vec<SnapshotJob>) {
        for job in jobs {
            let _ = self.queue.try_send(job);
        }
    }
}

/// Serializes `jobs` and saves them in one transaction; of several engine snapshots, only the
/// newest (start-up folds from the newest).
async fn save<J: Journal>(journal: &J, metrics: &Metrics, jobs: Vec<SnapshotJob>) {
    let newest_engine = jobs.iter().rposition(|job| matches!(job, SnapshotJob::Engine(_)));
    let engines = u64::from(newest_engine.is_some());
    let records: Vec<SnapshotRecord> = jobs
        .into_iter()
        .enumerate()
        .filter_map(|(index, job)| match job {
            SnapshotJob::Engine(_) if Some(index) != newest_engine => None,
            SnapshotJob::Engine(exchange) => Some(engine_record(&exchange)),
            SnapshotJob::Aggregate { stream, state, position, taken_at } => {
                let snapshot = AggregateSnapshot::new(stream, *state);
                Some(SnapshotRecord {
                    aggregate_type: stream.aggregate_type.as_str().into(),
                    aggregate_id: stream.aggregate_id.to_string(),
                    version: snapshot.version,
                    position,
                    format_version: SNAPSHOT_FORMAT_VERSION,
                    state: serde_json::to_string(&snapshot).expect("snapshots serialize"),
                    taken_at,
                })
            }
        })
        .collect();
    match journal.save_snapshots(&records).await {
        Ok(()) => metrics.engine_snapshots.inc_by(engines),
        Err(e) => tracing::warn!(
            snapshots = records.len(),
            engine_snapshots = engines,
            error = %e,
            "snapshots not saved (time travel folds from further back, start-up from an earlier engine snapshot)"
        ),
    }
}

/// The snapshot record of the whole engine at its last position.
fn engine_record(exchange: &Exchange) -> SnapshotRecord {
    SnapshotRecord {
        aggregate_type: ENGINE_SNAPSHOT_TYPE.into(),
        aggregate_id: ENGINE_SNAPSHOT_ID.into(),
        version: exchange.last_position(),
        position: exchange.last_position(),
        format_version: SNAPSHOT_FORMAT_VERSION,
        state: serde_json::to_string(&exchange.snapshot()).expect("engine snapshots serialize"),
        taken_at: exchange.last_timestamp(),
    }
}

/// Saves a snapshot of the whole engine at its last position.
pub async fn save_engine_snapshot<J: Journal>(journal: &J, exchange: &Exchange) -> Result<(), StoreError> {
    journal.save_snapshots(&[engine_record(exchange)]).await
}

/// The snapshots a batch of `events` calls for, taken from `exchange` right after it: each
/// stream that reached a multiple of [`AGGREGATE_SNAPSHOT_EVERY`].
pub(super) fn aggregate_jobs<'a>(
    exchange: &Exchange,
    events: impl Iterator<Item = &'a StoredEvent>,
) -> Vec<SnapshotJob> {
    let mut streams: Vec<StreamId> = Vec::new();
    for event in events.filter(|e| e.version % AGGREGATE_SNAPSHOT_EVERY == 0) {
        let stream = StreamId { aggregate_type: event.aggregate_type, aggregate_id: event.aggregate_id };
        if !streams.contains(&stream) {
            streams.push(stream);
        }
    }
    let (position, taken_at) = (exchange.last_position(), exchange.last_timestamp());
    streams
        .into_iter()
        .filter_map(|stream| {
            let state = aggregate_state(exchange, stream)?;
            Some(SnapshotJob::Aggregate { stream, state: Box::new(state), position, taken_at })
        })
        .collect()
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
