//! Order state and its evolution.

use crate::aggregate::Aggregate;
use crate::event::{Event, EventEnvelope};
use crate::ids::{AccountId, OrderId, UserId};
use crate::order::events::{OrderPlaced, OrderRejected};
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{CancelReason, MarginMode, OrderStatus, OrderType, RejectCode, Side, StpMode, TimeInForce};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Everything known about one order.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    /// The order's id.
    pub order_id: OrderId,
    /// The user who placed it.
    pub user_id: UserId,
    /// The account it trades for.
    pub account_id: AccountId,
    /// The market.
    pub symbol: Symbol,
    /// BUY or SELL.
    pub side: Side,
    /// LIMIT or MARKET.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price in USDT; `None` for MARKET orders.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub price: Option<Decimal>,
    /// Quantity ordered (base asset).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub quantity: Decimal,
    /// Quantity still open (base asset); 0 once filled or rejected.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub remaining: Decimal,
    /// Σ fill quantities (base asset).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub executed_qty: Decimal,
    /// `Σ fill quantity × fill price`, for the average price.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub executed_value: Decimal,
    /// Leverage requested (0 for a rejected order, which records none).
    pub leverage: u32,
    /// Margin mode (CROSS for a rejected order, which records none).
    pub margin_mode: MarginMode,
    /// Time in force (GTC for a rejected order, which records none).
    pub time_in_force: TimeInForce,
    /// Reduce-only flag (false for a rejected order).
    pub is_reduce_only: bool,
    /// Post-only flag (false for a rejected order).
    pub is_post_only: bool,
    /// Self-trade prevention mode (EXPIRE_TAKER for a rejected order).
    pub stp_mode: StpMode,
    /// The client's own id, as placed or as last corrected.
    pub client_order_id: Option<String>,
    /// An admin's note, set only by `OrderCorrected`.
    pub note: Option<String>,
    /// Life-cycle status.
    pub status: OrderStatus,
    /// Why it was rejected; set only when REJECTED.
    pub reject_reason: Option<RejectCode>,
    /// Why it was cancelled; set only when CANCELLED.
    pub cancel_reason: Option<CancelReason>,
    /// Σ fees paid on its fills, in USDT.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub fees_paid: Decimal,
    /// Σ PnL realized by its fills, in USDT (signed).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub realized_pnl: Decimal,
    /// Number of `OrderCorrected` events applied.
    pub corrections: u32,
    /// Timestamp of the order's first event.
    pub created_at: Timestamp,
    /// Timestamp of the order's last event.
    pub updated_at: Timestamp,
    /// Version of the order stream after its last event.
    pub version: u64,
}

impl OrderState {
    fn placed(e: &OrderPlaced, at: Timestamp) -> Self {
        OrderState {
            order_id: e.order_id,
            user_id: e.user_id,
            account_id: e.account_id,
            symbol: e.symbol,
            side: e.side,
            order_type: e.order_type,
            price: e.price,
            quantity: e.quantity,
            remaining: e.quantity,
            executed_qty: Decimal::ZERO,
            executed_value: Decimal::ZERO,
            leverage: e.leverage,
            margin_mode: e.margin_mode,
            time_in_force: e.time_in_force,
            is_reduce_only: e.is_reduce_only,
            is_post_only: e.is_post_only,
            stp_mode: e.stp_mode,
            client_order_id: e.client_order_id.clone(),
            note: None,
            status: OrderStatus::Active,
            reject_reason: None,
            cancel_reason: None,
            fees_paid: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            corrections: 0,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    fn rejected(e: &OrderRejected, at: Timestamp) -> Self {
        let placed = OrderPlaced {
            order_id: e.order_id,
            user_id: e.user_id,
            account_id: e.account_id,
            symbol: e.symbol,
            side: e.side,
            order_type: e.order_type,
            price: e.price,
            quantity: e.quantity,
            leverage: 0,
            margin_mode: MarginMode::Cross,
            time_in_force: TimeInForce::Gtc,
            is_reduce_only: false,
            is_post_only: false,
            stp_mode: StpMode::ExpireTaker,
            client_order_id: e.client_order_id.clone(),
        };
        let mut state = Self::placed(&placed, at);
        state.status = OrderStatus::Rejected;
        state.reject_reason = Some(e.reason);
        state.remaining = Decimal::ZERO;
        state
    }
}

impl Aggregate for OrderState {
    fn create(envelope: &EventEnvelope) -> Option<Self> {
        match &envelope.event {
            Event::OrderPlaced(e) => Some(Self::placed(e, envelope.timestamp)),
            Event::OrderRejected(e) => Some(Self::rejected(e, envelope.timestamp)),
            _ => None,
        }
    }

    fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::OrderMatched(e) => {
                self.executed_qty += e.quantity;
                self.executed_value += e.quantity * e.price;
                self.remaining = e.remaining;
                self.fees_paid += e.fee;
                self.realized_pnl += e.realized_pnl;
                if !self.remaining.is_zero() {
                    self.status = OrderStatus::PartiallyFilled;
                }
            }
            Event::OrderPartiallyFilled(e) => {
                self.remaining = e.remaining;
                self.status = OrderStatus::PartiallyFilled;
            }
            Event::OrderFilled(_) => {
                self.remaining = Decimal::ZERO;
                self.status = OrderStatus::Filled;
            }
            Event::OrderCancelled(e) => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(e.reason);
            }
            Event::OrderExpired(_) => self.status = OrderStatus::Expired,
            Event::OrderCorrected(e) => {
                self.corrections += 1;
                for correction in &e.corrections {
                    match correction.field.as_str() {
                        "clientOrderId" => self.client_order_id = correction.to.clone(),
                        "note" => self.note = correction.to.clone(),
                        _ => {}
                    }
                }
            }
            other => debug_assert!(false, "{} is not an order event", other.event_type()),
        }
        self.version = envelope.version;
        self.updated_at = envelope.timestamp;
    }

    fn version(&self) -> u64 {
        self.version
    }
}

/// The order an order-stream event belongs to (`None` for other events and for the events
/// that start an order stream).
pub(crate) fn order_id_of(event: &Event) -> Option<crate::ids::OrderId> {
    Some(match event {
        Event::OrderMatched(e) => e.order_id,
        Event::OrderPartiallyFilled(e) => e.order_id,
        Event::OrderFilled(e) => e.order_id,
        Event::OrderCancelled(e) => e.order_id,
        Event::OrderExpired(e) => e.order_id,
        Event::OrderCorrected(e) => e.order_id,
        _ => return None,
    })
}
