//! `perpetua relay`: the committed log, published in position order to a NATS JetStream
//! stream — the outbox done right. Nothing is published inside a command's transaction: the
//! relay reads what the store committed and follows its head, so a bus that is down loses
//! nothing (the relay catches up from the log), and the writer never waits for the bus.
//!
//! Each event goes to `<prefix>.<aggregateType>` (`perpetua.events.Order`) as the stored bytes
//! of an export line, `prevHash` and `hash` included, so a consumer can verify the chain. Its
//! headers: `Nats-Msg-Id` = the event id (the server drops a re-publication within its
//! duplicate window), `Nats-Expected-Last-Sequence` = position − 1 (the server refuses a
//! message that would land anywhere but right after its predecessor), and
//! `Perpetua-Position`. The stream holds only the relay's messages, from position 1, so its
//! sequence numbers are the log's positions; at start, and after any failed publication, the
//! relay reads the stream's last message and goes on from the position after it — never
//! skipping one, never writing one twice.
//!
//! The stream is created with file storage and the server is expected to fsync every write
//! (`sync_interval: always` in its JetStream configuration; deploy/nats-server.conf): with the
//! default interval of two minutes, Jepsen's analysis of NATS 2.12.1 (December 2025) found
//! acknowledged writes lost in a crash.

use crate::store::Store;
use async_nats::jetstream::{self, context::Context, stream};
use perpetua_core::audit;
use perpetua_core::event::StoredEvent;
use std::future::Future;
use std::time::{Duration, Instant};

/// The header that carries an event's position.
pub const POSITION_HEADER: &str = "Perpetua-Position";

/// Events read from the store and published per round (their acknowledgements are awaited
/// together, in order).
const PAGE: u32 = 1_000;

/// What `perpetua relay` needs.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// The NATS server (`nats://127.0.0.1:4222`).
    pub nats_url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// Subjects are `<prefix>.<aggregateType>`.
    pub subject_prefix: String,
    /// How often the store's head is read while the relay is caught up.
    pub poll: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            nats_url: "nats://127.0.0.1:4222".into(),
            stream: "PERPETUA_EVENTS".into(),
            subject_prefix: "perpetua.events".into(),
            poll: Duration::from_millis(10),
        }
    }
}

/// What a relay did, for its summary line.
#[derive(Debug, Default)]
pub struct RelaySummary {
    /// Events published (acknowledged by the stream) by this run.
    pub published: u64,
    /// The stream's last position when the run ended.
    pub last_position: u64,
    /// Times the relay re-read the stream after a failure.
    pub resyncs: u64,
    /// Publications the stream acknowledged as duplicates (already stored under their
    /// message id): re-publications after a lost acknowledgement, at most a page each.
    pub duplicates: u64,
    /// Per published page of events committed while the relay ran (not the backlog it found):
    /// from its last event's commit time to the stream's acknowledgement, ms.
    pub lags_ms: Vec<u64>,
}

/// Connects to NATS as `name` (the client name the server lists), retrying the first connection.
pub(crate) async fn connect(url: &str, name: &str) -> Result<Context, String> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))?;
    Ok(jetstream::new(client))
}

/// The stream's configuration: every subject under the prefix, on disk, append-only.
fn stream_config(options: &RelayOptions) -> stream::Config {
    stream::Config {
        name: options.stream.clone(),
        subjects: vec![format!("{}.>", options.subject_prefix)],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the stream if it does not exist, and checks that an existing one keeps its
/// messages on disk.
async fn open_stream(js: &Context, options: &RelayOptions) -> Result<stream::Stream, String> {
    let mut stream = js
        .get_or_create_stream(stream_config(options))
        .await
        .map_err(|e| format!("cannot open the JetStream stream {}: {e}", options.stream))?;
    let info = stream.info().await.map_err(|e| format!("stream {}: {e}", options.stream))?;
    let config = &info.config;
    if config.storage != stream::StorageType::File {
        return Err(format!(
            "the stream {} keeps its messages in memory; the relay needs file storage",
            options.stream
        ));
    }
    // A stream made by hand may drop messages: by age, count or size, or once consumed.
    let keeps_everything = config.retention == stream::RetentionPolicy::Limits
        && config.max_age.is_zero()
        && config.max_messages <= 0
        && config.max_bytes <= 0
        && config.max_messages_per_subject <= 0;
    if !keeps_everything {
        return Err(format!(
            "the stream {} may drop messages (retention {:?}, max age {:?}, max messages {}, max bytes {}, per subject {}); \
             the relay needs one that keeps them all",
            options.stream,
            config.retention,
            config.max_age,
            config.max_messages,
            config.max_bytes,
            config.max_messages_per_subject
        ));
    }
    Ok(stream)
}

/// The position of the stream's last message (0 when empty), checked to be its sequence and
/// to be this log's: its bytes hash to the store's event at that position.
async fn last_relayed(stream: &mut stream::Stream, store: &Store) -> Result<u64, String> {
    let state = stream.info().await.map_err(|e| format!("stream info: {e}"))?.state.clone();
    if state.last_sequence == 0 {
        return Ok(0);
    }
    if state.first_sequence != 1 || state.messages != state.last_sequence {
        return Err(format!(
            "the stream holds {} messages from sequence {} to {}: not the whole log from position 1",
            state.messages, state.first_sequence, state.last_sequence
        ));
    }
    let last = stream.get_raw_message(state.last_sequence).await.map_err(|e| format!("last message: {e}"))?;
    let position = last.headers.get(POSITION_HEADER).and_then(|v| v.as_str().parse::<u64>().ok());
    if position != Some(state.last_sequence) {
        return Err(format!(
            "the stream's message {} carries position {position:?}: the stream is not this log's",
            state.last_sequence
        ));
    }
    let relayed: StoredEvent = serde_json::from_slice(&last.payload)
        .map_err(|e| format!("the stream's message {} is not a stored event: {e}", state.last_sequence))?;
    let stored = store.read_all(state.last_sequence, 1).await.map_err(|e| format!("store: {e}"))?;
    match stored.first() {
        Some(event) if event.hash == relayed.hash => Ok(state.last_sequence),
        Some(_) => Err(format!(
            "the stream's event at position {} is not the store's (another log's stream?)",
            state.last_sequence
        )),
        None => Err(format!(
            "the stream holds position {} but the store ends before it (another log's stream, or a store restored \
             from an older backup?)",
            state.last_sequence
        )),
    }
}

/// Publishes one page, each event right after its predecessor; returns how many the stream
/// acknowledged before the first failure (and how many of those as duplicates), and that
/// failure.
async fn publish_page(js: &Context, options: &RelayOptions, page: &[StoredEvent]) -> (usize, u64, Option<String>) {
    let mut acks = Vec::with_capacity(page.len());
    for event in page {
        let subject = format!("{}.{}", options.subject_prefix, event.aggregate_type.as_str());
        let payload = serde_json::to_vec(event).expect("stored events serialize");
        let message = jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(event.event_id.to_string())
            .expected_last_sequence(event.position - 1)
            .header(POSITION_HEADER, event.position.to_string().as_str());
        match js.send_publish(subject, message).await {
            Ok(ack) => acks.push((event.position, ack)),
            Err(e) => {
                let (done, duplicates, _) = await_acks(acks).await;
                return (done, duplicates, Some(format!("position {}: publish: {e}", event.position)));
            }
        }
    }
    await_acks(acks).await
}

async fn await_acks(acks: Vec<(u64, jetstream::context::PublishAckFuture)>) -> (usize, u64, Option<String>) {
    let (mut done, mut duplicates) = (0, 0);
    for (position, ack) in acks {
        match ack.await {
            Ok(ack) if ack.sequence == position => {
                done += 1;
                duplicates += u64::from(ack.duplicate);
            }
            Ok(ack) => {
                let failure = format!("position {position} landed at sequence {}", ack.sequence);
                return (done, duplicates, Some(failure));
            }
            Err(e) => return (done, duplicates, Some(format!("position {position}: {e}"))),
        }
    }
    (done, duplicates, None)
}

/// Relays until `stop` resolves: from the position after the stream's last message, page by
/// page to the store's head, then following it. A failure of NATS or of the store is waited
/// out (with a pause that grows to 2 s); the stream's state is re-read before going on.
pub async fn run(store: Store, options: RelayOptions, stop: impl Future<Output = ()>) -> Result<RelaySummary, String> {
    tokio::pin!(stop);
    let js = tokio::select! {
        js = connect(&options.nats_url, "perpetua-relay") => js?,
        () = &mut stop => return Ok(RelaySummary::default()),
    };
    let mut summary = RelaySummary::default();
    let started_ms = crate::now_ms();
    let mut pause = Duration::from_millis(100);
    'resync: loop {
        let mut stream = match open_stream(&js, &options).await {
            Ok(stream) => stream,
            // A stream that may drop messages is an operator's mistake, not waited out.
            Err(e) if e.starts_with("the stream") => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "relay: the stream cannot be opened; trying again");
                if wait(&mut stop, pause).await {
                    return Ok(summary);
                }
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        // A stream that is not this log's is not waited out: it is an operator's mistake.
        let mut next = match last_relayed(&mut stream, &store).await {
            Ok(last) => last + 1,
            Err(e) if e.starts_with("the stream") => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "relay: the stream's last message cannot be read; trying again");
                if wait(&mut stop, pause).await {
                    return Ok(summary);
                }
                continue;
            }
        };
        summary.last_position = next - 1;
        tracing::info!(from = next, stream = %options.stream, "relay: publishing the log");
        loop {
            let page = match store.read_all(next, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, code = e.code(), "relay: the store cannot be read; trying again");
                    if wait(&mut stop, pause).await {
                        return Ok(summary);
                    }
                    continue;
                }
            };
            if page.is_empty() {
                if wait(&mut stop, options.poll).await {
                    return Ok(summary);
                }
                continue;
            }
            let (done, duplicates, failure) = publish_page(&js, &options, &page).await;
            summary.duplicates += duplicates;
            if let Some(last) = done.checked_sub(1).map(|i| &page[i]) {
                summary.published += done as u64;
                summary.last_position = last.position;
                if last.timestamp.millis() >= started_ms {
                    summary.lags_ms.push(u64::try_from(crate::now_ms() - last.timestamp.millis()).unwrap_or(0));
                }
                next = last.position + 1;
            }
            if let Some(e) = failure {
                summary.resyncs += 1;
                tracing::warn!(error = %e, "relay: a publication failed; re-reading the stream");
                if wait(&mut stop, pause).await {
                    return Ok(summary);
                }
                pause = (pause * 2).min(Duration::from_secs(2));
                continue 'resync;
            }
            pause = Duration::from_millis(100);
        }
    }
}

/// Sleeps `pause`, or less if `stop` resolves first (then true).
async fn wait(stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>, pause: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => false,
        () = stop.as_mut() => true,
    }
}

/// What a consumer of the stream found: every position from 1, once and in order, and the
/// chain over them.
#[derive(Debug)]
pub struct StreamCheck {
    /// Messages read.
    pub messages: u64,
    /// The chain's verification over their events.
    pub report: audit::VerifyReport,
    /// Time taken.
    pub took: Duration,
}

/// Reads the whole stream as a consumer would and checks it: each message's sequence, its
/// `Perpetua-Position` header and its event's position agree and run 1, 2, 3 … without a
/// gap (a gap or a repeat fails at once, naming the position), and the events' chain verifies.
pub async fn check_stream(options: &RelayOptions) -> Result<StreamCheck, String> {
    let started = Instant::now();
    let js = connect(&options.nats_url, "perpetua-relay").await?;
    let mut stream = js
        .get_stream(&options.stream)
        .await
        .map_err(|e| format!("cannot open the JetStream stream {}: {e}", options.stream))?;
    let last = stream.info().await.map_err(|e| format!("stream info: {e}"))?.state.last_sequence;
    let mut events = Vec::with_capacity(usize::try_from(last).unwrap_or(0));
    for sequence in 1..=last {
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| format!("sequence {sequence}: {e} (a gap in the stream: position {sequence} is missing)"))?;
        let event: StoredEvent = serde_json::from_slice(&message.payload)
            .map_err(|e| format!("sequence {sequence}: not a stored event: {e}"))?;
        let header = message.headers.get(POSITION_HEADER).and_then(|v| v.as_str().parse::<u64>().ok());
        if event.position != sequence || header != Some(sequence) {
            return Err(format!(
                "sequence {sequence} holds position {} (header {header:?}): a gap or a repeat at position {sequence}",
                event.position
            ));
        }
        events.push(event);
    }
    let report = audit::verify_range(&events);
    Ok(StreamCheck { messages: last, report, took: started.elapsed() })
}
