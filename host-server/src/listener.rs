//! The HTTP server's connections, bounded so that no client can exhaust the process: a
//! connection must send a request's headers within a timeout (also while idle between
//! requests, so idle and slowloris connections are closed); at most `max_connections` are
//! open at once, and one beyond that is answered 503 `TOO_MANY_CONNECTIONS` and closed; the
//! soft open-file limit is raised to the hard one at start. Each connection carries a
//! [`ConnectionControl`] in its requests' extensions, with which a live stream drops a
//! consumer that stopped reading.
//!
//! hyper serves each connection (HTTP/1.1, the timer that its header timeout needs); axum's
//! own `serve` sets no header timeout and no bound, which is why this loop exists.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tower::ServiceExt;

/// Limits of the HTTP server's connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers, or to start the next request
    /// on a kept-alive connection.
    pub header_timeout: Duration,
    /// Longest the server waits for open connections to finish when it shuts down.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// File descriptors kept for everything but client connections (database pools, the
/// store's files, the listener).
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit to the hard one, and returns the connection bound that
/// leaves room for the process's other files.
pub fn raise_open_file_limit(limits: ConnectionLimits) -> ConnectionLimits {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(0);
    let after = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(after) => after,
        Err(e) => {
            tracing::warn!(error = %e, limit = before, "the open-file limit could not be raised");
            before
        }
    };
    if after != before {
        tracing::info!("open-file limit raised from {before} to {after}");
    }
    let room = usize::try_from(after.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX).max(1);
    if room < limits.max_connections {
        tracing::warn!("at most {room} connections (the open-file limit is {after}), not {}", limits.max_connections);
    }
    ConnectionLimits { max_connections: limits.max_connections.min(room), ..limits }
}

/// What a request's handler may do to its connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectionControl {
    close: Arc<Notify>,
    /// The connection's socket (while the connection serves requests, it is open).
    socket: Option<std::os::fd::RawFd>,
}

impl ConnectionControl {
    /// Fixes the socket's send buffer at `bytes` (no autotuning): for a live stream, so that a
    /// consumer that stops reading is noticed after that much, not after the megabytes the
    /// kernel would otherwise buffer for it (and copy, for every event, at everyone's expense).
    ///
    /// # Safety
    /// Call it only from the handler of a request of this connection, while it runs: the
    /// connection owns the socket and outlives its handlers, but not a task they spawn (the fd
    /// number may then belong to another socket).
    pub unsafe fn limit_send_buffer(&self, bytes: usize) {
        let Some(fd) = self.socket else { return };
        // SAFETY: the caller is the handler of a request of this connection (see above).
        let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(bytes) {
            tracing::warn!(error = %e, "a stream's send buffer could not be limited");
        }
    }

    /// What can close the connection later, from any task (it holds no socket).
    pub fn closer(&self) -> ConnectionCloser {
        ConnectionCloser(self.close.clone())
    }
}

/// Closes a connection at once, from a task that outlives its request (a stream's consumer
/// that stopped reading: whatever is still buffered for it is dropped with it).
#[derive(Clone, Debug)]
pub struct ConnectionCloser(Arc<Notify>);

impl ConnectionCloser {
    /// Closes the connection.
    pub fn close(&self) {
        self.0.notify_one();
    }
}

/// The answer to a connection beyond the bound, written before it is closed.
fn refusal() -> Vec<u8> {
    let body = r#"{"error":{"code":"TOO_MANY_CONNECTIONS","message":"the server has as many connections open as it allows; try again shortly"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&refusal())).await;
    let _ = stream.shutdown().await;
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, asks every
/// connection to finish its request in flight, and waits for them at most
/// `limits.drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(limits.drain_timeout, permits.acquire_many(all)).await;
    if drained.is_err() {
        let open = limits.max_connections - permits.available_permits();
        tracing::warn!(open, "connections still open after {:?}; closing them", limits.drain_timeout);
    }
    Ok(())
}

async fn serve_connection(stream: TcpStream, app: Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    use std::os::fd::AsRawFd as _;
    let control = ConnectionControl { socket: Some(stream.as_raw_fd()), ..ConnectionControl::default() };
    let close = control.close.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(control.clone());
        app.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // 64 KiB of buffer per connection (hyper's default is about 400 KiB): what a client that
    // stops reading can make the server hold, beside its stream's own buffer.
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(64 * 1024);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = close.notified() => return,
        _ = stop.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = connection => {}
        () = close.notified() => {}
    }
}
