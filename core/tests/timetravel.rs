//! Time travel and snapshots: every state a scenario passed through is returned by folding a
//! prefix — of a stream by version or by time, of the whole log by global position — and an
//! aggregate snapshot plus the rest of its stream equals the full fold.

use perpetua_core::event::{EventEnvelope, StreamId};
use perpetua_core::snapshot::{AggregateSnapshot, SnapshotError, SNAPSHOT_FORMAT_VERSION};
use perpetua_core::timetravel::{exchange_at, fold_stream, state_at_time, state_at_version, AggregateState};
use perpetua_core::workload::Setup;
use perpetua_core::Exchange;
use std::collections::BTreeMap;

/// The live state of a stream's aggregate, read from the engine.
fn live_state(exchange: &Exchange, stream: &StreamId) -> AggregateState {
    use perpetua_core::event::{AggregateId, AggregateType};
    use perpetua_core::ids::{AccountId, OrderId, PositionId};
    match (stream.aggregate_type, stream.aggregate_id) {
        (AggregateType::Order, AggregateId::Uuid(id)) => {
            AggregateState::Order(exchange.order(OrderId(id)).expect("order").clone())
        }
        (AggregateType::Account, AggregateId::Uuid(id)) => {
            AggregateState::Account(exchange.account(AccountId(id)).expect("account").clone())
        }
        (AggregateType::Position, AggregateId::Uuid(id)) => {
            AggregateState::Position(exchange.position(PositionId(id)).expect("position").clone())
        }
        (AggregateType::Market, AggregateId::Symbol(s)) => {
            AggregateState::Market(exchange.market(s).expect("market").clone())
        }
        other => panic!("unexpected stream {other:?}"),
    }
}

struct Recorded {
    position: u64,
    exchange: Exchange,
    states: Vec<(StreamId, AggregateState)>,
}

fn scenario() -> (Vec<EventEnvelope>, Vec<Recorded>) {
    let mut setup = Setup::new(6, 40, 3);
    let start = setup.log.len();
    let commands = {
        let mut probe = Setup::new(6, 40, 3);
        probe.mixed_workload(300, 5)
    };
    let mut recorded = Vec::new();
    for command in &commands {
        let before = setup.log.len();
        setup.run(command);
        let touched: BTreeMap<StreamId, ()> = setup.log[before..].iter().map(|e| (e.stream, ())).collect();
        recorded.push(Recorded {
            position: setup.exchange.last_position(),
            exchange: setup.exchange.clone(),
            states: touched.keys().map(|s| (*s, live_state(&setup.exchange, s))).collect(),
        });
    }
    assert!(setup.log.len() > start + 300, "the scenario produced events");
    (setup.log, recorded)
}

fn stream_events(log: &[EventEnvelope], stream: StreamId) -> Vec<EventEnvelope> {
    log.iter().filter(|e| e.stream == stream).cloned().collect()
}

#[test]
fn every_state_the_scenario_passed_through_is_a_prefix_fold() {
    let (log, recorded) = scenario();
    let mut checked = 0;
    for record in &recorded {
        assert!(exchange_at(&log, record.position) == record.exchange, "exchange at {}", record.position);
        for (stream, state) in &record.states {
            let events = stream_events(&log, *stream);
            let at_version = state_at_version(stream.aggregate_type, &events, state.version());
            assert_eq!(at_version.as_ref(), Some(state), "{stream} at version {}", state.version());
            let timestamp = events.iter().find(|e| e.version == state.version()).expect("event").timestamp;
            // Later events of the same stream may share the millisecond; the state "as of" a
            // time is after all of them.
            let last_same_time = events.iter().filter(|e| e.timestamp <= timestamp).map(|e| e.version).max();
            let as_of = state_at_time(stream.aggregate_type, &events, timestamp);
            assert_eq!(as_of.map(|s| s.version()), last_same_time, "{stream} as of {timestamp}");
            checked += 1;
        }
    }
    assert!(checked > 500, "checked {checked} states");
}

#[test]
fn aggregate_snapshot_plus_tail_equals_the_full_fold() {
    let (log, _) = scenario();
    let mut by_stream: BTreeMap<StreamId, Vec<EventEnvelope>> = BTreeMap::new();
    for envelope in &log {
        by_stream.entry(envelope.stream).or_default().push(envelope.clone());
    }
    let long_streams = by_stream.iter().filter(|(_, events)| events.len() >= 4);
    let mut checked = 0;
    for (stream, events) in long_streams {
        let middle = events.len() / 2;
        let state = fold_stream(stream.aggregate_type, &events[..middle]).expect("a prefix folds");
        let json = serde_json::to_string(&AggregateSnapshot::new(*stream, state)).expect("serializes");
        let mut snapshot = AggregateSnapshot::from_json(&json).expect("loads");
        assert_eq!(snapshot.version, middle as u64);
        for envelope in &events[middle..] {
            snapshot.state.apply(envelope);
        }
        assert_eq!(Some(snapshot.state), fold_stream(stream.aggregate_type, events), "{stream}");
        checked += 1;
    }
    assert!(checked > 20, "checked {checked} streams");
}

#[test]
fn snapshots_of_an_unknown_format_are_refused() {
    let (log, _) = scenario();
    let stream = log[0].stream;
    let state = fold_stream(stream.aggregate_type, &log[..1]).expect("folds");
    let json = serde_json::to_string(&AggregateSnapshot::new(stream, state)).expect("serializes");
    let future = json.replace(
        &format!("\"formatVersion\":{SNAPSHOT_FORMAT_VERSION}"),
        &format!("\"formatVersion\":{}", SNAPSHOT_FORMAT_VERSION + 1),
    );
    assert_eq!(
        AggregateSnapshot::from_json(&future),
        Err(SnapshotError::UnsupportedFormat(SNAPSHOT_FORMAT_VERSION + 1))
    );
    let engine = Exchange::replay(&log).snapshot();
    let mut engine_json: serde_json::Value = serde_json::to_value(&engine).expect("serializes");
    engine_json["formatVersion"] = 99.into();
    let refused = Exchange::from_snapshot_json(&engine_json.to_string());
    assert_eq!(refused.err(), Some(SnapshotError::UnsupportedFormat(99)));
}

/// The sequence of a stream's states is, state by state, the fold of each prefix.
#[test]
fn states_of_a_stream_are_the_folds_of_its_prefixes() {
    use perpetua_core::timetravel::states_of_stream;
    let (_, stored) = perpetua_core::demo::sealed_log();
    let log: Vec<EventEnvelope> = stored.iter().map(|e| e.decode().expect("decodes")).collect();
    let mut streams: BTreeMap<StreamId, Vec<EventEnvelope>> = BTreeMap::new();
    for envelope in &log {
        streams.entry(envelope.stream).or_default().push(envelope.clone());
    }
    let mut checked = 0;
    for (stream, events) in &streams {
        let states = states_of_stream(stream.aggregate_type, events);
        assert_eq!(states.len(), events.len(), "{stream}");
        for (state, event) in states.iter().zip(events) {
            assert_eq!(Some(state), state_at_version(stream.aggregate_type, events, event.version).as_ref());
            checked += 1;
        }
    }
    assert_eq!(checked, log.len());
}
