//! Errors of commands that are refused without an event (as opposed to order rejections,
//! which are recorded as `OrderRejected`). Codes are stable and machine-readable.

use std::fmt;

macro_rules! error_codes {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// Stable code of a refused command.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant),+ }

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
    InvalidArgument => "INVALID_ARGUMENT",
    NotInitialized => "NOT_INITIALIZED",
    AlreadyInitialized => "ALREADY_INITIALIZED",
    MarketNotFound => "MARKET_NOT_FOUND",
    AccountNotFound => "ACCOUNT_NOT_FOUND",
    AccountNotTradable => "ACCOUNT_NOT_TRADABLE",
    OrderNotFound => "ORDER_NOT_FOUND",
    NotOrderOwner => "NOT_ORDER_OWNER",
    OrderNotCancellable => "ORDER_NOT_CANCELLABLE",
    InsufficientBalance => "INSUFFICIENT_BALANCE",
    NoOpenPosition => "NO_OPEN_POSITION",
    NotIsolated => "NOT_ISOLATED",
    LeverageTooHigh => "LEVERAGE_TOO_HIGH",
    MarginRemovalTooLarge => "MARGIN_REMOVAL_TOO_LARGE",
    MarkPriceNotSet => "MARK_PRICE_NOT_SET",
    InvalidCorrection => "INVALID_CORRECTION",
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
    pub code: ErrorCode,
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
