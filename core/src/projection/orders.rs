//! The orders read model: every order by id, each user's orders newest first, and paged,
//! filtered order history.

use crate::event::{Event, EventEnvelope};
use crate::ids::{AccountId, OrderId, UserId};
use crate::order::events::{OrderPlaced, OrderRejected};
use crate::symbol::Symbol;
use crate::time::Timestamp;
use crate::types::{CancelReason, OrderStatus, OrderType, RejectCode, Side};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use uuid::Uuid;

/// One order as its owner sees it. Equal, field for field, to what the Order aggregate's own
/// fold knows after the same events (`avgPrice` is its `avg_price()`, `fee` its `fees_paid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price; `None` for MARKET orders.
    pub price: Option<Decimal>,
    pub quantity: Decimal,
    /// Quantity still open (0 once the order is rejected or filled).
    pub remaining: Decimal,
    /// Σ fill quantities.
    pub executed_qty: Decimal,
    /// Size-weighted average fill price (8 dp, normalized); `None` before the first fill.
    pub avg_price: Option<Decimal>,
    pub status: OrderStatus,
    /// As placed, or as last corrected by `OrderCorrected`.
    pub client_order_id: Option<String>,
    /// An admin's note, set only by `OrderCorrected`.
    pub note: Option<String>,
    pub reject_reason: Option<RejectCode>,
    pub cancel_reason: Option<CancelReason>,
    /// Σ fees paid on this order's fills.
    pub fee: Decimal,
    /// Σ PnL realized by this order's fills (signed).
    pub realized_pnl: Decimal,
    /// Timestamp of the order's first event.
    pub created_at: Timestamp,
    /// Timestamp of the order's last event.
    pub updated_at: Timestamp,
    /// Version of the order's stream after its last event.
    pub version: u64,
}

impl OrderView {
    fn placed(e: &OrderPlaced, envelope: &EventEnvelope) -> Self {
        OrderView {
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
            avg_price: None,
            status: OrderStatus::Active,
            client_order_id: e.client_order_id.clone(),
            note: None,
            reject_reason: None,
            cancel_reason: None,
            fee: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            created_at: envelope.timestamp,
            updated_at: envelope.timestamp,
            version: envelope.version,
        }
    }

    fn rejected(e: &OrderRejected, envelope: &EventEnvelope) -> Self {
        OrderView {
            order_id: e.order_id,
            user_id: e.user_id,
            account_id: e.account_id,
            symbol: e.symbol,
            side: e.side,
            order_type: e.order_type,
            price: e.price,
            quantity: e.quantity,
            remaining: Decimal::ZERO,
            executed_qty: Decimal::ZERO,
            avg_price: None,
            status: OrderStatus::Rejected,
            client_order_id: e.client_order_id.clone(),
            note: None,
            reject_reason: Some(e.reason),
            cancel_reason: None,
            fee: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            created_at: envelope.timestamp,
            updated_at: envelope.timestamp,
            version: envelope.version,
        }
    }

    /// Where the order sorts in a user's list: by creation time, then id.
    fn key(&self) -> OrderKey {
        (self.created_at, self.order_id)
    }
}

/// An order's view plus what the view derives from but does not show.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderEntry {
    view: OrderView,
    /// `Σ fill quantity × fill price`, kept exact so the average price is rounded only once.
    executed_value: Decimal,
}

impl OrderEntry {
    /// Evolves the order by one event of its stream, as `OrderState::apply` does.
    fn evolve(&mut self, envelope: &EventEnvelope) {
        let view = &mut self.view;
        match &envelope.event {
            Event::OrderMatched(e) => {
                view.executed_qty += e.quantity;
                self.executed_value += e.quantity * e.price;
                view.avg_price = average_price(self.executed_value, view.executed_qty);
                view.remaining = e.remaining;
                view.fee += e.fee;
                view.realized_pnl += e.realized_pnl;
                if !view.remaining.is_zero() {
                    view.status = OrderStatus::PartiallyFilled;
                }
            }
            Event::OrderPartiallyFilled(e) => {
                view.remaining = e.remaining;
                view.status = OrderStatus::PartiallyFilled;
            }
            Event::OrderFilled(_) => {
                view.remaining = Decimal::ZERO;
                view.status = OrderStatus::Filled;
            }
            Event::OrderCancelled(e) => {
                view.status = OrderStatus::Cancelled;
                view.cancel_reason = Some(e.reason);
            }
            Event::OrderExpired(_) => view.status = OrderStatus::Expired,
            Event::OrderCorrected(e) => {
                for correction in &e.corrections {
                    match correction.field.as_str() {
                        "clientOrderId" => view.client_order_id = correction.to.clone(),
                        "note" => view.note = correction.to.clone(),
                        _ => {}
                    }
                }
            }
            _ => return,
        }
        view.version = envelope.version;
        view.updated_at = envelope.timestamp;
    }
}

/// `value / qty` at 8 dp, normalized (the rounding of `OrderState::avg_price`).
fn average_price(value: Decimal, qty: Decimal) -> Option<Decimal> {
    (!qty.is_zero()).then(|| (value / qty).round_dp(8).normalize())
}

/// Sort key of a user's orders: `(createdAt, orderId)`; iterated backwards it gives newest
/// first, ties broken by the larger order id.
type OrderKey = (Timestamp, OrderId);

/// One user's orders, as sort keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct UserOrders {
    /// Every order of the user, rejected ones included.
    all: BTreeSet<OrderKey>,
    /// The user's orders that are ACTIVE or PARTIALLY_FILLED.
    open: BTreeSet<OrderKey>,
}

/// Default page size of [`HistoryQuery`].
pub const DEFAULT_PAGE_LIMIT: u32 = 20;
/// Largest page size; larger requests are clamped to it.
pub const MAX_PAGE_LIMIT: u32 = 100;

/// Filters and page of an order-history query. `Default` is page 1 of 20, unfiltered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only orders of this market.
    pub symbol: Option<Symbol>,
    /// Only orders in this status (now, not at creation).
    pub status: Option<OrderStatus>,
    /// Only orders created at or after this instant.
    pub start_time: Option<Timestamp>,
    /// Only orders created at or before this instant.
    pub end_time: Option<Timestamp>,
    /// 1-based page number; 0 is read as 1.
    pub page: u32,
    /// Page size, clamped to `1..=MAX_PAGE_LIMIT`.
    pub limit: u32,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            symbol: None,
            status: None,
            start_time: None,
            end_time: None,
            page: 1,
            limit: DEFAULT_PAGE_LIMIT,
        }
    }
}

impl HistoryQuery {
    /// `(page, limit)` after clamping.
    fn page_and_limit(&self) -> (u32, u32) {
        (self.page.max(1), self.limit.clamp(1, MAX_PAGE_LIMIT))
    }

    /// The range of sort keys created in `[start_time, end_time]`; `None` when it is empty.
    fn key_range(&self) -> Option<(Bound<OrderKey>, Bound<OrderKey>)> {
        if let (Some(start), Some(end)) = (self.start_time, self.end_time) {
            if start > end {
                return None;
            }
        }
        let lower = self.start_time.map_or(Bound::Unbounded, |t| Bound::Included((t, OrderId(Uuid::nil()))));
        let upper = self.end_time.map_or(Bound::Unbounded, |t| Bound::Included((t, OrderId(Uuid::max()))));
        Some((lower, upper))
    }

    fn matches(&self, view: &OrderView) -> bool {
        self.symbol.is_none_or(|symbol| view.symbol == symbol) && self.status.is_none_or(|status| view.status == status)
    }
}

/// One page of a result, with the size of the whole result. Serialized as
/// `{data, total, page, limit, totalPages}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items of this page, in the result's order (at most `limit`).
    pub data: Vec<T>,
    /// Number of items in the whole result.
    pub total: u64,
    /// This page's number (1-based, after clamping).
    pub page: u32,
    /// Page size (after clamping).
    pub limit: u32,
    /// `ceil(total / limit)`; 0 for an empty result.
    pub total_pages: u32,
}

/// Every order by id, with a per-user index so that a user's queries touch only that user's
/// orders.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdersProjection {
    orders: BTreeMap<OrderId, OrderEntry>,
    users: BTreeMap<UserId, UserOrders>,
}

impl OrdersProjection {
    /// Folds one event; events of other aggregates, and events of orders never placed, are
    /// ignored.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::OrderPlaced(e) => self.insert(OrderView::placed(e, envelope)),
            Event::OrderRejected(e) => self.insert(OrderView::rejected(e, envelope)),
            event => {
                let Some(order_id) = order_id_of(event) else { return };
                let Some(entry) = self.orders.get_mut(&order_id) else { return };
                entry.evolve(envelope);
                if !entry.view.status.is_open() {
                    let (user_id, key) = (entry.view.user_id, entry.view.key());
                    if let Some(user) = self.users.get_mut(&user_id) {
                        user.open.remove(&key);
                    }
                }
            }
        }
    }

    fn insert(&mut self, view: OrderView) {
        debug_assert!(!self.orders.contains_key(&view.order_id), "an order stream starts once");
        let user = self.users.entry(view.user_id).or_default();
        user.all.insert(view.key());
        if view.status.is_open() {
            user.open.insert(view.key());
        }
        self.orders.insert(view.order_id, OrderEntry { view, executed_value: Decimal::ZERO });
    }

    fn view(&self, key: &OrderKey) -> Option<&OrderView> {
        self.orders.get(&key.1).map(|entry| &entry.view)
    }

    /// An order, if it was placed or rejected in the log so far.
    pub fn get(&self, order_id: OrderId) -> Option<&OrderView> {
        self.orders.get(&order_id).map(|entry| &entry.view)
    }

    /// The user's ACTIVE and PARTIALLY_FILLED orders, newest first (createdAt, then order id,
    /// descending).
    pub fn active_for_user(&self, user_id: UserId) -> Vec<&OrderView> {
        let open = self.users.get(&user_id).into_iter().flat_map(|user| user.open.iter().rev());
        open.filter_map(|key| self.view(key)).collect()
    }

    /// One page of the user's orders that match `query`, newest first (createdAt, then order
    /// id, descending). `total` counts every match, not just this page.
    pub fn history(&self, user_id: UserId, query: &HistoryQuery) -> Page<OrderView> {
        let (page, limit) = query.page_and_limit();
        let skip = u64::from(page - 1) * u64::from(limit);
        let mut result = Page { data: Vec::new(), total: 0, page, limit, total_pages: 0 };
        let (Some(user), Some(range)) = (self.users.get(&user_id), query.key_range()) else { return result };
        let matching = user.all.range(range).rev().filter_map(|key| self.view(key)).filter(|view| query.matches(view));
        for view in matching {
            if result.total >= skip && result.data.len() < limit as usize {
                result.data.push(view.clone());
            }
            result.total += 1;
        }
        result.total_pages = u32::try_from(result.total.div_ceil(u64::from(limit))).unwrap_or(u32::MAX);
        result
    }
}

/// The order an order-stream event belongs to (`None` for other events and for the events
/// that start an order stream).
fn order_id_of(event: &Event) -> Option<OrderId> {
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
