//! The `candles` read model (klines): each market's trades in open–high–low–close–volume
//! buckets of fixed length. A bucket's candle is folded from the trades of the core's trade
//! tape (the `trades` read model's fold), incrementally: the projector keeps the newest candle
//! of each market and interval and rewrites its row when a trade lands in it.

use super::{docs, ReadError, Rows, TableDef, Tables, DOC, INT, SMALL};
use crate::db::{Db, Value};
use crate::http::wire;
use perpetua_core::projection::ReadModels;
use perpetua_core::symbol::Symbol;
use perpetua_core::time::Timestamp;
use perpetua_core::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A candle's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub enum Interval {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "4h")]
    FourHours,
    #[serde(rename = "1d")]
    OneDay,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 6] = [
        Interval::OneMinute,
        Interval::FiveMinutes,
        Interval::FifteenMinutes,
        Interval::OneHour,
        Interval::FourHours,
        Interval::OneDay,
    ];

    /// Its length in milliseconds.
    pub fn millis(self) -> i64 {
        const MINUTE: i64 = 60_000;
        match self {
            Interval::OneMinute => MINUTE,
            Interval::FiveMinutes => 5 * MINUTE,
            Interval::FifteenMinutes => 15 * MINUTE,
            Interval::OneHour => 60 * MINUTE,
            Interval::FourHours => 240 * MINUTE,
            Interval::OneDay => 1_440 * MINUTE,
        }
    }

    /// The wire spelling (`1m`, `1h`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::OneMinute => "1m",
            Interval::FiveMinutes => "5m",
            Interval::FifteenMinutes => "15m",
            Interval::OneHour => "1h",
            Interval::FourHours => "4h",
            Interval::OneDay => "1d",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == text)
    }

    /// The start of the bucket holding `millis` (Unix milliseconds, UTC).
    pub fn open_time(self, millis: i64) -> i64 {
        millis - millis.rem_euclid(self.millis())
    }
}

/// One candle: the trades of a market in `[openTime, closeTime)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candle {
    #[schema(value_type = String, pattern = "^[A-Z0-9]{1,15}$", example = "BTCUSDT")]
    pub symbol: Symbol,
    pub interval: Interval,
    /// The bucket's start, Unix milliseconds (UTC).
    pub open_time: i64,
    /// The bucket's end (exclusive), Unix milliseconds.
    pub close_time: i64,
    /// The first trade's price.
    pub open: wire::Dec,
    pub high: wire::Dec,
    pub low: wire::Dec,
    /// The last trade's price.
    pub close: wire::Dec,
    /// Σ quantity (base asset).
    pub volume: wire::Dec,
    /// Σ quantity × price (USDT).
    pub quote_volume: wire::Dec,
    /// Trades in the bucket.
    pub trades: u64,
    /// The log position of its last trade.
    pub last_position: u64,
}

impl Candle {
    fn new(symbol: Symbol, interval: Interval, open_time: i64, price: Decimal) -> Candle {
        Candle {
            symbol,
            interval,
            open_time,
            close_time: open_time + interval.millis(),
            open: wire::Dec(price),
            high: wire::Dec(price),
            low: wire::Dec(price),
            close: wire::Dec(price),
            volume: wire::Dec(Decimal::ZERO),
            quote_volume: wire::Dec(Decimal::ZERO),
            trades: 0,
            last_position: 0,
        }
    }

    fn add(&mut self, trade: &perpetua_core::projection::Trade) {
        self.high = self.high.max(wire::Dec(trade.price));
        self.low = self.low.min(wire::Dec(trade.price));
        self.close = wire::Dec(trade.price);
        self.volume = wire::Dec(self.volume.0 + trade.quantity);
        self.quote_volume = wire::Dec(self.quote_volume.0 + trade.quantity * trade.price);
        self.trades += 1;
        self.last_position = trade.position;
    }

    /// The row's key: `BTCUSDT:1m:1767225600000`.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.symbol, self.interval.as_str(), self.open_time)
    }
}

/// The newest candle of each market and interval, as far as the fold has gone.
#[derive(Debug, Default)]
pub struct Candles {
    newest: BTreeMap<(Symbol, Interval), Candle>,
}

impl Candles {
    /// Folds the trades of `symbol`'s tape from index `from` on (those a page added) and
    /// returns the candles they changed, each once, as they now are.
    pub fn fold(&mut self, models: &ReadModels, symbol: Symbol, from: usize) -> Vec<Candle> {
        let tape = models.trades().tape(symbol);
        let mut changed: BTreeMap<(Interval, i64), Candle> = BTreeMap::new();
        for (index, trade) in tape.iter().enumerate().skip(from) {
            let millis = trade.timestamp.millis();
            for interval in Interval::ALL {
                let open_time = interval.open_time(millis);
                let newest = self.newest.get(&(symbol, interval)).filter(|c| c.open_time == open_time).cloned();
                let mut candle = match newest {
                    Some(candle) => candle,
                    // A bucket not yet held (the first trade in it since the projector started,
                    // or one out of time order): folded from the tape's earlier trades in it.
                    None => Candle::from_tape(&tape[..index], symbol, interval, open_time, trade.price),
                };
                candle.add(trade);
                let is_newest = self.newest.get(&(symbol, interval)).is_none_or(|c| c.open_time <= open_time);
                if is_newest {
                    self.newest.insert((symbol, interval), candle.clone());
                }
                changed.insert((interval, open_time), candle);
            }
        }
        changed.into_values().collect()
    }
}

impl Candle {
    /// The candle of the bucket at `open_time` from the trades of `earlier` in it (an empty
    /// one opening at `price` when there are none).
    fn from_tape(
        earlier: &[perpetua_core::projection::Trade],
        symbol: Symbol,
        interval: Interval,
        open_time: i64,
        price: Decimal,
    ) -> Candle {
        let close_time = open_time + interval.millis();
        let in_bucket = |t: &&perpetua_core::projection::Trade| {
            let millis = t.timestamp.millis();
            (open_time..close_time).contains(&millis)
        };
        // Trades are in log order and their times do not go back, so the bucket's trades are
        // at the end; stop at the first one before it.
        let start = earlier.iter().rposition(|t| t.timestamp.millis() < open_time).map_or(0, |i| i + 1);
        let mut trades = earlier[start..].iter().filter(in_bucket).peekable();
        let first = trades.peek().map_or(price, |t| t.price);
        let mut candle = Candle::new(symbol, interval, open_time, first);
        trades.for_each(|t| candle.add(t));
        candle
    }
}

/// Its table.
pub const TABLES: &[TableDef] = &[TableDef {
    read_model: "candles",
    name: "candles",
    key: "candle_id",
    columns: &[("candle_id", SMALL), ("symbol", SMALL), ("span", SMALL), ("open_time", INT), ("doc", DOC)],
    indexes: &["symbol, span, open_time"],
}];

/// The rows of the candles the trades each market's tape gained from its index in `from` on
/// changed, folded into `candles`.
pub fn rows(candles: &mut Candles, models: &ReadModels, from: &BTreeMap<Symbol, usize>, rows: &mut Rows) {
    for (symbol, from) in from {
        for candle in candles.fold(models, *symbol, *from) {
            let doc = serde_json::to_string(&candle).expect("candles serialize");
            rows.put.entry("candles").or_default().push(vec![
                candle.key().into(),
                symbol.to_string().into(),
                candle.interval.as_str().into(),
                candle.open_time.into(),
                doc.into(),
            ]);
        }
    }
}

/// A market's candles of one interval, oldest first: from the one holding `start` on when
/// given, else the latest `limit`; none opening after `end`.
pub async fn list(
    db: &Db,
    tables: &Tables,
    symbol: Symbol,
    interval: Interval,
    (start, end): (Option<Timestamp>, Option<Timestamp>),
    limit: u32,
) -> Result<Vec<Candle>, ReadError> {
    let mut filter = "symbol = ? AND span = ?".to_owned();
    let mut values: Vec<Value> = vec![symbol.to_string().into(), interval.as_str().into()];
    if let Some(start) = start {
        filter.push_str(" AND open_time >= ?");
        values.push(interval.open_time(start.millis()).into());
    }
    if let Some(end) = end {
        filter.push_str(" AND open_time <= ?");
        values.push(end.millis().into());
    }
    let order = if start.is_some() { "ASC" } else { "DESC" };
    let table = tables.name("candles", "candles");
    let sql = format!("SELECT doc FROM {table} WHERE {filter} ORDER BY open_time {order} LIMIT {limit}");
    let mut candles: Vec<Candle> = docs(&db.fetch(&sql, &values).await?, 0, &table)?;
    if start.is_none() {
        candles.reverse();
    }
    Ok(candles)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folded incrementally page by page, the candles equal those folded from the whole tape
    /// at once, and each candle's figures are its trades' (first, max, min, last, sums).
    #[test]
    fn incremental_candles_equal_the_tape_folded_at_once() {
        let mut setup = perpetua_core::workload::Setup::new(6, 1_000, 3);
        setup.mixed_workload(800, 5);
        let mut models = ReadModels::new();
        let mut candles = Candles::default();
        let mut rows: BTreeMap<String, Candle> = BTreeMap::new();
        let symbol: Symbol = "BTCUSDT".parse().unwrap();
        for page in setup.log.chunks(9) {
            let from = models.trades().tape(symbol).len();
            page.iter().for_each(|e| models.apply(e));
            for candle in candles.fold(&models, symbol, from) {
                rows.insert(candle.key(), candle);
            }
        }
        let tape = models.trades().tape(symbol);
        assert!(tape.len() > 100, "{} trades", tape.len());
        let mut expected: BTreeMap<String, Candle> = BTreeMap::new();
        for trade in tape {
            for interval in Interval::ALL {
                let open_time = interval.open_time(trade.timestamp.millis());
                let candle = Candle::new(symbol, interval, open_time, trade.price);
                let key = candle.key();
                expected.entry(key).or_insert(candle).add(trade);
            }
        }
        assert_eq!(rows, expected);
        let minute = rows.values().find(|c| c.interval == Interval::OneMinute && c.trades > 1).expect("a busy minute");
        let trades: Vec<_> =
            tape.iter().filter(|t| (minute.open_time..minute.close_time).contains(&t.timestamp.millis())).collect();
        assert_eq!(minute.open.0, trades[0].price);
        assert_eq!(minute.close.0, trades[trades.len() - 1].price);
        assert_eq!(minute.high.0, trades.iter().map(|t| t.price).max().unwrap());
        assert_eq!(minute.volume.0, trades.iter().map(|t| t.quantity).sum::<Decimal>());
    }
}
