//! `/openapi.json`: OpenAPI 3.1, generated from the route table, so it describes every route
//! that exists and who may call it (`x-access`).

use super::{Access, ROUTES};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// The API description.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let params: Vec<Value> =
            path_params(route.path)
                .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
                .chain(route.query.iter().map(
                    |name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } }),
                ))
                .collect();
        let mut operation = json!({
            "summary": route.summary,
            "x-access": route.access.as_str(),
            "parameters": params,
            "responses": {
                "200": { "description": "OK (commands: 201 Created where something new exists; every command answer carries `position`)" },
                "400": { "description": "Malformed input", "content": error_content() },
                "401": { "description": "No or invalid token", "content": error_content() },
                "403": { "description": "Not allowed for this role or owner", "content": error_content() },
                "404": { "description": "Not found", "content": error_content() },
                "409": { "description": "Idempotency key reused with another request", "content": error_content() },
                "422": { "description": "Refused by a business rule", "content": error_content() },
            },
        });
        if route.access != Access::Public {
            operation["security"] = json!([{ "bearer": [] }]);
        }
        if !route.body.is_empty() {
            let properties: Map<String, Value> =
                route.body.iter().map(|(name, ty)| ((*name).to_owned(), json!({ "type": ty }))).collect();
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "type": "object", "properties": properties } } },
            });
        }
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Perpetua",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Event-sourced perpetual-futures exchange core. JSON, camelCase, decimals as strings. Errors are {\"error\": {\"code\", \"message\"}}. Commands accept an Idempotency-Key header; queries accept minPosition.",
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" } } } },
                },
            },
        },
        "paths": paths,
    })
}

fn error_content() -> Value {
    json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } })
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

pub(super) async fn openapi() -> Response {
    Json(document()).into_response()
}
