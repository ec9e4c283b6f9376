//! Read-only questions about an order.

use crate::order::OrderState;
use rust_decimal::Decimal;

impl OrderState {
    /// Size-weighted average fill price, or `None` before the first fill.
    pub fn avg_price(&self) -> Option<Decimal> {
        if self.executed_qty.is_zero() {
            None
        } else {
            Some((self.executed_value / self.executed_qty).round_dp(8).normalize())
        }
    }

    /// True while the order can still trade or be cancelled.
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}
