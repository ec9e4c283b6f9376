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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub price: Option<Decimal>,
    pub quantity: Decimal,
    pub remaining: Decimal,
    pub executed_qty: Decimal,
    /// `Σ fill quantity × fill price`, for the average price.
    pub executed_value: Decimal,
    pub leverage: u32,
    pub margin_mode: MarginMode,
    pub time_in_force: TimeInForce,
    pub is_reduce_only: bool,
    pub is_post_only: bool,
    pub stp_mode: StpMode,
    pub client_order_id: Option<String>,
    pub note: Option<String>,
    pub status: OrderStatus,
    pub reject_reason: Option<RejectCode>,
    pub cancel_reason: Option<CancelReason>,
    pub fees_paid: Decimal,
    pub realized_pnl: Decimal,
    pub corrections: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
