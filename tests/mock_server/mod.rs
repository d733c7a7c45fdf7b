//! The server scaffolding every venue mock shares, word for word: serve an axum router on
//! `127.0.0.1:0` in a task that ends when the mock is dropped, the mock's clock, and the
//! decimal literal helper. Routes, payloads, signature checks and state stay in each
//! `tests/mock_<venue>/`. A test crate that declares a mock declares this module beside it.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use rust_decimal::Decimal;

/// The serving task; dropping it (with the mock that owns it) stops the server.
pub struct Serving(tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds `127.0.0.1:0` and serves `router` on it until the returned `Serving` is dropped.
pub async fn serve(router: Router) -> (SocketAddr, Serving) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, Serving(task))
}

pub fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}
