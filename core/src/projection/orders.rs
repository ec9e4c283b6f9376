//! The orders read model: every order by id, each user's orders newest first, and paged,
//! filtered order history.

use crate::aggregate::Aggregate;
use crate::event::EventEnvelope;
use crate::ids::{AccountId, OrderId, UserId};
use crate::order::fold::order_id_of;
use crate::order::OrderState;
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
    /// Limit price; `None` for MARKET orders.
    pub price: Option<Decimal>,
    /// Quantity ordered (base asset).
    pub quantity: Decimal,
    /// Quantity still open (0 once the order is rejected or filled).
    pub remaining: Decimal,
    /// Σ fill quantities.
    pub executed_qty: Decimal,
    /// Size-weighted average fill price (8 dp, normalized); `None` before the first fill.
    pub avg_price: Option<Decimal>,
    /// Life-cycle status at this point of the log.
    pub status: OrderStatus,
    /// As placed, or as last corrected by `OrderCorrected`.
    pub client_order_id: Option<String>,
    /// An admin's note, set only by `OrderCorrected`.
    pub note: Option<String>,
    /// Why it was rejected; set only when REJECTED.
    pub reject_reason: Option<RejectCode>,
    /// Why it was cancelled; set only when CANCELLED.
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

impl From<&OrderState> for OrderView {
    fn from(order: &OrderState) -> Self {
        OrderView {
            order_id: order.order_id,
            user_id: order.user_id,
            account_id: order.account_id,
            symbol: order.symbol,
            side: order.side,
            order_type: order.order_type,
            price: order.price,
            quantity: order.quantity,
            remaining: order.remaining,
            executed_qty: order.executed_qty,
            avg_price: order.avg_price(),
            status: order.status,
            client_order_id: order.client_order_id.clone(),
            note: order.note.clone(),
            reject_reason: order.reject_reason,
            cancel_reason: order.cancel_reason,
            fee: order.fees_paid,
            realized_pnl: order.realized_pnl,
            created_at: order.created_at,
            updated_at: order.updated_at,
            version: order.version,
        }
    }
}

/// Where an order sorts in its user's lists: by creation time, then id.
fn key_of(order: &OrderState) -> OrderKey {
    (order.created_at, order.order_id)
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

    fn matches(&self, order: &OrderState) -> bool {
        self.symbol.is_none_or(|symbol| order.symbol == symbol)
            && self.status.is_none_or(|status| order.status == status)
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
    /// The Order aggregate's own fold of each order: the rules are written once.
    orders: BTreeMap<OrderId, OrderState>,
    users: BTreeMap<UserId, UserOrders>,
}

impl OrdersProjection {
    /// Folds one event; events of other aggregates, and events of orders never placed, are
    /// ignored.
    pub fn apply(&mut self, envelope: &EventEnvelope) {
        if let Some(order) = OrderState::create(envelope) {
            self.insert(order);
            return;
        }
        let Some(order_id) = order_id_of(&envelope.event) else { return };
        let Some(order) = self.orders.get_mut(&order_id) else { return };
        order.apply(envelope);
        if !order.is_open() {
            let (user_id, key) = (order.user_id, key_of(order));
            if let Some(user) = self.users.get_mut(&user_id) {
                user.open.remove(&key);
            }
        }
    }

    fn insert(&mut self, order: OrderState) {
        debug_assert!(!self.orders.contains_key(&order.order_id), "an order stream starts once");
        let user = self.users.entry(order.user_id).or_default();
        user.all.insert(key_of(&order));
        if order.is_open() {
            user.open.insert(key_of(&order));
        }
        self.orders.insert(order.order_id, order);
    }

    fn order(&self, key: &OrderKey) -> Option<&OrderState> {
        self.orders.get(&key.1)
    }

    /// Every open order (ACTIVE or PARTIALLY_FILLED), in id order: the book, order by order.
    pub fn open(&self) -> impl Iterator<Item = &OrderState> {
        self.orders.values().filter(|order| order.is_open())
    }

    /// An order's own fold, if it was placed or rejected in the log so far.
    pub fn state(&self, order_id: OrderId) -> Option<&OrderState> {
        self.orders.get(&order_id)
    }

    /// An order, if it was placed or rejected in the log so far.
    pub fn get(&self, order_id: OrderId) -> Option<OrderView> {
        self.orders.get(&order_id).map(OrderView::from)
    }

    /// The user's ACTIVE and PARTIALLY_FILLED orders, newest first (createdAt, then order id,
    /// descending).
    pub fn active_for_user(&self, user_id: UserId) -> Vec<OrderView> {
        let open = self.users.get(&user_id).into_iter().flat_map(|user| user.open.iter().rev());
        open.filter_map(|key| self.order(key)).map(OrderView::from).collect()
    }

    /// One page of the user's orders that match `query`, newest first (createdAt, then order
    /// id, descending). `total` counts every match, not just this page.
    pub fn history(&self, user_id: UserId, query: &HistoryQuery) -> Page<OrderView> {
        let (page, limit) = query.page_and_limit();
        let skip = u64::from(page - 1) * u64::from(limit);
        let mut result = Page { data: Vec::new(), total: 0, page, limit, total_pages: 0 };
        let (Some(user), Some(range)) = (self.users.get(&user_id), query.key_range()) else { return result };
        let matching =
            user.all.range(range).rev().filter_map(|key| self.order(key)).filter(|order| query.matches(order));
        for order in matching {
            if result.total >= skip && result.data.len() < limit as usize {
                result.data.push(OrderView::from(order));
            }
            result.total += 1;
        }
        result.total_pages = u32::try_from(result.total.div_ceil(u64::from(limit))).unwrap_or(u32::MAX);
        result
    }
}
