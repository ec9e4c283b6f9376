//! Market state and its evolution.

use crate::aggregate::Aggregate;
use crate::event::{Event, EventEnvelope};
use crate::market::spec::MarketSpec;
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A market: its specification, last mark price and funding.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketState {
    /// The market's specification, as listed.
    pub spec: MarketSpec,
    /// Last mark price in USDT; `None` before the first `MarkPriceSet`.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub mark_price: Option<Decimal>,
    /// Rate of the last funding settlement; `None` before the first.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub last_funding_rate: Option<Decimal>,
    /// Number of funding settlements so far.
    pub fundings_settled: u64,
    /// Timestamp of `MarketListed`.
    pub created_at: Timestamp,
    /// Timestamp of the stream's last event.
    pub updated_at: Timestamp,
    /// Version of the market stream after its last event.
    pub version: u64,
}

impl Aggregate for MarketState {
    fn create(envelope: &EventEnvelope) -> Option<Self> {
        let Event::MarketListed(e) = &envelope.event else { return None };
        Some(MarketState {
            spec: e.spec.clone(),
            mark_price: None,
            last_funding_rate: None,
            fundings_settled: 0,
            created_at: envelope.timestamp,
            updated_at: envelope.timestamp,
            version: envelope.version,
        })
    }

    fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::MarkPriceSet(e) => self.mark_price = Some(e.mark_price),
            Event::FundingSettled(e) => {
                self.last_funding_rate = Some(e.rate);
                self.fundings_settled += 1;
            }
            other => debug_assert!(false, "{} is not a market event", other.event_type()),
        }
        self.version = envelope.version;
        self.updated_at = envelope.timestamp;
    }

    fn version(&self) -> u64 {
        self.version
    }
}
