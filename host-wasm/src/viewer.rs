//! The audit viewer's questions, answered from a loaded log with the core's own folds: the
//! state of a stream at a version or a time, every state it went through, what changed
//! between two versions, the chain's verification, and series for charts. Plain Rust
//! returning JSON text, so the same code is tested natively and in wasm32; `lib.rs` wraps it
//! for JavaScript.

use perpetua_core::audit;
use perpetua_core::event::{parse_stored_events, AggregateId, AggregateType, EventEnvelope, StoredEvent, StreamId};
use perpetua_core::time::Timestamp;
use perpetua_core::timetravel::{self, AggregateState};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// A loaded log: the events as stored (for verification and display) and decoded (for folds),
/// indexed by stream.
pub struct Log {
    stored: Vec<StoredEvent>,
    events: Vec<EventEnvelope>,
    streams: HashMap<StreamId, Vec<usize>>,
}

/// One field that differs between two states: its JSON path and both values (`null` where
/// the field is absent).
#[derive(Debug, PartialEq, Serialize)]
pub struct Change {
    /// `/`-separated path into the state (`/state/balance`).
    pub path: String,
    /// The value at the older version.
    pub old: Value,
    /// The value at the newer version.
    pub new: Value,
}

/// A point of a chart series.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Global position of the event after which the value holds.
    pub position: u64,
    /// Its time (milliseconds since the epoch).
    pub timestamp: i64,
    /// The value, as a decimal string.
    pub value: String,
}

fn stream_of(aggregate_type: &str, aggregate_id: &str) -> Result<StreamId, String> {
    let aggregate_type =
        AggregateType::parse(aggregate_type).ok_or_else(|| format!("unknown aggregate type {aggregate_type:?}"))?;
    let aggregate_id =
        aggregate_id.parse::<AggregateId>().map_err(|e| format!("aggregate id {aggregate_id:?}: {e}"))?;
    Ok(StreamId { aggregate_type, aggregate_id })
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("viewer values serialize")
}

impl Log {
    /// Parses a JSON array or JSON Lines of stored events and decodes every one.
    pub fn parse(text: &str) -> Result<Log, String> {
        let stored = parse_stored_events(text).map_err(|e| format!("{e} ({})", e.code()))?;
        let events = stored
            .iter()
            .map(|e| e.decode().map_err(|err| format!("position {}: {err} ({})", e.position, err.code())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut streams: HashMap<StreamId, Vec<usize>> = HashMap::new();
        for (index, event) in events.iter().enumerate() {
            streams.entry(event.stream).or_default().push(index);
        }
        Ok(Log { stored, events, streams })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// True when the log has no event.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// The chain's verification (`{verified, firstBadPosition, fault, lastHash}`).
    pub fn verify(&self) -> String {
        json(&audit::verify_range(&self.stored))
    }

    fn stream_events(&self, stream: &StreamId) -> Vec<EventEnvelope> {
        self.streams.get(stream).into_iter().flatten().map(|&i| self.events[i].clone()).collect()
    }

    /// The stored events of a stream, in version order (JSON array).
    pub fn stream(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let stored: Vec<&StoredEvent> =
            self.streams.get(&stream).into_iter().flatten().map(|&i| &self.stored[i]).collect();
        Ok(json(&stored))
    }

    /// The state of a stream after its event of `version` (`null` before its first event).
    pub fn state_at_version(&self, aggregate_type: &str, aggregate_id: &str, version: u64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let events = self.stream_events(&stream);
        Ok(json(&timetravel::state_at_version(stream.aggregate_type, &events, version)))
    }

    /// The state of a stream as of a time (milliseconds since the epoch).
    pub fn state_at_time(&self, aggregate_type: &str, aggregate_id: &str, at: i64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let events = self.stream_events(&stream);
        Ok(json(&timetravel::state_at_time(stream.aggregate_type, &events, Timestamp(at))))
    }

    /// Every state the stream went through, one per event.
    pub fn states(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        Ok(json(&timetravel::states_of_stream(stream.aggregate_type, &self.stream_events(&stream))))
    }

    /// What changed in a stream's state from version `from` to version `to` (JSON array of
    /// `{path, old, new}`; version 0 is "before the stream existed").
    pub fn diff(&self, aggregate_type: &str, aggregate_id: &str, from: u64, to: u64) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let events = self.stream_events(&stream);
        let at = |version| -> Value {
            let state = timetravel::state_at_version(stream.aggregate_type, &events, version).filter(|_| version > 0);
            serde_json::to_value(state).expect("states serialize")
        };
        let mut changes = Vec::new();
        diff_values(String::new(), &at(from), &at(to), &mut changes);
        Ok(json(&changes))
    }

    /// An account's balance after each of its events.
    pub fn balance_series(&self, account_id: &str) -> Result<String, String> {
        self.series("Account", account_id, |state| match state {
            AggregateState::Account(account) => Some(account.balance.to_string()),
            _ => None,
        })
    }

    /// A position's size after each of its events.
    pub fn position_size_series(&self, position_id: &str) -> Result<String, String> {
        self.series("Position", position_id, |state| match state {
            AggregateState::Position(position) => Some(position.size.to_string()),
            _ => None,
        })
    }

    fn series(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        value: impl Fn(&AggregateState) -> Option<String>,
    ) -> Result<String, String> {
        let stream = stream_of(aggregate_type, aggregate_id)?;
        let events = self.stream_events(&stream);
        let states = timetravel::states_of_stream(stream.aggregate_type, &events);
        let points: Vec<Point> = events
            .iter()
            .zip(&states)
            .filter_map(|(event, state)| {
                Some(Point { position: event.position, timestamp: event.timestamp.millis(), value: value(state)? })
            })
            .collect();
        Ok(json(&points))
    }
}

/// Appends to `changes` every leaf where `old` and `new` differ, depth first, keys in order.
/// An absent side (`null`) against an object or array counts as an empty one, so a stream's
/// first state shows as each of its fields appearing.
fn diff_values(path: String, old: &Value, new: &Value, changes: &mut Vec<Change>) {
    let empty = |other: &Value| match other {
        Value::Object(_) => Value::Object(Default::default()),
        Value::Array(_) => Value::Array(Vec::new()),
        _ => Value::Null,
    };
    let (old, new) = match (old, new) {
        (Value::Null, b) => (&empty(b), new),
        (a, Value::Null) => (old, &empty(a)),
        _ => (old, new),
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
            keys.sort();
            for key in keys {
                let (x, y) = (a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null));
                diff_values(format!("{path}/{key}"), x, y, changes);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let (x, y) = (a.get(i).unwrap_or(&Value::Null), b.get(i).unwrap_or(&Value::Null));
                diff_values(format!("{path}/{i}"), x, y, changes);
            }
        }
        (a, b) if a != b => changes.push(Change { path, old: a.clone(), new: b.clone() }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Log {
        let (_, stored) = perpetua_core::demo::sealed_log();
        let jsonl: String = stored.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        Log::parse(&jsonl).unwrap()
    }

    #[test]
    fn diff_names_each_changed_leaf() {
        let old = serde_json::json!({"a": "1", "b": {"c": [1, 2]}, "gone": true});
        let new = serde_json::json!({"a": "2", "b": {"c": [1, 3, 4]}, "added": 5});
        let mut changes = Vec::new();
        diff_values(String::new(), &old, &new, &mut changes);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["/a", "/added", "/b/c/1", "/b/c/2", "/gone"]);
        assert_eq!(changes[0], Change { path: "/a".into(), old: "1".into(), new: "2".into() });
    }

    #[test]
    fn questions_about_the_demo_log() {
        let log = demo();
        assert!(log.verify().contains("\"firstBadPosition\":null"));
        // The first account opened: its balance series follows its stream event by event.
        let account = log.events.iter().find(|e| e.stream.aggregate_type == AggregateType::Account).unwrap();
        let id = account.stream.aggregate_id.to_string();
        let stream: Vec<Value> = serde_json::from_str(&log.stream("Account", &id).unwrap()).unwrap();
        let series: Vec<Value> = serde_json::from_str(&log.balance_series(&id).unwrap()).unwrap();
        assert_eq!(series.len(), stream.len());
        let last = &series[series.len() - 1];
        let state: Value =
            serde_json::from_str(&log.state_at_version("Account", &id, stream.len() as u64).unwrap()).unwrap();
        assert_eq!(last["value"], state["state"]["balance"]);
        assert_eq!(log.state_at_version("Account", &id, 0).unwrap(), "null");
        // From nothing to version 1 every field is new; between two versions only what moved.
        let created: Vec<Value> = serde_json::from_str(&log.diff("Account", &id, 0, 1).unwrap()).unwrap();
        assert!(created.iter().all(|c| c["old"].is_null()));
        let moved: Vec<Value> = serde_json::from_str(&log.diff("Account", &id, 1, 2).unwrap()).unwrap();
        assert!(created.iter().any(|c| c["path"] == "/aggregateType" && c["new"] == "Account"));
        assert!(moved.iter().all(|c| c["path"] != "/aggregateType" && !c["old"].is_null()), "{moved:?}");
        assert!(moved.iter().any(|c| c["path"] == "/state/version" && c["old"] == 1 && c["new"] == 2));
        assert!(log.stream("Nope", &id).is_err());
    }
}
