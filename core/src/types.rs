//! Small enumerations shared by commands, events and read models. Their JSON spellings are
//! the wire contract (SCREAMING_SNAKE_CASE, as in the seed).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Order side; a BUY opens or increases a long, a SELL a short.
    Side { Buy => "BUY", Sell => "SELL" });
wire_enum!(
    /// Order type.
    OrderType { Limit => "LIMIT", Market => "MARKET" });
wire_enum!(
    /// How long an order stays in the book.
    TimeInForce { Gtc => "GTC", Ioc => "IOC", Fok => "FOK" });
wire_enum!(
    /// Margin mode of a position.
    MarginMode { Cross => "CROSS", Isolated => "ISOLATED" });
wire_enum!(
    /// Self-trade prevention: which side is cancelled when an order would match its own account.
    StpMode { ExpireTaker => "EXPIRE_TAKER", ExpireMaker => "EXPIRE_MAKER", ExpireBoth => "EXPIRE_BOTH" });
wire_enum!(
/// Life-cycle status of an order.
OrderStatus {
    Active => "ACTIVE",
    PartiallyFilled => "PARTIALLY_FILLED",
    Filled => "FILLED",
    Cancelled => "CANCELLED",
    Expired => "EXPIRED",
    Rejected => "REJECTED",
});
wire_enum!(
/// Why an order was cancelled.
CancelReason {
    UserRequested => "USER_REQUESTED",
    InsufficientBalance => "INSUFFICIENT_BALANCE",
    SelfTrade => "SELF_TRADE",
    Liquidation => "LIQUIDATION",
});
wire_enum!(
/// Business rejection of an order, in precedence order (the first that applies wins).
RejectCode {
    InvalidPriceTick => "INVALID_PRICE_TICK",
    InvalidQuantityStep => "INVALID_QUANTITY_STEP",
    BelowMinNotional => "BELOW_MIN_NOTIONAL",
    LeverageTooHigh => "LEVERAGE_TOO_HIGH",
    MarginModeMismatch => "MARGIN_MODE_MISMATCH",
    ReduceOnlyRejected => "REDUCE_ONLY_REJECTED",
    PostOnlyWouldTake => "POST_ONLY_WOULD_TAKE",
    FokNotFillable => "FOK_NOT_FILLABLE",
    InsufficientBalance => "INSUFFICIENT_BALANCE",
});
wire_enum!(
    /// Kind of account: a trader's, or one of the two system accounts.
    AccountKind { Trader => "TRADER", Fee => "FEE", Insurance => "INSURANCE" });
wire_enum!(
    /// What realized a PnL: a trade, or a liquidation at the mark price.
    PnlSource { Trade => "TRADE", Liquidation => "LIQUIDATION" });
wire_enum!(
    /// What the fee account received.
    FeeSource { TradingFee => "TRADING_FEE", FundingResidue => "FUNDING_RESIDUE" });

impl Side {
    /// `+1` for BUY/long, `−1` for SELL/short.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }

    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

impl OrderStatus {
    /// True while the order can still trade or be cancelled.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::Active | OrderStatus::PartiallyFilled)
    }
}
