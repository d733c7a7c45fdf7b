//! Mock Binance's streams, on the same port as its REST routes: `/market/stream?streams=…`
//! pushing `markPriceUpdate` frames (combined-stream wrapping, binance.md §7.4) at the
//! mark cadence and at once on every scripted mark, and `/private/ws?listenKey=…` pushing
//! `ACCOUNT_UPDATE` after each transfer, `MARGIN_CALL` and `listenKeyExpired` on demand.
//!
//! Switches: drop every connection, stall the streams (open, silent), send garbage, refuse
//! the next N connections (accept, then close at once: a flapping server). The server pings
//! like Binance does, so the client's pong path runs.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::broadcast;

use super::{Shared, State_};
use crate::mock_server::system_ms;

/// What the test pushes to open connections.
#[derive(Debug, Clone)]
pub enum Push {
    /// The current mark, now (a scripted move).
    Mark,
    /// The current mark, on the cadence.
    Periodic,
    Account(String),
    Garbage(String),
    Drop,
}

pub struct WsState {
    pub tx: broadcast::Sender<Push>,
    /// The periodic push interval of the mark stream (Binance: 1 s).
    pub cadence: Duration,
    /// Connections stay open but nothing is sent.
    pub stalled: bool,
    /// The next this many mark-stream connections are accepted and closed at once.
    pub refuse: u32,
    pub market_connects: u32,
    pub private_connects: u32,
    pub listen_key: Option<String>,
    pub listen_keys_created: u32,
    pub keepalives: u32,
    /// Frames sent on the mark stream.
    pub mark_frames: u64,
    /// When the first frame carrying the last scripted mark move left a socket (for
    /// reaction-latency figures), and whether one is still awaited.
    pub moved_mark_sent: Option<std::time::Instant>,
    pub move_awaited: bool,
    /// Push an `ACCOUNT_UPDATE` after each transfer (Binance does; a test can stop it to
    /// see the bot cope without).
    pub account_event_on_transfer: bool,
}

impl Default for WsState {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            cadence: Duration::from_secs(1),
            stalled: false,
            refuse: 0,
            market_connects: 0,
            private_connects: 0,
            listen_key: None,
            listen_keys_created: 0,
            keepalives: 0,
            mark_frames: 0,
            moved_mark_sent: None,
            move_awaited: false,
            account_event_on_transfer: true,
        }
    }
}

pub fn mark_frame(s: &State_) -> String {
    let now = s.now();
    json!({
        "stream": format!("{}@markPrice@1s", s.symbol.to_ascii_lowercase()),
        "data": {
            "e": "markPriceUpdate", "E": now, "s": s.symbol,
            "p": s.mark.to_string(), "ap": s.mark.to_string(), "i": s.mark.to_string(),
            "P": s.mark.to_string(), "r": "0.00010000", "T": now + 3_600_000
        }
    })
    .to_string()
}

pub fn account_update(s: &State_, reason: &str) -> String {
    json!({
        "e": "ACCOUNT_UPDATE", "E": s.now(), "T": s.now(),
        "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": s.wallet.to_string(), "cw": s.wallet.to_string(), "bc": "0"}],
            "P": [{"s": s.symbol, "pa": s.qty.to_string(), "ep": s.entry.to_string(), "bep": "0",
                   "cr": "0", "up": s.pnl().to_string(), "mt": "cross", "iw": "0", "ps": "BOTH"}]
        }
    })
    .to_string()
}

pub fn margin_call(s: &State_) -> String {
    json!({
        "e": "MARGIN_CALL", "E": s.now(), "cw": s.wallet.to_string(),
        "p": [{"s": s.symbol, "ps": "BOTH", "pa": s.qty.to_string(), "mt": "CROSSED", "iw": "0",
               "mp": s.mark.to_string(), "up": s.pnl().to_string(), "mm": s.maintenance().to_string()}]
    })
    .to_string()
}

pub fn listen_key_expired(key: &str) -> String {
    json!({"e": "listenKeyExpired", "E": system_ms(), "listenKey": key}).to_string()
}

#[derive(serde::Deserialize)]
pub struct MarketQuery {
    streams: String,
}

/// `GET /market/stream?streams=<symbol>@markPrice@1s/...`
pub async fn market(
    State(state): State<Shared>,
    Query(query): Query<MarketQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let symbol = state.lock().expect("mock lock").symbol.to_ascii_lowercase();
    let streams: Vec<&str> = query.streams.split('/').collect();
    let known = |s: &&str| *s == format!("{symbol}@markPrice@1s");
    if streams.is_empty() || !streams.iter().all(known) {
        return (StatusCode::BAD_REQUEST, "unknown stream").into_response();
    }
    upgrade.on_upgrade(move |socket| market_session(state, socket))
}

#[derive(serde::Deserialize)]
pub struct PrivateQuery {
    #[serde(rename = "listenKey")]
    listen_key: String,
}

/// `GET /private/ws?listenKey=<key>`
pub async fn private(
    State(state): State<Shared>,
    Query(query): Query<PrivateQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let current = state.lock().expect("mock lock").ws.listen_key.clone();
    if current.as_deref() != Some(query.listen_key.as_str()) {
        return (StatusCode::BAD_REQUEST, "invalid listen key").into_response();
    }
    upgrade.on_upgrade(move |socket| private_session(state, socket))
}

/// Counts the connection; `false` when it is to be refused (closed at once).
fn admit(state: &Shared, private: bool) -> (bool, broadcast::Receiver<Push>, Duration) {
    let mut s = state.lock().expect("mock lock");
    if private {
        s.ws.private_connects += 1;
    } else {
        s.ws.market_connects += 1;
    }
    // Only the mark stream flaps: a count the tests can reason about.
    let refused = !private && s.ws.refuse > 0;
    if refused {
        s.ws.refuse -= 1;
    }
    (!refused, s.ws.tx.subscribe(), s.ws.cadence)
}

async fn market_session(state: Shared, mut socket: WebSocket) {
    let (admitted, mut rx, cadence) = admit(&state, false);
    if !admitted {
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let mut tick = tokio::time::interval(cadence);
    let mut ping = tokio::time::interval(Duration::from_secs(180));
    loop {
        let outgoing = tokio::select! {
            _ = tick.tick() => Some(Push::Periodic),
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() { return; }
                None
            }
            push = rx.recv() => match push {
                Ok(push) => Some(push),
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(_) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => None,
            },
        };
        // (frame, the mark it carries)
        let frame = {
            let mut s = state.lock().expect("mock lock");
            match outgoing {
                _ if s.ws.stalled => None,
                Some(Push::Mark | Push::Periodic) => {
                    s.ws.mark_frames += 1;
                    Some((mark_frame(&s), Some(s.mark)))
                }
                Some(Push::Garbage(text)) => Some((text, None)),
                Some(Push::Drop) => return,
                Some(Push::Account(_)) | None => None,
            }
        };
        if let Some((frame, mark)) = frame {
            {
                // Stamped as the frame is handed to the socket: the bot may read it, decide
                // and call before this task runs again.
                let mut s = state.lock().expect("mock lock");
                if s.ws.move_awaited && mark.is_some_and(|m| m == s.mark) {
                    s.ws.move_awaited = false;
                    s.ws.moved_mark_sent = Some(std::time::Instant::now());
                }
            }
            if socket.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}

async fn private_session(state: Shared, mut socket: WebSocket) {
    let (admitted, mut rx, _) = admit(&state, true);
    if !admitted {
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let mut ping = tokio::time::interval(Duration::from_secs(180));
    loop {
        let frame = tokio::select! {
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() { return; }
                None
            }
            push = rx.recv() => match push {
                Ok(Push::Account(frame)) => Some(frame),
                Ok(Push::Garbage(text)) => Some(text),
                Ok(Push::Drop) => return,
                Ok(Push::Mark | Push::Periodic)
                | Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(_) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => None,
            },
        };
        let stalled = state.lock().expect("mock lock").ws.stalled;
        if let (Some(frame), false) = (frame, stalled) {
            if socket.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}

impl State_ {
    pub fn push(&self, push: Push) {
        let _ = self.ws.tx.send(push);
    }

    /// Creates the listen key, or returns and extends the active one.
    pub fn listen_key(&mut self) -> String {
        if self.ws.listen_key.is_none() {
            self.ws.listen_keys_created += 1;
            self.ws.listen_key = Some(format!(
                "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a{:06}",
                self.ws.listen_keys_created
            ));
        }
        self.ws.listen_key.clone().unwrap_or_default()
    }

    /// Moves the mark and pushes it on the stream at once (REST reads the same mark).
    pub fn move_mark(&mut self, mark: Decimal) {
        self.mark = mark;
        self.ws.move_awaited = true;
        self.ws.moved_mark_sent = None;
        self.inspect();
        self.push(Push::Mark);
    }
}
