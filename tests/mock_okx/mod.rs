//! Mock OKX: an in-process axum server on 127.0.0.1:0 speaking the real v5 paths and the
//! `{code, msg, data}` envelope, with a scripted cross-margin account, a Funding wallet and a
//! ledger of transfers.
//!
//! It checks what OKX checks — the four `OK-ACCESS-*` headers (50103/50104/50106/50107), the
//! key (50111), the passphrase (50105), the Base64 HMAC over timestamp + method + path with
//! query + body (50113), the timestamp format (50112) and its 30 s window (50102), the demo
//! header against the kind of key (50101) — all HTTP 401. It counts requests per endpoint over
//! the documented window and answers 50011 (HTTP 429) on overuse, and the transfer's own
//! 2-per-second-per-currency limit with 58102. Transfers are looked up by `clientId` or
//! `transId` in `transfer-state`. A repeated `clientId` is *not* deduplicated (the docs do not
//! promise it), so a client that resends blindly pays twice here. Tests script the mark and make
//! the next call to a route misbehave.
//!
//! It streams too, on the same port (`ws`): marks on `/ws/v5/public`, the login-gated account
//! channels on `/ws/v5/private`; each transfer pushes an `account` event.
#![allow(dead_code)]

pub mod ws;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rust_decimal::Decimal;
use serde_json::json;

use marginguard::venue::okx::signing;

pub use crate::mock_server::d;
use crate::mock_server::{self as server, system_ms, Serving};

/// The reference's example key, secret (the docs' own) and passphrase (okx.md §2.2).
pub const API_KEY: &str = "37c541a1-0000-4000-8000-10fe7a038418";
pub const SECRET: &str = "22582BD0CFF14C41EDBF1AB98506286D";
pub const PASSPHRASE: &str = "Passphrase-123";
/// The account's `uid` (REST `account/config`, the private pushes' `arg`).
pub const UID: &str = "44705892343619584";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Time,
    Config,
    Balance,
    Positions,
    Instruments,
    Tiers,
    Funding,
    Transfer,
    TransferState,
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Route> {
        Some(match (method.as_str(), path) {
            ("GET", "/api/v5/public/time") => Route::Time,
            ("GET", "/api/v5/account/config") => Route::Config,
            ("GET", "/api/v5/account/balance") => Route::Balance,
            ("GET", "/api/v5/account/positions") => Route::Positions,
            ("GET", "/api/v5/public/instruments") => Route::Instruments,
            ("GET", "/api/v5/public/position-tiers") => Route::Tiers,
            ("GET", "/api/v5/asset/balances") => Route::Funding,
            ("POST", "/api/v5/asset/transfer") => Route::Transfer,
            ("GET", "/api/v5/asset/transfer-state") => Route::TransferState,
            _ => return None,
        })
    }

    fn private(self) -> bool {
        !matches!(self, Route::Time | Route::Instruments | Route::Tiers)
    }

    /// (requests, window) as documented (okx.md §5).
    pub fn limit(self) -> (usize, Duration) {
        let two = Duration::from_secs(2);
        let one = Duration::from_secs(1);
        match self {
            Route::Time | Route::Balance | Route::Positions | Route::Tiers => (10, two),
            Route::Instruments => (20, two),
            Route::Config => (5, two),
            Route::Funding => (6, one),
            Route::Transfer => (2, one),
            Route::TransferState => (10, one),
        }
    }
}

/// How the next call to a route misbehaves.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 200 with this body, instead of the real answer.
    Body(String),
    /// This status and body, nothing done.
    Status(u16, String),
    /// HTTP 429, `{"code":"50011"}`, no `Retry-After` (OKX documents none).
    RateLimited,
    /// Do the work, then answer after this delay (the client has given up by then).
    Slow(Duration),
    /// Do the work, then answer with this status and error code.
    AfterApplying(u16, &'static str, &'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub trans_id: String,
    pub client_id: String,
    pub amount: Decimal,
    /// The exact signed body the transfer came with.
    pub body: String,
    pub state: &'static str,
    /// When the mock applied it (its clock, ms).
    pub recorded_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub route: Option<Route>,
    pub query: String,
    pub status: u16,
    pub code: Option<String>,
    pub demo_header: Option<String>,
}

/// How `transfer-state` answers a `clientId` it does not know (undocumented; okx.md §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownClientId {
    EmptyData,
    Code51000,
    Code58129,
}

pub struct State_ {
    pub api_key: String,
    pub secret: String,
    pub passphrase: String,
    /// A demo-trading key: requests must carry `x-simulated-trading: 1`.
    pub demo: bool,
    pub skew_ms: i64,
    pub acct_lv: String,
    pub pos_mode: String,
    pub perm: String,
    pub ip: String,
    /// Trading-account USDT cash balance.
    pub cash: Decimal,
    pub funding: Decimal,
    pub inst_id: String,
    pub ct_val: Decimal,
    pub contracts: Decimal,
    pub entry: Decimal,
    pub mark: Decimal,
    pub marks: VecDeque<Decimal>,
    /// (maxSz in contracts, mmr rate)
    pub tiers: Vec<(Decimal, Decimal)>,
    /// Liquidation fee rate OKX adds to the ratio's denominator.
    pub fee_rate: Decimal,
    pub ledger: Vec<LedgerRow>,
    pub next_trans_id: u64,
    pub unknown_client_id: UnknownClientId,
    /// `transfer-state` knows a transfer only this long after it was made (the docs promise
    /// no moment).
    pub state_lag_ms: i64,
    pub seen: Vec<Seen>,
    pub faults: HashMap<Route, VecDeque<Fault>>,
    pub calls: HashMap<Route, VecDeque<Instant>>,
    /// Replaces a route's documented request count (tests that run many processes' worth of
    /// calls in a second).
    pub limit_override: HashMap<Route, usize>,
    /// Routes of {balance, positions} served at the current mark; a repeat moves the mark.
    pub served: HashSet<Route>,
    pub liquidated: bool,
    /// When each transfer request reached the server (before anything else was done).
    pub transfer_arrivals: Vec<Instant>,
    pub ws: ws::WsState,
}

pub type Shared = Arc<Mutex<State_>>;

pub struct MockOkx {
    pub addr: SocketAddr,
    pub url: String,
    pub state: Shared,
    _serving: Serving,
}

impl MockOkx {
    /// Futures mode (acctLv 2), net position mode; 100 contracts of BTC-USDT-SWAP (0.01 BTC
    /// each: 1 BTC) long at 60,000; `cash` USDT in Trading and `funding` in Funding. Tiers by
    /// contracts: ≤ 50 0.4 %, ≤ 250 0.5 %, ≤ 1,000 1 %; a liquidation fee of 0.05 % of notional
    /// in the ratio's denominator. Without a bot the account is liquidated when
    /// 6,000 + m − 60,000 ≤ 0.0055 m, i.e. below a mark of about 54,299.
    pub async fn start(cash: Decimal, funding: Decimal) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            api_key: API_KEY.into(),
            secret: SECRET.into(),
            passphrase: PASSPHRASE.into(),
            demo: false,
            skew_ms: 0,
            acct_lv: "2".into(),
            pos_mode: "net_mode".into(),
            perm: "read_only,trade".into(),
            ip: "203.0.113.7".into(),
            cash,
            funding,
            inst_id: "BTC-USDT-SWAP".into(),
            ct_val: d("0.01"),
            contracts: d("100"),
            entry: d("60000"),
            mark: d("60000"),
            marks: VecDeque::new(),
            tiers: vec![
                (d("50"), d("0.004")),
                (d("250"), d("0.005")),
                (d("1000"), d("0.01")),
            ],
            fee_rate: d("0.0005"),
            ledger: Vec::new(),
            next_trans_id: 754_147,
            unknown_client_id: UnknownClientId::EmptyData,
            state_lag_ms: 0,
            seen: Vec::new(),
            faults: HashMap::new(),
            calls: HashMap::new(),
            limit_override: HashMap::new(),
            served: HashSet::new(),
            liquidated: false,
            transfer_arrivals: Vec::new(),
            ws: ws::WsState::default(),
        }));
        let router = Router::new()
            .route("/ws/v5/public", axum::routing::get(ws::public))
            .route("/ws/v5/private", axum::routing::get(ws::private))
            .fallback(handle)
            .with_state(state.clone());
        let (addr, _serving) = server::serve(router).await;
        MockOkx {
            addr,
            url: format!("http://{addr}"),
            state,
            _serving,
        }
    }

    /// The adapter pointed at this mock, signing with `secret`, 400 ms request timeout,
    /// 58111 waits of 100 ms.
    pub fn adapter(&self, secret: &str) -> marginguard::venue::okx::OkxVenue {
        self.adapter_with(secret, PASSPHRASE, self.with(|s| s.demo))
    }

    pub fn adapter_with(
        &self,
        secret: &str,
        passphrase: &str,
        demo: bool,
    ) -> marginguard::venue::okx::OkxVenue {
        use marginguard::venue::okx::{Credentials, OkxSettings, OkxVenue};
        let mut settings = OkxSettings::custom(
            &self.url,
            demo,
            Credentials::new(API_KEY, secret, passphrase),
        );
        settings.http.timeout = Duration::from_millis(400);
        OkxVenue::new(&settings, marginguard::clock::Clock::Wall)
            .with_funding_fee_waits(vec![Duration::from_millis(100); 3])
    }

    /// The public stream's whole URL (the same port).
    pub fn ws_public_url(&self) -> String {
        format!("ws://{}/ws/v5/public", self.addr)
    }

    pub fn ws_private_url(&self) -> String {
        format!("ws://{}/ws/v5/private", self.addr)
    }

    /// The adapter with its streams on this mock, reconciled by REST every `reconcile_every`.
    /// The stale guard is 3 s, not OKX's 12 s: the mock pushes the mark every cadence whether
    /// it moved or not (OKX repeats an unchanged one only every 10 s), so three seconds
    /// without one honestly means the stream is gone — and the shared scenarios time it so.
    pub fn streaming_adapter(
        &self,
        reconcile_every: Duration,
    ) -> Box<dyn marginguard::venue::Venue> {
        self.streaming_adapter_with(SECRET, PASSPHRASE, reconcile_every)
    }

    /// `streaming_adapter` signing with this secret and passphrase.
    pub fn streaming_adapter_with(
        &self,
        secret: &str,
        passphrase: &str,
        reconcile_every: Duration,
    ) -> Box<dyn marginguard::venue::Venue> {
        use marginguard::venue::okx::{stream, Credentials, OkxSettings, OkxVenue};
        let mut settings = OkxSettings::custom(
            &self.url,
            self.with(|s| s.demo),
            Credentials::new(API_KEY, secret, passphrase),
        );
        settings.http.timeout = Duration::from_millis(400);
        let mut knobs = stream::settings();
        knobs.max_mark_age = Duration::from_secs(3);
        knobs.reconcile_every = reconcile_every;
        let settings = settings.with_stream(&self.ws_public_url(), &self.ws_private_url(), knobs);
        OkxVenue::open(&settings, marginguard::clock::Clock::Wall)
    }

    /// Moves the mark; the stream pushes it at once and REST reads it too.
    pub fn move_mark(&self, mark: Decimal) {
        self.with(|s| s.move_mark(mark));
    }

    pub fn set_stream_cadence(&self, cadence: Duration) {
        self.with(|s| s.ws.cadence = cadence);
    }

    pub fn stall_streams(&self, stalled: bool) {
        self.with(|s| s.ws.stalled = stalled);
    }

    pub fn drop_streams(&self) {
        self.with(|s| s.push(ws::Push::Drop));
    }

    pub fn send_garbage(&self, text: &str) {
        self.with(|s| s.push(ws::Push::Garbage(text.to_string())));
    }

    pub fn refuse_stream_connections(&self, count: u32) {
        self.with(|s| s.ws.refuse = count);
    }

    /// (mark-stream connections, account-stream connections) accepted so far.
    pub fn stream_connects(&self) -> (u32, u32) {
        self.with(|s| (s.ws.public_connects, s.ws.private_connects))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        f(&mut self.state.lock().expect("mock lock"))
    }

    pub fn script_marks(&self, marks: &[Decimal]) {
        self.with(|s| s.marks = marks.iter().copied().collect());
    }

    pub fn fail_next(&self, route: Route, fault: Fault) {
        self.with(|s| s.faults.entry(route).or_default().push_back(fault));
    }

    pub fn ledger(&self) -> Vec<LedgerRow> {
        self.with(|s| s.ledger.clone())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.with(|s| s.seen.clone())
    }

    pub fn count(&self, route: Route) -> usize {
        self.with(|s| s.seen.iter().filter(|r| r.route == Some(route)).count())
    }

    /// Requests to `route` received before the first request to `first` (all, if none).
    pub fn count_before(&self, route: Route, first: Route) -> usize {
        self.with(|s| {
            s.seen
                .iter()
                .take_while(|r| r.route != Some(first))
                .filter(|r| r.route == Some(route))
                .count()
        })
    }

    pub fn count_code(&self, code: &str) -> usize {
        self.with(|s| {
            s.seen
                .iter()
                .filter(|r| r.code.as_deref() == Some(code))
                .count()
        })
    }

    pub fn cash(&self) -> Decimal {
        self.with(|s| s.cash)
    }

    pub fn liquidated(&self) -> bool {
        self.with(|s| s.liquidated)
    }
}

impl State_ {
    fn now(&self) -> i64 {
        system_ms() + self.skew_ms
    }

    fn coins(&self) -> Decimal {
        self.contracts * self.ct_val
    }

    fn notional(&self) -> Decimal {
        (self.coins() * self.mark).abs()
    }

    fn tier_rate(&self) -> Decimal {
        let size = self.contracts.abs();
        self.tiers
            .iter()
            .find(|(max, _)| size <= *max)
            .or(self.tiers.last())
            .map(|(_, rate)| *rate)
            .unwrap_or_default()
    }

    fn mmr(&self) -> Decimal {
        self.notional() * self.tier_rate()
    }

    /// The margin ratio's denominator: maintenance plus the liquidation fee.
    fn denominator(&self) -> Decimal {
        self.mmr() + self.notional() * self.fee_rate
    }

    fn upl(&self) -> Decimal {
        self.coins() * (self.mark - self.entry)
    }

    fn eq(&self) -> Decimal {
        self.cash + self.upl()
    }

    /// OKX's `mgnRatio`, or `""` without a position.
    fn ratio(&self) -> String {
        if self.contracts.is_zero() {
            return String::new();
        }
        (self.eq() / self.denominator()).round_dp(12).to_string()
    }

    /// The liquidation engine: a ratio at or below 1 closes the position.
    fn inspect(&mut self) {
        if !self.contracts.is_zero() && self.eq() <= self.denominator() {
            self.liquidated = true;
            self.contracts = Decimal::ZERO;
            self.cash = Decimal::ZERO;
        }
    }

    /// Balance and positions of one snapshot see the same mark: the first read of a pair takes
    /// the next scripted mark (the last one stays), the other read of the pair shares it.
    fn observe(&mut self, route: Route) {
        if self.served.is_empty() || self.served.contains(&route) {
            self.served.clear();
            if let Some(mark) = self.marks.pop_front() {
                self.mark = mark;
            }
        }
        self.served.insert(route);
        self.inspect();
    }

    /// One `account/balance` entry (and the `account` channel's `data` entry) at the current
    /// mark, with the account-level or currency-level fields the account mode uses.
    pub fn balance_data(&self) -> serde_json::Value {
        let eq = self.eq().to_string();
        let ratio = self.ratio();
        let futures = self.acct_lv == "2";
        let account = |v: String| if futures { String::new() } else { v };
        let detail = |v: String| if futures { v } else { String::new() };
        json!({
            "adjEq": account(eq.clone()), "availEq": account(eq.clone()), "borrowFroz": "",
            "imr": account((self.notional() / Decimal::TEN).to_string()), "isoEq": "0",
            "mgnRatio": account(ratio.clone()), "mmr": account(self.mmr().to_string()),
            "notionalUsd": account(self.notional().to_string()), "ordFroz": "",
            "totalEq": eq, "uTime": self.now().to_string(), "upl": self.upl().to_string(),
            "details": [{
                "availBal": self.cash.to_string(), "availEq": self.eq().to_string(),
                "cashBal": self.cash.to_string(), "ccy": "USDT", "disEq": self.eq().to_string(),
                "eq": self.eq().to_string(), "eqUsd": self.eq().to_string(), "frozenBal": "0",
                "imr": detail((self.notional() / Decimal::TEN).to_string()),
                "mgnRatio": detail(ratio), "mmr": detail(self.mmr().to_string()),
                "notionalLever": "", "uTime": self.now().to_string(), "upl": self.upl().to_string()
            }]
        })
    }

    /// The open position as `account/positions` (and the `positions` channel) shows it.
    pub fn position_data(&self) -> serde_json::Value {
        json!({
            "instId": self.inst_id, "instType": "SWAP", "mgnMode": "cross", "posSide": "net",
            "pos": self.contracts.to_string(), "ccy": "USDT", "lever": "10",
            "avgPx": self.entry.to_string(), "markPx": self.mark.to_string(), "liqPx": "",
            "margin": "", "mgnRatio": "0", "mmr": self.mmr().to_string(),
            "imr": (self.notional() / Decimal::TEN).to_string(),
            "notionalUsd": self.notional().to_string(), "upl": self.upl().to_string(),
            "posId": "287999792370819074", "cTime": "1724740225685",
            "uTime": self.now().to_string()
        })
    }
}

fn envelope(code: &str, msg: &str, data: serde_json::Value) -> String {
    json!({"code": code, "msg": msg, "data": data}).to_string()
}

fn error(code: &str, msg: &str) -> String {
    envelope(code, msg, json!([]))
}

fn params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let arrived = Instant::now();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let route = Route::of(&method, &path);
    let (status, out, delay) = {
        let mut s = state.lock().expect("mock lock");
        if route == Some(Route::Transfer) {
            s.transfer_arrivals.push(arrived);
        }
        let (status, out, delay) = answer(&mut s, route, &method, &path, &query, &body, &headers);
        let code = serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str().map(String::from)));
        s.seen.push(Seen {
            route,
            query: query.clone(),
            status,
            code,
            demo_header: headers
                .get("x-simulated-trading")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        });
        (status, out, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), out).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

type Answer = (u16, String, Option<Duration>);

fn answer(
    s: &mut State_,
    route: Option<Route>,
    method: &Method,
    path: &str,
    query: &str,
    body: &str,
    headers: &HeaderMap,
) -> Answer {
    let Some(route) = route else {
        return (404, "<html><body>404 Not Found</body></html>".into(), None);
    };
    // The documented limit over a sliding window of the documented length.
    let now = Instant::now();
    let (limit, window) = route.limit();
    let limit = s.limit_override.get(&route).copied().unwrap_or(limit);
    let calls = s.calls.entry(route).or_default();
    while calls
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        calls.pop_front();
    }
    if calls.len() >= limit {
        return if route == Route::Transfer {
            (429, error("58102", "Rate limit reached. Please refer to API docs and throttle requests accordingly."), None)
        } else {
            (429, error("50011", "Rate limit reached. Please refer to API documentation and throttle requests accordingly."), None)
        };
    }
    calls.push_back(now);
    let fault = s.faults.get_mut(&route).and_then(|q| q.pop_front());
    match &fault {
        Some(Fault::Body(b)) => return (200, b.clone(), None),
        Some(Fault::Status(code, b)) => return (*code, b.clone(), None),
        Some(Fault::RateLimited) => {
            return (429, error("50011", "Too Many Requests"), None);
        }
        _ => {}
    }
    if route.private() {
        let path_and_query = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        if let Err((status, out)) = authenticate(s, method.as_str(), &path_and_query, body, headers)
        {
            return (status, out, None);
        }
    }
    let (status, out) = serve(s, route, query, body);
    match fault {
        Some(Fault::Slow(delay)) => (status, out, Some(delay)),
        Some(Fault::AfterApplying(status, code, msg)) => (status, error(code, msg), None),
        _ => (status, out, None),
    }
}

/// `2020-12-08T09:08:57.715Z` → Unix ms; `None` for any other shape.
fn parse_iso(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() != 24
        || &ts[4..5] != "-"
        || &ts[10..11] != "T"
        || &ts[19..20] != "."
        || !ts.ends_with('Z')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms)
}

fn authenticate(
    s: &State_,
    method: &str,
    path_and_query: &str,
    body: &str,
    headers: &HeaderMap,
) -> Result<(), (u16, String)> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (key, sign, ts, pass) = (
        header("ok-access-key"),
        header("ok-access-sign"),
        header("ok-access-timestamp"),
        header("ok-access-passphrase"),
    );
    let reject = |code: &str, msg: &str| Err((401, error(code, msg)));
    if key.is_empty() {
        return reject("50103", "Request header \"OK-ACCESS-KEY\" cannot be empty.");
    }
    if pass.is_empty() {
        return reject(
            "50104",
            "Request header \"OK-ACCESS-PASSPHRASE\" cannot be empty.",
        );
    }
    if sign.is_empty() {
        return reject(
            "50106",
            "Request header \"OK-ACCESS-SIGN\" cannot be empty.",
        );
    }
    if ts.is_empty() {
        return reject(
            "50107",
            "Request header \"OK-ACCESS-TIMESTAMP\" cannot be empty.",
        );
    }
    let Some(at) = parse_iso(ts) else {
        return reject("50112", "Invalid OK-ACCESS-TIMESTAMP");
    };
    if (s.now() - at).abs() > 30_000 {
        return reject("50102", "Timestamp request expired");
    }
    if key != s.api_key {
        return reject("50111", "Invalid OK-ACCESS-KEY");
    }
    if pass != s.passphrase {
        return reject(
            "50105",
            "Request header \"OK-ACCESS-PASSPHRASE\" incorrect.",
        );
    }
    if (header("x-simulated-trading") == "1") != s.demo {
        return reject("50101", "APIKey does not match current environment.");
    }
    let expected = signing::sign(
        s.secret.as_bytes(),
        &signing::prehash(ts, method, path_and_query, body),
    );
    if !signing::signatures_match(&expected, sign) {
        return reject("50113", "Invalid Sign");
    }
    Ok(())
}

fn serve(s: &mut State_, route: Route, query: &str, body: &str) -> (u16, String) {
    let p = params(query);
    let ok = |data: serde_json::Value| (200, envelope("0", "", data));
    match route {
        Route::Time => ok(json!([{"ts": s.now().to_string()}])),
        Route::Config => ok(json!([{
            "acctLv": s.acct_lv, "acctStpMode": "cancel_maker", "autoLoan": false,
            "ctIsoMode": "automatic", "ip": s.ip, "type": "0", "kycLv": "3", "label": "marginguard",
            "level": "Lv1", "liquidationGear": "-1", "mainUid": "44705892343619584",
            "mgnIsoMode": "automatic", "perm": s.perm, "posMode": s.pos_mode, "roleType": "0",
            "uid": UID
        }])),
        Route::Balance => {
            s.observe(Route::Balance);
            ok(json!([s.balance_data()]))
        }
        Route::Positions => {
            s.observe(Route::Positions);
            if s.contracts.is_zero() {
                return ok(json!([]));
            }
            ok(json!([s.position_data()]))
        }
        Route::Instruments => {
            if p.get("instId") != Some(&s.inst_id) {
                return (400, error("51000", "Parameter instId error"));
            }
            ok(json!([{
                "instId": s.inst_id, "instType": "SWAP", "instFamily": "BTC-USDT", "uly": "BTC-USDT",
                "ctVal": s.ct_val.to_string(), "ctValCcy": "BTC", "ctMult": "1", "ctType": "linear",
                "settleCcy": "USDT", "lotSz": "0.01", "minSz": "0.01", "tickSz": "0.1", "state": "live"
            }]))
        }
        Route::Tiers => {
            if p.get("instFamily").map(String::as_str) != Some("BTC-USDT")
                || p.get("tdMode").map(String::as_str) != Some("cross")
            {
                return (400, error("51000", "Parameter instFamily error"));
            }
            let mut min = Decimal::ZERO;
            let rows: Vec<serde_json::Value> = s.tiers.iter().enumerate().map(|(i, (max, rate))| {
                let row = json!({"tier": (i + 1).to_string(), "minSz": min.to_string(), "maxSz": max.to_string(),
                    "mmr": rate.to_string(), "imr": (rate * Decimal::TWO).to_string(), "maxLever": "50",
                    "instFamily": "BTC-USDT", "uly": "BTC-USDT", "instId": "", "baseMaxLoan": "", "quoteMaxLoan": "",
                    "optMgnFactor": "0"});
                min = *max;
                row
            }).collect();
            ok(json!(rows))
        }
        Route::Funding => {
            if s.funding.is_zero() {
                return ok(json!([]));
            }
            ok(
                json!([{"availBal": s.funding.to_string(), "bal": s.funding.to_string(), "ccy": "USDT", "frozenBal": "0"}]),
            )
        }
        Route::Transfer => {
            let Ok(req) = serde_json::from_str::<serde_json::Value>(body) else {
                return (400, error("50014", "Parameter body can not be empty"));
            };
            let field = |k: &str| {
                req.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            if field("ccy") != "USDT"
                || field("from") != "6"
                || field("to") != "18"
                || !matches!(field("type").as_str(), "" | "0")
            {
                return (400, error("51000", "Parameter from error"));
            }
            let client_id = field("clientId");
            if client_id.len() > 32 || !client_id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return (400, error("51000", "Parameter clientId error"));
            }
            let Some(amount) = field("amt")
                .parse::<Decimal>()
                .ok()
                .filter(|a| *a > Decimal::ZERO)
            else {
                return (
                    400,
                    error("58114", "Transfer amount must be greater than 0"),
                );
            };
            if amount > s.funding {
                return (
                    200,
                    error("58116", "Transfer exceeds the available amount."),
                );
            }
            s.funding -= amount;
            s.cash += amount;
            let trans_id = s.next_trans_id.to_string();
            s.next_trans_id += 1;
            s.ledger.push(LedgerRow {
                trans_id: trans_id.clone(),
                client_id: client_id.clone(),
                amount,
                body: body.to_string(),
                state: "success",
                recorded_ms: s.now(),
            });
            let update = ws::account_push(s, "event_update");
            s.push(ws::Push::Account(update));
            ok(
                json!([{"transId": trans_id, "ccy": "USDT", "clientId": client_id, "from": "6", "amt": amount.to_string(), "to": "18"}]),
            )
        }
        Route::TransferState => {
            let visible_before = s.now() - s.state_lag_ms;
            let mut visible = s.ledger.iter().filter(|r| r.recorded_ms <= visible_before);
            let row = match (p.get("transId"), p.get("clientId")) {
                (Some(t), _) => visible.find(|r| &r.trans_id == t),
                (None, Some(c)) => visible.find(|r| &r.client_id == c),
                (None, None) => return (400, error("50014", "Parameter transId can not be empty")),
            };
            match row {
                Some(r) => ok(
                    json!([{"amt": r.amount.to_string(), "ccy": "USDT", "clientId": r.client_id,
                    "from": "6", "instId": "", "state": r.state, "subAcct": "", "to": "18", "toInstId": "",
                    "transId": r.trans_id, "type": "0"}]),
                ),
                None => match s.unknown_client_id {
                    UnknownClientId::EmptyData => ok(json!([])),
                    UnknownClientId::Code51000 => (400, error("51000", "Parameter clientId error")),
                    UnknownClientId::Code58129 => (
                        200,
                        error(
                            "58129",
                            "clientId is incorrect or clientId does not match with 'type'",
                        ),
                    ),
                },
            }
        }
    }
}
