//! Audit routes: read the log itself (not the read models): streams, their state at any
//! version or time, the global log, a live tail, chain verification and export.

use super::queries::Params;
use super::{ApiError, AppState, Role, User};
use crate::store::{SnapshotRecord, StreamRange};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
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

/// Most events one page of `/v1/events` returns.
const MAX_PAGE: u32 = 10_000;

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
            e.decode().map_err(|err| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    err.code(),
                    format!("position {}: {err}", e.position),
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
    let range = StreamRange {
        from_version: params.number("fromVersion")?.unwrap_or(1).max(1),
        to_version: params.number("toVersion")?,
        until: params.get::<Timestamp>("until")?,
    };
    check_stream_access(&app, &user, stream).await?;
    let events = as_seen_by(&user, app.store.read_stream(stream, range).await?);
    let version = app.store.stream_version(stream).await?;
    if version == 0 {
        return Err(ApiError::not_found(format!("no stream {stream}")));
    }
    Ok(Json(json!({ "aggregateType": stream.aggregate_type, "aggregateId": stream.aggregate_id, "version": version, "data": events })).into_response())
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
    Ok(Json(json!({
        "aggregateType": stream.aggregate_type,
        "aggregateId": stream.aggregate_id,
        "version": state.version(),
        "state": state,
    }))
    .into_response())
}

pub(super) async fn events(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let from: u64 = params.number("fromPosition")?.unwrap_or(1).max(1);
    let limit = params.number("limit")?.unwrap_or(1_000).clamp(1, u64::from(MAX_PAGE)) as u32;
    let head = app.store.head().await?.last_position;
    let data = if let Some(correlation) = params.get::<uuid::Uuid>("correlationId")? {
        let all = app.store.read_by_correlation(correlation).await?;
        all.into_iter().filter(|e| e.position >= from).take(limit as usize).collect()
    } else if let Some(event_type) = params.text("eventType") {
        app.store.read_by_type(event_type, from, limit).await?
    } else {
        app.store.read_all(from, limit).await?
    };
    let next = data.last().map_or(from, |e: &StoredEvent| e.position + 1);
    Ok(Json(json!({ "data": data, "nextPosition": next, "headPosition": head })).into_response())
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
    Ok(Json(json!({
        "verified": report.is_ok(),
        "checked": report.verified,
        "firstBadPosition": report.first_bad_position,
        "fault": report.fault,
        "lastHash": report.last_hash,
    }))
    .into_response())
}

/// JSON Lines of a stream, a correlation id or a position range, exactly as stored: each line
/// carries `prevHash` and `hash`, so a range verifies offline from its first `prevHash`.
pub(super) async fn export(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    params: Params,
) -> Result<Response, ApiError> {
    let events = match (params.text("aggregateType"), params.text("aggregateId")) {
        (Some(t), Some(id)) => {
            let stream = stream_of(t, id)?;
            check_stream_access(&app, &user, stream).await?;
            as_seen_by(&user, app.store.read_stream(stream, StreamRange::default()).await?)
        }
        (None, None) if user.role == Role::Trader => {
            return Err(ApiError::forbidden(
                "a trader may export only its own streams (aggregateType and aggregateId)",
            ));
        }
        (None, None) => match params.get::<uuid::Uuid>("correlationId")? {
            Some(correlation) => app.store.read_by_correlation(correlation).await?,
            None => {
                let from: u64 = params.number("fromPosition")?.unwrap_or(1).max(1);
                let to: u64 = match params.number("toPosition")? {
                    Some(to) => to,
                    None => app.store.head().await?.last_position,
                };
                app.store.read_range(from, to).await?
            }
        },
        _ => return Err(ApiError::bad_request("INVALID_QUERY", "aggregateType and aggregateId go together")),
    };
    let body = perpetua_core::event::to_json_lines(&events);
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// The live tail's state: the next position to send, what is buffered, and the feed of commits.
struct Tail {
    app: AppState,
    feed: tokio::sync::broadcast::Receiver<std::sync::Arc<Vec<StoredEvent>>>,
    next: u64,
    buffer: VecDeque<StoredEvent>,
}

impl Tail {
    /// The next event, in position order without gaps: from the buffer, else from the store,
    /// else the next commit. `None` ends the stream.
    async fn next_event(&mut self) -> Option<StoredEvent> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                if event.position < self.next {
                    continue;
                }
                if event.position > self.next {
                    // Something was missed (the feed lagged): read it from the store.
                    self.buffer.clear();
                } else {
                    self.next += 1;
                    return Some(event);
                }
            }
            match self.app.store.read_all(self.next, 1_000).await {
                Ok(page) if !page.is_empty() => {
                    self.buffer.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(_) => return None,
            }
            match self.feed.recv().await {
                Ok(batch) => self.buffer.extend(batch.iter().filter(|e| e.position >= self.next).cloned()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

pub(super) async fn live(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let from = match params.number("fromPosition")? {
        Some(from) => from.max(1),
        None => app.processor.head().borrow().position + 1,
    };
    // Subscribe before the first read, so nothing committed in between is missed.
    let feed = app.processor.subscribe();
    let tail = Tail { app, feed, next: from, buffer: VecDeque::new() };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next_event().await?;
        let data = serde_json::to_string(&event).expect("events serialize");
        let message = SseEvent::default().event("event").id(event.position.to_string()).data(data);
        Some((Ok::<_, Infallible>(message), tail))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
