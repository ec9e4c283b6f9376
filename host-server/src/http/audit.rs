//! Audit routes: read the log itself (not the read models): streams, their state at any
//! version or time, the global log, a live tail, chain verification, the Merkle tree's heads
//! and proofs, and export.

use super::queries::Params;
use super::wire;
use super::{ApiError, AppState, Role, User};
use crate::store::{SnapshotRecord, StoreError, StreamRange};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use perpetua_core::event::{AggregateId, AggregateType, EventEnvelope, StoredEvent, StreamId};
use perpetua_core::ids::AccountId;
use perpetua_core::snapshot::AggregateSnapshot;
use perpetua_core::time::Timestamp;
use perpetua_core::timetravel::{fold_stream, AggregateState};

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

/// The head of the log now, and the tree brought up to `size` (at most the head; the head
/// when not given) — a size past the head is the caller's mistake.
async fn tree_at<'a>(
    app: &'a AppState,
    name: &str,
    size: Option<u64>,
) -> Result<(u64, tokio::sync::RwLockReadGuard<'a, perpetua_core::merkle::MerkleTree>), ApiError> {
    let head = app.store.head().await?.last_position;
    let size = size.unwrap_or(head);
    if size > head {
        return Err(ApiError::bad_request(
            "TREE_SIZE_BEYOND_HEAD",
            format!("{name}={size} is beyond the head of the log, position {head}"),
        ));
    }
    Ok((size, app.audit_tree.reaching(&app.store, size).await?))
}

/// A proof asked of a tree it cannot come from: a bug of ours, since the sizes were checked.
fn proof_failed(e: perpetua_core::merkle::ProofError) -> ApiError {
    ApiError::server(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "the proof could not be made",
        format!("Merkle proof: {e}"),
    )
}

pub(super) async fn tree_head(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let (tree_size, tree) = tree_at(&app, "treeSize", params.number("treeSize")?).await?;
    let root_hash = tree.root(tree_size).map_err(proof_failed)?;
    Ok(Json(wire::TreeHead { tree_size, root_hash }).into_response())
}

pub(super) async fn inclusion_proof(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let position: u64 =
        params.number("position")?.ok_or_else(|| ApiError::bad_request("INVALID_QUERY", "position is required"))?;
    let (tree_size, tree) = tree_at(&app, "treeSize", params.number("treeSize")?).await?;
    if position == 0 || position > tree_size {
        return Err(ApiError::bad_request(
            "POSITION_NOT_IN_TREE",
            format!("position {position} is not in a tree of {tree_size} events (positions 1 to {tree_size})"),
        ));
    }
    let leaf_index = position - 1;
    let proof = tree.inclusion_proof(leaf_index, tree_size).map_err(proof_failed)?;
    let root_hash = tree.root(tree_size).map_err(proof_failed)?;
    let leaf_hash = tree.leaf(leaf_index).ok_or_else(|| {
        proof_failed(perpetua_core::merkle::ProofError::LeafOutOfRange { index: leaf_index, size: tree.size() })
    })?;
    drop(tree);
    let event_hash =
        app.store.event_hashes(position, 1).await?.first().copied().ok_or(StoreError::LogGap { missing: position })?;
    Ok(Json(wire::InclusionProof { position, leaf_index, tree_size, event_hash, leaf_hash, root_hash, proof })
        .into_response())
}

pub(super) async fn consistency_proof(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let first: u64 =
        params.number("first")?.ok_or_else(|| ApiError::bad_request("INVALID_QUERY", "first is required"))?;
    let (second, tree) = tree_at(&app, "second", params.number("second")?).await?;
    if first > second {
        return Err(ApiError::bad_request("INVALID_RANGE", format!("first={first} is after second={second}")));
    }
    let proof = tree.consistency_proof(first, second).map_err(proof_failed)?;
    let first_root = tree.root(first).map_err(proof_failed)?;
    let second_root = tree.root(second).map_err(proof_failed)?;
    Ok(Json(wire::ConsistencyProof { first, second, first_root, second_root, proof }).into_response())
}

pub(super) async fn checkpoints(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let from = params.number("fromTreeSize")?.unwrap_or(0);
    let limit = page_limit(&params)?;
    let found = app.store.signed_checkpoints(from, limit + 1).await?;
    let next_tree_size = found.get(limit as usize).map(|c| c.head.tree_size);
    let checkpoints = found.into_iter().take(limit as usize).map(wire::Checkpoint::from).collect();
    Ok(Json(wire::Checkpoints { checkpoints, next_tree_size }).into_response())
}

pub(super) async fn latest_checkpoint(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let at_most = params.number("atMostTreeSize")?.unwrap_or(u64::MAX >> 1);
    match app.store.latest_signed_checkpoint(at_most).await? {
        Some(checkpoint) => Ok(Json(wire::Checkpoint::from(checkpoint)).into_response()),
        None => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NO_CHECKPOINT",
            format!("no checkpoint of at most {at_most} events has been signed"),
        )),
    }
}

pub(super) async fn sign_checkpoint(State(app): State<AppState>) -> Result<Response, ApiError> {
    let signer = app.signer.as_ref().ok_or_else(|| {
        ApiError::server(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "this server cannot sign checkpoints",
            "a writer's route served without a signer".to_owned(),
        )
    })?;
    let (checkpoint, _) = signer.sign_head().await?;
    Ok(Json(wire::Checkpoint::from(checkpoint)).into_response())
}

pub(super) async fn order_receipt(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let stream = stream_of("Order", &order_id)?;
    check_stream_access(&app, &user, stream).await?;
    let events = as_seen_by(&user, app.store.read_stream(stream, StreamRange::default()).await?);
    let Some(last) = events.last().map(|e| e.position) else {
        return Err(ApiError::not_found(format!("no order {order_id}")));
    };
    // The newest checkpoint, signed now by a writer when it does not reach the order's last
    // event yet; a query server answers 409 until the writer's next one.
    let mut checkpoint = app.store.latest_signed_checkpoint(u64::MAX >> 1).await?;
    if checkpoint.as_ref().is_none_or(|c| c.head.tree_size < last) {
        if let Some(signer) = &app.signer {
            checkpoint = Some(signer.sign_head().await?.0);
        }
    }
    let checkpoint = checkpoint.filter(|c| c.head.tree_size >= last).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "CHECKPOINT_PENDING",
            format!("the order's last event (position {last}) is not under a signed checkpoint yet; retry in a second"),
        )
    })?;
    let size = checkpoint.head.tree_size;
    let tree = app.audit_tree.reaching(&app.store, size).await?;
    let mut proven = Vec::with_capacity(events.len());
    for event in events {
        let proof = tree.inclusion_proof(event.position - 1, size).map_err(proof_failed)?;
        proven.push(wire::ReceiptEvent { event, proof });
    }
    drop(tree);
    Ok(Json(wire::Receipt { checkpoint: checkpoint.into(), events: proven }).into_response())
}

/// The checkpoint an export of the log up to `to` carries: the newest one of at most `to`
/// events (signed now when `to` is the head and this server signs).
async fn export_checkpoint(
    app: &AppState,
    to: Option<u64>,
) -> Result<Option<perpetua_core::checkpoint::Checkpoint>, ApiError> {
    if let (None, Some(signer)) = (to, &app.signer) {
        return Ok(Some(signer.sign_head().await?.0));
    }
    Ok(app.store.latest_signed_checkpoint(to.unwrap_or(u64::MAX >> 1)).await?)
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
                let asked: Option<u64> = params.number("toPosition")?;
                let checkpoint = export_checkpoint(&app, asked).await?;
                // Up to the checkpoint signed for it, or to the head.
                let to: u64 = match (asked, &checkpoint) {
                    (Some(to), _) => to,
                    (None, Some(signed)) if app.signer.is_some() => signed.head.tree_size,
                    (None, _) => app.store.head().await?.last_position,
                };
                let events = app.store.read_range(from, to).await?;
                return Ok(export_response(&events, checkpoint.as_ref(), &format!("perpetua-{from}-{to}")));
            }
        },
        _ => return Err(ApiError::bad_request("INVALID_QUERY", "aggregateType and aggregateId go together")),
    };
    let checkpoint = app.store.latest_signed_checkpoint(u64::MAX >> 1).await?;
    Ok(export_response(&events, checkpoint.as_ref(), &name))
}

/// An export's body: the events as JSON Lines, then the checkpoint's line.
fn export_response(
    events: &[StoredEvent],
    checkpoint: Option<&perpetua_core::checkpoint::Checkpoint>,
    name: &str,
) -> Response {
    let mut body = perpetua_core::event::to_json_lines(events);
    if let Some(checkpoint) = checkpoint {
        body.push_str(&perpetua_core::checkpoint::export_line(checkpoint));
        body.push('\n');
    }
    // The name is made of ids, digits and dashes only: nothing to quote.
    let disposition = format!("attachment; filename=\"{name}.jsonl\"");
    ([(header::CONTENT_TYPE, "application/x-ndjson".to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}
