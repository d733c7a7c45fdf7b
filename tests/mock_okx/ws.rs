//! Mock OKX's streams, on the same port as its REST routes, in OKX's v5 frames (okx.md §7):
//!
//! - `/ws/v5/public`: `subscribe` to `mark-price` for the mock's instrument is acked, the
//!   current mark pushed at once, then every `cadence` (OKX pushes on change every 200 ms and
//!   every 10 s unchanged; the mock pushes periodically so a short stale guard stays
//!   satisfied) and on every scripted move. An unknown instrument or channel is an `error`.
//! - `/ws/v5/private`: `login` is checked as OKX does — the key (60005), the passphrase
//!   (60024), the timestamp as whole seconds within 30 s (60004/60006) and the signature
//!   Base64(HMAC-SHA256(secret, ts + "GET" + "/users/self/verify")) (60007) — then closed with
//!   4001 on a failure; a second login is 60031. `account` and `positions` are refused with
//!   60011 before the login; after it they are acked and a snapshot of each is pushed, and every
//!   transfer pushes an `account` `event_update`.
//!
//! Both answer the text `ping` with `pong`. Switches: drop every connection, stall (open,
//! silent, no `pong` either), garbage to every connection, refuse the next N mark-stream
//! connections (accepted, then closed at once: a flapping server).

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use marginguard::venue::okx::signing;

use super::{Shared, State_};

/// What the test pushes to open connections.
#[derive(Debug, Clone)]
pub enum Push {
    /// The current mark, now (a scripted move).
    Mark,
    /// An `account` channel frame, to logged-in connections subscribed to it.
    Account(String),
    Garbage(String),
    Drop,
}

pub struct WsState {
    pub tx: broadcast::Sender<Push>,
    /// The mark stream's periodic push interval.
    pub cadence: Duration,
    /// Connections stay open but nothing is sent (not even `pong`).
    pub stalled: bool,
    /// The next this many mark-stream connections are accepted and closed at once.
    pub refuse: u32,
    pub public_connects: u32,
    pub private_connects: u32,
    pub logins: u32,
    pub login_failures: Vec<String>,
    /// Private subscriptions refused for want of a login (60011).
    pub refused_before_login: u32,
    pub pongs: u32,
    pub mark_frames: u64,
    /// When the first mark frame carrying the last scripted move was built to be handed to
    /// a socket (for reaction-latency figures), and whether one is still awaited.
    pub moved_mark_sent: Option<std::time::Instant>,
    pub move_awaited: bool,
    next_conn: u32,
}

impl Default for WsState {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            cadence: Duration::from_millis(200),
            stalled: false,
            refuse: 0,
            public_connects: 0,
            private_connects: 0,
            logins: 0,
            login_failures: Vec::new(),
            refused_before_login: 0,
            pongs: 0,
            mark_frames: 0,
            moved_mark_sent: None,
            move_awaited: false,
            next_conn: 0,
        }
    }
}

/// A `mark-price` push of the current mark, shaped like the docs' sample.
pub fn mark_frame(s: &State_) -> String {
    json!({
        "arg": {"channel": "mark-price", "instId": s.inst_id},
        "data": [{"instType": "SWAP", "instId": s.inst_id, "markPx": s.mark.to_string(),
                  "ts": s.now().to_string()}]
    })
    .to_string()
}

/// An `account` push (USDT only, as subscribed).
pub fn account_push(s: &State_, event_type: &str) -> String {
    let mut frame = json!({
        "arg": {"channel": "account", "ccy": "USDT", "uid": super::UID},
        "eventType": event_type,
        "data": [s.balance_data()]
    });
    if event_type == "snapshot" {
        frame["curPage"] = json!(1);
        frame["lastPage"] = json!(true);
    }
    frame.to_string()
}

fn positions_snapshot(s: &State_) -> String {
    let mut positions = Vec::new();
    if !s.contracts.is_zero() {
        let mut position = s.position_data();
        position["pTime"] = json!(s.now().to_string());
        positions.push(position);
    }
    json!({
        "arg": {"channel": "positions", "instType": "SWAP", "uid": super::UID},
        "eventType": "snapshot", "curPage": 1, "lastPage": true,
        "data": positions
    })
    .to_string()
}

fn event(event: &str, code: &str, msg: &str, conn: &str) -> String {
    json!({"event": event, "code": code, "msg": msg, "connId": conn}).to_string()
}

fn ack(arg: &Value, conn: &str) -> String {
    json!({"event": "subscribe", "arg": arg, "connId": conn}).to_string()
}

/// `GET /ws/v5/public`
pub async fn public(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| public_session(state, socket))
}

/// `GET /ws/v5/private`
pub async fn private(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| private_session(state, socket))
}

struct Admitted {
    conn: String,
    rx: broadcast::Receiver<Push>,
    cadence: Duration,
}

/// Counts the connection; `None` when it is to be refused (closed at once).
fn admit(state: &Shared, private: bool) -> Option<Admitted> {
    let mut s = state.lock().expect("mock lock");
    s.ws.next_conn += 1;
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
    Some(Admitted {
        conn: format!("{:08x}", 0xa4d3_ae55_u32.wrapping_add(s.ws.next_conn)),
        rx: s.ws.tx.subscribe(),
        cadence: s.ws.cadence,
    })
}

/// What one client frame asks of a session: frames to send, and whether to close after.
#[derive(Default)]
struct Reply {
    frames: Vec<String>,
    close: Option<CloseFrame>,
}

impl Reply {
    fn one(frame: String) -> Self {
        Reply {
            frames: vec![frame],
            close: None,
        }
    }
}

/// Sends `frames` unless the streams are stalled; `false` when the socket is gone.
async fn send_all(state: &Shared, socket: &mut WebSocket, frames: Vec<String>) -> bool {
    if state.lock().expect("mock lock").ws.stalled {
        return true;
    }
    for frame in frames {
        if socket.send(Message::Text(frame.into())).await.is_err() {
            return false;
        }
    }
    true
}

/// One incoming message: `Some(text)`, or `None` when the connection ends.
fn text_of(incoming: Option<Result<Message, axum::Error>>) -> Option<Option<String>> {
    match incoming {
        Some(Ok(Message::Text(text))) => Some(Some(text.to_string())),
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => None,
        Some(Ok(_)) => Some(None),
    }
}

async fn public_session(state: Shared, mut socket: WebSocket) {
    let Some(Admitted {
        conn,
        mut rx,
        cadence,
    }) = admit(&state, false)
    else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let mut subscribed = BTreeSet::new();
    let mut tick = tokio::time::interval(cadence);
    loop {
        let frames = tokio::select! {
            _ = tick.tick() => marks(&state, &subscribed),
            push = rx.recv() => match push {
                Ok(Push::Mark) => marks(&state, &subscribed),
                Ok(Push::Garbage(text)) => vec![text],
                Ok(Push::Drop) => return,
                Ok(Push::Account(_)) | Err(broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                Err(_) => return,
            },
            incoming = socket.recv() => match text_of(incoming) {
                None => return,
                Some(None) => Vec::new(),
                Some(Some(text)) => public_request(&state, &text, &conn, &mut subscribed),
            },
        };
        if !send_all(&state, &mut socket, frames).await {
            return;
        }
    }
}

/// The mark push, when the mock's instrument is subscribed.
fn marks(state: &Shared, subscribed: &BTreeSet<String>) -> Vec<String> {
    let mut s = state.lock().expect("mock lock");
    if s.ws.stalled || !subscribed.contains(&s.inst_id) {
        return Vec::new();
    }
    s.ws.mark_frames += 1;
    if s.ws.move_awaited {
        s.ws.move_awaited = false;
        s.ws.moved_mark_sent = Some(std::time::Instant::now());
    }
    vec![mark_frame(&s)]
}

fn public_request(
    state: &Shared,
    text: &str,
    conn: &str,
    subscribed: &mut BTreeSet<String>,
) -> Vec<String> {
    if text == "ping" {
        return vec![pong(state)];
    }
    let Some(args) = subscribe_args(text) else {
        return vec![invalid(text, conn)];
    };
    let inst_id = state.lock().expect("mock lock").inst_id.clone();
    let mut frames = Vec::new();
    for arg in args {
        let wanted = arg["instId"].as_str().unwrap_or_default().to_string();
        if arg["channel"] != "mark-price" || wanted != inst_id {
            let msg = format!("Wrong URL or channel:{},instId:{wanted} doesn't exist. Please use the correct URL, channel and parameters referring to API document.", arg["channel"]);
            frames.push(event("error", "60018", &msg, conn));
            continue;
        }
        frames.push(ack(&arg, conn));
        subscribed.insert(wanted);
    }
    // OKX pushes the current mark on subscribing.
    frames.extend(marks(state, subscribed));
    frames
}

fn pong(state: &Shared) -> String {
    state.lock().expect("mock lock").ws.pongs += 1;
    "pong".into()
}

fn invalid(text: &str, conn: &str) -> String {
    event("error", "60012", &format!("Invalid request: {text}"), conn)
}

/// The `args` of a `{"op":"subscribe",…}` frame.
fn subscribe_args(text: &str) -> Option<Vec<Value>> {
    let request: Value = serde_json::from_str(text).ok()?;
    if request["op"] != "subscribe" {
        return None;
    }
    request["args"]
        .as_array()
        .cloned()
        .filter(|a| !a.is_empty())
}

#[derive(Default)]
struct Session {
    logged_in: bool,
    account: bool,
}

async fn private_session(state: Shared, mut socket: WebSocket) {
    let Some(Admitted { conn, mut rx, .. }) = admit(&state, true) else {
        return;
    };
    let mut session = Session::default();
    loop {
        let reply = tokio::select! {
            push = rx.recv() => match push {
                Ok(Push::Account(frame)) if session.account => Reply::one(frame),
                Ok(Push::Garbage(text)) => Reply::one(text),
                Ok(Push::Drop) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Reply::default(),
                Err(_) => return,
            },
            incoming = socket.recv() => match text_of(incoming) {
                None => return,
                Some(None) => Reply::default(),
                Some(Some(text)) => private_request(&state, &text, &conn, &mut session),
            },
        };
        if !send_all(&state, &mut socket, reply.frames).await {
            return;
        }
        if let Some(close) = reply.close {
            let _ = socket.send(Message::Close(Some(close))).await;
            return;
        }
    }
}

fn private_request(state: &Shared, text: &str, conn: &str, session: &mut Session) -> Reply {
    if text == "ping" {
        return Reply::one(pong(state));
    }
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return Reply::one(invalid(text, conn));
    };
    match request["op"].as_str() {
        Some("login") => login(state, &request, conn, session),
        Some("subscribe") => Reply {
            frames: private_subscribe(state, &request, conn, session),
            close: None,
        },
        _ => Reply::one(invalid(text, conn)),
    }
}

fn login(state: &Shared, request: &Value, conn: &str, session: &mut Session) -> Reply {
    if session.logged_in {
        let msg = "The WebSocket endpoint does not allow multiple or repeated logins.";
        return Reply::one(event("error", "60031", msg, conn));
    }
    let mut s = state.lock().expect("mock lock");
    match check_login(&s, &request["args"][0]) {
        Ok(()) => {
            s.ws.logins += 1;
            session.logged_in = true;
            Reply::one(event("login", "0", "", conn))
        }
        Err((code, msg)) => {
            s.ws.login_failures.push(code.to_string());
            Reply {
                frames: vec![event("error", code, msg, conn)],
                close: Some(CloseFrame {
                    code: 4001,
                    reason: "Login Failed".into(),
                }),
            }
        }
    }
}

/// OKX's login checks, in its order; the signature with the documented algorithm.
fn check_login(s: &State_, args: &Value) -> Result<(), (&'static str, &'static str)> {
    let field = |name: &str| args[name].as_str();
    let (Some(key), Some(passphrase), Some(timestamp), Some(sign)) = (
        field("apiKey"),
        field("passphrase"),
        field("timestamp"),
        field("sign"),
    ) else {
        return Err(("60012", "Invalid request"));
    };
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("60004", "Invalid timestamp"));
    }
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| ("60004", "Invalid timestamp"))?;
    if (s.now() / 1000 - seconds).abs() > 30 {
        return Err(("60006", "Timestamp request expired"));
    }
    if key != s.api_key {
        return Err(("60005", "Invalid apiKey"));
    }
    if passphrase != s.passphrase {
        return Err(("60024", "Wrong passphrase"));
    }
    let expected = signing::sign(
        s.secret.as_bytes(),
        &format!("{timestamp}GET/users/self/verify"),
    );
    if !signing::signatures_match(&expected, sign) {
        return Err(("60007", "Invalid sign"));
    }
    Ok(())
}

fn private_subscribe(
    state: &Shared,
    request: &Value,
    conn: &str,
    session: &mut Session,
) -> Vec<String> {
    let Some(args) = request["args"].as_array().filter(|a| !a.is_empty()) else {
        return vec![invalid(&request.to_string(), conn)];
    };
    let mut s = state.lock().expect("mock lock");
    let mut frames = Vec::new();
    for arg in args {
        let channel = arg["channel"].as_str().unwrap_or_default();
        if !matches!(channel, "account" | "positions") {
            frames.push(event(
                "error",
                "60018",
                &format!("Wrong URL or channel:{channel} doesn't exist."),
                conn,
            ));
            continue;
        }
        // As OKX does: private channels only after a login on this connection.
        if !session.logged_in {
            s.ws.refused_before_login += 1;
            frames.push(event("error", "60011", "Please log in", conn));
            continue;
        }
        frames.push(ack(arg, conn));
        if channel == "account" {
            session.account = true;
            frames.push(account_push(&s, "snapshot"));
        } else {
            frames.push(positions_snapshot(&s));
        }
    }
    frames
}

impl State_ {
    pub fn push(&self, push: Push) {
        let _ = self.ws.tx.send(push);
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
