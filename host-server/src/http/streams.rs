//! Live streams, as server-sent events: the staff's tail of the whole log, a trader's own
//! events, and a market's public data (its book, trades, mark price and funding).
//!
//! SSE rather than WebSocket: every stream goes one way, from the server; SSE is plain HTTP,
//! so the access checks, rate limits, request ids, CORS and the drain apply as to any route;
//! it has ids and resumption built in (`id:` is the log position, a client reconnects with
//! `fromPosition`, or a browser's `Last-Event-ID`); and a browser's `EventSource` or `curl -N`
//! reads it with nothing else.
//!
//! Every stream is ordered (by log position) and bounded: a consumer that stops reading
//! costs [`STREAM_BUFFER`] messages at most. A stream catching up waits for its consumer (the
//! log is read from the store as the consumer takes it); one whose consumer has taken nothing
//! for [`SLOW_CONSUMER_GRACE`] with its buffer full, or whose live feed went on without it,
//! gets a final `error` message (`SLOW_CONSUMER`, with where to resume) and its connection is
//! closed if it has not read that within the same grace. A draining server ends every stream
//! with `SERVER_SHUTTING_DOWN`, and a store that fails ends a log stream with
//! `STORE_UNAVAILABLE`, likewise.

use super::queries::Params;
use super::{wait_min_position, ApiError, AppState, Role, User};
use crate::listener::{ConnectionCloser, ConnectionControl};
use crate::market_data::MarketBatch;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use perpetua_core::event::{AggregateType, StoredEvent, StreamId};
use perpetua_core::ids::{AccountId, UserId};
use perpetua_core::symbol::Symbol;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Store reads of live tails catching up, at most two at a time.
static TAIL_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Messages a live stream holds for a consumer that is not reading. Once they are all
/// waiting, the consumer is too slow: it gets a final `error` message in the slot kept for
/// it, and its connection is closed if it has not read that within [`SLOW_CONSUMER_GRACE`].
pub const STREAM_BUFFER: usize = 256;
/// Bytes the kernel holds for a live stream's consumer (its socket's send buffer).
pub const STREAM_SEND_BUFFER: usize = 64 * 1024;
/// How long a dropped consumer has to read its final message.
pub const SLOW_CONSUMER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// A comment frame sent when a stream has had nothing to say for [`KEEP_ALIVE`].
const KEEP_ALIVE_FRAME: &[u8] = b":\n\n";
/// How long a live stream stays silent before a keep-alive comment.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
/// Streams whose owner a trader's stream remembers (then it forgets them all and asks
/// again): a trader's stream of a busy exchange sees many orders.
const STREAMS_REMEMBERED: usize = 65_536;

/// `GET /v1/events/live`: every event from a position, as stored.
pub(super) async fn live(
    State(app): State<AppState>,
    connection: Option<Extension<ConnectionControl>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let from = from_position(&app, &params, &headers)?;
    // Subscribe before the first read, so nothing committed in between is missed.
    let feed = app.processor.subscribe();
    let tail = Tail { app, feed, next: from, buffer: VecDeque::new(), view: None };
    Ok(respond(Source::Log(tail), connection))
}

/// `GET /v1/accounts/{accountId}/live`: the account's own events from a position — its
/// orders (placed, matched, filled, cancelled), its balance and its positions — with no
/// other user's id or address, and nothing of anyone else's.
pub(super) async fn account_live(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    connection: Option<Extension<ConnectionControl>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let account: AccountId = account.parse().map_err(|_| ApiError::not_found("no such account"))?;
    if !user.may_read(account) {
        return Err(ApiError::forbidden("a trader sees only its own account"));
    }
    let from = from_position(&app, &params, &headers)?;
    let feed = app.processor.subscribe();
    let redact = (user.role == Role::Trader).then_some(user.user_id);
    let view = TraderView { account, redact, owners: HashMap::new() };
    let tail = Tail { app, feed, next: from, buffer: VecDeque::new(), view: Some(view) };
    Ok(respond(Source::Account(tail), connection))
}

/// `GET /v1/markets/{symbol}/live`: the book (a snapshot, then depth diffs), trades, and the
/// market's mark price and funding as they change.
pub(super) async fn market_live(
    State(app): State<AppState>,
    connection: Option<Extension<ConnectionControl>>,
    Path(symbol): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let depth: usize = params.get("depth")?.unwrap_or(1_000).clamp(1, 5_000);
    wait_min_position(&app, params.number("minPosition")?).await?;
    let symbol = super::queries::known_symbol(&app, &symbol).await?;
    // Subscribe before the snapshot is read: every diff after the snapshot's position comes.
    let feed = app.projector.market_feed();
    let book = super::queries::book_of(&app, symbol, depth).await?;
    let snapshot = crate::market_data::frame("book", book.sequence, &book);
    let source =
        MarketTail { app, feed, symbol, after: book.sequence, buffer: VecDeque::from([(book.sequence, snapshot)]) };
    Ok(respond(Source::Market(source), connection))
}

/// Where a log stream starts: after the `Last-Event-ID` a reconnecting `EventSource` sends
/// (the position of the last event it got), else `fromPosition`, else after the head.
fn from_position(app: &AppState, params: &Params, headers: &HeaderMap) -> Result<u64, ApiError> {
    if let Some(last) = headers.get("last-event-id") {
        let last = last.to_str().ok().and_then(|l| l.trim().parse::<u64>().ok()).filter(|l| i64::try_from(*l).is_ok());
        let last =
            last.ok_or_else(|| ApiError::bad_request("INVALID_QUERY", "Last-Event-ID must be a log position"))?;
        return Ok(last + 1);
    }
    Ok(match params.number("fromPosition")? {
        Some(from) => from.max(1),
        None => app.processor.head().borrow().position + 1,
    })
}

/// The streaming answer: the source's frames, through a consumer task with a bounded buffer.
fn respond(source: Source, connection: Option<Extension<ConnectionControl>>) -> Response {
    let connection = connection.map(|Extension(c)| c);
    if let Some(connection) = &connection {
        // SAFETY: this is the handler of a request of that connection, running.
        unsafe { connection.limit_send_buffer(STREAM_SEND_BUFFER) };
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER + 1);
    tokio::spawn(feed_consumer(source, sender, connection.map(|c| c.closer())));
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let frame = receiver.recv().await?;
        Some((Ok::<_, Infallible>(frame), receiver))
    });
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    (headers, axum::body::Body::from_stream(frames)).into_response()
}

/// An event as one server-sent-events frame: `id` its position, `event: event`, its JSON on
/// one `data` line (JSON text never holds a raw line break).
fn event_frame(event: &StoredEvent) -> Bytes {
    let json = serde_json::to_string(event).expect("events serialize");
    format!("id: {}\nevent: event\ndata: {json}\n\n", event.position).into()
}

/// What a trader's stream keeps: the events of streams the account owns. A stream's owner is
/// the `accountId` of its first event (an order's placement, a position's opening), asked of
/// the store once per stream the event itself does not say.
struct TraderView {
    account: AccountId,
    /// The trader whose copy this is (its events show no other user's id); `None` for staff.
    redact: Option<UserId>,
    /// Streams seen, and whether the account owns them (at most [`STREAMS_REMEMBERED`]).
    owners: HashMap<StreamId, bool>,
}

impl TraderView {
    /// The frame of `event` for this account, or `None` when it is someone else's.
    async fn frame(&mut self, app: &AppState, event: &StoredEvent) -> Result<Option<Bytes>, ApiError> {
        if !self.owns(app, event).await? {
            return Ok(None);
        }
        Ok(Some(match self.redact {
            Some(user) => event_frame(&event.redacted_for(user)),
            None => event_frame(event),
        }))
    }

    async fn owns(&mut self, app: &AppState, event: &StoredEvent) -> Result<bool, ApiError> {
        let stream = StreamId { aggregate_type: event.aggregate_type, aggregate_id: event.aggregate_id };
        if event.aggregate_type == AggregateType::Market {
            return Ok(false);
        }
        if let Some(owned) = self.owners.get(&stream) {
            return Ok(*owned);
        }
        // The event names its account, or its stream's first event does.
        let owner = match account_of(event) {
            Some(owner) => Some(owner),
            None => {
                // Shares the tails' two store connections, so that many streams never keep
                // the writer waiting.
                let _turn = TAIL_READS.acquire().await.expect("never closed");
                let first = crate::store::StreamRange { from_version: 1, to_version: Some(1), until: None };
                app.store.read_stream(stream, first).await?.first().and_then(account_of)
            }
        };
        let owned = owner == Some(self.account);
        // Bounded: past the limit, everything is forgotten and asked again when seen.
        if self.owners.len() >= STREAMS_REMEMBERED {
            self.owners.clear();
        }
        self.owners.insert(stream, owned);
        Ok(owned)
    }
}

/// The `accountId` an event's payload names, if any.
fn account_of(event: &StoredEvent) -> Option<AccountId> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Named {
        account_id: Option<AccountId>,
    }
    serde_json::from_str::<Named>(event.payload.get()).ok()?.account_id
}

/// A log stream's state: the next position to send, what is buffered (frames; `None` for a
/// position whose event this stream does not show), the feed of commits, and for a trader's
/// stream its view.
struct Tail {
    app: AppState,
    feed: broadcast::Receiver<Arc<crate::processor::Committed>>,
    next: u64,
    buffer: VecDeque<(u64, Option<Bytes>)>,
    view: Option<TraderView>,
}

impl Tail {
    /// The next event (its position and frame), in position order without gaps: from the
    /// buffer, else from the store, else the next commit.
    async fn next_event(&mut self) -> Next {
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
                    match frame {
                        Some(frame) => return Next::Message(position, frame),
                        None => continue,
                    }
                }
            }
            // What the feed holds first; then, caught up with the committed head, wait for it.
            // (Reading the store whenever the buffer runs dry would cost every tail a query
            // per commit.)
            use tokio::sync::broadcast::error::{RecvError, TryRecvError};
            let batch = match self.feed.try_recv() {
                Ok(batch) => Some(batch),
                Err(TryRecvError::Lagged(_)) => None,
                Err(TryRecvError::Closed) => return Next::End,
                Err(TryRecvError::Empty) if self.next > self.app.processor.head().borrow().position => {
                    match self.feed.recv().await {
                        Ok(batch) => Some(batch),
                        Err(RecvError::Lagged(_)) => None,
                        Err(RecvError::Closed) => return Next::End,
                    }
                }
                Err(TryRecvError::Empty) => None,
            };
            if let Some(batch) = batch {
                let fresh: Vec<(&StoredEvent, &Bytes)> = batch
                    .events
                    .iter()
                    .zip(batch.encoded(event_frame))
                    .filter(|(e, _)| e.position >= self.next)
                    .collect();
                for (event, frame) in fresh {
                    let Some(frame) = self.shown(event, Some(frame)).await else { return Next::StoreFailed };
                    self.buffer.push_back((event.position, frame));
                }
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
                    for event in &page {
                        let Some(frame) = self.shown(event, None).await else { return Next::StoreFailed };
                        self.buffer.push_back((event.position, frame));
                    }
                }
                // The head said there is more: it is a moment away from being readable.
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, "a live stream could not read the log");
                    return Next::StoreFailed;
                }
            }
        }
    }

    /// The frame this stream shows for `event` (`encoded`: the shared frame of the whole
    /// log's copy, when there is one), `Some(None)` for one it does not show; `None` ends the
    /// stream (its owner could not be read).
    async fn shown(&mut self, event: &StoredEvent, encoded: Option<&Bytes>) -> Option<Option<Bytes>> {
        match &mut self.view {
            None => Some(Some(encoded.cloned().unwrap_or_else(|| event_frame(event)))),
            Some(view) => match view.frame(&self.app, event).await {
                Ok(frame) => Some(frame),
                Err(e) => {
                    tracing::warn!(
                        code = e.code,
                        detail = e.detail.as_deref().unwrap_or(""),
                        "an account stream ended"
                    );
                    None
                }
            },
        }
    }
}

/// A market stream's state: its snapshot first, then the market's messages from each page
/// the projector writes after it.
struct MarketTail {
    app: AppState,
    feed: broadcast::Receiver<Arc<MarketBatch>>,
    symbol: Symbol,
    /// The snapshot's position: pages up to it are in the snapshot already.
    after: u64,
    buffer: VecDeque<(u64, Bytes)>,
}

impl MarketTail {
    /// The next message.
    async fn next_message(&mut self) -> Next {
        loop {
            if let Some((position, frame)) = self.buffer.pop_front() {
                return Next::Message(position, frame);
            }
            let batch = match self.feed.recv().await {
                Ok(batch) => batch,
                Err(broadcast::error::RecvError::Lagged(_)) => return Next::Behind,
                Err(broadcast::error::RecvError::Closed) => return Next::End,
            };
            if batch.position <= self.after {
                continue;
            }
            self.after = batch.position;
            if let Some(frames) = batch.frames.get(&self.symbol) {
                self.buffer.extend(frames.iter().map(|frame| (batch.position, frame.clone())));
            }
        }
    }
}

/// What a source has next.
enum Next {
    /// A message, and the position it stands at.
    Message(u64, Bytes),
    /// The source ended (the server is stopping).
    End,
    /// The live feed went on without this stream.
    Behind,
    /// The store could not be read.
    StoreFailed,
}

/// What a stream sends.
enum Source {
    /// The whole log (staff).
    Log(Tail),
    /// One account's events.
    Account(Tail),
    /// One market's public data.
    Market(MarketTail),
}

impl Source {
    fn app(&self) -> &AppState {
        match self {
            Source::Log(tail) | Source::Account(tail) => &tail.app,
            Source::Market(market) => &market.app,
        }
    }

    /// The stream's name in the metrics.
    fn label(&self) -> &'static str {
        match self {
            Source::Log(_) => "log",
            Source::Account(_) => "account",
            Source::Market(_) => "market",
        }
    }

    /// The next message and its position.
    async fn next(&mut self) -> Next {
        match self {
            Source::Log(tail) | Source::Account(tail) => tail.next_event().await,
            Source::Market(market) => market.next_message().await,
        }
    }

    /// The position a keep-alive stands at.
    fn at(&self) -> u64 {
        match self {
            Source::Log(tail) | Source::Account(tail) => tail.next,
            Source::Market(market) => market.after,
        }
    }

    /// How a client picks up again after this stream ended, `position` being the first it
    /// did not get.
    fn resume(&self, position: u64) -> String {
        match self {
            Source::Log(_) | Source::Account(_) => format!("reconnect with fromPosition={position} to resume"),
            Source::Market(_) => "reconnect for a new snapshot".to_owned(),
        }
    }
}

/// Counts a live-stream client for as long as it is connected.
struct Connected(prometheus::IntGauge);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn error_frame(code: &str, message: String) -> Bytes {
    let error = json!({ "error": { "code": code, "message": message } });
    format!("event: error\ndata: {error}\n\n").into()
}

/// Moves the source's frames into the consumer's bounded buffer, until the consumer leaves or
/// falls [`STREAM_BUFFER`] messages behind: a stuck consumer costs that much memory at most,
/// and never holds up the writer, the projector or anyone else.
async fn feed_consumer(
    mut source: Source,
    sender: tokio::sync::mpsc::Sender<Bytes>,
    connection: Option<ConnectionCloser>,
) {
    let metrics = source.app().metrics.clone();
    let label = source.label();
    let clients = metrics.stream_clients.with_label_values(&[label]);
    clients.inc();
    let _connected = Connected(clients);
    let mut draining = source.app().draining.clone();
    // Why the stream ends, when it ends with a last message.
    let (code, message) = loop {
        let next = tokio::select! {
            next = tokio::time::timeout(KEEP_ALIVE, source.next()) => Some(next),
            () = sender.closed() => return,
            _ = draining.wait_for(|draining| *draining) => None,
        };
        let (position, frame) = match next {
            // The server is stopping: a last message says where to resume, and the stream
            // ends, so the drain does not wait on this client.
            None => {
                break ("SERVER_SHUTTING_DOWN", format!("the server is shutting down; {}", source.resume(source.at())))
            }
            Some(Ok(Next::Message(position, frame))) => (position, frame),
            Some(Ok(Next::End)) => return,
            Some(Ok(Next::Behind)) => {
                metrics.stream_drops.with_label_values(&[label]).inc();
                let resume = source.resume(source.at() + 1);
                break ("SLOW_CONSUMER", format!("this stream fell behind its live feed and is closed; {resume}"));
            }
            Some(Ok(Next::StoreFailed)) => {
                let resume = source.resume(source.at());
                break ("STORE_UNAVAILABLE", format!("the log could not be read; {resume}"));
            }
            Some(Err(_)) => (source.at(), Bytes::from_static(KEEP_ALIVE_FRAME)),
        };
        // Wait for room for the message and one more (kept for a last message): a consumer
        // that reads, however slowly, is waited for; one that has taken nothing for the grace
        // is too slow.
        let room = tokio::select! {
            room = tokio::time::timeout(SLOW_CONSUMER_GRACE, sender.reserve_many(2)) => Some(room),
            _ = draining.wait_for(|draining| *draining) => None,
        };
        match room {
            Some(Ok(Ok(mut permits))) => permits.next().expect("two permits").send(frame),
            Some(Ok(Err(_))) => return,
            Some(Err(_)) => {
                metrics.stream_drops.with_label_values(&[label]).inc();
                let resume = source.resume(position.min(source.at()));
                break (
                    "SLOW_CONSUMER",
                    format!("this stream's {STREAM_BUFFER} messages waited unread for {SLOW_CONSUMER_GRACE:?} and it is closed; {resume}"),
                );
            }
            None => {
                break ("SERVER_SHUTTING_DOWN", format!("the server is shutting down; {}", source.resume(position)));
            }
        }
    };
    let _ = sender.try_send(error_frame(code, message));
    close_unless_read(&sender, connection.as_ref()).await;
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
