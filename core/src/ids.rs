//! Identifiers. Every id the core creates is derived deterministically from a kind tag and a
//! counter of the engine (never random), so the same commands always give the same ids.
//! Ids are RFC 9562 version-8 UUIDs: `tttttttt-hhhh-8000-8000-llllllllllll` where `t` is the
//! kind tag, `h` the high 16 bits and `l` the low 48 bits of the counter.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

fn derive(tag: [u8; 4], counter: u64) -> Uuid {
    let c = counter.to_be_bytes();
    let bytes = [tag[0], tag[1], tag[2], tag[3], c[0], c[1], 0, 0, 0, 0, c[2], c[3], c[4], c[5], c[6], c[7]];
    Uuid::new_v8(bytes)
}

fn counter_of(tag: [u8; 4], id: &Uuid) -> Option<u64> {
    let b = id.as_bytes();
    if b[..4] != tag || b[6..10] != [0x80, 0, 0x80, 0] {
        return None;
    }
    Some(u64::from_be_bytes([b[4], b[5], b[10], b[11], b[12], b[13], b[14], b[15]]))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $tag:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The id derived from this kind's counter value `n` (deterministic).
            pub fn derive(n: u64) -> Self {
                Self(derive(*$tag, n))
            }

            /// The counter value this id was derived from, if it is a derived id of this kind.
            pub fn counter(&self) -> Option<u64> {
                counter_of(*$tag, &self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
            }
        }
    };
}

id_type!(
    /// An event; derived from its global position.
    EventId, b"evnt");
id_type!(
    /// An order; derived from the engine's order counter.
    OrderId, b"ordr");
id_type!(
    /// A trading account; derived from the engine's account counter.
    AccountId, b"acct");
id_type!(
    /// A position (one per account and symbol, for the account's whole life).
    PositionId, b"posn");
id_type!(
    /// A trade (one fill between a taker and a maker order).
    TradeId, b"trad");
id_type!(
    /// A decided command (the `causationId` of its events); derived from the global position
    /// of its first event.
    CommandId, b"cmnd");
id_type!(
    /// A user; created by the host (authentication is not the core's business).
    UserId, b"user");

/// The system account that receives every fee and rounding residue.
pub const FEE_ACCOUNT: AccountId =
    AccountId(Uuid::from_bytes([b'a', b'c', b'c', b't', 0, 0, 0x80, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]));

/// The system account that takes over liquidated positions and covers deficits.
pub const INSURANCE_ACCOUNT: AccountId =
    AccountId(Uuid::from_bytes([b'a', b'c', b'c', b't', 0, 0, 0x80, 0, 0x80, 0, 0, 0, 0, 0, 0, 1]));

/// The user that owns the system accounts.
pub const SYSTEM_USER: UserId =
    UserId(Uuid::from_bytes([b'u', b's', b'e', b'r', 0, 0, 0x80, 0, 0x80, 0, 0, 0, 0, 0, 0, 0]));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_deterministic_and_distinct() {
        assert_eq!(OrderId::derive(7), OrderId::derive(7));
        assert_ne!(OrderId::derive(7), OrderId::derive(8));
        assert_ne!(OrderId::derive(7).0, TradeId::derive(7).0);
        assert_eq!(AccountId::derive(0), FEE_ACCOUNT);
        assert_eq!(AccountId::derive(1), INSURANCE_ACCOUNT);
        assert_eq!(UserId::derive(0), SYSTEM_USER);
        assert_eq!(OrderId::derive(1).0.get_version_num(), 8);
        assert_eq!(OrderId::derive(123_456_789).counter(), Some(123_456_789));
        assert_eq!(OrderId::derive(u64::MAX).counter(), Some(u64::MAX));
        assert_eq!(OrderId(TradeId::derive(5).0).counter(), None, "another kind's id");
        let high = OrderId::derive(u64::MAX).to_string();
        assert_eq!(high, "6f726472-ffff-8000-8000-ffffffffffff");
    }
}
