//! Public market data as it changes: the projector folds each page of events into the read
//! models, and then tells the market streams what changed in each market — the book's price
//! levels that moved (with their new totals, not deltas), the trades, the mark price and
//! funding — in one [`MarketBatch`] per page, after the page's rows are written.
//!
//! A book level is sent with its absolute quantity and order count (0 when it is gone), so a
//! client that applies a diff it already has in its snapshot still ends at the right book.
//! Each market's diffs are chained: `prevSequence` is the `sequence` of the market's previous
//! diff, so a client that misses one sees the gap and takes a new snapshot.

use crate::http::wire;
use perpetua_core::ids::OrderId;
use perpetua_core::order::OrderState;
use perpetua_core::projection::ReadModels;
use perpetua_core::symbol::Symbol;
use perpetua_core::types::Side;
use perpetua_core::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use utoipa::ToSchema;

/// What a page of events changed in the markets, encoded once for every stream.
#[derive(Debug, Default)]
pub struct MarketBatch {
    /// The page's last position.
    pub position: u64,
    /// Per market, its messages (server-sent-event frames) in order.
    pub frames: BTreeMap<Symbol, Vec<axum::body::Bytes>>,
}

/// The book's price levels that moved in one page, each with its new totals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DepthDiff {
    #[schema(value_type = String, example = "BTCUSDT")]
    pub symbol: Symbol,
    /// The log position after which the book is as this diff leaves it.
    pub sequence: u64,
    /// The `sequence` of this market's previous diff (0 for its first): a client whose last
    /// diff (or snapshot) is older than this missed one and must take a new snapshot.
    pub prev_sequence: u64,
    /// Bid levels that moved: their new totals (`quantity` 0: the level is gone).
    pub bids: Vec<wire::BookLevel>,
    /// Ask levels that moved.
    pub asks: Vec<wire::BookLevel>,
}

/// The book as the read models have it, level by level, with the resting orders behind each
/// level (to know what an order's change does to its level).
#[derive(Debug, Default)]
pub struct Levels {
    orders: HashMap<OrderId, (Symbol, Side, Decimal, Decimal)>,
    levels: BTreeMap<(Symbol, Side, Decimal), (Decimal, u32)>,
    last_sequence: BTreeMap<Symbol, u64>,
}

/// What a page touched, for the market streams.
#[derive(Debug, Default)]
pub struct Touched {
    /// Orders with events in the page.
    pub orders: BTreeSet<OrderId>,
    /// Per market, how many trades its tape had before the page.
    pub trades_from: BTreeMap<Symbol, usize>,
    /// Markets with events in the page (mark price, funding).
    pub markets: BTreeSet<Symbol>,
}

fn resting(order: &OrderState) -> Option<(Symbol, Side, Decimal, Decimal)> {
    // Normalized, as in a snapshot: one key and one spelling per price.
    let price = order.price.filter(|_| order.is_open())?.normalize();
    Some((order.symbol, order.side, price, order.remaining))
}

impl Levels {
    /// The book of `models`' open orders.
    pub fn of(models: &ReadModels) -> Levels {
        let mut levels = Levels::default();
        for order in models.orders().open() {
            if let Some(entry) = resting(order) {
                levels.add(order.order_id, entry);
            }
        }
        levels
    }

    fn add(&mut self, id: OrderId, entry: (Symbol, Side, Decimal, Decimal)) {
        let (symbol, side, price, remaining) = entry;
        let level = self.levels.entry((symbol, side, price)).or_default();
        level.0 += remaining;
        level.1 += 1;
        self.orders.insert(id, entry);
    }

    fn remove(&mut self, id: OrderId) -> Option<(Symbol, Side, Decimal)> {
        let (symbol, side, price, remaining) = self.orders.remove(&id)?;
        let key = (symbol, side, price);
        if let Some(level) = self.levels.get_mut(&key) {
            level.0 -= remaining;
            level.1 -= 1;
            if level.1 == 0 {
                self.levels.remove(&key);
            }
        }
        Some(key)
    }

    /// Folds what `touched` changed (the models are already past the page ending at
    /// `position`) and encodes the page's market messages.
    pub fn page(&mut self, models: &ReadModels, touched: &Touched, position: u64) -> Arc<MarketBatch> {
        let mut moved: BTreeSet<(Symbol, Side, Decimal)> = BTreeSet::new();
        for id in &touched.orders {
            moved.extend(self.remove(*id));
            let Some(order) = models.orders().state(*id) else { continue };
            if let Some(entry) = resting(order) {
                moved.insert((entry.0, entry.1, entry.2));
                self.add(*id, entry);
            }
        }
        let mut batch = MarketBatch { position, frames: BTreeMap::new() };
        let mut diffs: BTreeMap<Symbol, DepthDiff> = BTreeMap::new();
        for (symbol, side, price) in moved {
            let (quantity, orders) = self.levels.get(&(symbol, side, price)).copied().unwrap_or_default();
            let diff = diffs.entry(symbol).or_insert_with(|| DepthDiff {
                symbol,
                sequence: position,
                prev_sequence: self.last_sequence.get(&symbol).copied().unwrap_or(0),
                bids: Vec::new(),
                asks: Vec::new(),
            });
            let level = wire::BookLevel { price: wire::Dec(price), quantity: wire::Dec(quantity.normalize()), orders };
            match side {
                Side::Buy => diff.bids.push(level),
                Side::Sell => diff.asks.push(level),
            }
        }
        // In log order: the page's trades (each at its position), then the book and the
        // market as the page leaves them (at its last position).
        for (symbol, from) in &touched.trades_from {
            for trade in models.trades().tape(*symbol).iter().skip(*from) {
                batch.frames.entry(*symbol).or_default().push(frame(
                    "trade",
                    trade.position,
                    &wire::Trade::from(trade),
                ));
            }
        }
        for (symbol, mut diff) in diffs {
            // Best first, as in a snapshot.
            diff.bids.reverse();
            self.last_sequence.insert(symbol, position);
            batch.frames.entry(symbol).or_default().push(frame("depth", position, &diff));
        }
        for market in models.positions().markets().filter(|m| touched.markets.contains(&m.spec.symbol)) {
            let symbol = market.spec.symbol;
            batch.frames.entry(symbol).or_default().push(frame("market", position, &wire::Market::from(market)));
        }
        Arc::new(batch)
    }

    /// The sequence of `symbol`'s last diff (0 before the first).
    pub fn last_sequence(&self, symbol: Symbol) -> u64 {
        self.last_sequence.get(&symbol).copied().unwrap_or(0)
    }
}

/// One server-sent-events frame: `event: {name}`, `id` the log position, the JSON on one line.
pub fn frame(name: &str, position: u64, data: &impl Serialize) -> axum::body::Bytes {
    let json = serde_json::to_string(data).expect("wire types serialize");
    format!("id: {position}\nevent: {name}\ndata: {json}\n\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folding the diffs of every page into the first book gives the book of the last one,
    /// level for level, and each market's diffs chain without a gap.
    #[test]
    fn diffs_keep_a_copy_of_the_book_equal_to_the_book() {
        let mut setup = perpetua_core::workload::Setup::new(6, 1_000, 3);
        let start = setup.log.len();
        setup.mixed_workload(600, 5);
        let mut models = ReadModels::new();
        setup.log[..start].iter().for_each(|e| models.apply(e));
        let mut levels = Levels::of(&models);
        let mut copy: BTreeMap<(String, String), (Decimal, u32)> = book_of(&levels);
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        let mut diffs = 0;
        for page in setup.log[start..].chunks(7) {
            let mut touched = Touched::default();
            for envelope in page {
                if let perpetua_core::event::AggregateId::Uuid(id) = envelope.stream.aggregate_id {
                    if envelope.stream.aggregate_type == perpetua_core::event::AggregateType::Order {
                        touched.orders.insert(OrderId(id));
                    }
                }
                models.apply(envelope);
            }
            let batch = levels.page(&models, &touched, models.last_position());
            for frames in batch.frames.values() {
                for frame in frames {
                    let text = std::str::from_utf8(frame).unwrap();
                    if !text.contains("event: depth\n") {
                        continue;
                    }
                    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                    let diff: serde_json::Value = serde_json::from_str(data).unwrap();
                    let symbol = diff["symbol"].as_str().unwrap().to_owned();
                    assert_eq!(diff["prevSequence"], last.get(&symbol).copied().unwrap_or(0), "no gap");
                    last.insert(symbol.clone(), diff["sequence"].as_u64().unwrap());
                    for (side, key) in [("BUY", "bids"), ("SELL", "asks")] {
                        for level in diff[key].as_array().unwrap() {
                            let price = level["price"].as_str().unwrap().to_owned();
                            let quantity: Decimal = level["quantity"].as_str().unwrap().parse().unwrap();
                            let entry = (symbol.clone(), format!("{side} {price}"));
                            if level["orders"] == 0 {
                                copy.remove(&entry);
                            } else {
                                copy.insert(entry, (quantity, level["orders"].as_u64().unwrap() as u32));
                            }
                        }
                    }
                    diffs += 1;
                }
            }
            assert_eq!(copy, book_of(&Levels::of(&models)), "after position {}", models.last_position());
        }
        assert!(diffs > 100, "{diffs} diffs");
    }

    fn book_of(levels: &Levels) -> BTreeMap<(String, String), (Decimal, u32)> {
        levels
            .levels
            .iter()
            .map(|((symbol, side, price), (quantity, orders))| {
                (
                    (
                        symbol.to_string(),
                        format!("{side} {}", serde_json::to_value(wire::Dec(*price)).unwrap().as_str().unwrap()),
                    ),
                    (*quantity, *orders),
                )
            })
            .collect()
    }
}
