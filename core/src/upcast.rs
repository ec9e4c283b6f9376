//! Schema evolution. Stored events are never rewritten; an event stored with an older schema
//! version is upcast on read, one version step at a time, into today's shape.
//!
//! To change an event's shape: bump its version in the catalog ([`crate::event`]), add one
//! step here from the old version, and add a stored fixture of the old version under
//! `tests/vectors/upcast/` that must decode into today's type.

use crate::event::{current_schema_version, DecodeError, Event};
use serde_json::{Map, Value};

/// One upcasting step: turns a payload of `event_type` at `from_version` into `from_version + 1`.
struct Step {
    event_type: &'static str,
    from_version: u32,
    apply: fn(&mut Map<String, Value>),
}

/// `OrderPlaced` v1 → v2: self-trade prevention and client order ids arrived; orders written
/// before had the default mode and no client id.
fn order_placed_v1_to_v2(payload: &mut Map<String, Value>) {
    payload.entry("stpMode").or_insert_with(|| Value::from("EXPIRE_TAKER"));
    payload.entry("clientOrderId").or_insert(Value::Null);
}

const STEPS: &[Step] = &[Step { event_type: "OrderPlaced", from_version: 1, apply: order_placed_v1_to_v2 }];

/// Decodes a stored payload of `event_type` written with `schema_version` into today's type.
pub fn decode_payload(event_type: &str, schema_version: u32, payload: &str) -> Result<Event, DecodeError> {
    let current =
        current_schema_version(event_type).ok_or_else(|| DecodeError::UnknownEventType(event_type.to_owned()))?;
    if schema_version == current {
        return Event::from_payload(event_type, payload);
    }
    let unsupported = || DecodeError::UnsupportedSchemaVersion { event_type: event_type.to_owned(), schema_version };
    if schema_version == 0 || schema_version > current {
        return Err(unsupported());
    }
    let mut value: Value =
        serde_json::from_str(payload).map_err(|e| DecodeError::Payload(event_type.to_owned(), e.to_string()))?;
    for version in schema_version..current {
        let step =
            STEPS.iter().find(|s| s.event_type == event_type && s.from_version == version).ok_or_else(unsupported)?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| DecodeError::Payload(event_type.to_owned(), "payload is not an object".into()))?;
        (step.apply)(object);
    }
    Event::from_payload(event_type, &value.to_string())
}
