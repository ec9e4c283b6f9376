//! Audit routes: read the log itself (not the read models): streams, their state at any
//! version or time, the global log, a live tail, chain verification and export.

use super::queries::Params;
use super::wire;
use super::{ApiError, AppState, Role, User};
use crate::listener::{ConnectionCloser, ConnectionControl};
use crate::store::{SnapshotRecord, StreamRange};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use perpetua_core::event::{AggregateId, AggregateType, EventEnvelope, StoredEvent, StreamId};
use perpetua_core::ids::AccountId;
use perpetua_core::snapshot::AggregateSnapshot;
use perpetua_core::time::Timestamp;
use perpetua_core::timetravel::{fold_stream, AggregateState};
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;

/// Most events one page of `/v1/events` or of a stream's events returns.
const MAX_PAGE: u32 = 10_000;
/// Events a page holds unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 1_000;

/// The `limit` of a page: [`DEFAULT_PAGE`] unless given, at most [`MAX_PAGE`].
fn page_limit(params: &Params) -> Result<u32, ApiError> {
    Ok(params.number("limit")?.unwrap_or(u64::from(DEFAULT_PAGE)).clamp(1, u64::from(MAX_PAGE)) as u32)
}

fn wire_events(events: Vec<StoredEvent>) -> Vec<wire::Event> {
    events.into_iter().map(wire::Event::from).collect()
}

fn stream_of(aggregate_type: &str, aggregate_id: &str) -> Result<StreamId, ApiError> {
    let aggregate_type = AggregateType::parse(aggregate_type).ok_or_else(|| {
        ApiError::bad_request("INVALID_PATH", format!("{aggregate_type:?} is not Order, Account, Position or Market"))
    })?;
    let aggregate_id: AggregateId = aggregate_id
        .parse()
        .map_err(|_| ApiError::bad_request("INVALID_PATH", format!("{aggregate_id:?} is not a stream id")))?;
    Ok(StreamId { aggregate_type, aggregate_id })
}

fn decode(events: &[StoredEvent]) -> Result<Vec<EventEnvelope>, ApiError> {
    events
        .iter()
        .map(|e| {
            e.decode().map_err(|err| ApiError {
                detail: Some(format!("the stored event at position {} does not decode: {err}", e.position)),
                ..ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    err.code(),
                    format!("the stored event at position {} could not be read; operators have been told", e.position),
                )
            })
        })
        .collect()
}

fn owner(state: &AggregateState) -> Option<AccountId> {
    match state {
        AggregateState::Order(s) => Some(s.account_id),
        AggregateState::Account(s) => Some(s.account_id),
        AggregateState::Position(s) => Some(s.account_id),
        AggregateState::Market(_) => None,
    }
}

/// The events as `user` may see them: staff see them as stored; a trader sees no other
/// user's id or address in their metadata (a fill of its resting order by someone else's
/// order). A view, not an edit: the chain still covers the stored bytes.
fn as_seen_by(user: &User, events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    match user.role {
        Role::Trader => events.iter().map(|e| e.redacted_for(user.user_id)).collect(),
        Role::Auditor | Role::Admin => events,
    }
}

/// Refuses a trader a stream that is not its own (as "not found": nothing is disclosed).
async fn check_stream_access(app: &AppState, user: &User, stream: StreamId) -> Result<(), ApiError> {
    if user.role != Role::Trader {
        return Ok(());
    }
    // The owning account is set by a stream's first event and never changes.
    let first = StreamRange { from_version: 1, to_version: Some(1), until: None };
    let events = app.store.read_stream(stream, first).await?;
    let state = fold_stream(stream.aggregate_type, &decode(&events)?);
    match state.as_ref().and_then(owner) {
        Some(account) if user.account_id == Some(account) => Ok(()),
        _ => Err(ApiError::not_found(format!("no stream {stream} of yours"))),
    }
}

pub(super) async fn stream_events(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let stream = stream_of(&aggregate_type, &aggregate_id)?;
    let from_version = params.number("fromVersion")?.unwrap_or(1).max(1);
    let limit = page_limit(&params)?;
    // A page: at most `limit` versions from `fromVersion`, and not past `toVersion`.
    let last = from_version.saturating_add(u64::from(limit) - 1);
    let to_version = Some(params.number("toVersion")?.map_or(last, |to| to.min(last)));
    let range = StreamRange { from_version, to_version, until: params.get::<Timestamp>("until")? };
    check_stream_access(&app, &user, stream).await?;
    let events = as_seen_by(&user, app.store.read_stream(stream, range).await?);
    let version = app.store.stream_version(stream).await?;
    if version == 0 {
        return Err(ApiError::not_found(format!("no stream {stream}")));
    }
    let next_version = events.last().map_or(from_version, |e| e.version + 1);
    let page = wire::StreamEvents {
        aggregate_type: stream.aggregate_type.into(),
        aggregate_id: stream.aggregate_id,
        version,
        data: wire_events(events),
        next_version,
    };
    Ok(Json(page).into_response())
}

pub(super) async fn stream_state(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let stream = stream_of(&aggregate_type, &aggregate_id)?;
    let version: Option<u64> = params.number("version")?;
    let at: Option<Timestamp> = params.get("at")?;
    check_stream_access(&app, &user, stream).await?;
    // Start from the newest snapshot at or below the version asked for (by time: from 0).
    let snapshot: Option<SnapshotRecord> = match (version, at) {
        (_, Some(_)) => None,
        (version, None) => {
            app.store.load_snapshot(stream.aggregate_type.as_str(), &stream.aggregate_id.to_string(), version).await?
        }
    };
    let start = snapshot.and_then(|record| AggregateSnapshot::from_json(&record.state).ok());
    let from_version = start.as_ref().map_or(1, |s| s.version + 1);
    let range = StreamRange { from_version, to_version: version, until: at };
    let events = decode(&app.store.read_stream(stream, range).await?)?;
    let state = match start {
        Some(snapshot) => {
            let mut state = snapshot.state;
            for event in &events {
                state.apply(event);
            }
            Some(state)
        }
        None => fold_stream(stream.aggregate_type, &events),
    };
    let state = state.ok_or_else(|| ApiError::not_found(format!("stream {stream} has no state at that point")))?;
    if version.is_some_and(|v| state.version() < v) {
        return Err(ApiError::not_found(format!("stream {stream} has no version {}", version.unwrap_or_default())));
    }
    Ok(Json(wire::StreamState {
        aggregate_type: stream.aggregate_type.into(),
        aggregate_id: stream.aggregate_id,
        version: state.version(),
        state: (&state).into(),
    })
    .into_response())
}

pub(super) async fn events(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let from: u64 = params.number("fromPosition")?.unwrap_or(1).max(1);
    let limit = page_limit(&params)?;
    let head = app.store.head().await?.last_position;
    let data = if let Some(correlation) = params.get::<uuid::Uuid>("correlationId")? {
        let all = app.store.read_by_correlation(correlation).await?;
        all.into_iter().filter(|e| e.position >= from).take(limit as usize).collect()
    } else if let Some(event_type) = params.text("eventType") {
        app.store.read_by_type(event_type, from, limit).await?
    } else {
        app.store.read_all(from, limit).await?
    };
    let next_position = data.last().map_or(from, |e: &StoredEvent| e.position + 1);
    Ok(Json(wire::EventPage { data: wire_events(data), next_position, head_position: head }).into_response())
}

pub(super) async fn verify(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let from: u64 = params.number("from")?.unwrap_or(1).max(1);
    let to: Option<u64> = params.number("to")?;
    // A range past the head is the caller's mistake, never a failed verification.
    let head = app.store.head().await?.last_position;
    let beyond = |name: &str, value: u64| {
        ApiError::bad_request(
            "RANGE_BEYOND_HEAD",
            format!("{name}={value} is beyond the head of the log, position {head}"),
        )
    };
    if let Some(to) = to {
        if to > head {
            return Err(beyond("to", to));
        }
        if from > to {
            return Err(ApiError::bad_request("INVALID_RANGE", format!("from={from} is after to={to}")));
        }
    } else if from > head.max(1) {
        return Err(beyond("from", from));
    }
    let report = app.store.verify(from, to).await?;
    Ok(Json(wire::Verification {
        verified: report.is_ok(),
        checked: report.verified,
        first_bad_position: report.first_bad_position,
        fault: report.fault.as_ref().map(wire::ChainFault::from),
        last_hash: report.last_hash,
    })
    .into_response())
}

/// JSON Lines of a stream, a correlation id or a position range, exactly as stored: each line
/// carries `prevHash` and `hash`, so a range verifies offline from its first `prevHash`.
pub(super) async fn export(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    params: Params,
) -> Result<Response, ApiError> {
    let (events, name) = match (params.text("aggregateType"), params.text("aggregateId")) {
        (Some(t), Some(id)) => {
            let stream = stream_of(t, id)?;
            check_stream_access(&app, &user, stream).await?;
            let events = as_seen_by(&user, app.store.read_stream(stream, StreamRange::default()).await?);
            (events, format!("perpetua-{}-{}", stream.aggregate_type.as_str(), stream.aggregate_id))
        }
        (None, None) if user.role == Role::Trader => {
            return Err(ApiError::forbidden(
                "a trader may export only its own streams (aggregateType and aggregateId)",
            ));
        }
        (None, None) => match params.get::<uuid::Uuid>("correlationId")? {
            Some(correlation) => {
                (app.store.read_by_correlation(correlation).await?, format!("perpetua-correlation-{correlation}"))
            }
            None => {
                let from: u64 = params.number("fromPosition")?.unwrap_or(1).max(1);
                let to: u64 = match params.number("toPosition")? {
                    Some(to) => to,
                    None => app.store.head().await?.last_position,
                };
                (app.store.read_range(from, to).await?, format!("perpetua-{from}-{to}"))
            }
        },
        _ => return Err(ApiError::bad_request("INVALID_QUERY", "aggregateType and aggregateId go together")),
    };
    let body = perpetua_core::event::to_json_lines(&events);
    // The name is made of ids, digits and dashes only: nothing to quote.
    let disposition = format!("attachment; filename=\"{name}.jsonl\"");
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson".to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// An event as one server-sent-events frame: `id` its position, `event: event`, its JSON on
/// one `data` line (JSON text never holds a raw line break).
fn event_frame(event: &StoredEvent) -> Bytes {
    let json = serde_json::to_string(event).expect("events serialize");
    format!("id: {}\nevent: event\ndata: {json}\n\n", event.position).into()
}

/// The live tail's state: the next position to send, what is buffered (as frames), and the
/// feed of commits.
struct Tail {
    app: AppState,
    feed: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::processor::Committed>>,
    next: u64,
    buffer: VecDeque<(u64, Bytes)>,
}

impl Tail {
    /// The next event (its position and frame), in position order without gaps: from the
    /// buffer, else from the store, else the next commit. `None` ends the stream.
    async fn next_event(&mut self) -> Option<(u64, Bytes)> {
        loop {
            if let Some((position, frame)) = self.buffer.pop_front() {
                if position < self.next {
                    continue;
                }
                if position > self.next {
                    // Something was missed (the feed lagged): read it from the store.
                    self.buffer.clear();
                } else {
                    self.next += 1;
                    return Some((position, frame));
                }
            }
            // What the feed holds first; then, caught up with the committed head, wait for it.
            // (Reading the store whenever the buffer runs dry would cost every tail a query
            // per commit.)
            use tokio::sync::broadcast::error::{RecvError, TryRecvError};
            let batch = match self.feed.try_recv() {
                Ok(batch) => Some(batch),
                Err(TryRecvError::Lagged(_)) => None,
                Err(TryRecvError::Closed) => return None,
                Err(TryRecvError::Empty) if self.next > self.app.processor.head().borrow().position => {
                    match self.feed.recv().await {
                        Ok(batch) => Some(batch),
                        Err(RecvError::Lagged(_)) => None,
                        Err(RecvError::Closed) => return None,
                    }
                }
                Err(TryRecvError::Empty) => None,
            };
            if let Some(batch) = batch {
                let fresh =
                    batch.events.iter().zip(batch.encoded(event_frame)).filter(|(e, _)| e.position >= self.next);
                self.buffer.extend(fresh.map(|(e, frame)| (e.position, frame.clone())));
                continue;
            }
            // Behind (catching up, or the feed lagged): from the store. Tails catching up share
            // two of the store's connections, so that many never keep the writer waiting.
            let read = async {
                let _turn = TAIL_READS.acquire().await.expect("never closed");
                self.app.store.read_all(self.next, STREAM_BUFFER as u32).await
            };
            match read.await {
                Ok(page) if !page.is_empty() => {
                    self.buffer.extend(page.iter().map(|e| (e.position, event_frame(e))));
                }
                // The head said there is more: it is a moment away from being readable.
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(_) => return None,
            }
        }
    }
}

/// Store reads of live tails catching up, at most two at a time.
static TAIL_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Events a live stream holds for a consumer that is not reading. Once they are all waiting,
/// the consumer is too slow: it gets a final `error` message in the slot kept for it, and its
/// connection is closed if it has not read that within [`SLOW_CONSUMER_GRACE`].
pub const STREAM_BUFFER: usize = 256;
/// Bytes the kernel holds for a live stream's consumer (its socket's send buffer).
pub const STREAM_SEND_BUFFER: usize = 64 * 1024;
/// How long a dropped consumer has to read its final message.
pub const SLOW_CONSUMER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn live(
    State(app): State<AppState>,
    connection: Option<Extension<ConnectionControl>>,
    params: Params,
) -> Result<Response, ApiError> {
    let from = match params.number("fromPosition")? {
        Some(from) => from.max(1),
        None => app.processor.head().borrow().position + 1,
    };
    // Subscribe before the first read, so nothing committed in between is missed.
    let feed = app.processor.subscribe();
    let tail = Tail { app, feed, next: from, buffer: VecDeque::new() };
    let connection = connection.map(|Extension(c)| c);
    if let Some(connection) = &connection {
        // SAFETY: this is the handler of a request of that connection, running.
        unsafe { connection.limit_send_buffer(STREAM_SEND_BUFFER) };
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER + 1);
    tokio::spawn(feed_consumer(tail, sender, connection.map(|c| c.closer())));
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let frame = receiver.recv().await?;
        Some((Ok::<_, Infallible>(frame), receiver))
    });
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    Ok((headers, axum::body::Body::from_stream(frames)).into_response())
}

/// Counts a live-stream client for as long as it is connected.
struct Connected(prometheus::IntGauge);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A comment frame sent when a stream has had nothing to say for [`KEEP_ALIVE`].
const KEEP_ALIVE_FRAME: &[u8] = b":\n\n";
/// How long a live stream stays silent before a keep-alive comment.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Moves the tail's frames into the consumer's bounded buffer, until the consumer leaves or
/// falls [`STREAM_BUFFER`] events behind: a stuck consumer costs that much memory at most,
/// and never holds up the writer or anyone else.
async fn feed_consumer(mut tail: Tail, sender: tokio::sync::mpsc::Sender<Bytes>, connection: Option<ConnectionCloser>) {
    let metrics = tail.app.metrics.clone();
    let clients = metrics.stream_clients.with_label_values(&["log"]);
    clients.inc();
    let _connected = Connected(clients);
    let mut draining = tail.app.draining.clone();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(KEEP_ALIVE, tail.next_event()) => Some(next),
            () = sender.closed() => return,
            _ = draining.wait_for(|draining| *draining) => None,
        };
        let Some(next) = next else {
            // The server is stopping: a last message says where to resume, and the stream
            // ends, so the drain does not wait on this client.
            let bye = json!({ "error": {
                "code": "SERVER_SHUTTING_DOWN",
                "message": format!("the server is shutting down; reconnect with fromPosition={} to resume", tail.next),
            }});
            let _ = sender.try_send(format!("event: error\ndata: {bye}\n\n").into());
            close_unless_read(&sender, connection.as_ref()).await;
            return;
        };
        let (position, frame) = match next {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(_) => (tail.next, Bytes::from_static(KEEP_ALIVE_FRAME)),
        };
        if sender.capacity() <= 1 {
            metrics.stream_drops.with_label_values(&["log"]).inc();
            let error = json!({ "error": {
                "code": "SLOW_CONSUMER",
                "message": format!("this stream was {STREAM_BUFFER} events behind and is closed; \
                    reconnect with fromPosition={} to resume", position.min(tail.next)),
            }});
            let _ = sender.try_send(format!("event: error\ndata: {error}\n\n").into());
            close_unless_read(&sender, connection.as_ref()).await;
            return;
        }
        if sender.try_send(frame).is_err() {
            return;
        }
    }
}

/// Closes the consumer's connection unless it reads what is buffered for it (its final
/// message) within [`SLOW_CONSUMER_GRACE`]: a stuck consumer holds neither its memory nor,
/// during a drain, the server's shutdown.
async fn close_unless_read(sender: &tokio::sync::mpsc::Sender<Bytes>, connection: Option<&ConnectionCloser>) {
    let read = tokio::time::timeout(SLOW_CONSUMER_GRACE, async {
        while sender.capacity() < STREAM_BUFFER + 1 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    if read.await.is_err() {
        if let Some(connection) = connection {
            connection.close();
        }
    }
}
