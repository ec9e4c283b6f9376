//! The audit viewer at `/`: the production build of `web/` embedded in the binary at build
//! time (so `cargo install` gives a server that serves it from anywhere), or a directory of
//! files named with `--web-dir` (for working on the viewer without rebuilding the server).

use super::AppState;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::path::PathBuf;

/// `web/dist` as it was when the server was built; empty when it had not been built.
#[derive(rust_embed::Embed)]
#[folder = "../web/dist/"]
#[allow_missing = true]
struct Embedded;

/// Where the viewer's files come from.
#[derive(Clone, Debug)]
pub enum Viewer {
    /// The files embedded at build time.
    Embedded,
    /// A directory (its `index.html` answers every path that is not a file).
    Directory(PathBuf),
}

impl Viewer {
    /// True when there is a viewer to serve.
    pub fn is_available(&self) -> bool {
        match self {
            Viewer::Embedded => Embedded::get("index.html").is_some(),
            Viewer::Directory(dir) => dir.join("index.html").is_file(),
        }
    }

    /// Where it comes from, in words, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Viewer::Embedded if self.is_available() => "the audit viewer (built in)".to_owned(),
            Viewer::Embedded => "no audit viewer (this binary was built without web/dist)".to_owned(),
            Viewer::Directory(dir) if self.is_available() => format!("the audit viewer from {}", dir.display()),
            Viewer::Directory(dir) => format!("no audit viewer ({} has no index.html)", dir.display()),
        }
    }

    /// `router` with the viewer as its fallback.
    pub(super) fn serve(self, router: Router<AppState>) -> Router<AppState> {
        match self {
            Viewer::Directory(dir) if dir.join("index.html").is_file() => {
                let index = dir.join("index.html");
                router.fallback_service(
                    tower_http::services::ServeDir::new(dir).fallback(tower_http::services::ServeFile::new(index)),
                )
            }
            Viewer::Embedded if Embedded::get("index.html").is_some() => router.fallback(embedded),
            _ => router.fallback(|| async { not_built() }),
        }
    }
}

fn not_built() -> Response {
    super::ApiError::not_found(
        "no such route (this server has no audit viewer: run scripts/web-build.sh, then build it)",
    )
    .into_response()
}

/// An embedded file by path; any other path gets `index.html` (the viewer routes itself).
async fn embedded(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (file, name) = match Embedded::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (file, path),
        None => match Embedded::get("index.html") {
            Some(file) => (file, "index.html"),
            None => return not_built(),
        },
    };
    // Vite names its assets by content hash: they never change. The page itself may.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, file.metadata.mimetype().to_owned()), (header::CACHE_CONTROL, cache.to_owned())],
        file.data,
    )
        .into_response()
}
