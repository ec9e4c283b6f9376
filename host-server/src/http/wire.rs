//! The API's wire types: every request and response body, with its schema (`ToSchema`, which
//! `/openapi.json` is generated from). They are the host's own and convert explicitly from the
//! core's types, so a change in the core is a compile error here rather than a silent change
//! of the contract (DESIGN.md: the core's structs are not the wire format).
//!
//! One shape for each thing: an [`Order`], a [`Position`], an [`Account`], a [`Trade`], a
//! [`Market`] and an [`Event`] look the same wherever they appear, in command answers, in
//! queries and in streams. Decimals are strings ([`Dec`]), times RFC 3339 strings ([`Time`]),
//! ids UUIDs, log positions integers.

use perpetua_core::engine::receipt::{AccountReceipt, Fill as CoreFill, PositionReceipt};
use perpetua_core::event::StoredEvent;
use perpetua_core::ids::{AccountId, OrderId, PositionId, TradeId, UserId};
use perpetua_core::market::MarketState;
use perpetua_core::projection::{AccountSummary, OrderView, PositionView};
use perpetua_core::symbol::Symbol;
use perpetua_core::time::Timestamp;
use perpetua_core::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A decimal number as a JSON string (`"100.5"`): exact, at most 28 significant digits. On
/// the way in, JSON numbers, exponents and surrounding spaces are refused, so no precision
/// is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dec(pub Decimal);

impl Serialize for Dec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Serialize::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        text.parse::<Decimal>()
            .ok()
            .filter(|_| !text.is_empty() && text.trim() == text && !text.contains(['e', 'E']))
            .map(Dec)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a decimal number (at most 28 digits)")))
    }
}

impl PartialSchema for Dec {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("decimal".into())))
            .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
            .description(Some("A decimal number as a string, exact (at most 28 significant digits)."))
            .examples(["100.5"])
            .into()
    }
}

impl ToSchema for Dec {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Decimal")
    }
}

impl From<Decimal> for Dec {
    fn from(value: Decimal) -> Self {
        Dec(value)
    }
}

/// A point in time: RFC 3339 in UTC with milliseconds (`2026-01-01T00:00:00.000Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub Timestamp);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Timestamp::deserialize(deserializer).map(Time)
    }
}

impl PartialSchema for Time {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$"))
            .description(Some("A time in UTC, RFC 3339 with `Z` and no or three fraction digits."))
            .examples(["2026-01-01T00:00:00.000Z"])
            .into()
    }
}

impl ToSchema for Time {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Time")
    }
}

impl From<Timestamp> for Time {
    fn from(value: Timestamp) -> Self {
        Time(value)
    }
}

/// A wire enumeration mirroring one of the core's, variant for variant: the conversions are
/// exhaustive matches, so a variant added in the core fails to compile here until the
/// contract says how it is spelled.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident = $core:path { $($(#[$vdoc:meta])* $variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl From<$core> for $name {
            fn from(value: $core) -> Self {
                type Core = $core;
                match value { $(Core::$variant => $name::$variant),+ }
            }
        }

        impl From<$name> for $core {
            fn from(value: $name) -> Self {
                type Core = $core;
                match value { $($name::$variant => Core::$variant),+ }
            }
        }
    };
}

mirror_enum!(
/// BUY opens or increases a long (or reduces a short); SELL the opposite.
Side = perpetua_core::types::Side { Buy => "BUY", Sell => "SELL" });
mirror_enum!(
/// LIMIT trades at its price or better and may rest; MARKET takes what the book offers.
OrderType = perpetua_core::types::OrderType { Limit => "LIMIT", Market => "MARKET" });
mirror_enum!(
/// GTC rests until cancelled; IOC fills what it can and expires the rest; FOK fills completely or is rejected.
TimeInForce = perpetua_core::types::TimeInForce { Gtc => "GTC", Ioc => "IOC", Fok => "FOK" });
mirror_enum!(
/// CROSS is backed by the account's wallet; ISOLATED only by the position's own margin.
MarginMode = perpetua_core::types::MarginMode { Cross => "CROSS", Isolated => "ISOLATED" });
mirror_enum!(
/// Self-trade prevention: which side is cancelled when an order would match its own account.
StpMode = perpetua_core::types::StpMode {
    ExpireTaker => "EXPIRE_TAKER", ExpireMaker => "EXPIRE_MAKER", ExpireBoth => "EXPIRE_BOTH",
});
mirror_enum!(
/// An order's life-cycle status.
OrderStatus = perpetua_core::types::OrderStatus {
    Active => "ACTIVE", PartiallyFilled => "PARTIALLY_FILLED", Filled => "FILLED",
    Cancelled => "CANCELLED", Expired => "EXPIRED", Rejected => "REJECTED",
});
mirror_enum!(
/// Why an order was cancelled.
CancelReason = perpetua_core::types::CancelReason {
    UserRequested => "USER_REQUESTED", InsufficientBalance => "INSUFFICIENT_BALANCE",
    SelfTrade => "SELF_TRADE", Liquidation => "LIQUIDATION",
});
mirror_enum!(
/// Why an order was rejected at placement (the first rule that applies).
RejectCode = perpetua_core::types::RejectCode {
    InvalidPriceTick => "INVALID_PRICE_TICK", InvalidQuantityStep => "INVALID_QUANTITY_STEP",
    BelowMinNotional => "BELOW_MIN_NOTIONAL", LeverageTooHigh => "LEVERAGE_TOO_HIGH",
    MarginModeMismatch => "MARGIN_MODE_MISMATCH", ReduceOnlyRejected => "REDUCE_ONLY_REJECTED",
    PostOnlyWouldTake => "POST_ONLY_WOULD_TAKE", FokNotFillable => "FOK_NOT_FILLABLE",
    InsufficientBalance => "INSUFFICIENT_BALANCE",
});
mirror_enum!(
/// A trader's account, or one of the two system accounts.
AccountKind = perpetua_core::types::AccountKind { Trader => "TRADER", Fee => "FEE", Insurance => "INSURANCE" });
mirror_enum!(
/// The kind of stream an event belongs to.
AggregateType = perpetua_core::event::AggregateType {
    Order => "Order", Account => "Account", Position => "Position", Market => "Market",
});

/// A user's role: a trader trades with its own account; an auditor reads everything; an
/// admin operates the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Trades with its own account.
    Trader,
    /// Reads everything, changes nothing.
    Auditor,
    /// Operates the exchange.
    Admin,
}

impl From<super::Role> for Role {
    fn from(role: super::Role) -> Self {
        match role {
            super::Role::Trader => Role::Trader,
            super::Role::Auditor => Role::Auditor,
            super::Role::Admin => Role::Admin,
        }
    }
}

// ---- Things ----

/// An order, as its owner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    /// The user who placed it.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    /// The account it trades for.
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    /// The market.
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price; null for a MARKET order.
    #[schema(required = true)]
    pub price: Option<Dec>,
    /// Quantity ordered (base asset).
    pub quantity: Dec,
    /// Quantity still open (0 once filled, cancelled, expired or rejected).
    pub remaining: Dec,
    /// Σ fill quantities.
    pub executed_qty: Dec,
    /// Size-weighted average fill price; null before the first fill.
    #[schema(required = true)]
    pub avg_price: Option<Dec>,
    pub status: OrderStatus,
    /// The client's own id, as placed or as last corrected.
    #[schema(required = true)]
    pub client_order_id: Option<String>,
    /// An admin's note (set only by a correction).
    #[schema(required = true)]
    pub note: Option<String>,
    /// Set only when REJECTED.
    #[schema(required = true)]
    pub reject_reason: Option<RejectCode>,
    /// Set only when CANCELLED.
    #[schema(required = true)]
    pub cancel_reason: Option<CancelReason>,
    /// Σ fees paid on its fills.
    pub fee: Dec,
    /// Σ PnL its fills realized (signed).
    pub realized_pnl: Dec,
    pub created_at: Time,
    pub updated_at: Time,
    /// The order stream's version after its last event.
    pub version: u64,
}

impl From<&OrderView> for Order {
    fn from(o: &OrderView) -> Self {
        Order {
            order_id: o.order_id,
            user_id: o.user_id,
            account_id: o.account_id,
            symbol: o.symbol,
            side: o.side.into(),
            order_type: o.order_type.into(),
            price: o.price.map(Dec),
            quantity: Dec(o.quantity),
            remaining: Dec(o.remaining),
            executed_qty: Dec(o.executed_qty),
            avg_price: o.avg_price.map(Dec),
            status: o.status.into(),
            client_order_id: o.client_order_id.clone(),
            note: o.note.clone(),
            reject_reason: o.reject_reason.map(Into::into),
            cancel_reason: o.cancel_reason.map(Into::into),
            fee: Dec(o.fee),
            realized_pnl: Dec(o.realized_pnl),
            created_at: Time(o.created_at),
            updated_at: Time(o.updated_at),
            version: o.version,
        }
    }
}

impl From<&perpetua_core::order::OrderState> for Order {
    fn from(order: &perpetua_core::order::OrderState) -> Self {
        Order::from(&OrderView::from(order))
    }
}

/// An account's money: `available = balance − locked − positionMargin + min(0, unrealizedPnl)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    /// The owner (the system user for system accounts).
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub kind: AccountKind,
    /// Wallet balance.
    pub balance: Dec,
    /// Reserved by open orders.
    pub locked: Dec,
    /// What can be withdrawn or used for new orders now (negative after a cross loss).
    pub available: Dec,
    /// Σ margins of the account's positions.
    pub position_margin: Dec,
    /// Σ unrealized PnL of the account's open CROSS positions at their marks.
    pub unrealized_pnl: Dec,
}

impl From<&AccountSummary> for Account {
    fn from(a: &AccountSummary) -> Self {
        Account {
            account_id: a.account_id,
            user_id: a.user_id,
            kind: a.kind.into(),
            balance: Dec(a.balance),
            locked: Dec(a.locked),
            available: Dec(a.available),
            position_margin: Dec(a.position_margin),
            unrealized_pnl: Dec(a.unrealized_pnl),
        }
    }
}

impl From<&AccountReceipt> for Account {
    fn from(receipt: &AccountReceipt) -> Self {
        Account::from(&receipt.summary())
    }
}

/// An open position, valued at its market's last mark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    #[schema(value_type = String, format = Uuid)]
    pub position_id: PositionId,
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    /// BUY for a long, SELL for a short.
    pub side: Side,
    /// Open size (base asset).
    pub size: Dec,
    /// Size-weighted average entry price.
    #[schema(required = true)]
    pub entry_price: Option<Dec>,
    /// Margin reserved for it.
    pub margin: Dec,
    pub leverage: u32,
    pub margin_mode: MarginMode,
    /// The market's last mark; null before the first.
    #[schema(required = true)]
    pub mark_price: Option<Dec>,
    /// At the mark (0 without one).
    pub unrealized_pnl: Dec,
    /// The mark at which it is liquidated; null when no positive price does.
    #[schema(required = true)]
    pub liquidation_price: Option<Dec>,
    /// PnL realized over the position stream's life.
    pub realized_pnl: Dec,
    pub updated_at: Time,
}

impl From<&PositionView> for Position {
    fn from(p: &PositionView) -> Self {
        Position {
            position_id: p.position_id,
            account_id: p.account_id,
            symbol: p.symbol,
            side: p.side.into(),
            size: Dec(p.size),
            entry_price: p.entry_price.map(Dec),
            margin: Dec(p.margin),
            leverage: p.leverage,
            margin_mode: p.margin_mode.into(),
            mark_price: p.mark_price.map(Dec),
            unrealized_pnl: Dec(p.unrealized_pnl),
            liquidation_price: p.liquidation_price.map(Dec),
            realized_pnl: Dec(p.realized_pnl),
            updated_at: Time(p.updated_at),
        }
    }
}

impl From<&PositionReceipt> for Position {
    fn from(receipt: &PositionReceipt) -> Self {
        Position::from(&receipt.view())
    }
}

/// A trade on a market's public tape. Which orders traded is not public.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    #[schema(value_type = String, format = Uuid)]
    pub trade_id: TradeId,
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    /// The resting order's price.
    pub price: Dec,
    pub quantity: Dec,
    /// The incoming order's side: BUY lifted an ask, SELL hit a bid.
    pub taker_side: Side,
    pub timestamp: Time,
    /// The log position of the trade (orders trades across markets).
    pub position: u64,
}

impl From<&perpetua_core::projection::Trade> for Trade {
    fn from(t: &perpetua_core::projection::Trade) -> Self {
        Trade {
            trade_id: t.trade_id,
            symbol: t.symbol,
            price: Dec(t.price),
            quantity: Dec(t.quantity),
            taker_side: t.taker_side.into(),
            timestamp: Time(t.timestamp),
            position: t.position,
        }
    }
}

/// One fill of the caller's order as taker: the trade, with what it cost and realized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fill {
    #[schema(value_type = String, format = Uuid)]
    pub trade_id: TradeId,
    pub price: Dec,
    pub quantity: Dec,
    /// Fee paid for the fill.
    pub fee: Dec,
    /// PnL the fill realized (signed).
    pub realized_pnl: Dec,
    /// The resting order it filled against.
    #[schema(value_type = String, format = Uuid)]
    pub maker_order_id: OrderId,
}

impl From<&CoreFill> for Fill {
    fn from(f: &CoreFill) -> Self {
        Fill {
            trade_id: f.trade_id,
            price: Dec(f.price),
            quantity: Dec(f.quantity),
            fee: Dec(f.fee),
            realized_pnl: Dec(f.realized_pnl),
            maker_order_id: f.maker_order_id,
        }
    }
}

/// One maintenance-margin tier: notional in `[notionalFrom, notionalTo)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    pub notional_from: Dec,
    pub notional_to: Dec,
    pub max_leverage: u32,
    /// Maintenance-margin rate.
    pub mmr: Dec,
    /// Maintenance amount.
    pub cum: Dec,
}

/// A market: its rules, last mark price and funding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Market {
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    /// Prices are multiples of this.
    pub tick_size: Dec,
    /// Quantities are multiples of this.
    pub step_size: Dec,
    pub min_qty: Dec,
    /// Smallest `price × quantity`.
    pub min_notional: Dec,
    pub max_leverage: u32,
    pub maker_fee_rate: Dec,
    pub taker_fee_rate: Dec,
    pub tiers: Vec<Tier>,
    /// Null before the first mark price.
    #[schema(required = true)]
    pub mark_price: Option<Dec>,
    /// Rate of the last funding settlement; null before the first.
    #[schema(required = true)]
    pub last_funding_rate: Option<Dec>,
    pub fundings_settled: u64,
    pub created_at: Time,
    pub updated_at: Time,
    /// The market stream's version after its last event.
    pub version: u64,
}

impl From<&MarketState> for Market {
    fn from(m: &MarketState) -> Self {
        let spec = &m.spec;
        Market {
            symbol: spec.symbol,
            tick_size: Dec(spec.tick_size),
            step_size: Dec(spec.step_size),
            min_qty: Dec(spec.min_qty),
            min_notional: Dec(spec.min_notional),
            max_leverage: spec.max_leverage,
            maker_fee_rate: Dec(spec.maker_fee_rate),
            taker_fee_rate: Dec(spec.taker_fee_rate),
            tiers: spec
                .tiers
                .iter()
                .map(|t| Tier {
                    notional_from: Dec(t.notional_from),
                    notional_to: Dec(t.notional_to),
                    max_leverage: t.max_leverage,
                    mmr: Dec(t.mmr),
                    cum: Dec(t.cum),
                })
                .collect(),
            mark_price: m.mark_price.map(Dec),
            last_funding_rate: m.last_funding_rate.map(Dec),
            fundings_settled: m.fundings_settled,
            created_at: Time(m.created_at),
            updated_at: Time(m.updated_at),
            version: m.version,
        }
    }
}

/// Who and what caused an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// The user on whose behalf the command ran (absent on a trader's copy of another user's event).
    #[schema(value_type = Option<String>, format = Uuid, required = true)]
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<String>, format = Uuid, required = true)]
    pub correlation_id: Option<uuid::Uuid>,
    #[schema(value_type = Option<String>, format = Uuid, required = true)]
    pub causation_id: Option<uuid::Uuid>,
    #[schema(required = true)]
    pub ip_address: Option<String>,
}

/// An event exactly as stored, with the hashes that chain it (docs/AUDIT.md says how to
/// check them).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Global position in the log (from 1, contiguous).
    pub position: u64,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: perpetua_core::ids::EventId,
    /// The event's type, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    pub aggregate_type: AggregateType,
    /// A UUID, or a symbol for a market.
    #[schema(value_type = String, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Z0-9]{1,15})$")]
    pub aggregate_id: perpetua_core::event::AggregateId,
    /// Position within its stream (from 1).
    pub version: u64,
    pub timestamp: Time,
    /// The payload exactly as stored; its fields depend on `eventType`.
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
    pub metadata: EventMetadata,
    /// Hash of the previous event (64 hex digits; zeros before the first).
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub prev_hash: perpetua_core::audit::Hash,
    /// `SHA-256(prevHash ‖ canonical bytes)` of this event.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub hash: perpetua_core::audit::Hash,
    /// True on a trader's copy with another user's id and address taken out of the metadata
    /// (the hash still covers the stored metadata).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata_redacted: bool,
}

impl From<StoredEvent> for Event {
    fn from(e: StoredEvent) -> Self {
        Event {
            position: e.position,
            event_id: e.event_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            aggregate_type: e.aggregate_type.into(),
            aggregate_id: e.aggregate_id,
            version: e.version,
            timestamp: Time(e.timestamp),
            payload: e.payload,
            metadata: EventMetadata {
                user_id: e.metadata.user_id,
                correlation_id: e.metadata.correlation_id,
                causation_id: e.metadata.causation_id,
                ip_address: e.metadata.ip_address,
            },
            prev_hash: e.prev_hash,
            hash: e.hash,
            metadata_redacted: e.metadata_redacted,
        }
    }
}

/// Events of the log from a position (a cursor): the next page starts at `nextPosition`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub data: Vec<Event>,
    /// Where the next page starts (the position after the last event here).
    pub next_position: u64,
    /// The log's last position when this page was read.
    pub head_position: u64,
}

/// A stream's events from a version (a cursor): the next page starts at `nextVersion`; the
/// stream is read to its end when `nextVersion` is past `version`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvents {
    pub aggregate_type: AggregateType,
    #[schema(value_type = String)]
    pub aggregate_id: perpetua_core::event::AggregateId,
    /// The stream's current version (its last event).
    pub version: u64,
    pub data: Vec<Event>,
    /// Where the next page starts.
    pub next_version: u64,
}

/// An account stream's own state: its wallet and what each open order locked.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountLedger {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub kind: AccountKind,
    pub balance: Dec,
    pub locked: Dec,
    /// What each open order locked and still locks, by order id.
    pub locks: std::collections::BTreeMap<String, OrderLock>,
    pub total_deposited: Dec,
    pub total_withdrawn: Dec,
    pub created_at: Time,
    pub updated_at: Time,
    pub version: u64,
}

/// What one order locked, and what of it is still locked.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLock {
    /// What the order locked when placed.
    pub amount: Dec,
    /// What of it is still locked.
    pub remaining: Dec,
}

/// A position stream's own state (flat when `size` is 0).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PositionLedger {
    #[schema(value_type = String, format = Uuid)]
    pub position_id: PositionId,
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    pub side: Side,
    pub size: Dec,
    /// `Σ quantity × price` of what is open; entry price = entryValue / size.
    pub entry_value: Dec,
    pub margin: Dec,
    pub leverage: u32,
    pub margin_mode: MarginMode,
    pub realized_pnl: Dec,
    pub created_at: Time,
    pub updated_at: Time,
    pub version: u64,
}

/// A stream's state as its own events fold it: an Order, an AccountLedger, a PositionLedger
/// or a Market, by `aggregateType`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamStateOf {
    Order(Order),
    Account(AccountLedger),
    Position(PositionLedger),
    Market(Market),
}

/// A stream's state at a version or a time.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamState {
    pub aggregate_type: AggregateType,
    #[schema(value_type = String)]
    pub aggregate_id: perpetua_core::event::AggregateId,
    /// The version of the last event folded in.
    pub version: u64,
    pub state: StreamStateOf,
}

impl From<&perpetua_core::timetravel::AggregateState> for StreamStateOf {
    fn from(state: &perpetua_core::timetravel::AggregateState) -> Self {
        use perpetua_core::timetravel::AggregateState as S;
        match state {
            S::Order(o) => StreamStateOf::Order(o.into()),
            S::Account(a) => StreamStateOf::Account(AccountLedger {
                account_id: a.account_id,
                user_id: a.user_id,
                kind: a.kind.into(),
                balance: Dec(a.balance),
                locked: Dec(a.locked),
                locks: a
                    .locks
                    .iter()
                    .map(|(id, l)| (id.to_string(), OrderLock { amount: Dec(l.amount), remaining: Dec(l.remaining) }))
                    .collect(),
                total_deposited: Dec(a.total_deposited),
                total_withdrawn: Dec(a.total_withdrawn),
                created_at: Time(a.created_at),
                updated_at: Time(a.updated_at),
                version: a.version,
            }),
            S::Position(p) => StreamStateOf::Position(PositionLedger {
                position_id: p.position_id,
                account_id: p.account_id,
                symbol: p.symbol,
                side: p.side.into(),
                size: Dec(p.size),
                entry_value: Dec(p.entry_value),
                margin: Dec(p.margin),
                leverage: p.leverage,
                margin_mode: p.margin_mode.into(),
                realized_pnl: Dec(p.realized_pnl),
                created_at: Time(p.created_at),
                updated_at: Time(p.updated_at),
                version: p.version,
            }),
            S::Market(m) => StreamStateOf::Market(m.into()),
        }
    }
}

// ---- Lists ----

/// A page of order history, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub data: Vec<Order>,
    /// Orders matching the filters, on all pages.
    pub total: u64,
    /// This page (from 1).
    pub page: u32,
    /// Orders per page.
    pub limit: u32,
    pub total_pages: u64,
}

/// Open orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    pub data: Vec<Order>,
}

/// Open positions, in the order they were opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionList {
    pub data: Vec<Position>,
}

/// Every market, by symbol.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarketList {
    pub data: Vec<Market>,
}

/// A market's recent trades, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TradeList {
    pub data: Vec<Trade>,
}

/// A market's candles of one interval, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandleList {
    pub data: Vec<crate::read_models::candles::Candle>,
}

/// One price level of a book.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookLevel {
    pub price: Dec,
    /// Σ open quantity at the price.
    pub quantity: Dec,
    /// Open orders at the price.
    pub orders: u32,
}

/// A market's order book by price level: bids best (highest) first, asks best (lowest) first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Book {
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    /// The log position the book is at (or later): a market stream's depth diffs with a
    /// greater `sequence` bring it up to date.
    pub sequence: u64,
    pub bids: Vec<BookLevel>,
    pub asks: Vec<BookLevel>,
}

// ---- Command answers (each with `position`: the log position of the command's last event,
// for `minPosition` on a later query) ----

/// An account after a deposit or a withdrawal.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountAnswer {
    pub account: Account,
    /// The log position of the command's last event.
    pub position: u64,
}

/// An order after a cancel or a correction.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderAnswer {
    pub order: Order,
    pub position: u64,
}

/// A placed order: its own fills as taker and the caller's open position in the market after
/// it (null when flat).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order: Order,
    pub fills: Vec<Fill>,
    #[schema(required = true)]
    pub open_position: Option<Position>,
    pub position: u64,
}

/// A placed order that a business rule rejected (422): the rejection, and the order as
/// recorded (REJECTED).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderRejected {
    pub error: RejectionDetail,
    pub order: Order,
    pub position: u64,
}

/// Why an order was rejected.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectionDetail {
    pub code: RejectCode,
    pub message: String,
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
}

/// The caller's open position in a market after a leverage or margin change (null when flat).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PositionAnswer {
    #[schema(required = true)]
    pub open_position: Option<Position>,
    pub position: u64,
}

/// A market after a mark price or a funding settlement, with the positions it liquidated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarketAnswer {
    pub market: Market,
    #[schema(value_type = Vec<String>)]
    pub liquidated_positions: Vec<PositionId>,
    pub position: u64,
}

/// What a cancel-all cancelled, in the book's order, and the account after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelledOrders {
    #[schema(value_type = Vec<String>)]
    pub cancelled: Vec<OrderId>,
    pub account: Account,
    pub position: u64,
}

/// One order of a batch: its HTTP status and what `POST /v1/orders` would have answered
/// (`order`, `fills` and `openPosition`, or `error`, with `order` for a rejection).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fills: Option<Vec<Fill>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_position: Option<Option<Position>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// The log position of the order's last event (absent for a refused order, which wrote
    /// nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

/// A batch's answers, one per order, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
    pub position: u64,
}

/// A user created. The token is shown here once; a retry under the same key answers 200
/// without it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// A trader's account; null for staff.
    #[schema(value_type = Option<String>, format = Uuid, required = true)]
    pub account_id: Option<AccountId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub position: u64,
}

/// Read models being rebuilt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rebuilding {
    pub rebuilding: Vec<String>,
}

// ---- Errors and operations ----

/// An error: a stable `code` to act on, a `message` for people, the request's id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Error {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable, SCREAMING_SNAKE_CASE; each route lists the codes it can answer.
    pub code: String,
    pub message: String,
    /// The request's `X-Request-Id`, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: String,
    /// `sqlite`, `postgres` or `mysql`.
    pub backend: String,
    pub head_position: u64,
    pub projection_position: u64,
    /// The projector's last page failed and is being retried (the detail is in the log).
    pub projection_failing: bool,
}

/// What readiness checked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadyChecks {
    /// `ok`, `timeout` or `failed`.
    pub database: String,
    /// `held` or `lost`.
    pub writer_lease: String,
    pub projection_lag_events: u64,
    pub projection_failing: bool,
}

/// Readiness: `ready`, or `not ready` (503) with the reasons in `error`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    pub checks: ReadyChecks,
}

/// The server's clock.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    /// Unix milliseconds.
    pub server_time: i64,
    pub head_position: u64,
}

/// A read model's generation and position, and any rebuild under way.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadModel {
    pub name: String,
    pub generation: u64,
    pub position: u64,
    #[schema(required = true)]
    pub rebuilding: Option<RebuildProgress>,
}

/// A rebuild under way.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildProgress {
    pub generation: u64,
    pub position: u64,
}

/// The read models.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Projections {
    pub head_position: u64,
    pub lag_events: u64,
    pub read_models: Vec<ReadModel>,
}

/// What is wrong at the first event that does not verify.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainFault {
    /// `POSITION_GAP`, `PREV_HASH_MISMATCH`, `HASH_MISMATCH` or `HEAD_MISMATCH`.
    pub kind: String,
    /// For a gap: the position missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
}

impl From<&perpetua_core::audit::ChainFault> for ChainFault {
    fn from(fault: &perpetua_core::audit::ChainFault) -> Self {
        use perpetua_core::audit::ChainFault as F;
        let (kind, expected) = match fault {
            F::PositionGap { expected } => ("POSITION_GAP", Some(*expected)),
            F::PrevHashMismatch => ("PREV_HASH_MISMATCH", None),
            F::HashMismatch => ("HASH_MISMATCH", None),
            F::HeadMismatch => ("HEAD_MISMATCH", None),
        };
        ChainFault { kind: kind.to_owned(), expected }
    }
}

/// A verification of the chain over a range.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// True when every event checked verified.
    pub verified: bool,
    /// Events checked and found good.
    pub checked: u64,
    #[schema(required = true)]
    pub first_bad_position: Option<u64>,
    #[schema(required = true)]
    pub fault: Option<ChainFault>,
    /// Hash of the last good event.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub last_hash: perpetua_core::audit::Hash,
}

/// A signed checkpoint (docs/AUDIT.md §10): the log's head — its size, the chain hash of its
/// last event, the Merkle root over its events, when — signed with the writer's Ed25519 key.
/// The signed message is `perpetua checkpoint v1\n{treeSize}\n{chainHash}\n{rootHash}\n{timestamp
/// as Unix milliseconds}\n`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The log's size: its events are at positions 1 to `treeSize`.
    pub tree_size: u64,
    /// The chain hash of the event at `treeSize`.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub chain_hash: perpetua_core::audit::Hash,
    /// The Merkle root over the events at positions 1 to `treeSize`.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub root_hash: perpetua_core::audit::Hash,
    /// When it was signed.
    #[schema(value_type = String, example = "2026-12-01T12:00:00.000Z")]
    pub timestamp: perpetua_core::time::Timestamp,
    /// The key's id: the first 8 bytes of SHA-256 of its public key, in hex.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    pub key_id: String,
    /// The Ed25519 public key, in hex (trust it only if it is the one the operator publishes).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub public_key: String,
    /// The Ed25519 signature of the message, in hex.
    #[schema(pattern = "^[0-9a-f]{128}$")]
    pub signature: String,
}

impl From<perpetua_core::checkpoint::Checkpoint> for Checkpoint {
    fn from(c: perpetua_core::checkpoint::Checkpoint) -> Self {
        Checkpoint {
            tree_size: c.head.tree_size,
            chain_hash: c.head.chain_hash,
            root_hash: c.head.root_hash,
            timestamp: c.head.timestamp,
            key_id: c.key_id,
            public_key: c.public_key,
            signature: c.signature,
        }
    }
}

/// An order's receipt (docs/AUDIT.md §11): its events, each with its inclusion proof (the
/// audit path to leaf `position − 1`, nearest the leaf first) in the tree the checkpoint
/// signs. Whoever holds it can check it with the signer's public key alone.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The signed checkpoint the proofs lead to.
    pub checkpoint: Checkpoint,
    /// The order's events, in position order.
    pub events: Vec<ReceiptEvent>,
}

/// One event of a receipt and its inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptEvent {
    /// The event as stored, byte for byte as its hash covers it (another user's identity
    /// withheld from a trader: then its hash, not its bytes, is what can be checked).
    #[schema(value_type = Event)]
    pub event: StoredEvent,
    /// The audit path in the checkpoint's tree, nearest the leaf first.
    #[schema(value_type = Vec<String>)]
    pub proof: Vec<perpetua_core::audit::Hash>,
}

/// Signed checkpoints, smallest tree size first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoints {
    /// The checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// The tree size to ask from for the next page; absent on the last page.
    #[schema(required = true)]
    pub next_tree_size: Option<u64>,
}

/// The head of the log's Merkle tree (RFC 9162) at a size: the root over the hashes of its
/// first `treeSize` events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TreeHead {
    /// Leaves: the events at positions 1 to `treeSize`.
    pub tree_size: u64,
    /// The root (the hash of the empty tree for size 0).
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub root_hash: perpetua_core::audit::Hash,
}

/// The proof that the event at `position` is leaf `leafIndex` of the tree of `treeSize`
/// leaves whose root is `rootHash` (RFC 9162 §2.1.3): the audit path, nearest the leaf first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The event's position.
    pub position: u64,
    /// Its leaf: `position - 1`.
    pub leaf_index: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The event's own hash (the leaf's data).
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub event_hash: perpetua_core::audit::Hash,
    /// `SHA-256(0x00 ‖ eventHash)`.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub leaf_hash: perpetua_core::audit::Hash,
    /// The tree's root.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub root_hash: perpetua_core::audit::Hash,
    /// The audit path.
    #[schema(value_type = Vec<String>)]
    pub proof: Vec<perpetua_core::audit::Hash>,
}

/// The proof that the tree of `second` leaves extends the tree of `first`: the log of the
/// later head holds the earlier one unchanged as its prefix (RFC 9162 §2.1.4).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// The earlier size.
    pub first: u64,
    /// The later size.
    pub second: u64,
    /// The root at `first`.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub first_root: perpetua_core::audit::Hash,
    /// The root at `second`.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub second_root: perpetua_core::audit::Hash,
    /// The proof's nodes (empty when `first` is 0 or equals `second`).
    #[schema(value_type = Vec<String>)]
    pub proof: Vec<perpetua_core::audit::Hash>,
}

// ---- Requests ----

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1 to 200 printable characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// trader, auditor or admin (any other: 400 `INVALID_ROLE`).
    #[schema(value_type = Role)]
    pub role: String,
}

/// An amount of USDT.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// Positive for a deposit or withdrawal; for margin, positive adds and negative removes.
    pub amount: Dec,
}

/// A new order for the caller's own account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOrder {
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Required for LIMIT, absent for MARKET.
    #[serde(default)]
    pub price: Option<Dec>,
    pub quantity: Dec,
    #[schema(minimum = 1)]
    pub leverage: u32,
    /// CROSS unless given.
    #[serde(default)]
    pub margin_mode: Option<MarginMode>,
    /// GTC unless given.
    #[serde(default)]
    pub time_in_force: Option<TimeInForce>,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub post_only: bool,
    /// EXPIRE_TAKER unless given.
    #[serde(default)]
    pub stp_mode: Option<StpMode>,
    /// The client's own id for the order.
    #[serde(default)]
    pub client_order_id: Option<String>,
}

/// Up to 50 orders, decided one by one in one commit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrders {
    #[schema(min_items = 1, max_items = 50)]
    pub orders: Vec<NewOrder>,
}

/// A new leverage.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Leverage {
    #[schema(minimum = 1)]
    pub leverage: u32,
}

/// A mark price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPrice {
    pub price: Dec,
}

/// A funding rate (signed: positive, longs pay shorts).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundingRate {
    pub rate: Dec,
}

/// One corrected field of an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCorrection {
    /// `clientOrderId` or `note`.
    pub field: String,
    /// The value before, as the admin states it; null when unset.
    pub from: Option<String>,
    /// The value after; null clears it.
    pub to: Option<String>,
}

/// A correction of an order's event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Correction {
    /// The version of the order's event being corrected.
    #[schema(minimum = 1, maximum = 9223372036854775807_i64)]
    pub corrected_version: u64,
    #[schema(min_items = 1)]
    pub corrections: Vec<FieldCorrection>,
    pub reason: String,
}

impl From<FieldCorrection> for perpetua_core::order::events::FieldCorrection {
    fn from(c: FieldCorrection) -> Self {
        perpetua_core::order::events::FieldCorrection { field: c.field, from: c.from, to: c.to }
    }
}

/// Every schema of the API, for `/openapi.json`'s components.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    Dec,
    Time,
    Side,
    OrderType,
    TimeInForce,
    MarginMode,
    StpMode,
    OrderStatus,
    CancelReason,
    RejectCode,
    AccountKind,
    AggregateType,
    Role,
    Order,
    Account,
    Position,
    Trade,
    Fill,
    Tier,
    Market,
    EventMetadata,
    Event,
    EventPage,
    StreamEvents,
    AccountLedger,
    OrderLock,
    PositionLedger,
    StreamStateOf,
    StreamState,
    OrderPage,
    OrderList,
    PositionList,
    MarketList,
    TradeList,
    BookLevel,
    Book,
    AccountAnswer,
    OrderAnswer,
    OrderPlaced,
    OrderRejected,
    RejectionDetail,
    PositionAnswer,
    MarketAnswer,
    CancelledOrders,
    BatchResult,
    BatchAnswer,
    UserCreated,
    Rebuilding,
    Error,
    ErrorDetail,
    Health,
    ReadyChecks,
    Ready,
    ServerTime,
    ReadModel,
    RebuildProgress,
    Projections,
    ChainFault,
    Verification,
    Checkpoint,
    Checkpoints,
    Receipt,
    ReceiptEvent,
    TreeHead,
    InclusionProof,
    ConsistencyProof,
    CreateUser,
    Amount,
    NewOrder,
    NewOrders,
    Leverage,
    MarkPrice,
    FundingRate,
    FieldCorrection,
    Correction,
    crate::market_data::DepthDiff,
    crate::read_models::candles::Candle,
    crate::read_models::candles::Interval,
    CandleList,
)))]
pub struct Schemas;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each mirrored enumeration is spelled on the wire as the core spells it.
    #[test]
    fn mirrored_enums_are_spelled_as_in_the_core() {
        fn same<C: Serialize + Copy, W: Serialize + From<C>>(all: &[C]) {
            for value in all {
                assert_eq!(serde_json::to_value(W::from(*value)).unwrap(), serde_json::to_value(value).unwrap());
            }
        }
        use perpetua_core::types as core;
        same::<core::Side, Side>(core::Side::ALL);
        same::<core::OrderType, OrderType>(core::OrderType::ALL);
        same::<core::TimeInForce, TimeInForce>(core::TimeInForce::ALL);
        same::<core::MarginMode, MarginMode>(core::MarginMode::ALL);
        same::<core::StpMode, StpMode>(core::StpMode::ALL);
        same::<core::OrderStatus, OrderStatus>(core::OrderStatus::ALL);
        same::<core::CancelReason, CancelReason>(core::CancelReason::ALL);
        same::<core::RejectCode, RejectCode>(core::RejectCode::ALL);
        same::<core::AccountKind, AccountKind>(core::AccountKind::ALL);
        same::<perpetua_core::event::AggregateType, AggregateType>(&perpetua_core::event::AggregateType::ALL);
    }

    /// The read models store the core's views as JSON; read back as wire types they are what
    /// the explicit conversions make, so a query's answer and a command's answer agree.
    #[test]
    fn stored_views_read_back_as_the_wire_types() {
        let mut setup = perpetua_core::workload::Setup::new(4, 1_000, 3);
        setup.mixed_workload(300, 5);
        let models = {
            let mut models = perpetua_core::projection::ReadModels::new();
            setup.log.iter().for_each(|e| models.apply(e));
            models
        };
        fn read_back<V: Serialize, W: for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(view: &V, wire: W) {
            let text = serde_json::to_string(view).unwrap();
            assert_eq!(serde_json::from_str::<W>(&text).unwrap(), wire, "{text}");
        }
        let (mut orders, mut positions, mut trades) = (0, 0, 0);
        for account in &setup.accounts {
            let summary = models.accounts().summary(*account).unwrap();
            read_back(&summary, Account::from(&summary));
            for position in models.positions_for_account(*account) {
                read_back(&position, Position::from(&position));
                positions += 1;
            }
        }
        for order in setup.exchange.orders() {
            let view = models.orders().get(order.order_id).unwrap();
            read_back(&view, Order::from(&view));
            orders += 1;
        }
        for market in models.positions().markets() {
            for trade in models.trades().tape(market.spec.symbol) {
                read_back(trade, Trade::from(trade));
                trades += 1;
            }
        }
        assert!(
            orders > 100 && positions > 0 && trades > 10,
            "{orders} orders, {positions} positions, {trades} trades"
        );
    }
}
