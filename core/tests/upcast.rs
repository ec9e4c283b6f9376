//! Schema evolution: a stored `OrderPlaced` v1 (before self-trade prevention and client order
//! ids) decodes into today's type, and the hash chain still verifies over the stored v1 bytes.

use perpetua_core::audit::{self, HashChain};
use perpetua_core::event::{DecodeError, Event, StoredEvent};
use perpetua_core::types::StpMode;
use perpetua_core::Decimal;

const V1_FIXTURE: &str = include_str!("../../tests/vectors/upcast/order_placed_v1.json");

#[test]
fn order_placed_v1_fixture_decodes_into_todays_type() {
    let stored = StoredEvent::from_json(V1_FIXTURE).expect("fixture is a stored event");
    assert_eq!(stored.schema_version, 1);
    assert!(!stored.payload.get().contains("stpMode"), "the fixture is really v1");
    let envelope = stored.decode().expect("v1 decodes through the upcaster");
    let Event::OrderPlaced(placed) = &envelope.event else { panic!("decoded {:?}", envelope.event) };
    assert_eq!(placed.stp_mode, StpMode::ExpireTaker);
    assert_eq!(placed.client_order_id, None);
    assert_eq!(placed.price, Some(Decimal::new(500_000, 1)));
    assert_eq!(placed.quantity.to_string(), "1.000", "decimals keep their stored scale");
    assert_eq!(envelope.schema_version, 1, "the envelope remembers the stored version");
    let today = envelope.to_stored();
    assert_eq!(today.schema_version, 2);
    assert!(today.payload.get().contains("\"stpMode\":\"EXPIRE_TAKER\""));
}

#[test]
fn the_chain_verifies_over_the_stored_v1_bytes() {
    let stored = StoredEvent::from_json(V1_FIXTURE).expect("fixture parses");
    let report = audit::verify(std::slice::from_ref(&stored), HashChain::default());
    assert!(report.is_ok(), "{report:?}");
    // The same event re-encoded in today's shape has other bytes, so it would not verify:
    // upcasting happens on read and never rewrites what was stored.
    let mut rewritten = stored.decode().expect("decodes").to_stored();
    rewritten.hash = stored.hash;
    assert_eq!(audit::verify(&[rewritten], HashChain::default()).first_bad_position, Some(1));
}

#[test]
fn unknown_versions_and_types_are_refused_with_codes() {
    let future = V1_FIXTURE.replace("\"schemaVersion\":1", "\"schemaVersion\":3");
    let err = StoredEvent::from_json(&future).expect("parses").decode().expect_err("v3 is unknown");
    assert_eq!(err.code(), "UNSUPPORTED_SCHEMA_VERSION");
    let unknown = V1_FIXTURE.replace("\"eventType\":\"OrderPlaced\"", "\"eventType\":\"OrderTeleported\"");
    let err = StoredEvent::from_json(&unknown).expect("parses").decode().expect_err("unknown type");
    assert!(matches!(err, DecodeError::UnknownEventType(ref t) if t == "OrderTeleported"));
}

#[test]
fn typed_and_buffered_decoding_agree() {
    use perpetua_core::EventEnvelope;
    // v1 goes through the buffered path, and a payload placed before its eventType too.
    let via_stored = StoredEvent::from_json(V1_FIXTURE).expect("parses").decode().expect("decodes");
    let direct: EventEnvelope = serde_json::from_str(V1_FIXTURE).expect("typed decoding upcasts too");
    assert_eq!(direct, via_stored);
    let today = serde_json::to_string(&direct).expect("serializes");
    let again: EventEnvelope = serde_json::from_str(&today).expect("fast path");
    let mut upgraded = direct.clone();
    upgraded.schema_version = 2;
    assert_eq!(again, upgraded, "re-encoded in today's schema");
    let mut value: serde_json::Value = serde_json::from_str(&today).expect("json");
    let payload = value.as_object_mut().expect("object").remove("payload").expect("payload");
    let reordered = format!("{{\"payload\":{payload},{}", &serde_json::to_string(&value).expect("json")[1..]);
    let buffered: EventEnvelope = serde_json::from_str(&reordered).expect("buffered path");
    assert_eq!(buffered, upgraded);
}
