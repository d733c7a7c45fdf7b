//! An in-process HTTP receiver for the notifier and heartbeat tests: it binds `127.0.0.1:0`,
//! records every request (path, headers, raw body, when) and answers from a script, then with
//! a standing reply — which may be to never answer at all.
// Each test uses a part of this module.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::time::Instant;

/// How a receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Never answers: the request hangs until the client gives up.
    Hang,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// This reply with one more header.
    pub fn with_header(self, name: &'static str, value: &str) -> Reply {
        match self {
            Reply::Answer {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_string()));
                Reply::Answer {
                    status,
                    headers,
                    body,
                }
            }
            Reply::Hang => Reply::Hang,
        }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: Method,
    /// Path and query, as sent.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// On tokio's clock, so paused-time tests can measure waits.
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

struct Shared {
    hits: Mutex<Vec<Hit>>,
    script: Mutex<VecDeque<Reply>>,
    otherwise: Reply,
}

/// A running receiver; dropping it stops the server.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    shared: Arc<Shared>,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl Receiver {
    /// Answers every request with `reply`.
    pub async fn start(reply: Reply) -> Receiver {
        Receiver::scripted(Vec::new(), reply).await
    }

    /// Answers the first requests from `first`, in order, then every other with `otherwise`.
    pub async fn scripted(first: Vec<Reply>, otherwise: Reply) -> Receiver {
        let shared = Arc::new(Shared {
            hits: Mutex::new(Vec::new()),
            script: Mutex::new(first.into()),
            otherwise,
        });
        let router = Router::new().fallback(receive).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url: format!("http://{addr}"),
            shared,
            serving,
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The requests so far, once there are at least `count`.
    pub async fn wait_for_hits(&self, count: usize) -> Vec<Hit> {
        wait_until(&format!("{count} requests"), || {
            self.shared.hits.lock().unwrap().len() >= count
        })
        .await;
        self.hits()
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    shared.hits.lock().unwrap().push(Hit {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    });
    let reply = shared.script.lock().unwrap().pop_front();
    match reply.unwrap_or_else(|| shared.otherwise.clone()) {
        Reply::Answer {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("a header value"));
            }
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// Polls `done` every 10 ms until it holds; panics after 2,000 polls. Under paused time each
/// idle poll moves the clock 10 ms, which keeps it from jumping to a far timer (a request's
/// timeout) while a loopback socket is still being read.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for {what}");
}
