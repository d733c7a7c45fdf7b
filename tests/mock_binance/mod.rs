//! Mock Binance: an in-process axum server on 127.0.0.1:0 speaking the real paths and JSON
//! shapes the adapter uses, with a scripted USDⓈ-M cross account and a ledger of transfers.
//!
//! It checks what the real venue checks — the API key header, the HMAC signature over the exact
//! query and body (-1022, HTTP 400, on a bad one), `timestamp` against `recvWindow` (-1021) —
//! counts request weight per pool and reports it in the `X-MBX-USED-WEIGHT-1M` /
//! `X-SAPI-USED-*-WEIGHT-1M` headers, answers 429 with `Retry-After` on overuse and 418 (an IP
//! ban) to a client that keeps calling through a 429. Tests can script the mark and make the
//! next call to a route misbehave.
#![allow(dead_code)]

pub mod ws;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rust_decimal::Decimal;
use serde_json::json;

use marginguard::venue::binance::signing;

pub use crate::mock_server::d;
use crate::mock_server::{self as server, system_ms, Serving};

/// The futures docs' example key pair (shared/exchanges/binance.md §2.2).
pub const API_KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
pub const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

/// The routes a test can aim a fault at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    ServerTime,
    Account,
    PositionRisk,
    AccountConfig,
    Brackets,
    SpotAccount,
    Transfer,
    TransferHistory,
    ApiRestrictions,
    ListenKeyCreate,
    ListenKeyKeepalive,
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Route> {
        Some(match (method.as_str(), path) {
            ("GET", "/fapi/v1/time") => Route::ServerTime,
            ("GET", "/fapi/v3/account") => Route::Account,
            ("GET", "/fapi/v3/positionRisk") => Route::PositionRisk,
            ("GET", "/fapi/v1/accountConfig") => Route::AccountConfig,
            ("GET", "/fapi/v1/leverageBracket") => Route::Brackets,
            ("GET", "/api/v3/account") => Route::SpotAccount,
            ("POST", "/sapi/v1/asset/transfer") => Route::Transfer,
            ("GET", "/sapi/v1/asset/transfer") => Route::TransferHistory,
            ("GET", "/sapi/v1/account/apiRestrictions") => Route::ApiRestrictions,
            ("POST", "/fapi/v1/listenKey") => Route::ListenKeyCreate,
            ("PUT", "/fapi/v1/listenKey") => Route::ListenKeyKeepalive,
            _ => return None,
        })
    }

    fn signed(self) -> bool {
        !matches!(
            self,
            Route::ServerTime | Route::ListenKeyCreate | Route::ListenKeyKeepalive
        )
    }

    /// `USER_STREAM` security: the key header, no signature.
    fn keyed(self) -> bool {
        matches!(self, Route::ListenKeyCreate | Route::ListenKeyKeepalive)
    }

    /// (pool, weight) as documented.
    fn weight(self) -> (Pool, u32) {
        match self {
            Route::ServerTime
            | Route::Brackets
            | Route::ListenKeyCreate
            | Route::ListenKeyKeepalive => (Pool::Futures, 1),
            Route::Account | Route::PositionRisk | Route::AccountConfig => (Pool::Futures, 5),
            Route::SpotAccount => (Pool::Spot, 20),
            Route::Transfer => (Pool::SapiUid, 900),
            Route::TransferHistory | Route::ApiRestrictions => (Pool::SapiIp, 1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pool {
    Futures,
    Spot,
    SapiIp,
    SapiUid,
}

impl Pool {
    fn header(self) -> &'static str {
        match self {
            Pool::Futures | Pool::Spot => "x-mbx-used-weight-1m",
            Pool::SapiIp => "x-sapi-used-ip-weight-1m",
            Pool::SapiUid => "x-sapi-used-uid-weight-1m",
        }
    }

    fn default_limit(self) -> u32 {
        match self {
            Pool::Futures => 2_400,
            Pool::Spot => 6_000,
            Pool::SapiIp => 12_000,
            Pool::SapiUid => 180_000,
        }
    }
}

/// How the next call to a route misbehaves.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 200 with this body.
    Body(String),
    /// This status and body.
    Status(u16, String),
    /// 429 with `Retry-After`.
    TooManyRequests { retry_after_secs: u64 },
    /// 418 with `Retry-After`.
    Banned { retry_after_secs: u64 },
    /// Do the work, then answer only after this delay (the client has given up by then).
    Slow(Duration),
    /// Do the work, then answer 503 "Unknown error" (execution status unknown).
    UnknownAfterApplying,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub tran_id: i64,
    pub asset: String,
    pub amount: Decimal,
    pub timestamp: i64,
    pub status: &'static str,
    /// The exact signed query the transfer came with (its signature verified).
    pub query: String,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub route: Option<Route>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub code: Option<i64>,
}

pub struct State_ {
    pub api_key: String,
    pub secret: String,
    /// Server clock = system clock + this.
    pub skew_ms: i64,
    pub wallet: Decimal,
    pub spot_free: Decimal,
    pub symbol: String,
    pub qty: Decimal,
    pub entry: Decimal,
    pub mark: Decimal,
    pub marks: VecDeque<Decimal>,
    /// (floor, rate, cum)
    pub brackets: Vec<(Decimal, Decimal, Decimal)>,
    pub multi_assets: bool,
    pub restrictions: serde_json::Value,
    pub ledger: Vec<LedgerRow>,
    /// A transfer shows in the history only this long after it was made: the docs promise
    /// no moment, and a lagging history must not be read as "never happened".
    pub history_lag_ms: i64,
    pub next_tran_id: i64,
    pub seen: Vec<Seen>,
    pub faults: HashMap<Route, VecDeque<Fault>>,
    pub limits: HashMap<Pool, u32>,
    /// (window start, weight used in it), per pool; a window lasts 60 s from its first call.
    pub used: HashMap<Pool, (Instant, u32)>,
    pub retry_after_secs: u64,
    /// After a 429, per pool: calls before this instant earn a ban.
    pub backoff_until: HashMap<Pool, Instant>,
    pub banned_until: Option<Instant>,
    pub liquidated: bool,
    /// Extra open positions on isolated margin (1 contract each, isolated wallet 50).
    pub isolated: Vec<String>,
    pub ws: ws::WsState,
    /// When each transfer request reached the server (before anything else was done).
    pub transfer_arrivals: Vec<Instant>,
}

pub type Shared = Arc<Mutex<State_>>;

pub struct MockBinance {
    pub addr: SocketAddr,
    pub url: String,
    pub state: Shared,
    _serving: Serving,
}

impl MockBinance {
    /// A 1 BTC long at 60,000 with `wallet` in the futures wallet and `reserve` free USDT in
    /// Spot; BTC brackets [0, 50k) 0.4 %, [50k, 250k) 0.5 % (cum 50), [250k, …) 1 % (cum 1,300).
    pub async fn start(wallet: Decimal, reserve: Decimal) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            api_key: API_KEY.into(),
            secret: SECRET.into(),
            skew_ms: 0,
            wallet,
            spot_free: reserve,
            symbol: "BTCUSDT".into(),
            qty: d("1"),
            entry: d("60000"),
            mark: d("60000"),
            marks: VecDeque::new(),
            brackets: vec![
                (d("0"), d("0.004"), d("0")),
                (d("50000"), d("0.005"), d("50")),
                (d("250000"), d("0.01"), d("1300")),
            ],
            multi_assets: false,
            restrictions: json!({
                "ipRestrict": true, "createTime": 1698645219000u64, "enableReading": true,
                "enableWithdrawals": false, "enableInternalTransfer": false, "enableMargin": false,
                "enableFutures": true, "permitsUniversalTransfer": true, "enableVanillaOptions": false,
                "enableFixApiTrade": false, "enableFixReadOnly": false,
                "enableSpotAndMarginTrading": false, "enablePortfolioMarginTrading": false
            }),
            ledger: Vec::new(),
            history_lag_ms: 0,
            next_tran_id: 13_526_853_623,
            seen: Vec::new(),
            faults: HashMap::new(),
            limits: HashMap::new(),
            used: HashMap::new(),
            retry_after_secs: 1,
            backoff_until: HashMap::new(),
            banned_until: None,
            liquidated: false,
            isolated: Vec::new(),
            ws: ws::WsState::default(),
            transfer_arrivals: Vec::new(),
        }));
        let router = Router::new()
            .route("/market/stream", axum::routing::get(ws::market))
            .route("/private/ws", axum::routing::get(ws::private))
            .fallback(handle)
            .with_state(state.clone());
        let (addr, _serving) = server::serve(router).await;
        MockBinance {
            addr,
            url: format!("http://{addr}"),
            state,
            _serving,
        }
    }

    /// The adapter pointed at this mock, signing with `secret`, with a 400 ms request timeout.
    pub fn adapter(&self, secret: &str) -> marginguard::venue::binance::BinanceVenue {
        use marginguard::venue::binance::{BinanceSettings, BinanceVenue, Credentials};
        let mut settings =
            BinanceSettings::custom(&self.url, &self.url, Credentials::new(API_KEY, secret));
        settings.http.timeout = Duration::from_millis(400);
        BinanceVenue::new(&settings, marginguard::clock::Clock::Wall)
    }

    /// The streams' base URL (the same port).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The adapter with its streams on this mock: marks and account events over WebSocket,
    /// the account re-priced locally, reconciled by REST every `reconcile_every`.
    pub fn streaming_adapter(
        &self,
        reconcile_every: Duration,
    ) -> Box<dyn marginguard::venue::Venue> {
        use marginguard::venue::binance::{stream, BinanceSettings, BinanceVenue, Credentials};
        use marginguard::venue::streaming::StreamSettings;
        let mut settings =
            BinanceSettings::custom(&self.url, &self.url, Credentials::new(API_KEY, SECRET));
        settings.http.timeout = Duration::from_millis(400);
        let mut knobs = StreamSettings::for_cadence(stream::MARK_CADENCE);
        knobs.reconcile_every = reconcile_every;
        let settings = settings.with_stream(&self.ws_url(), knobs);
        BinanceVenue::open(&settings, marginguard::clock::Clock::Wall)
    }

    /// Moves the mark; the stream pushes it at once and REST reads it too.
    pub fn move_mark(&self, mark: Decimal) {
        self.with(|s| s.move_mark(mark));
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

    pub fn push_margin_call(&self) {
        self.with(|s| {
            let frame = ws::margin_call(s);
            s.push(ws::Push::Account(frame));
        });
    }

    /// Pushes `listenKeyExpired` and forgets the key (a new one must be created).
    pub fn expire_listen_key(&self) {
        self.with(|s| {
            if let Some(key) = s.ws.listen_key.take() {
                s.push(ws::Push::Account(ws::listen_key_expired(&key)));
            }
        });
    }

    /// (mark-stream connections, account-stream connections) accepted so far.
    pub fn stream_connects(&self) -> (u32, u32) {
        self.with(|s| (s.ws.market_connects, s.ws.private_connects))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        f(&mut self.state.lock().expect("mock lock"))
    }

    /// Each `positionRisk` call takes the next mark; the last one stays.
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

    pub fn count_code(&self, code: i64) -> usize {
        self.with(|s| s.seen.iter().filter(|r| r.code == Some(code)).count())
    }

    pub fn count_status(&self, status: u16) -> usize {
        self.with(|s| s.seen.iter().filter(|r| r.status == status).count())
    }

    pub fn wallet(&self) -> Decimal {
        self.with(|s| s.wallet)
    }

    pub fn liquidated(&self) -> bool {
        self.with(|s| s.liquidated)
    }
}

impl State_ {
    fn now(&self) -> i64 {
        system_ms() + self.skew_ms
    }

    fn maintenance(&self) -> Decimal {
        let notional = (self.qty * self.mark).abs();
        let (_, rate, cum) = self
            .brackets
            .iter()
            .rev()
            .find(|(floor, _, _)| *floor <= notional)
            .copied()
            .unwrap_or((Decimal::ZERO, Decimal::ZERO, Decimal::ZERO));
        (notional * rate - cum).max(Decimal::ZERO)
    }

    fn pnl(&self) -> Decimal {
        self.qty * (self.mark - self.entry)
    }

    /// The venue's liquidation engine: equity at or below maintenance closes the position.
    fn inspect(&mut self) {
        if !self.qty.is_zero() && self.wallet + self.pnl() <= self.maintenance() {
            self.liquidated = true;
            self.qty = Decimal::ZERO;
            self.wallet = Decimal::ZERO;
        }
    }
}

fn error_body(code: i64, msg: &str) -> String {
    json!({"code": code, "msg": msg}).to_string()
}

fn params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
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
    let (status, body, extra, delay) = {
        let mut s = state.lock().expect("mock lock");
        if route == Some(Route::Transfer) {
            s.transfer_arrivals.push(arrived);
        }
        let (status, body, extra, delay) = answer(&mut s, route, &query, &body, &headers);
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_i64()));
        s.seen.push(Seen {
            route,
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status,
            code,
        });
        (status, body, extra, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

type Answer = (u16, String, Vec<(&'static str, String)>, Option<Duration>);

fn answer(
    s: &mut State_,
    route: Option<Route>,
    query: &str,
    body: &str,
    headers: &HeaderMap,
) -> Answer {
    let Some(route) = route else {
        return (
            404,
            "<html><body>404 Not Found</body></html>".into(),
            vec![],
            None,
        );
    };
    let now = Instant::now();
    let retry = s.retry_after_secs;
    if let Some(until) = s.banned_until.filter(|t| *t > now) {
        let secs = (until - now).as_secs().max(1);
        return (
            418,
            error_body(-1003, "Way too many requests; IP banned."),
            vec![("retry-after", secs.to_string())],
            None,
        );
    }
    let (pool, weight) = route.weight();
    // Calling through a 429's Retry-After earns a ban.
    if s.backoff_until.get(&pool).is_some_and(|t| *t > now) {
        s.banned_until = Some(now + Duration::from_secs(retry));
        return (
            418,
            error_body(-1003, "Way too many requests; IP banned."),
            vec![("retry-after", retry.to_string())],
            None,
        );
    }
    let limit = s.limits.get(&pool).copied().unwrap_or(pool.default_limit());
    let window = s.used.entry(pool).or_insert((now, 0));
    if now.duration_since(window.0) >= Duration::from_secs(60) {
        *window = (now, 0);
    }
    window.1 += weight;
    let used = window.1;
    let mut extra = vec![(pool.header(), used.to_string())];
    if used > limit {
        s.backoff_until
            .insert(pool, now + Duration::from_secs(retry));
        extra.push(("retry-after", retry.to_string()));
        return (
            429,
            error_body(
                -1003,
                "Too many requests; please use the websocket for live updates.",
            ),
            extra,
            None,
        );
    }
    let fault = s.faults.get_mut(&route).and_then(|q| q.pop_front());
    match &fault {
        Some(Fault::Body(b)) => return (200, b.clone(), extra, None),
        Some(Fault::Status(code, b)) => return (*code, b.clone(), extra, None),
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            s.backoff_until
                .insert(pool, now + Duration::from_secs(*retry_after_secs));
            extra.push(("retry-after", retry_after_secs.to_string()));
            return (429, error_body(-1003, "Too many requests."), extra, None);
        }
        Some(Fault::Banned { retry_after_secs }) => {
            s.banned_until = Some(now + Duration::from_secs(*retry_after_secs));
            extra.push(("retry-after", retry_after_secs.to_string()));
            return (
                418,
                error_body(-1003, "Way too many requests; IP banned."),
                extra,
                None,
            );
        }
        _ => {}
    }
    if route.signed() {
        if let Err((status, body)) = authenticate(s, query, body, headers) {
            return (status, body, extra, None);
        }
    }
    if route.keyed()
        && headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok()) != Some(s.api_key.as_str())
    {
        return (
            401,
            error_body(-2015, "Invalid API-key, IP, or permissions for action."),
            extra,
            None,
        );
    }
    let (status, out) = serve(s, route, query);
    match fault {
        Some(Fault::Slow(delay)) => (status, out, extra, Some(delay)),
        Some(Fault::UnknownAfterApplying) => (
            503,
            error_body(
                -1000,
                "Unknown error, please check your request or try again later.",
            ),
            extra,
            None,
        ),
        _ => (status, out, extra, None),
    }
}

/// Key header, signature over the exact `totalParams`, then the timing rule.
fn authenticate(
    s: &State_,
    query: &str,
    body: &str,
    headers: &HeaderMap,
) -> Result<(), (u16, String)> {
    let key = headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok());
    if key != Some(s.api_key.as_str()) {
        return Err((
            401,
            error_body(-2015, "Invalid API-key, IP, or permissions for action."),
        ));
    }
    // `signature` must be the last parameter; everything before it is what was signed.
    let Some((signed, signature)) = query.rsplit_once("&signature=") else {
        return Err((
            400,
            error_body(
                -1102,
                "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
            ),
        ));
    };
    let total_params = format!("{signed}{body}");
    let expected = signing::sign(s.secret.as_bytes(), &total_params);
    if !signing::signatures_match(&expected, signature) {
        return Err((
            400,
            error_body(-1022, "Signature for this request is not valid."),
        ));
    }
    let p = params(signed);
    let recv_window: i64 = p
        .get("recvWindow")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    if recv_window > 60_000 {
        return Err((400, error_body(-1131, "recvWindow must be less than 60000")));
    }
    let Some(timestamp) = p.get("timestamp").and_then(|v| v.parse::<i64>().ok()) else {
        return Err((
            400,
            error_body(-1102, "Mandatory parameter 'timestamp' was not sent."),
        ));
    };
    let server = s.now();
    if !(timestamp < server + 1000 && server - timestamp <= recv_window) {
        return Err((
            400,
            error_body(
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
            ),
        ));
    }
    Ok(())
}

fn serve(s: &mut State_, route: Route, query: &str) -> (u16, String) {
    let p = params(query);
    match route {
        Route::ServerTime => (200, json!({"serverTime": s.now()}).to_string()),
        Route::Account => {
            let pnl = s.pnl();
            let mm = s.maintenance();
            (200, json!({
                "totalInitialMargin": "0.00000000",
                "totalMaintMargin": mm.to_string(),
                "totalWalletBalance": s.wallet.to_string(),
                "totalUnrealizedProfit": pnl.to_string(),
                "totalMarginBalance": (s.wallet + pnl).to_string(),
                "totalCrossWalletBalance": s.wallet.to_string(),
                "totalCrossUnPnl": pnl.to_string(),
                "availableBalance": s.wallet.to_string(),
                "maxWithdrawAmount": s.wallet.to_string(),
                "assets": [{"asset": "USDT", "walletBalance": s.wallet.to_string(), "crossWalletBalance": s.wallet.to_string(), "updateTime": s.now()}],
                "positions": [{"symbol": s.symbol, "positionSide": "BOTH", "positionAmt": s.qty.to_string(), "maintMargin": mm.to_string(), "updateTime": 0}]
            }).to_string())
        }
        Route::PositionRisk => {
            if let Some(mark) = s.marks.pop_front() {
                s.mark = mark;
            }
            s.inspect();
            let isolated: Vec<serde_json::Value> = s.isolated.iter().map(|symbol| json!({
                "symbol": symbol, "positionSide": "BOTH", "positionAmt": "1", "entryPrice": "100",
                "breakEvenPrice": "100", "markPrice": "100", "unRealizedProfit": "0",
                "liquidationPrice": "0", "isolatedMargin": "50", "notional": "100",
                "marginAsset": "USDT", "isolatedWallet": "50", "initialMargin": "10",
                "maintMargin": "0.5", "positionInitialMargin": "10", "openOrderInitialMargin": "0",
                "adl": 1, "bidNotional": "0", "askNotional": "0", "updateTime": s.now()
            })).collect();
            if s.qty.is_zero() {
                return (200, serde_json::Value::Array(isolated).to_string());
            }
            let notional = s.qty * s.mark;
            let cross = json!({
                "symbol": s.symbol, "positionSide": "BOTH",
                "positionAmt": s.qty.to_string(), "entryPrice": s.entry.to_string(),
                "breakEvenPrice": s.entry.to_string(), "markPrice": s.mark.to_string(),
                "unRealizedProfit": s.pnl().to_string(), "liquidationPrice": "0",
                "isolatedMargin": "0", "notional": notional.to_string(), "marginAsset": "USDT",
                "isolatedWallet": "0", "initialMargin": (notional / Decimal::TEN).to_string(),
                "maintMargin": s.maintenance().to_string(),
                "positionInitialMargin": (notional / Decimal::TEN).to_string(),
                "openOrderInitialMargin": "0", "adl": 2, "bidNotional": "0", "askNotional": "0",
                "updateTime": s.now()
            });
            let mut all = vec![cross];
            all.extend(isolated);
            (200, serde_json::Value::Array(all).to_string())
        }
        Route::AccountConfig => (200, json!({
            "feeTier": 0, "canTrade": true, "canDeposit": true, "canWithdraw": true,
            "dualSidePosition": false, "updateTime": 0, "multiAssetsMargin": s.multi_assets, "tradeGroupId": -1
        }).to_string()),
        Route::Brackets => {
            // JSON numbers, as Binance sends them here.
            let brackets: Vec<String> = s.brackets.iter().enumerate().map(|(i, (floor, rate, cum))| {
                format!(r#"{{"bracket":{},"initialLeverage":{},"notionalCap":{},"notionalFloor":{floor},"maintMarginRatio":{rate},"cum":{cum}}}"#,
                    i + 1, 125 / (i + 1), s.brackets.get(i + 1).map(|b| b.0).unwrap_or(d("1000000000")))
            }).collect();
            (200, format!(r#"[{{"symbol":"{}","brackets":[{}]}}]"#, s.symbol, brackets.join(",")))
        }
        Route::SpotAccount => (200, json!({
            "makerCommission": 15, "canTrade": true, "canWithdraw": true, "canDeposit": true,
            "accountType": "SPOT",
            "balances": [{"asset": "BNB", "free": "0.50000000", "locked": "0.00000000"},
                         {"asset": "USDT", "free": s.spot_free.to_string(), "locked": "0.00000000"}],
            "permissions": ["SPOT"], "uid": 354937868
        }).to_string()),
        Route::Transfer => {
            if p.get("type").map(String::as_str) != Some("MAIN_UMFUTURE") || p.get("asset").map(String::as_str) != Some("USDT") {
                return (400, error_body(-1100, "Illegal characters found in parameter 'type'."));
            }
            let Some(amount) = p.get("amount").and_then(|a| a.parse::<Decimal>().ok()).filter(|a| *a > Decimal::ZERO) else {
                return (400, error_body(-1100, "Illegal characters found in parameter 'amount'."));
            };
            if amount > s.spot_free {
                return (400, error_body(-5013, "Asset transfer failed: insufficient balance"));
            }
            s.spot_free -= amount;
            s.wallet += amount;
            let tran_id = s.next_tran_id;
            s.next_tran_id += 1;
            let row = LedgerRow { tran_id, asset: "USDT".into(), amount, timestamp: s.now(), status: "CONFIRMED", query: query.to_string() };
            s.ledger.push(row);
            if s.ws.account_event_on_transfer {
                let update = ws::account_update(s, "DEPOSIT");
                s.push(ws::Push::Account(update));
            }
            (200, json!({"tranId": tran_id}).to_string())
        }
        Route::TransferHistory => {
            if p.get("type").map(String::as_str) != Some("MAIN_UMFUTURE") {
                return (400, error_body(-1102, "Mandatory parameter 'type' was not sent."));
            }
            let start: i64 = p.get("startTime").and_then(|v| v.parse().ok()).unwrap_or(s.now() - 7 * 86_400_000);
            let size: usize = p.get("size").and_then(|v| v.parse().ok()).unwrap_or(10).min(100);
            let current: usize = p.get("current").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
            let visible_before = s.now() - s.history_lag_ms;
            let mut rows: Vec<&LedgerRow> = s
                .ledger
                .iter()
                .filter(|r| r.timestamp >= start && r.timestamp <= visible_before)
                .collect();
            rows.reverse(); // newest first
            let total = rows.len();
            let page: Vec<serde_json::Value> = rows.into_iter().skip((current - 1) * size).take(size).map(|r| json!({
                "asset": r.asset, "amount": r.amount.to_string(), "type": "MAIN_UMFUTURE",
                "status": r.status, "tranId": r.tran_id, "timestamp": r.timestamp
            })).collect();
            if page.is_empty() {
                return (200, json!({"total": total}).to_string());
            }
            (200, json!({"total": total, "rows": page}).to_string())
        }
        Route::ApiRestrictions => (200, s.restrictions.to_string()),
        Route::ListenKeyCreate => (200, json!({"listenKey": s.listen_key()}).to_string()),
        Route::ListenKeyKeepalive => match s.ws.listen_key.clone() {
            Some(key) => {
                s.ws.keepalives += 1;
                (200, json!({"listenKey": key}).to_string())
            }
            None => (400, error_body(-1125, "This listenKey does not exist.")),
        },
    }
}
