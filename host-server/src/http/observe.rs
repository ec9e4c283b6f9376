//! What every request leaves behind: its request id (taken from `X-Request-Id` or made, and
//! echoed), one log line (method, route, status, latency, user, request id) and its metrics
//! by route and status.

use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use perpetua_core::ids::UserId;
use std::sync::Arc;
use std::time::Instant;

/// The header a request id comes in and goes out with.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id accepted from a client; a longer or non-printable one is replaced.
const MAX_REQUEST_ID: usize = 128;

tokio::task_local! {
    /// The id of the request being answered, for error bodies and log lines below the handler.
    static REQUEST_ID: Arc<str>;
}

/// The id of the request this task is answering, if it is answering one.
pub fn request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// What a route's guard knows of a request, handed back to the request log in the response's
/// extensions: the route's template (a metric label: never the raw path) and the caller.
#[derive(Clone, Copy, Debug)]
pub struct Served {
    /// The route's template (`/v1/orders/{orderId}`).
    pub route: &'static str,
    /// The authenticated caller, if the route needs one and it was authenticated.
    pub user: Option<UserId>,
}

/// The route label of a request no route took: the viewer's files, or nothing.
fn unrouted(status: u16) -> &'static str {
    if status == 404 {
        "unmatched"
    } else {
        "viewer"
    }
}

fn client_request_id(request: &Request) -> Option<Arc<str>> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let printable = value.bytes().all(|b| b.is_ascii_graphic());
    (printable && !value.is_empty() && value.len() <= MAX_REQUEST_ID).then(|| Arc::from(value))
}

/// The outermost layer: gives the request its id, answers it within that id's scope, then
/// logs and counts it.
pub async fn observe(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = client_request_id(&request).unwrap_or_else(|| Arc::from(uuid::Uuid::new_v4().to_string()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let served = response.extensions().get::<Served>().copied();
    let route = served.map_or_else(|| unrouted(status), |s| s.route);
    metrics.record_request(method.as_str(), route, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let user = served.and_then(|s| s.user).map(|u| u.to_string());
    let user = user.as_deref().unwrap_or("-");
    let latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    // A 5xx was logged with its detail where it was made; this line is the request's.
    if status >= 500 {
        tracing::warn!(target: "perpetua::http", request_id = %id, %method, route, %path, status, latency_ms, user_id = user, "request");
    } else {
        tracing::info!(target: "perpetua::http", request_id = %id, %method, route, %path, status, latency_ms, user_id = user, "request");
    }
    response
}
