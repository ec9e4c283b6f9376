//! Errors of commands that are refused without an event (as opposed to order rejections,
//! which are recorded as `OrderRejected`). Codes are stable and machine-readable.

use std::fmt;

macro_rules! error_codes {
    ($($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)?) => {
        /// Stable code of a refused command.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($(#[$vdoc])* $variant),+ }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text),+ }
            }
        }
    };
}

error_codes! {
    /// Malformed input: a value out of range, a LIMIT without price (or a MARKET with one), a bad genesis.
    InvalidArgument => "INVALID_ARGUMENT",
    /// The exchange has no markets yet: run `Genesis` first.
    NotInitialized => "NOT_INITIALIZED",
    /// `Genesis` has already run.
    AlreadyInitialized => "ALREADY_INITIALIZED",
    /// No market with this symbol.
    MarketNotFound => "MARKET_NOT_FOUND",
    /// No account with this id.
    AccountNotFound => "ACCOUNT_NOT_FOUND",
    /// A system (fee or insurance) account cannot trade, withdraw or manage positions.
    AccountNotTradable => "ACCOUNT_NOT_TRADABLE",
    /// No order with this id.
    OrderNotFound => "ORDER_NOT_FOUND",
    /// The order belongs to another account.
    NotOrderOwner => "NOT_ORDER_OWNER",
    /// The order is no longer ACTIVE or PARTIALLY_FILLED.
    OrderNotCancellable => "ORDER_NOT_CANCELLABLE",
    /// A withdrawal, a margin addition or the margin rise of a leverage change exceeds available.
    InsufficientBalance => "INSUFFICIENT_BALANCE",
    /// The account has no open position in this symbol.
    NoOpenPosition => "NO_OPEN_POSITION",
    /// Margin can be added or removed only on an ISOLATED position.
    NotIsolated => "NOT_ISOLATED",
    /// The leverage is above the tier maximum, or leaves an isolated position at or below maintenance.
    LeverageTooHigh => "LEVERAGE_TOO_HIGH",
    /// Removing this margin would leave less than `size × mark / leverage`, or equity at or below maintenance.
    MarginRemovalTooLarge => "MARGIN_REMOVAL_TOO_LARGE",
    /// The market has no mark price yet (funding needs one).
    MarkPriceNotSet => "MARK_PRICE_NOT_SET",
    /// The correction names a version the order lacks, has no field or reason, or a non-correctable field.
    InvalidCorrection => "INVALID_CORRECTION",
    /// An amount is not positive, exceeds 1e15, or has more than 8 decimals.
    AmountOutOfRange => "AMOUNT_OUT_OF_RANGE",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command refused with no event written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// Human-readable details.
    pub message: String,
}

impl CommandError {
    /// An error with a code and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}
