//! `/openapi.json`: OpenAPI 3.1. The paths come from the route table, so the document
//! describes every route that exists, who may call it (`x-access`) and the error codes it can
//! answer; the schemas are generated from the wire types (`utoipa`), so every request and
//! response body has the schema of the type the server reads or writes.

use super::{wire, Access, Effect, Kind, Param, Reply, Route, ROUTES};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The API description (built once).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation(route);
    }
    let components = <wire::Schemas as utoipa::OpenApi>::openapi().components.expect("the wire types' schemas");
    let mut components = serde_json::to_value(components).expect("schemas serialize");
    components["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer" } });
    // A payload is any object (its fields depend on the event type); utoipa writes a bare
    // `object`, which client generators read as an empty one.
    components["schemas"]["Event"]["properties"]["payload"]["additionalProperties"] = json!(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Perpetua",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
        },
        "components": components,
        "paths": paths,
    })
}

const DESCRIPTION: &str = "Event-sourced perpetual-futures exchange core. JSON, camelCase; decimals \
are strings, times RFC 3339 UTC, ids UUIDs, log positions integers. Every error is \
{\"error\": {\"code\", \"message\", \"requestId\"}} with a stable code; each operation lists the \
codes it can answer (`x-error-codes`). A command accepts an `Idempotency-Key` (a retry with it \
gets the first answer and changes nothing) and answers with `position`, the log position of \
its last event; a query given `minPosition` answers once the read models have reached it. \
Requests with a token are limited per token (429 RATE_LIMITED with Retry-After).";

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_params(route.path)
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_schema(name) }))
        .collect();
    parameters.extend(route.query.iter().map(query_param));
    if route.effect == Effect::Command {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1 to 200 visible ASCII characters, unique per request the caller means once. A retry with the same key and body gets the first answer; with another body, 409 IDEMPOTENCY_KEY_REUSED.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$" },
        }));
        parameters.push(json!({
            "name": "X-Correlation-Id", "in": "header", "required": false,
            "description": "Recorded in the metadata of every event the command causes (find them with /v1/events?correlationId=).",
            "schema": { "type": "string", "format": "uuid" },
        }));
    }
    let mut responses = Map::new();
    for (status, reply) in route.answers {
        responses.insert(status.to_string(), answer(*status, *reply));
    }
    let mut codes = 0;
    for (status, codes_of_status) in error_codes(route) {
        codes += codes_of_status.len();
        let error = error_response(status, &codes_of_status);
        match responses.get_mut(&status.to_string()) {
            None => {
                responses.insert(status.to_string(), error);
            }
            // A status with an answer of its own (a rejected order's 422, readiness' 503)
            // may also be an error: either schema.
            Some(answer) => {
                let (Some(own), Some(error)) = (json_schema(answer), json_schema(&error)) else { continue };
                let description = format!(
                    "{}; or an error: {}",
                    answer["description"].as_str().unwrap_or(""),
                    codes_of_status.join(", ")
                );
                *answer = json!({
                    "description": description,
                    "content": { "application/json": { "schema": { "oneOf": [own, error] } } },
                });
            }
        }
    }
    debug_assert!(codes > 0 || route.access == Access::Public);
    let mut operation = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "x-access": route.access.as_str(),
        "x-error-codes": error_codes(route).values().flatten().collect::<Vec<_>>(),
        "parameters": parameters,
        "responses": responses,
    });
    if route.access != Access::Public {
        operation["security"] = json!([{ "bearer": [] }]);
    }
    if let Some(body) = route.body {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": reference(&body()) } },
        });
    }
    operation
}

/// The JSON schema of a response, if it has one.
fn json_schema(response: &Value) -> Option<Value> {
    response["content"]["application/json"].get("schema").cloned()
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn answer(status: u16, reply: Reply) -> Value {
    let description = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        422 => "Refused by a business rule",
        503 => "Not ready",
        _ => "Answer",
    };
    match reply {
        Reply::Json(name) => json!({
            "description": description,
            "content": { "application/json": { "schema": reference(&name()) } },
        }),
        Reply::Text(text) => {
            let (media, words) = text.split_once(": ").unwrap_or((text, ""));
            let schema = if media == "application/json" {
                json!({ "type": "object", "additionalProperties": true })
            } else {
                json!({ "type": "string" })
            };
            json!({ "description": words, "content": { media: { "schema": schema } } })
        }
    }
}

fn error_response(status: u16, codes: &[&'static str]) -> Value {
    let description = match status {
        400 => "Malformed input",
        401 => "No token, or a token that is not valid",
        403 => "Not allowed for this role or owner",
        404 => "Not found",
        409 => "Idempotency key reused with another request",
        413 => "Body too large",
        422 => "Refused by a business rule",
        429 => "Too many requests for this token (see Retry-After)",
        431 => "Headers too large",
        500 => "The server's fault (logged; the answer says nothing of its cause)",
        503 => "Unavailable for now; retry (a command with its Idempotency-Key)",
        _ => "Error",
    };
    json!({
        "description": format!("{description}: {}", codes.join(", ")),
        "content": { "application/json": { "schema": {
            "allOf": [
                reference("Error"),
                { "type": "object", "properties": { "error": { "type": "object", "properties": {
                    "code": { "type": "string", "enum": codes } } } } },
            ],
        } } },
    })
}

/// Every error code `route` can answer, by status: its own and those its kind shares.
pub fn error_codes(route: &Route) -> BTreeMap<u16, Vec<&'static str>> {
    let mut codes: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    let mut add = |status: u16, code: &'static str| {
        let list = codes.entry(status).or_default();
        if !list.contains(&code) {
            list.push(code);
        }
    };
    for (status, code) in common_errors(route) {
        add(status, code);
    }
    for &(status, code) in route.errors {
        add(status, code);
    }
    codes
}

/// The codes every route of its kind can answer.
fn common_errors(route: &Route) -> Vec<(u16, &'static str)> {
    let mut codes = vec![(431, "HEADERS_TOO_LARGE"), (500, "INTERNAL")];
    if route.home().is_some() {
        // Asked of a server of another role (serve --role).
        codes.push((421, "WRONG_ROLE"));
    }
    if route.access != Access::Public {
        codes.extend([(401, "UNAUTHENTICATED"), (401, "INVALID_TOKEN"), (403, "FORBIDDEN"), (429, "RATE_LIMITED")]);
    }
    if route.body.is_some() {
        codes.extend([
            (400, "EMPTY_BODY"),
            (400, "INVALID_JSON"),
            (400, "INVALID_REQUEST"),
            (413, "PAYLOAD_TOO_LARGE"),
        ]);
    }
    if !route.query.is_empty() {
        codes.extend([(400, "INVALID_QUERY"), (400, "OUT_OF_RANGE")]);
    }
    if route.query.iter().any(|p| p.name == "minPosition") {
        codes.extend([(400, "MIN_POSITION_BEYOND_HEAD"), (503, "MIN_POSITION_TIMEOUT")]);
    }
    if route.effect == Effect::Command {
        codes.extend([
            (400, "INVALID_IDEMPOTENCY_KEY"),
            (400, "INVALID_CORRELATION_ID"),
            (409, "IDEMPOTENCY_KEY_REUSED"),
            (422, "NOT_INITIALIZED"),
            (503, "STORE_UNAVAILABLE"),
            (503, "UNAVAILABLE"),
            (503, "WRITER_LEASE_LOST"),
        ]);
    }
    // What reading the store or the read models can meet.
    codes.extend([
        (500, "LOG_GAP"),
        (500, "STREAM_GAP"),
        (500, "CORRUPT_ROW"),
        (503, "DATABASE_UNAVAILABLE"),
        (503, "DATABASE_ERROR"),
    ]);
    codes
}

fn query_param(param: &Param) -> Value {
    let schema = match param.kind {
        Kind::Position => json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX }),
        Kind::Count => json!({ "type": "integer", "format": "int32", "minimum": 1 }),
        Kind::Symbol => json!({ "type": "string", "pattern": "^[A-Z0-9]{1,15}$" }),
        Kind::Uuid => json!({ "type": "string", "format": "uuid" }),
        Kind::Time => reference("Time"),
        Kind::OrderStatus => reference("OrderStatus"),
        Kind::AggregateType => reference("AggregateType"),
        Kind::AggregateId => json!({ "type": "string", "pattern": AGGREGATE_ID }),
        Kind::Interval => reference("Interval"),
        Kind::Text => json!({ "type": "string" }),
    };
    json!({ "name": param.name, "in": "query", "required": param.required, "schema": schema })
}

/// A stream's id: a UUID, or a market's symbol.
const AGGREGATE_ID: &str =
    "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Z0-9]{1,15})$";

fn path_schema(name: &str) -> Value {
    match name {
        "accountId" | "orderId" => json!({ "type": "string", "format": "uuid" }),
        "symbol" => json!({ "type": "string", "pattern": "^[A-Z0-9]{1,15}$" }),
        "aggregateType" => reference("AggregateType"),
        "aggregateId" => json!({ "type": "string", "pattern": AGGREGATE_ID }),
        "clientOrderId" => json!({ "type": "string", "minLength": 1, "maxLength": 64 }),
        "name" => {
            let mut names: Vec<&str> = crate::projector::READ_MODELS.to_vec();
            names.push("all");
            json!({ "type": "string", "enum": names })
        }
        _ => json!({ "type": "string" }),
    }
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The route table in Markdown, from the document: for the README's API section (`detail`
/// false) and `docs/API.md` (`detail` true: with parameters and every error code).
pub fn markdown(detail: bool) -> String {
    let document = document();
    let mut out = String::new();
    if !detail {
        out.push_str("| Route | Who | Body → answer | What |\n|---|---|---|---|\n");
    }
    for route in ROUTES {
        let operation = &document["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        let body = route.body.map(|name| format!("`{}` → ", name())).unwrap_or_default();
        let answers: Vec<String> = route
            .answers
            .iter()
            .map(|(status, reply)| match reply {
                Reply::Json(name) => format!("{status} `{}`", name()),
                Reply::Text(text) => format!("{status} {}", text.split_once(':').map_or(*text, |(media, _)| media)),
            })
            .collect();
        if !detail {
            out.push_str(&format!(
                "| `{} {}` | {} | {body}{} | {} |\n",
                route.method,
                route.path,
                route.access.as_str(),
                answers.join(", "),
                route.summary.replace('|', "\\|"),
            ));
            continue;
        }
        out.push_str(&format!(
            "### `{} {}` — `{}`\n\n{}\n\n",
            route.method, route.path, route.operation_id, route.summary
        ));
        out.push_str(&format!("- Who: {}\n", route.access.as_str()));
        let params: Vec<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let required = if p["required"] == json!(true) { ", required" } else { "" };
                format!("`{}` ({}{required})", p["name"].as_str().unwrap_or(""), p["in"].as_str().unwrap_or(""))
            })
            .collect();
        if !params.is_empty() {
            out.push_str(&format!("- Parameters: {}\n", params.join(", ")));
        }
        out.push_str(&format!("- Answers: {body}{}\n", answers.join(", ")));
        for (status, codes) in error_codes(route) {
            let codes: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
            out.push_str(&format!("- {status}: {}\n", codes.join(", ")));
        }
        out.push('\n');
    }
    out
}

pub(super) async fn openapi() -> Response {
    Json(document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's API section and docs/API.md are the route table as generated now
    /// (`perpetua openapi --markdown` and `--markdown-detail` print them).
    #[test]
    fn the_api_docs_are_generated_from_the_document() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
        let (begin, end) = ("<!-- routes: perpetua openapi --markdown -->\n", "<!-- /routes -->");
        let start = readme.find(begin).expect("the README marks its route table") + begin.len();
        let stop = readme[start..].find(end).expect("the route table ends") + start;
        same(&readme[start..stop], &markdown(false), "README.md's route table");
        let api = std::fs::read_to_string(format!("{root}/docs/API.md")).expect("docs/API.md");
        let start = api.find(API_MD_HEADER_END).expect("docs/API.md's header") + API_MD_HEADER_END.len();
        same(&api[start..], &markdown(true), "docs/API.md");
    }

    /// Fails naming the first line where `written` and `generated` differ.
    fn same(written: &str, generated: &str, what: &str) {
        let first = written.lines().zip(generated.lines()).position(|(w, g)| w != g);
        let line = first.unwrap_or(written.lines().count().min(generated.lines().count()));
        assert!(
            written == generated,
            "{what} is out of date at line {}: {:?} (generated: {:?}); run scripts/api-docs.sh",
            line + 1,
            written.lines().nth(line).unwrap_or(""),
            generated.lines().nth(line).unwrap_or(""),
        );
    }

    /// Where docs/API.md's generated part begins.
    const API_MD_HEADER_END: &str = "<!-- generated: perpetua openapi --markdown-detail -->\n\n";

    /// Every `$ref` of the document names a schema it holds, and every route has a unique
    /// operation id, a schema for each JSON answer and the error codes it can answer.
    #[test]
    fn the_document_is_complete() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().expect("schemas");
        fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        found.push(target);
                    }
                    map.values().for_each(|v| refs(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(document, &mut found);
        assert!(found.len() > 100, "{} references", found.len());
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").expect("a schema reference");
            assert!(schemas.contains_key(name), "{target} is not in the document");
        }
        let mut ids: Vec<&str> = ROUTES.iter().map(|r| r.operation_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ROUTES.len(), "operation ids are unique");
        // The order answer's enums are enums, its decimals strings, its fields required.
        let order = &schemas["Order"];
        assert_eq!(schemas["Side"]["enum"], json!(["BUY", "SELL"]));
        assert_eq!(schemas["Decimal"]["type"], json!("string"));
        let required = order["required"].as_array().expect("required fields");
        for field in ["orderId", "side", "type", "price", "status", "version"] {
            assert!(required.contains(&json!(field)), "Order.{field} is required");
        }
        let place = &document["paths"]["/v1/orders"]["post"];
        assert_eq!(place["operationId"], json!("placeOrder"));
        let codes = place["x-error-codes"].as_array().expect("codes");
        for code in ["INVALID_JSON", "IDEMPOTENCY_KEY_REUSED", "MARKET_NOT_FOUND", "RATE_LIMITED"] {
            assert!(codes.contains(&json!(code)), "placeOrder answers {code}");
        }
        let headers: Vec<&Value> = place["parameters"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
        assert!(headers.contains(&&json!("Idempotency-Key")) && headers.contains(&&json!("X-Correlation-Id")));
    }
}
