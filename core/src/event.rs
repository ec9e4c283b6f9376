//! The event catalog, the envelope every stored event travels in, and decoding with upcasting.
//!
//! Events are facts stored forever, so each type carries a schema version. Decoding reads the
//! stored JSON ([`StoredEvent`], payload kept as raw bytes so the audit hash is computed over
//! exactly what was stored) and runs older payloads through the upcaster chain
//! ([`crate::upcast`]) into today's typed [`Event`].

use crate::account::events::*;
use crate::audit::Hash;
use crate::ids::{AccountId, EventId, OrderId, PositionId, UserId};
use crate::market::events::*;
use crate::order::events::*;
use crate::position::events::*;
use crate::symbol::Symbol;
use crate::time::Timestamp;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// The kind of stream an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum AggregateType {
    /// An order, from `OrderPlaced` or `OrderRejected` to its end.
    Order,
    /// An account's wallet and locks.
    Account,
    /// A position of one account in one symbol.
    Position,
    /// A market: its specification, mark price and funding.
    Market,
}

impl AggregateType {
    /// Every aggregate type.
    pub const ALL: [AggregateType; 4] =
        [AggregateType::Order, AggregateType::Account, AggregateType::Position, AggregateType::Market];

    /// The wire spelling (`"Order"`, `"Account"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateType::Order => "Order",
            AggregateType::Account => "Account",
            AggregateType::Position => "Position",
            AggregateType::Market => "Market",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The id of a stream: a UUID for orders, accounts and positions, the symbol for markets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AggregateId {
    /// The id of an order, account or position stream.
    Uuid(Uuid),
    /// The symbol of a market stream.
    Symbol(Symbol),
}

impl fmt::Display for AggregateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateId::Uuid(id) => id.hyphenated().fmt(f),
            AggregateId::Symbol(symbol) => symbol.fmt(f),
        }
    }
}

impl FromStr for AggregateId {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(AggregateId::Uuid(id));
        }
        text.parse::<Symbol>().map(AggregateId::Symbol).map_err(|e| e.to_string())
    }
}

impl Serialize for AggregateId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AggregateId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::parse_str(deserializer, "an aggregate id")
    }
}

/// A stream: aggregate type and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Kind of aggregate.
    pub aggregate_type: AggregateType,
    /// Id of the aggregate.
    pub aggregate_id: AggregateId,
}

impl StreamId {
    /// The stream of an order.
    pub fn order(id: OrderId) -> Self {
        Self { aggregate_type: AggregateType::Order, aggregate_id: AggregateId::Uuid(id.0) }
    }
    /// The stream of an account.
    pub fn account(id: AccountId) -> Self {
        Self { aggregate_type: AggregateType::Account, aggregate_id: AggregateId::Uuid(id.0) }
    }
    /// The stream of a position.
    pub fn position(id: PositionId) -> Self {
        Self { aggregate_type: AggregateType::Position, aggregate_id: AggregateId::Uuid(id.0) }
    }
    /// The stream of a market.
    pub fn market(symbol: Symbol) -> Self {
        Self { aggregate_type: AggregateType::Market, aggregate_id: AggregateId::Symbol(symbol) }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.aggregate_type.as_str(), self.aggregate_id)
    }
}

/// Who and what caused an event (the seed's metadata fields). Unknown fields are refused: the
/// hash chain covers these fields, so a field it would not cover cannot ride along.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The user on whose behalf the command ran.
    pub user_id: Option<UserId>,
    /// Groups everything one request (or one business flow) caused.
    pub correlation_id: Option<Uuid>,
    /// The command that produced this event.
    pub causation_id: Option<Uuid>,
    /// The client's address, as the host saw it.
    pub ip_address: Option<String>,
}

macro_rules! event_catalog {
    ($( $variant:ident($payload:ty) => $stream:ident, $schema:literal; )+) => {
        /// Every event of the exchange, typed. The variant name is the `eventType`.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Event {
            $( #[doc = concat!("See [`", stringify!($payload), "`].")] $variant($payload), )+
        }

        /// Names of every event type, in catalog order.
        pub const EVENT_TYPES: &[&str] = &[$(stringify!($variant)),+];

        impl Event {
            /// The `eventType` name.
            pub fn event_type(&self) -> &'static str {
                match self { $(Event::$variant(_) => stringify!($variant),)+ }
            }

            /// The current schema version of this event's type.
            pub fn schema_version(&self) -> u32 {
                match self { $(Event::$variant(_) => $schema,)+ }
            }

            /// The stream this event belongs to.
            pub fn stream(&self) -> StreamId {
                match self { $(Event::$variant(e) => event_catalog!(@stream $stream, e),)+ }
            }

            /// Serializes the payload (without envelope).
            pub fn payload_json(&self) -> String {
                let json = match self { $(Event::$variant(e) => serde_json::to_string(e),)+ };
                json.expect("event payloads always serialize")
            }

            fn serialize_payload<S: SerializeStruct>(&self, s: &mut S) -> Result<(), S::Error> {
                match self { $(Event::$variant(e) => s.serialize_field("payload", e),)+ }
            }

            /// Decodes a payload of the current schema version for `event_type`.
            pub fn from_payload(event_type: &str, payload: &str) -> Result<Event, DecodeError> {
                match event_type {
                    $(stringify!($variant) => serde_json::from_str(payload).map(Event::$variant),)+
                    other => return Err(DecodeError::UnknownEventType(other.to_owned())),
                }
                .map_err(|e| DecodeError::Payload(event_type.to_owned(), e.to_string()))
            }
        }

        /// Deserializes a payload of the current schema version of `event_type` straight into
        /// its type (the fast path of decoding: no intermediate buffer).
        fn deserialize_payload<'de, D: serde::Deserializer<'de>>(event_type: &str, d: D) -> Result<Event, D::Error> {
            match event_type {
                $(stringify!($variant) => <$payload>::deserialize(d).map(Event::$variant),)+
                other => Err(serde::de::Error::custom(DecodeError::UnknownEventType(other.to_owned()))),
            }
        }

        /// The current schema version of an event type, or `None` for an unknown type.
        pub fn current_schema_version(event_type: &str) -> Option<u32> {
            match event_type { $(stringify!($variant) => Some($schema),)+ _ => None }
        }
    };
    (@stream order, $e:ident) => { StreamId::order($e.order_id) };
    (@stream account, $e:ident) => { StreamId::account($e.account_id) };
    (@stream position, $e:ident) => { StreamId::position($e.position_id) };
    (@stream market_spec, $e:ident) => { StreamId::market($e.spec.symbol) };
    (@stream market, $e:ident) => { StreamId::market($e.symbol) };
}

event_catalog! {
    OrderPlaced(OrderPlaced) => order, 2;
    OrderMatched(OrderMatched) => order, 1;
    OrderPartiallyFilled(OrderPartiallyFilled) => order, 1;
    OrderFilled(OrderFilled) => order, 1;
    OrderCancelled(OrderCancelled) => order, 1;
    OrderExpired(OrderExpired) => order, 1;
    OrderRejected(OrderRejected) => order, 1;
    OrderCorrected(OrderCorrected) => order, 1;
    PositionOpened(PositionOpened) => position, 1;
    PositionIncreased(PositionIncreased) => position, 1;
    PositionDecreased(PositionDecreased) => position, 1;
    PositionClosed(PositionClosed) => position, 1;
    PositionLiquidated(PositionLiquidated) => position, 1;
    LeverageChanged(LeverageChanged) => position, 1;
    MarginAdded(MarginAdded) => position, 1;
    MarginRemoved(MarginRemoved) => position, 1;
    AccountCreated(AccountCreated) => account, 1;
    BalanceDeposited(BalanceDeposited) => account, 1;
    BalanceWithdrawn(BalanceWithdrawn) => account, 1;
    BalanceLocked(BalanceLocked) => account, 1;
    BalanceUnlocked(BalanceUnlocked) => account, 1;
    FeeCharged(FeeCharged) => account, 1;
    FeeReceived(FeeReceived) => account, 1;
    PnlRealized(PnlRealized) => account, 1;
    FundingPaid(FundingPaid) => account, 1;
    FundingReceived(FundingReceived) => account, 1;
    LiquidationSettled(LiquidationSettled) => account, 1;
    FundingShortfallCovered(FundingShortfallCovered) => account, 1;
    MarketListed(MarketListed) => market_spec, 1;
    MarkPriceSet(MarkPriceSet) => market, 1;
    FundingSettled(FundingSettled) => market, 1;
}

/// A typed event in its envelope. `position` is the global, contiguous position (from 1);
/// `version` the position within its stream (from 1). `prev_hash` and `hash` are
/// [`Hash::ZERO`] until [`crate::audit::HashChain::seal`] fills them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEnvelope {
    /// Global position in the log (from 1, contiguous).
    pub position: u64,
    /// Event id, derived from the global position.
    pub event_id: EventId,
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// Position within its stream (from 1).
    pub version: u64,
    /// Schema version of the payload as stored (today's for new events).
    pub schema_version: u32,
    /// When the command that produced the event was decided.
    pub timestamp: Timestamp,
    /// The typed payload.
    pub event: Event,
    /// Shared by every event of one command (one allocation per command, not per event).
    pub metadata: Arc<Metadata>,
    /// Hash of the previous event of the log (zero before the first).
    pub prev_hash: Hash,
    /// `SHA-256(prevHash ‖ canonical bytes)` of this event.
    pub hash: Hash,
}

impl Serialize for EventEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("EventEnvelope", 12)?;
        s.serialize_field("position", &self.position)?;
        s.serialize_field("eventId", &self.event_id)?;
        s.serialize_field("eventType", self.event.event_type())?;
        s.serialize_field("schemaVersion", &self.event.schema_version())?;
        s.serialize_field("aggregateType", &self.stream.aggregate_type)?;
        s.serialize_field("aggregateId", &self.stream.aggregate_id)?;
        s.serialize_field("version", &self.version)?;
        s.serialize_field("timestamp", &self.timestamp)?;
        self.event.serialize_payload(&mut s)?;
        s.serialize_field("metadata", &self.metadata)?;
        s.serialize_field("prevHash", &self.prev_hash)?;
        s.serialize_field("hash", &self.hash)?;
        s.end()
    }
}

/// Decoding straight into the typed envelope. When `eventType` and `schemaVersion` come
/// before `payload` (as this crate writes them) and the version is today's, the payload is
/// deserialized directly into its type; otherwise it is buffered and upcast.
impl<'de> Deserialize<'de> for EventEnvelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

/// A string that borrows from the input when it can (`Cow` alone always copies in serde).
struct BorrowedStr<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BorrowedStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

struct PayloadSeed<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Event;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Event, D::Error> {
        deserialize_payload(self.0, deserializer)
    }
}

enum Payload {
    Typed(Event),
    Raw(Box<RawValue>),
}

#[derive(Default)]
struct EnvelopeFields<'de> {
    position: Option<u64>,
    event_id: Option<EventId>,
    event_type: Option<std::borrow::Cow<'de, str>>,
    schema_version: Option<u32>,
    aggregate_type: Option<AggregateType>,
    aggregate_id: Option<AggregateId>,
    version: Option<u64>,
    timestamp: Option<Timestamp>,
    payload: Option<Payload>,
    metadata: Option<Arc<Metadata>>,
    prev_hash: Option<Hash>,
    hash: Option<Hash>,
}

fn missing<E: serde::de::Error>(field: &'static str) -> E {
    E::missing_field(field)
}

impl EnvelopeFields<'_> {
    fn finish<E: serde::de::Error>(self) -> Result<EventEnvelope, E> {
        let event_type = self.event_type.ok_or_else(|| missing("eventType"))?;
        let schema_version = self.schema_version.ok_or_else(|| missing("schemaVersion"))?;
        let event = match self.payload.ok_or_else(|| missing("payload"))? {
            Payload::Typed(event) => event,
            Payload::Raw(raw) => {
                crate::upcast::decode_payload(&event_type, schema_version, raw.get()).map_err(E::custom)?
            }
        };
        let position = self.position.ok_or_else(|| missing("position"))?;
        let stream = StreamId {
            aggregate_type: self.aggregate_type.ok_or_else(|| missing("aggregateType"))?,
            aggregate_id: self.aggregate_id.ok_or_else(|| missing("aggregateId"))?,
        };
        if event.stream() != stream {
            return Err(E::custom(DecodeError::StreamMismatch { position }));
        }
        Ok(EventEnvelope {
            position,
            event_id: self.event_id.ok_or_else(|| missing("eventId"))?,
            stream,
            version: self.version.ok_or_else(|| missing("version"))?,
            schema_version,
            timestamp: self.timestamp.ok_or_else(|| missing("timestamp"))?,
            event,
            metadata: self.metadata.unwrap_or_default(),
            prev_hash: self.prev_hash.unwrap_or_default(),
            hash: self.hash.unwrap_or_default(),
        })
    }
}

impl<'de> serde::de::Visitor<'de> for EnvelopeVisitor {
    type Value = EventEnvelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event envelope")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<EventEnvelope, A::Error> {
        let mut fields = EnvelopeFields::default();
        while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
            match key.0.as_ref() {
                "position" => fields.position = Some(map.next_value()?),
                "eventId" => fields.event_id = Some(map.next_value()?),
                "eventType" => fields.event_type = Some(map.next_value::<BorrowedStr<'de>>()?.0),
                "schemaVersion" => fields.schema_version = Some(map.next_value()?),
                "aggregateType" => fields.aggregate_type = Some(map.next_value()?),
                "aggregateId" => fields.aggregate_id = Some(map.next_value()?),
                "version" => fields.version = Some(map.next_value()?),
                "timestamp" => fields.timestamp = Some(map.next_value()?),
                "metadata" => fields.metadata = Some(map.next_value()?),
                "prevHash" => fields.prev_hash = Some(map.next_value()?),
                "hash" => fields.hash = Some(map.next_value()?),
                "payload" => {
                    let current = match (&fields.event_type, fields.schema_version) {
                        (Some(t), Some(v)) if current_schema_version(t) == Some(v) => Some(t.as_ref()),
                        _ => None,
                    };
                    fields.payload = Some(match current {
                        Some(event_type) => Payload::Typed(map.next_value_seed(PayloadSeed(event_type))?),
                        None => Payload::Raw(map.next_value()?),
                    });
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        fields.finish()
    }
}

/// An event exactly as stored: the envelope with the payload kept as raw JSON text, in the
/// schema version it was written with. This is what the hash chain covers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Global position in the log (from 1, contiguous).
    pub position: u64,
    /// Event id, derived from the global position.
    pub event_id: EventId,
    /// The `eventType` name.
    pub event_type: String,
    /// Schema version the payload was written with.
    pub schema_version: u32,
    /// Kind of the stream.
    pub aggregate_type: AggregateType,
    /// Id of the stream.
    pub aggregate_id: AggregateId,
    /// Position within its stream (from 1).
    pub version: u64,
    /// When the command that produced the event was decided.
    pub timestamp: Timestamp,
    /// The payload exactly as stored.
    pub payload: Box<RawValue>,
    /// Who and what caused the event.
    pub metadata: Metadata,
    /// Hash of the previous event of the log (zero before the first).
    pub prev_hash: Hash,
    /// `SHA-256(prevHash ‖ canonical bytes)` of this event.
    pub hash: Hash,
    /// True on a copy shown to a trader with another user's `userId` and `ipAddress` taken out
    /// of its metadata (see [`StoredEvent::redacted_for`]). Never stored and not among the
    /// hashed bytes: the hash still covers the stored metadata, so it cannot be recomputed from
    /// such a copy; its `prevHash` and `hash` still link it to its neighbours.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata_redacted: bool,
}

/// Why a stored event could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The `eventType` is not in the catalog.
    UnknownEventType(String),
    /// The schema version is newer than this build knows, or has no upcaster.
    UnsupportedSchemaVersion {
        /// The event's type.
        event_type: String,
        /// The schema version it was stored with.
        schema_version: u32,
    },
    /// The payload does not have the shape of its type and version.
    Payload(String, String),
    /// The envelope names a different stream than the payload.
    StreamMismatch {
        /// Global position of the event.
        position: u64,
    },
    /// The JSON is not an event envelope at all.
    Envelope(String),
}

impl DecodeError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::UnknownEventType(_) => "UNKNOWN_EVENT_TYPE",
            DecodeError::UnsupportedSchemaVersion { .. } => "UNSUPPORTED_SCHEMA_VERSION",
            DecodeError::Payload(..) => "INVALID_PAYLOAD",
            DecodeError::StreamMismatch { .. } => "STREAM_MISMATCH",
            DecodeError::Envelope(_) => "INVALID_ENVELOPE",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownEventType(t) => write!(f, "unknown event type {t:?}"),
            DecodeError::UnsupportedSchemaVersion { event_type, schema_version } => {
                write!(f, "{event_type} has no decoder for schema version {schema_version}")
            }
            DecodeError::Payload(t, e) => write!(f, "invalid {t} payload: {e}"),
            DecodeError::StreamMismatch { position } => {
                write!(f, "event at position {position} names a stream its payload does not belong to")
            }
            DecodeError::Envelope(e) => write!(f, "invalid event envelope: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl StoredEvent {
    /// Decodes into today's typed event, upcasting older schema versions.
    pub fn decode(&self) -> Result<EventEnvelope, DecodeError> {
        let event = crate::upcast::decode_payload(&self.event_type, self.schema_version, self.payload.get())?;
        let stream = StreamId { aggregate_type: self.aggregate_type, aggregate_id: self.aggregate_id };
        if event.stream() != stream {
            return Err(DecodeError::StreamMismatch { position: self.position });
        }
        Ok(EventEnvelope {
            position: self.position,
            event_id: self.event_id,
            stream,
            version: self.version,
            schema_version: self.schema_version,
            timestamp: self.timestamp,
            event,
            metadata: Arc::new(self.metadata.clone()),
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }

    /// This event as `viewer` may see it: when its command was another user's (a fill of the
    /// viewer's resting order by someone else's order, an admin's correction), that user's id
    /// and address are taken out of the metadata and the copy is marked
    /// [`metadata_redacted`](Self::metadata_redacted). The viewer's own events are unchanged.
    pub fn redacted_for(&self, viewer: UserId) -> StoredEvent {
        let mut copy = self.clone();
        let others = self.metadata.user_id != Some(viewer);
        if others && (self.metadata.user_id.is_some() || self.metadata.ip_address.is_some()) {
            copy.metadata.user_id = None;
            copy.metadata.ip_address = None;
            copy.metadata_redacted = true;
        }
        copy
    }

    /// Parses one stored event from JSON text.
    pub fn from_json(text: &str) -> Result<StoredEvent, DecodeError> {
        serde_json::from_str(text).map_err(|e| DecodeError::Envelope(e.to_string()))
    }
}

impl EventEnvelope {
    /// The stored form of a freshly produced event (payload in today's schema). An event that
    /// was decoded from an older schema re-encodes in today's shape, with other bytes than it
    /// was stored with: keep its `StoredEvent` to verify or re-export it.
    pub fn to_stored(&self) -> StoredEvent {
        let payload = RawValue::from_string(self.event.payload_json()).expect("payload JSON is valid");
        StoredEvent {
            position: self.position,
            event_id: self.event_id,
            event_type: self.event.event_type().to_owned(),
            schema_version: self.event.schema_version(),
            aggregate_type: self.stream.aggregate_type,
            aggregate_id: self.stream.aggregate_id,
            version: self.version,
            timestamp: self.timestamp,
            payload,
            metadata: Metadata::clone(&self.metadata),
            prev_hash: self.prev_hash,
            hash: self.hash,
            metadata_redacted: false,
        }
    }
}

/// Writes stored events as JSON Lines (one event per line), the export format that
/// [`parse_stored_events`] reads back.
pub fn to_json_lines(events: &[StoredEvent]) -> String {
    let mut text = String::with_capacity(events.len() * 512);
    for event in events {
        text.push_str(&serde_json::to_string(event).expect("stored events serialize"));
        text.push('\n');
    }
    text
}

/// Parses a JSON array of events or JSON Lines (one event per line) into stored events. The
/// checkpoint lines of an export ([`crate::checkpoint::EXPORT_LINE_PREFIX`]) are skipped: see
/// [`parse_export`] for them.
pub fn parse_stored_events(text: &str) -> Result<Vec<StoredEvent>, DecodeError> {
    parse_export(text).map(|export| export.events)
}

/// An export as read: its events, and the signed checkpoints it carries (in file order).
#[derive(Clone, Debug, Default)]
pub struct Export {
    /// The events, in file order.
    pub events: Vec<StoredEvent>,
    /// The checkpoints, in file order.
    pub checkpoints: Vec<crate::checkpoint::Checkpoint>,
}

/// Parses an export: a JSON array of events, or JSON Lines of events followed by checkpoint
/// lines.
pub fn parse_export(text: &str) -> Result<Export, DecodeError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let events = serde_json::from_str(trimmed).map_err(|e| DecodeError::Envelope(e.to_string()))?;
        return Ok(Export { events, checkpoints: Vec::new() });
    }
    let mut export = Export::default();
    for (n, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let at = |e: String| DecodeError::Envelope(format!("line {}: {e}", n + 1));
        match crate::checkpoint::parse_export_line(line) {
            Some(checkpoint) => export.checkpoints.push(checkpoint.map_err(at)?),
            None => export.events.push(StoredEvent::from_json(line).map_err(|e| at(e.to_string()))?),
        }
    }
    Ok(export)
}
