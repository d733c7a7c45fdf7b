//! The HTTP endpoint: `/healthz`, `/readyz`, `/metrics`, `/status.json` and the page at `/`.
//! Read-only by construction: every route is a GET that reads the board; there is no route
//! that changes anything, and nothing served holds a secret.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::Operator;

/// The page: one self-contained file (inline CSS and JS) that polls `status.json`.
const PAGE: &str = include_str!("page.html");

/// Where the endpoint listens, from `[http]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9187";

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for [http]: {reason}")]
pub struct HttpError {
    pub address: SocketAddr,
    pub reason: String,
}

pub fn router(operator: Operator) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status.json", get(status))
        .with_state(operator)
}

/// Binds the endpoint (before the runners start, so a port in use stops the daemon with a
/// clear error instead of leaving it unwatchable) and serves it until `stop` completes.
/// Returns the bound address (port 0 picks one) and the server's task.
pub async fn serve(
    settings: HttpSettings,
    operator: Operator,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| HttpError {
            address: settings.listen,
            reason: e.to_string(),
        })?;
    let address = listener.local_addr().map_err(|e| HttpError {
        address: settings.listen,
        reason: e.to_string(),
    })?;
    tracing::info!(%address, "http endpoint listening: / (status page), /metrics, /healthz, /readyz, /status.json");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router(operator))
            .with_graceful_shutdown(stop)
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "http endpoint stopped");
        }
    });
    Ok((address, task))
}

async fn page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // The page runs only its own inline script and talks only to this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        Html(PAGE),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(operator): State<Operator>) -> Response {
    match operator.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()).into_response(),
        Err(accounts) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", accounts.join(", ")),
        )
            .into_response(),
    }
}

async fn metrics(State(operator): State<Operator>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        operator.metrics(),
    )
        .into_response()
}

async fn status(State(operator): State<Operator>) -> Response {
    // The journal read is blocking SQLite: off the async workers.
    match tokio::task::spawn_blocking(move || operator.status()).await {
        Ok(report) => ([(header::CACHE_CONTROL, "no-store")], Json(report)).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
