//! Market symbols (`BTCUSDT`): short upper-case ASCII names, stored inline so that events and
//! book entries that carry them are `Copy` and allocation-free.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

const SYMBOL_CAP: usize = 15;

/// A market symbol: 1 to 15 characters from `A-Z` and `0-9`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(type = "string"))]
pub struct Symbol {
    len: u8,
    bytes: [u8; SYMBOL_CAP],
}

/// Error for a text that is not a valid symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSymbol(pub String);

impl fmt::Display for InvalidSymbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid symbol {:?}: 1-15 characters A-Z, 0-9", self.0)
    }
}

impl std::error::Error for InvalidSymbol {}

/// Hashes the 16 bytes (length and characters) as two words: engine maps keyed by
/// `(account, symbol)` are on the hot path.
impl std::hash::Hash for Symbol {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut words = [0u8; 16];
        words[0] = self.len;
        words[1..].copy_from_slice(&self.bytes);
        let (first, second) = words.split_at(8);
        state.write_u64(u64::from_le_bytes(first.try_into().expect("8 bytes")));
        state.write_u64(u64::from_le_bytes(second.try_into().expect("8 bytes")));
    }
}

impl Symbol {
    /// The symbol as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `from_str`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl FromStr for Symbol {
    type Err = InvalidSymbol;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = !text.is_empty()
            && text.len() <= SYMBOL_CAP
            && text.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !valid {
            return Err(InvalidSymbol(text.to_owned()));
        }
        let mut bytes = [0u8; SYMBOL_CAP];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(Symbol { len: text.len() as u8, bytes })
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::parse_str(deserializer, "a market symbol")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s: Symbol = "BTCUSDT".parse().unwrap();
        assert_eq!(s.as_str(), "BTCUSDT");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"BTCUSDT\"");
        for bad in ["", "btcusdt", "BTC-USDT", "ABCDEFGHIJKLMNOP"] {
            assert!(bad.parse::<Symbol>().is_err(), "{bad}");
        }
    }
}
