//! Where a projector reads the log from: the store (the primary or a replica of it), or the
//! JetStream stream that `perpetua relay` keeps (`serve --role projector --nats-url …`).
//!
//! Either way the projector gets decoded pages in position order, every position once. A
//! page from NATS is checked before it is folded: each message's stream sequence and its
//! event's position are the next position expected (a gap or a repeat stops the projector
//! with `LOG_GAP`, naming the position), and the events continue the hash chain from the
//! event before them (`CHAIN_BROKEN`, naming the position): what the bus delivers is taken
//! for the log only where it verifies as the log.

use crate::processor::Head;
use crate::projector::ProjectorError;
use crate::relay::{self, RelayOptions};
use crate::store::Store;
use async_nats::jetstream::{self, consumer, context::Context};
use futures_util::StreamExt as _;
use perpetua_core::audit::{self, Hash, HashChain};
use perpetua_core::event::{EventEnvelope, StoredEvent};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Events per page.
const PAGE: usize = 10_000;
/// The longest a NATS read may wait for a message the stream says it holds.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The log's source.
#[derive(Clone)]
pub enum Source {
    /// The event store.
    Store(Store),
    /// The relay's JetStream stream.
    Nats(NatsFeed),
}

/// Decoded pages on their way to the projector (reading and folding overlap).
pub type Pages = mpsc::Receiver<Result<Vec<EventEnvelope>, ProjectorError>>;

impl Source {
    /// The events from `from` to `to` (inclusive), decoded, in pages; a missing position is
    /// an error, never skipped.
    pub fn pages(&self, from: u64, to: u64) -> Pages {
        match self {
            Source::Store(store) => store_pages(store.clone(), from, to),
            Source::Nats(feed) => feed.pages(from, to),
        }
    }

    /// The store's writer epoch this projector's pages are fenced on, if it took the writer
    /// lease (an all-in-one server).
    pub fn writer_fence(&self) -> Option<u64> {
        match self {
            Source::Store(store) => store.fence(),
            Source::Nats(_) => None,
        }
    }
}

fn store_pages(store: Store, from: u64, to: u64) -> Pages {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut next = from;
        while next <= to {
            // At most PAGE (10,000), so it fits.
            let limit = (to - next + 1).min(PAGE as u64) as u32;
            let page = match store.read_all(next, limit).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            if page.is_empty() {
                return;
            }
            next = page.last().map_or(next, |e| e.position + 1);
            if tx.send(decode(page).await).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// Decodes a page on a blocking thread.
async fn decode(page: Vec<StoredEvent>) -> Result<Vec<EventEnvelope>, ProjectorError> {
    let decoded = tokio::task::spawn_blocking(move || {
        page.iter()
            .map(|e| e.decode().map_err(|source| ProjectorError::Decode { position: e.position, source }))
            .collect()
    })
    .await;
    decoded.unwrap_or_else(|e| {
        // The decoding task panicked or was cancelled: said here, where it is known.
        tracing::error!(error = %e, "the projector's decoding task failed");
        Err(ProjectorError::Stopped)
    })
}

/// The relay's stream, read as the log.
#[derive(Clone)]
pub struct NatsFeed {
    js: Context,
    options: RelayOptions,
    /// The readers the last reads ended with, kept for the next ones, which start where one
    /// of them stopped (the live tail, and a rebuild's own).
    cursors: Arc<Mutex<Vec<Cursor>>>,
    /// The hashes verified at the ends of recent reads, by position: a reader opened again at
    /// one of them must find the same event there (a stream replaced under the projector is
    /// caught, even when it is consistent with itself).
    anchors: Arc<Mutex<BTreeMap<u64, Hash>>>,
}

/// Readers kept at most.
const CURSORS: usize = 2;
/// Verified ends kept at most.
const ANCHORS: usize = 1024;

/// An ordered consumer of the stream, and where it is.
struct Cursor {
    /// The position its next message holds.
    next: u64,
    /// The chain up to `next - 1`.
    chain: HashChain,
    messages: consumer::pull::Ordered,
}

fn feed_error(message: String) -> ProjectorError {
    ProjectorError::Feed(message)
}

impl NatsFeed {
    /// Connects to the stream, waiting for it while it does not exist yet (the relay creates
    /// it: the two may start in any order).
    pub async fn connect(options: RelayOptions) -> Result<NatsFeed, String> {
        let js = relay::connect(&options.nats_url, "perpetua-projector").await?;
        let mut said = false;
        while let Err(e) = js.get_stream(&options.stream).await {
            if !said {
                tracing::warn!(stream = %options.stream, error = %e, "waiting for the JetStream stream (is the relay running?)");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(NatsFeed { js, options, cursors: Default::default(), anchors: Default::default() })
    }

    /// The stream's last position, read every `poll`, as the head the projector follows.
    pub async fn follow_head(&self, poll: Duration) -> Result<watch::Receiver<Head>, String> {
        let mut stream = self.stream().await?;
        let first = last_position(&mut stream).await?;
        let (head_tx, head) = watch::channel(Head { position: first, committed_at: Instant::now() });
        let feed = self.clone();
        tokio::spawn(async move {
            let (mut last, mut failing) = (first, false);
            while !head_tx.is_closed() {
                let read = match last_position(&mut stream).await {
                    Ok(position) => Ok(position),
                    // The stream's handle again, then its state.
                    Err(_) => match feed.stream().await {
                        Ok(again) => {
                            stream = again;
                            last_position(&mut stream).await
                        }
                        Err(e) => Err(e),
                    },
                };
                match read {
                    Ok(position) => {
                        failing = false;
                        if position != last {
                            last = position;
                            head_tx.send_replace(Head { position, committed_at: Instant::now() });
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "the stream's last position cannot be read; reading again");
                        }
                        failing = true;
                    }
                }
                tokio::time::sleep(if failing { Duration::from_millis(500) } else { poll }).await;
            }
        });
        Ok(head)
    }

    async fn stream(&self) -> Result<jetstream::stream::Stream, String> {
        self.js.get_stream(&self.options.stream).await.map_err(|e| format!("stream {}: {e}", self.options.stream))
    }

    /// Remembers a verified end.
    fn anchor(&self, chain: HashChain) {
        let mut anchors = self.anchors.lock().expect("anchors lock");
        anchors.insert(chain.last_position, chain.last_hash);
        while anchors.len() > ANCHORS {
            anchors.pop_first();
        }
    }

    fn pages(&self, from: u64, to: u64) -> Pages {
        let (tx, rx) = mpsc::channel(4);
        let feed = self.clone();
        tokio::spawn(async move {
            let kept = {
                let mut cursors = feed.cursors.lock().expect("cursors lock");
                cursors.iter().position(|c| c.next == from).map(|i| cursors.swap_remove(i))
            };
            let mut cursor = match kept {
                Some(cursor) => cursor,
                None => match feed.open(from).await {
                    Ok(cursor) => cursor,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                },
            };
            while cursor.next <= to {
                let size = usize::try_from(to - cursor.next + 1).unwrap_or(PAGE).min(PAGE);
                let page = match cursor.read(size).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                feed.anchor(cursor.chain);
                if tx.send(decode(page).await).await.is_err() {
                    return;
                }
            }
            let mut cursors = feed.cursors.lock().expect("cursors lock");
            if cursors.len() >= CURSORS {
                cursors.remove(0);
            }
            cursors.push(cursor);
        });
        rx
    }

    /// A reader from position `from`, with the chain up to the event before it (read from
    /// the stream too).
    async fn open(&self, from: u64) -> Result<Cursor, ProjectorError> {
        let stream = self
            .js
            .get_stream(&self.options.stream)
            .await
            .map_err(|e| feed_error(format!("cannot open the stream {}: {e}", self.options.stream)))?;
        let chain = if from <= 1 {
            HashChain::default()
        } else {
            let message = stream
                .get_raw_message(from - 1)
                .await
                .map_err(|e| feed_error(format!("the stream's message {}: {e}", from - 1)))?;
            let event: StoredEvent = serde_json::from_slice(&message.payload)
                .map_err(|e| feed_error(format!("the stream's message {} is not a stored event: {e}", from - 1)))?;
            if event.position != from - 1 {
                return Err(ProjectorError::FeedGap { expected: from - 1, found: event.position });
            }
            let verified = self.anchors.lock().expect("anchors lock").get(&event.position).copied();
            if verified.is_some_and(|hash| hash != event.hash) {
                return Err(ProjectorError::ChainBroken {
                    position: event.position,
                    fault: "the stream's event is not the one verified there before (the stream was replaced)".into(),
                });
            }
            HashChain { last_position: event.position, last_hash: event.hash }
        };
        let config = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from.max(1) },
            ..Default::default()
        };
        let consumer = stream.create_consumer(config).await.map_err(|e| feed_error(format!("consumer: {e}")))?;
        let messages = consumer.messages().await.map_err(|e| feed_error(format!("consumer: {e}")))?;
        Ok(Cursor { next: from.max(1), chain, messages })
    }
}

async fn last_position(stream: &mut jetstream::stream::Stream) -> Result<u64, String> {
    let info = stream.info().await.map_err(|e| format!("stream info: {e}"))?;
    Ok(info.state.last_sequence)
}

impl Cursor {
    /// The next `size` events, each checked to be the next position, and together checked to
    /// continue the chain.
    async fn read(&mut self, size: usize) -> Result<Vec<StoredEvent>, ProjectorError> {
        let mut page = Vec::with_capacity(size);
        while page.len() < size {
            let message = match tokio::time::timeout(MESSAGE_TIMEOUT, self.messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return Err(feed_error(format!("reading the stream: {e}"))),
                Ok(None) => return Err(feed_error("the stream's consumer ended".into())),
                Err(_) => {
                    return Err(feed_error(format!("no message for position {} within {MESSAGE_TIMEOUT:?}", self.next)))
                }
            };
            let expected = self.next + page.len() as u64;
            let sequence = message.info().map(|info| info.stream_sequence).map_err(|e| feed_error(e.to_string()))?;
            let event: StoredEvent = serde_json::from_slice(&message.payload)
                .map_err(|e| feed_error(format!("the stream's message {sequence} is not a stored event: {e}")))?;
            if sequence != expected || event.position != expected {
                return Err(ProjectorError::FeedGap { expected, found: event.position });
            }
            page.push(event);
        }
        let report = audit::verify(&page, self.chain);
        if let (Some(position), Some(fault)) = (report.first_bad_position, report.fault) {
            return Err(ProjectorError::ChainBroken { position, fault: format!("{fault:?}") });
        }
        if let Some(last) = page.last() {
            self.chain = HashChain { last_position: last.position, last_hash: last.hash };
            self.next = last.position + 1;
        }
        Ok(page)
    }
}
