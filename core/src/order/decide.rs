//! Decisions on an order alone: the shape of a new order, whether it can be cancelled.
//! The rules that need the book and the account (rejections in precedence order, matching)
//! are in `engine::matching`, which sees the whole exchange.

use crate::command::PlaceOrder;
use crate::error::{CommandError, ErrorCode};
use crate::ids::AccountId;
use crate::num::price_or_qty_in_range;
use crate::order::OrderState;
use crate::types::OrderType;

/// Longest accepted `clientOrderId`.
pub const CLIENT_ORDER_ID_MAX_LEN: usize = 64;

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorCode::InvalidArgument, message)
}

/// Malformed input of a `PlaceOrder`, refused before any rule (hosts refuse it too, with HTTP 400).
pub fn check_shape(order: &PlaceOrder) -> Result<(), CommandError> {
    if !price_or_qty_in_range(order.quantity) {
        return Err(invalid(format!("quantity {} must be positive and at most 1e9", order.quantity)));
    }
    match (order.order_type, order.price) {
        (OrderType::Limit, None) => return Err(invalid("a LIMIT order needs a price")),
        (OrderType::Market, Some(_)) => return Err(invalid("a MARKET order takes no price")),
        (_, Some(price)) if !price_or_qty_in_range(price) => {
            return Err(invalid(format!("price {price} must be positive and at most 1e9")))
        }
        _ => {}
    }
    if order.leverage == 0 {
        return Err(invalid("leverage must be at least 1"));
    }
    if order.client_order_id.as_ref().is_some_and(|id| id.is_empty() || id.len() > CLIENT_ORDER_ID_MAX_LEN) {
        return Err(invalid(format!("clientOrderId must be 1 to {CLIENT_ORDER_ID_MAX_LEN} bytes")));
    }
    Ok(())
}

/// Whether `account_id` may cancel `order` now.
pub fn check_cancel(order: &OrderState, account_id: AccountId) -> Result<(), CommandError> {
    if order.account_id != account_id {
        return Err(CommandError::new(ErrorCode::NotOrderOwner, "the order belongs to another account"));
    }
    if !order.is_open() {
        return Err(CommandError::new(
            ErrorCode::OrderNotCancellable,
            format!("an order in status {} cannot be cancelled", order.status),
        ));
    }
    Ok(())
}
