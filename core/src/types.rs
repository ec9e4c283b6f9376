//! Small enumerations shared by commands, events and read models. Their JSON spellings are
//! the wire contract (SCREAMING_SNAKE_CASE, as in the seed).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
Side {
    /// Buy: opens or increases a long, or reduces a short.
    Buy => "BUY",
    /// Sell: opens or increases a short, or reduces a long.
    Sell => "SELL",
});
wire_enum!(
/// Order type.
OrderType {
    /// Trades at its limit price or better; a GTC remainder rests in the book.
    Limit => "LIMIT",
    /// Trades at any price the book offers; never rests, a remainder expires.
    Market => "MARKET",
});
wire_enum!(
/// How long an order stays in the book.
TimeInForce {
    /// Good till cancelled: the remainder rests in the book.
    Gtc => "GTC",
    /// Immediate or cancel: fills what it can on arrival, the remainder expires.
    Ioc => "IOC",
    /// Fill or kill: fills completely on arrival, or is rejected with no fills.
    Fok => "FOK",
});
wire_enum!(
/// Margin mode of a position.
MarginMode {
    /// Backed by the account's wallet (balance less isolated margins); its cross positions liquidate together.
    Cross => "CROSS",
    /// Backed only by the position's own margin; only that margin is at stake.
    Isolated => "ISOLATED",
});
wire_enum!(
/// Self-trade prevention: which side is cancelled when an order would match its own account.
StpMode {
    /// Cancel the incoming order's remainder (the default).
    ExpireTaker => "EXPIRE_TAKER",
    /// Cancel the resting order and keep matching.
    ExpireMaker => "EXPIRE_MAKER",
    /// Cancel both orders.
    ExpireBoth => "EXPIRE_BOTH",
});
wire_enum!(
/// Life-cycle status of an order.
OrderStatus {
    /// Accepted and open, nothing filled yet.
    Active => "ACTIVE",
    /// Partly filled and still open.
    PartiallyFilled => "PARTIALLY_FILLED",
    /// Completely filled.
    Filled => "FILLED",
    /// Cancelled (by its owner, self-trade prevention, a failed fill guard or a liquidation).
    Cancelled => "CANCELLED",
    /// Ended with a remainder (IOC or MARKET after matching, or reduce-only with nothing to reduce).
    Expired => "EXPIRED",
    /// Refused by a business rule at placement.
    Rejected => "REJECTED",
});
wire_enum!(
/// Why an order was cancelled.
CancelReason {
    /// Its owner cancelled it.
    UserRequested => "USER_REQUESTED",
    /// A fill would have made its account's balance negative, or its available (more) negative.
    InsufficientBalance => "INSUFFICIENT_BALANCE",
    /// Self-trade prevention: it would have matched an order of its own account.
    SelfTrade => "SELF_TRADE",
    /// Its account was liquidated.
    Liquidation => "LIQUIDATION",
});
wire_enum!(
/// Business rejection of an order, in precedence order (the first that applies wins).
RejectCode {
    /// The price is not a multiple of the market's tick size.
    InvalidPriceTick => "INVALID_PRICE_TICK",
    /// The quantity is not a multiple of the step size, or is below the minimum quantity.
    InvalidQuantityStep => "INVALID_QUANTITY_STEP",
    /// `price × quantity` is below the market's minimum notional.
    BelowMinNotional => "BELOW_MIN_NOTIONAL",
    /// The leverage is above the tier maximum for the notional after the order.
    LeverageTooHigh => "LEVERAGE_TOO_HIGH",
    /// The account's open position in this symbol uses the other margin mode.
    MarginModeMismatch => "MARGIN_MODE_MISMATCH",
    /// Reduce-only with no opposite position, or a LIMIT larger than the position.
    ReduceOnlyRejected => "REDUCE_ONLY_REJECTED",
    /// Post-only, but it would match on arrival.
    PostOnlyWouldTake => "POST_ONLY_WOULD_TAKE",
    /// Fill-or-kill, but it cannot fill completely on arrival.
    FokNotFillable => "FOK_NOT_FILLABLE",
    /// The amount to lock exceeds the account's available balance.
    InsufficientBalance => "INSUFFICIENT_BALANCE",
});
wire_enum!(
/// Kind of account: a trader's, or one of the two system accounts.
AccountKind {
    /// A user's trading account.
    Trader => "TRADER",
    /// The system account that receives every fee and rounding residue.
    Fee => "FEE",
    /// The system account that takes over liquidated positions and covers deficits.
    Insurance => "INSURANCE",
});
wire_enum!(
/// What realized a PnL: a trade, or a liquidation at the mark price.
PnlSource {
    /// A fill that reduced or closed a position.
    Trade => "TRADE",
    /// A liquidation: the margin at stake lost, or the insurance account's takeover at the mark.
    Liquidation => "LIQUIDATION",
});
wire_enum!(
/// What the fee account received.
FeeSource {
    /// A trading fee charged on a fill.
    TradingFee => "TRADING_FEE",
    /// Funding paid beyond funding received in one settlement (rounding residue).
    FundingResidue => "FUNDING_RESIDUE",
});

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
