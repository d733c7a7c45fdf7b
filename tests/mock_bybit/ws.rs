//! Mock Bybit's streams, on the same port as its REST routes, in the frames of bybit.md §7:
//!
//! - `/v5/public/linear`: `{"op":"subscribe","args":["tickers.BTCUSDT"]}` is acked and
//!   answered with a ticker `snapshot`; then a `delta` every cadence (100 ms, Bybit's) and at
//!   once on every scripted mark. A delta carries `markPrice` only when the mark moved since
//!   this connection last sent it, as Bybit's deltas carry only what changed.
//! - `/v5/private`: the `auth` frame is checked as Bybit checks it — the key, `expires` a JSON
//!   number in the future, `signature = hex(HMAC_SHA256(secret, "GET/realtime" + expires))` —
//!   and a subscription before a successful auth is refused. `wallet` and `position` pushes
//!   follow each transfer, on the connections subscribed to them.
//! - Both answer `{"op":"ping"}` with their own pong shape.
//!
//! Switches: drop every connection, stall (open and silent, pongs included), garbage, refuse
//! the next N mark-stream connections (accepted, then closed at once: a flapping server).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use marginguard::venue::bybit::signing;

use super::{Shared, State_};

/// What the test pushes to open connections.
#[derive(Debug, Clone)]
pub enum Push {
    /// The current mark, now (a scripted move).
    Mark,
    /// A private push on `topic`, to the connections subscribed to it.
    Account {
        topic: String,
        frame: String,
    },
    Garbage(String),
    Drop,
}

pub struct WsState {
    pub tx: broadcast::Sender<Push>,
    /// The ticker stream's push interval (Bybit: 100 ms).
    pub cadence: Duration,
    /// Connections stay open but nothing is sent, not even a pong.
    pub stalled: bool,
    /// The next this many mark-stream connections are accepted and closed at once.
    pub refuse: u32,
    pub public_connects: u32,
    pub private_connects: u32,
    /// Auth frames accepted and refused.
    pub auths: (u32, u32),
    /// Every subscribe request's topics, in order, on either stream.
    pub subscriptions: Vec<Vec<String>>,
    /// Pings answered on the (public, private) stream.
    pub pings: (u32, u32),
    /// Ticker frames sent (snapshots and deltas).
    pub mark_frames: u64,
    /// When the first ticker carrying the last scripted move was handed to a socket (for
    /// reaction-latency figures), and whether one is still awaited.
    pub moved_mark_sent: Option<std::time::Instant>,
    pub move_awaited: bool,
    next_conn: u64,
}

impl Default for WsState {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            cadence: Duration::from_millis(100),
            stalled: false,
            refuse: 0,
            public_connects: 0,
            private_connects: 0,
            auths: (0, 0),
            subscriptions: Vec::new(),
            pings: (0, 0),
            mark_frames: 0,
            moved_mark_sent: None,
            move_awaited: false,
            next_conn: 0,
        }
    }
}

/// A ticker frame for the mock's symbol; `with_mark` says whether `markPrice` is in it (a
/// snapshot always has it).
pub fn ticker_frame(s: &State_, kind: &str, with_mark: bool) -> String {
    let mark = s.mark.to_string();
    let mut data = json!({
        "symbol": s.symbol, "bid1Price": mark, "bid1Size": "1.25", "ask1Price": mark,
        "ask1Size": "0.75", "volume24h": "12345.678", "turnover24h": "740740740.1"
    });
    if kind == "snapshot" {
        data["lastPrice"] = json!(mark);
        data["indexPrice"] = json!(mark);
        data["fundingRate"] = json!("0.0001");
        data["nextFundingTime"] = json!(((s.now() / 28_800_000 + 1) * 28_800_000).to_string());
    }
    if with_mark || kind == "snapshot" {
        data["markPrice"] = json!(mark);
    }
    json!({
        "topic": format!("tickers.{}", s.symbol), "type": kind, "data": data,
        "cs": 9_532_239_429u64 + s.ws.mark_frames, "ts": s.now()
    })
    .to_string()
}

/// The `wallet` push (bybit.md §7.2) with the mock's Unified wallet.
pub fn wallet_frame(s: &State_) -> String {
    let pnl = s.pnl();
    let mm = s.maintenance();
    let equity = s.wallet + pnl;
    json!({
        "id": format!("592324d2bce751-ad38-48eb-8f42-{:012}", s.ws.mark_frames),
        "topic": "wallet", "creationTime": s.now(),
        "data": [{
            "accountIMRate": "0.1", "accountMMRate": (if equity > Decimal::ZERO { (mm / equity).trunc_with_scale(4) } else { Decimal::ONE }).to_string(),
            "totalEquity": equity.to_string(), "totalWalletBalance": s.wallet.to_string(),
            "totalMarginBalance": equity.to_string(), "totalAvailableBalance": "0",
            "totalPerpUPL": pnl.to_string(), "totalInitialMargin": "6000",
            "totalMaintenanceMargin": mm.to_string(),
            "coin": [{
                "coin": "USDT", "equity": equity.to_string(), "usdValue": equity.to_string(),
                "walletBalance": s.wallet.to_string(), "totalOrderIM": "0",
                "totalPositionIM": "6000", "totalPositionMM": mm.to_string(),
                "unrealisedPnl": pnl.to_string(), "collateralSwitch": true,
                "marginCollateral": true, "spotBorrow": "0"
            }],
            "accountLTV": "0", "accountType": "UNIFIED"
        }]
    })
    .to_string()
}

/// The `position` push (bybit.md §7.3) for the mock's position.
pub fn position_frame(s: &State_) -> String {
    let value = s.qty * s.mark;
    json!({
        "id": format!("1003076014fb7eedb-c7e6-45d6-{:012}", s.ws.mark_frames),
        "topic": "position", "creationTime": s.now(),
        "data": [{
            "positionIdx": 0, "tradeMode": 0, "riskId": 1, "riskLimitValue": "50000",
            "symbol": s.symbol, "side": if s.qty.is_zero() { "" } else { "Buy" },
            "size": s.qty.to_string(), "entryPrice": s.entry.to_string(), "leverage": "10",
            "positionValue": value.to_string(), "markPrice": s.mark.to_string(),
            "positionIM": (value / Decimal::TEN).to_string(),
            "positionMM": s.maintenance().to_string(), "unrealisedPnl": s.pnl().to_string(),
            "liqPrice": "0", "bustPrice": "", "category": "linear", "positionStatus": "Normal",
            "seq": 8_327_597_863u64, "isReduceOnly": false, "createdTime": "1676538056258",
            "updatedTime": s.now().to_string()
        }]
    })
    .to_string()
}

/// `GET /v5/public/linear`
pub async fn public(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| public_session(state, socket))
}

/// `GET /v5/private`
pub async fn private(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| private_session(state, socket))
}

/// Counts the connection; `None` when it is to be refused (closed at once).
fn admit(state: &Shared, private: bool) -> Option<(broadcast::Receiver<Push>, Duration, String)> {
    let mut s = state.lock().expect("mock lock");
    if private {
        s.ws.private_connects += 1;
    } else {
        s.ws.public_connects += 1;
    }
    // Only the mark stream flaps: a count the tests can reason about.
    if !private && s.ws.refuse > 0 {
        s.ws.refuse -= 1;
        return None;
    }
    s.ws.next_conn += 1;
    let conn_id = format!(
        "mock-{}-{:04}",
        if private { "private" } else { "public" },
        s.ws.next_conn
    );
    Some((s.ws.tx.subscribe(), s.ws.cadence, conn_id))
}

/// What one connection knows of itself.
struct Conn {
    id: String,
    /// Subscribed topics.
    topics: Vec<String>,
    authed: bool,
    /// The mark this connection last sent (a delta repeats nothing unchanged).
    sent_mark: Option<Decimal>,
}

impl Conn {
    fn new(id: String) -> Self {
        Self {
            id,
            topics: Vec::new(),
            authed: false,
            sent_mark: None,
        }
    }

    fn ticker(&mut self, s: &mut State_, kind: &str) -> Option<String> {
        if !self.topics.contains(&format!("tickers.{}", s.symbol)) {
            return None;
        }
        let moved = self.sent_mark != Some(s.mark);
        self.sent_mark = Some(s.mark);
        s.ws.mark_frames += 1;
        if moved && s.ws.move_awaited {
            // Stamped as the frame is built, just before it is handed to the socket.
            s.ws.move_awaited = false;
            s.ws.moved_mark_sent = Some(std::time::Instant::now());
        }
        Some(ticker_frame(s, kind, moved))
    }
}

/// The request's `op`, `req_id` and `args`, or nothing for a frame that is not one.
fn request(text: &str) -> Option<(String, Value, Vec<Value>)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let op = value.get("op")?.as_str()?.to_string();
    let req_id = value.get("req_id").cloned().unwrap_or(json!(""));
    let args = value
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Some((op, req_id, args))
}

fn topics_of(args: &[Value]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_str().unwrap_or("(not a string)").to_string())
        .collect()
}

/// The public stream's answers to a request: subscribe acks (then snapshots), pongs.
fn public_answer(s: &mut State_, conn: &mut Conn, text: &str) -> Vec<String> {
    let Some((op, req_id, args)) = request(text) else {
        return Vec::new();
    };
    match op.as_str() {
        "ping" => {
            s.ws.pings.0 += 1;
            vec![json!({"success": true, "ret_msg": "pong", "conn_id": conn.id, "req_id": req_id, "op": "ping"}).to_string()]
        }
        "subscribe" => {
            let topics = topics_of(&args);
            s.ws.subscriptions.push(topics.clone());
            let known = format!("tickers.{}", s.symbol);
            if let Some(bad) = topics.iter().find(|t| **t != known) {
                let msg = format!("Invalid symbol :[{bad}]");
                return vec![json!({"success": false, "ret_msg": msg, "conn_id": conn.id, "req_id": req_id, "op": "subscribe"}).to_string()];
            }
            conn.topics.extend(topics);
            let ack = json!({"success": true, "ret_msg": "subscribe", "conn_id": conn.id, "req_id": req_id, "op": "subscribe"});
            let mut out = vec![ack.to_string()];
            conn.sent_mark = None;
            out.extend(conn.ticker(s, "snapshot"));
            out
        }
        _ => vec![json!({"success": false, "ret_msg": format!("error:handler not found,op:{op}"), "conn_id": conn.id, "req_id": req_id, "op": op}).to_string()],
    }
}

/// Why an auth frame is refused, if it is: the key, a future `expires` sent as a JSON number,
/// the signature over `GET/realtime<expires>`.
fn auth_refusal(s: &State_, args: &[Value]) -> Option<&'static str> {
    let [key, expires, signature] = args else {
        return Some("Params Error");
    };
    if key.as_str() != Some(s.api_key.as_str()) {
        return Some("Invalid apikey");
    }
    let Some(expires) = expires.as_i64() else {
        return Some("Params Error: expires must be a number");
    };
    if expires <= s.now() {
        return Some("Params Error: request expired");
    }
    let expected = signing::hmac_hex(s.secret.as_bytes(), &format!("GET/realtime{expires}"));
    match signature.as_str() {
        Some(given) if signing::signatures_match(&expected, given) => None,
        _ => Some("Invalid sign"),
    }
}

/// The private stream's answers: auth, subscribe (only once authed), pongs.
fn private_answer(s: &mut State_, conn: &mut Conn, text: &str) -> Vec<String> {
    let Some((op, req_id, args)) = request(text) else {
        return Vec::new();
    };
    let answer = |success: bool, msg: &str, op: &str| {
        json!({"success": success, "ret_msg": msg, "op": op, "conn_id": conn.id, "req_id": req_id})
            .to_string()
    };
    match op.as_str() {
        "ping" => {
            s.ws.pings.1 += 1;
            vec![json!({"req_id": req_id, "op": "pong", "args": [s.now().to_string()], "conn_id": conn.id}).to_string()]
        }
        "auth" if conn.authed => vec![answer(false, "Repeat auth", "auth")],
        "auth" => match auth_refusal(s, &args) {
            None => {
                s.ws.auths.0 += 1;
                conn.authed = true;
                vec![answer(true, "", "auth")]
            }
            Some(why) => {
                s.ws.auths.1 += 1;
                vec![answer(false, why, "auth")]
            }
        },
        "subscribe" => {
            let topics = topics_of(&args);
            s.ws.subscriptions.push(topics.clone());
            let allowed = ["wallet", "position", "order", "execution"];
            if !conn.authed {
                vec![answer(false, "Request not authorized", "subscribe")]
            } else if let Some(bad) = topics.iter().find(|t| !allowed.contains(&t.as_str())) {
                vec![answer(
                    false,
                    &format!("error:handler not found,topic:{bad}"),
                    "subscribe",
                )]
            } else {
                conn.topics.extend(topics);
                vec![answer(true, "", "subscribe")]
            }
        }
        other => vec![answer(
            false,
            &format!("error:handler not found,op:{other}"),
            other,
        )],
    }
}

/// What the session does next.
enum Next {
    Send(Vec<String>),
    Close,
}

/// One connection's loop: periodic ticks (public only), pushes and requests, each turned
/// into frames by `on` under the mock's lock; nothing leaves while the streams are stalled.
async fn session(
    state: Shared,
    mut socket: WebSocket,
    private: bool,
    mut on: impl FnMut(&mut State_, &mut Conn, Event) -> Next,
) {
    let Some((mut rx, cadence, id)) = admit(&state, private) else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let mut conn = Conn::new(id);
    let mut tick = tokio::time::interval(cadence);
    loop {
        let event = tokio::select! {
            _ = tick.tick(), if !private => Event::Tick,
            push = rx.recv() => match push {
                Ok(push) => Event::Push(push),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => Event::Request(text.as_str().to_string()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        };
        let next = {
            let mut s = state.lock().expect("mock lock");
            // Stalled: open and silent. Nothing is built either, so a delta after the stall
            // still carries the mark the connection never got.
            if s.ws.stalled && !matches!(event, Event::Push(Push::Drop)) {
                continue;
            }
            on(&mut s, &mut conn, event)
        };
        let frames = match next {
            Next::Send(frames) => frames,
            Next::Close => return,
        };
        for frame in frames {
            if socket.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    }
}

enum Event {
    Tick,
    Push(Push),
    Request(String),
}

async fn public_session(state: Shared, socket: WebSocket) {
    session(state, socket, false, |s, conn, event| match event {
        Event::Tick | Event::Push(Push::Mark) => {
            Next::Send(conn.ticker(s, "delta").into_iter().collect())
        }
        Event::Push(Push::Garbage(text)) => Next::Send(vec![text]),
        Event::Push(Push::Drop) => Next::Close,
        Event::Push(Push::Account { .. }) => Next::Send(Vec::new()),
        Event::Request(text) => Next::Send(public_answer(s, conn, &text)),
    })
    .await
}

async fn private_session(state: Shared, socket: WebSocket) {
    session(state, socket, true, |s, conn, event| match event {
        Event::Push(Push::Account { topic, frame }) if conn.topics.contains(&topic) => {
            Next::Send(vec![frame])
        }
        Event::Push(Push::Garbage(text)) => Next::Send(vec![text]),
        Event::Push(Push::Drop) => Next::Close,
        Event::Tick | Event::Push(_) => Next::Send(Vec::new()),
        Event::Request(text) => Next::Send(private_answer(s, conn, &text)),
    })
    .await
}

impl State_ {
    pub fn push(&self, push: Push) {
        let _ = self.ws.tx.send(push);
    }

    /// The `wallet` and `position` pushes that follow a balance change.
    pub fn push_account_events(&self) {
        self.push(Push::Account {
            topic: "wallet".into(),
            frame: wallet_frame(self),
        });
        self.push(Push::Account {
            topic: "position".into(),
            frame: position_frame(self),
        });
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
