//! Mock Bybit: an in-process axum server on 127.0.0.1:0 speaking the real v5 paths and the
//! envelope `{retCode, retMsg, result, retExtInfo, time}`, with a scripted UTA cross account
//! (the mark falls on cue), a Funding wallet and a ledger of inter-transfers.
//!
//! It checks what Bybit checks: the `X-BAPI-API-KEY` header (10003), the HMAC over
//! `timestamp + key + recvWindow + (query | body)` (10004), the timestamp rule
//! `server − recvWindow ≤ ts < server + 1000` (10002); it refuses a second transfer with the
//! same `transferId` (131214 "TransferId exist"); it counts requests per endpoint and UID as
//! documented, reports them in `X-Bapi-Limit`, `X-Bapi-Limit-Status`,
//! `X-Bapi-Limit-Reset-Timestamp`, answers 10006 on overuse (and to whoever calls through it),
//! and HTTP 403 "access too frequent" when the IP limit (600 per 5 s) is exceeded. In demo mode
//! the asset and key endpoints do not exist (10017). Tests can make the next call to a route
//! misbehave. Its streams (`ws`) are on the same port.
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
use serde_json::{json, Value};

use marginguard::venue::bybit::signing;

pub use crate::mock_server::d;
use crate::mock_server::{self as server, system_ms, Serving};

/// The reference's test-vector key pair (shared/exchanges/bybit.md §2.3).
pub const API_KEY: &str = "AbCdEfGhIjKlMnOpQr";
pub const SECRET: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    ServerTime,
    RiskLimit,
    WalletBalance,
    Positions,
    AccountInfo,
    FundingBalance,
    Transfer,
    TransferList,
    QueryApi,
}

impl Route {
    fn of(method: &Method, path: &str) -> Option<Route> {
        Some(match (method.as_str(), path) {
            ("GET", "/v5/market/time") => Route::ServerTime,
            ("GET", "/v5/market/risk-limit") => Route::RiskLimit,
            ("GET", "/v5/account/wallet-balance") => Route::WalletBalance,
            ("GET", "/v5/position/list") => Route::Positions,
            ("GET", "/v5/account/info") => Route::AccountInfo,
            ("GET", "/v5/asset/transfer/query-account-coin-balance") => Route::FundingBalance,
            ("POST", "/v5/asset/transfer/inter-transfer") => Route::Transfer,
            ("GET", "/v5/asset/transfer/query-inter-transfer-list") => Route::TransferList,
            ("GET", "/v5/user/query-api") => Route::QueryApi,
            _ => return None,
        })
    }

    fn public(self) -> bool {
        matches!(self, Route::ServerTime | Route::RiskLimit)
    }

    /// Absent from demo trading (bybit.md §1).
    fn asset_or_key(self) -> bool {
        matches!(
            self,
            Route::FundingBalance | Route::Transfer | Route::TransferList | Route::QueryApi
        )
    }

    /// The documented per-UID limit: (count, window).
    pub fn limit(self) -> Option<(u32, Duration)> {
        let s = Duration::from_secs(1);
        match self {
            Route::ServerTime | Route::RiskLimit => None,
            Route::WalletBalance | Route::Positions | Route::AccountInfo => Some((50, s)),
            Route::FundingBalance => Some((450, s)),
            Route::QueryApi => Some((10, s)),
            Route::Transfer | Route::TransferList => Some((60, Duration::from_secs(60))),
        }
    }
}

/// How the next call to a route misbehaves.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 200 with this body.
    Body(String),
    /// This HTTP status and body.
    Status(u16, String),
    /// 10006 with the reset this far ahead; the route stays closed until then.
    TooManyVisits { reset_after: Duration },
    /// Do the work, then answer only after this delay (the client has given up by then).
    Slow(Duration),
    /// Do the work, then answer HTTP 502 with an HTML body.
    BadGatewayAfterApplying,
    /// Do the work, then answer this retCode (e.g. 10016 "Server error").
    CodeAfterApplying(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub transfer_id: String,
    pub amount: Decimal,
    pub timestamp: i64,
    /// The exact body the transfer came with (its signature verified).
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub route: Option<Route>,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub ret_code: Option<i64>,
}

pub struct State_ {
    pub api_key: String,
    pub secret: String,
    /// Server clock = system clock + this.
    pub skew_ms: i64,
    pub demo: bool,
    /// USDT in the Unified wallet.
    pub wallet: Decimal,
    /// Transferable USDT in the Funding wallet.
    pub fund: Decimal,
    pub symbol: String,
    pub qty: Decimal,
    pub entry: Decimal,
    pub mark: Decimal,
    pub marks: VecDeque<Decimal>,
    /// (cap, maintenance rate, initial rate, max leverage, mmDeduction)
    pub tiers: Vec<(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )>,
    pub unified_margin_status: i64,
    pub margin_mode: String,
    pub key_info: Value,
    pub ledger: Vec<LedgerRow>,
    pub seen: Vec<Seen>,
    pub faults: HashMap<Route, VecDeque<Fault>>,
    /// Per-route limits overriding the documented ones.
    pub limits: HashMap<Route, (u32, Duration)>,
    /// (window start, requests in it), per route.
    pub used: HashMap<Route, (Instant, u32)>,
    /// A route answers 10006 until this instant.
    pub closed_until: HashMap<Route, Instant>,
    /// The IP limit per 5 s, its window, and the ban it earns.
    pub ip_limit: u32,
    pub ip_used: (Instant, u32),
    pub banned_until: Option<Instant>,
    pub liquidated: bool,
    /// When each transfer request reached the server (before anything else was done).
    pub transfer_arrivals: Vec<std::time::Instant>,
    pub ws: ws::WsState,
}

pub type Shared = Arc<Mutex<State_>>;

pub struct MockBybit {
    pub addr: SocketAddr,
    pub url: String,
    pub state: Shared,
    _serving: Serving,
}

impl MockBybit {
    /// A 1 BTC long at 60,000 with `wallet` USDT in the Unified wallet and `reserve` in Funding;
    /// BTCUSDT tiers [0, 50k) 0.4 %, [50k, 250k) 0.5 % (deduction 50), [250k, …) 1 % (1,300).
    pub async fn start(wallet: Decimal, reserve: Decimal) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            api_key: API_KEY.into(),
            secret: SECRET.into(),
            skew_ms: 0,
            demo: false,
            wallet,
            fund: reserve,
            symbol: "BTCUSDT".into(),
            qty: d("1"),
            entry: d("60000"),
            mark: d("60000"),
            marks: VecDeque::new(),
            tiers: vec![
                ("50000", "0.004", "0.01", "100.00", "0"),
                ("250000", "0.005", "0.02", "50.00", "50"),
                ("1000000000", "0.01", "0.04", "25.00", "1300"),
            ],
            unified_margin_status: 5,
            margin_mode: "REGULAR_MARGIN".into(),
            key_info: json!({
                "id": "2208369", "note": "marginguard", "apiKey": API_KEY, "readOnly": 0, "secret": "",
                "permissions": {"ContractTrade": [], "Spot": [], "Wallet": ["AccountTransfer"],
                    "Options": [], "Derivatives": [], "Exchange": [], "Earn": []},
                "ips": ["127.0.0.1"], "type": 1, "deadlineDay": -2,
                "expiredAt": "1970-01-01T00:00:00Z", "createdAt": "2026-01-13T03:20:45Z",
                "unified": 0, "uta": 1, "userID": 1448939, "isMaster": false, "parentUid": "1448938",
                "rsaPublicKey": ""
            }),
            ledger: Vec::new(),
            seen: Vec::new(),
            faults: HashMap::new(),
            limits: HashMap::new(),
            used: HashMap::new(),
            closed_until: HashMap::new(),
            ip_limit: 600,
            ip_used: (Instant::now(), 0),
            banned_until: None,
            liquidated: false,
            transfer_arrivals: Vec::new(),
            ws: ws::WsState::default(),
        }));
        let router = Router::new()
            .route("/v5/public/linear", axum::routing::get(ws::public))
            .route("/v5/private", axum::routing::get(ws::private))
            .fallback(handle)
            .with_state(state.clone());
        let (addr, _serving) = server::serve(router).await;
        MockBybit {
            addr,
            url: format!("http://{addr}"),
            state,
            _serving,
        }
    }

    /// The adapter pointed at this mock as `profile`, signing with `secret`, 400 ms timeout.
    pub fn adapter_as(
        &self,
        profile: marginguard::venue::bybit::Profile,
        secret: &str,
    ) -> marginguard::venue::bybit::BybitVenue {
        use marginguard::venue::bybit::{BybitSettings, BybitVenue, Credentials};
        let mut settings = BybitSettings::at(profile, &self.url, Credentials::new(API_KEY, secret));
        settings.http.timeout = Duration::from_millis(400);
        BybitVenue::new(&settings, marginguard::clock::Clock::Wall)
    }

    pub fn adapter(&self, secret: &str) -> marginguard::venue::bybit::BybitVenue {
        self.adapter_as(marginguard::venue::bybit::Profile::Testnet, secret)
    }

    /// The public (tickers) stream's URL on this mock.
    pub fn ws_public_url(&self) -> String {
        format!("ws://{}/v5/public/linear", self.addr)
    }

    /// The private stream's URL on this mock.
    pub fn ws_private_url(&self) -> String {
        format!("ws://{}/v5/private", self.addr)
    }

    /// The adapter (as testnet) with its streams on this mock: tickers and account pushes
    /// over WebSocket, the account re-priced locally, reconciled by REST every
    /// `reconcile_every`.
    pub fn streaming_adapter(
        &self,
        reconcile_every: Duration,
    ) -> Box<dyn marginguard::venue::Venue> {
        self.streaming_adapter_signing_with(SECRET, reconcile_every)
    }

    /// `streaming_adapter`, signing (REST and the stream auth) with `secret`.
    pub fn streaming_adapter_signing_with(
        &self,
        secret: &str,
        reconcile_every: Duration,
    ) -> Box<dyn marginguard::venue::Venue> {
        use marginguard::venue::bybit::{stream, BybitSettings, BybitVenue, Credentials, Profile};
        use marginguard::venue::streaming::StreamSettings;
        let mut settings = BybitSettings::at(
            Profile::Testnet,
            &self.url,
            Credentials::new(API_KEY, secret),
        );
        settings.http.timeout = Duration::from_millis(400);
        let mut knobs = StreamSettings::for_cadence(stream::MARK_CADENCE);
        knobs.reconcile_every = reconcile_every;
        let settings = settings.with_stream(&self.ws_public_url(), &self.ws_private_url(), knobs);
        BybitVenue::open(&settings, marginguard::clock::Clock::Wall)
    }

    /// Moves the mark; the ticker stream pushes it at once and REST reads it too.
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

    /// (mark-stream connections, account-stream connections) so far, refused ones included.
    pub fn stream_connects(&self) -> (u32, u32) {
        self.with(|s| (s.ws.public_connects, s.ws.private_connects))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        f(&mut self.state.lock().expect("mock lock"))
    }

    /// Each position read takes the next mark; the last one stays.
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
        self.with(|s| s.seen.iter().filter(|r| r.ret_code == Some(code)).count())
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
        let mut previous_cap = Decimal::ZERO;
        for (cap, rate, _, _, deduction) in &self.tiers {
            let cap = d(cap);
            if notional < cap || previous_cap == cap {
                return (notional * d(rate) - d(deduction)).max(Decimal::ZERO);
            }
            previous_cap = cap;
        }
        Decimal::ZERO
    }

    fn pnl(&self) -> Decimal {
        self.qty * (self.mark - self.entry)
    }

    /// Bybit's liquidation: account MM rate at 100 % closes the position.
    fn inspect(&mut self) {
        if !self.qty.is_zero() && self.wallet + self.pnl() <= self.maintenance() {
            self.liquidated = true;
            self.qty = Decimal::ZERO;
            self.wallet = Decimal::ZERO;
        }
    }

    fn envelope(&self, code: i64, msg: &str, result: Value) -> String {
        json!({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": self.now()})
            .to_string()
    }

    fn error(&self, code: i64, msg: &str) -> String {
        self.envelope(code, msg, json!({}))
    }
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
    let arrived = std::time::Instant::now();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let route = Route::of(&method, &path);
    let (status, text, extra, delay) = {
        let mut s = state.lock().expect("mock lock");
        if route == Some(Route::Transfer) {
            s.transfer_arrivals.push(arrived);
        }
        let (status, text, extra, delay) = answer(&mut s, route, &query, &body, &headers);
        let ret_code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("retCode").and_then(Value::as_i64));
        s.seen.push(Seen {
            route,
            path: path.clone(),
            query: query.clone(),
            status,
            ret_code,
        });
        (status, text, extra, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), text).into_response();
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
    let now = Instant::now();
    if s.banned_until.is_some_and(|t| t > now) {
        return (
            403,
            "403 Forbidden: access too frequent".into(),
            vec![],
            None,
        );
    }
    if now.duration_since(s.ip_used.0) >= Duration::from_secs(5) {
        s.ip_used = (now, 0);
    }
    s.ip_used.1 += 1;
    if s.ip_used.1 > s.ip_limit {
        s.banned_until = Some(now + Duration::from_secs(600));
        return (
            403,
            "403 Forbidden: access too frequent".into(),
            vec![],
            None,
        );
    }
    let Some(route) = route else {
        return (
            404,
            "<html><body>404 Not Found</body></html>".into(),
            vec![],
            None,
        );
    };
    if s.demo && route.asset_or_key() {
        return (200, s.error(10017, "Route not found"), vec![], None);
    }
    let mut extra = Vec::new();
    if let Some((limit, window)) = s.limits.get(&route).copied().or(route.limit()) {
        let used = s.used.entry(route).or_insert((now, 0));
        if now.duration_since(used.0) >= window {
            *used = (now, 0);
        }
        used.1 += 1;
        let (start, count) = *used;
        let reset = s.now() + (window.saturating_sub(now.duration_since(start))).as_millis() as i64;
        let closed = s.closed_until.get(&route).copied().filter(|t| *t > now);
        let over = count > limit || closed.is_some();
        let reset_ms = match closed {
            Some(until) => s.now() + (until - now).as_millis() as i64,
            // Exceeded, or the last one spent: when the window frees up.
            None if over || count >= limit => reset,
            None => s.now(),
        };
        extra.push(("x-bapi-limit", limit.to_string()));
        extra.push((
            "x-bapi-limit-status",
            limit.saturating_sub(count).to_string(),
        ));
        extra.push(("x-bapi-limit-reset-timestamp", reset_ms.to_string()));
        if over {
            return (200, s.error(10006, "Too many visits!"), extra, None);
        }
    }
    let fault = s.faults.get_mut(&route).and_then(|q| q.pop_front());
    match &fault {
        Some(Fault::Body(b)) => return (200, b.clone(), extra, None),
        Some(Fault::Status(code, b)) => return (*code, b.clone(), extra, None),
        Some(Fault::TooManyVisits { reset_after }) => {
            s.closed_until.insert(route, now + *reset_after);
            let reset_ms = s.now() + reset_after.as_millis() as i64;
            extra.retain(|(name, _)| !name.starts_with("x-bapi"));
            extra.push(("x-bapi-limit-status", "0".into()));
            extra.push(("x-bapi-limit-reset-timestamp", reset_ms.to_string()));
            return (200, s.error(10006, "Too many visits!"), extra, None);
        }
        _ => {}
    }
    if !route.public() {
        let payload = if route == Route::Transfer {
            body
        } else {
            query
        };
        if let Err(text) = authenticate(s, payload, headers) {
            return (200, text, extra, None);
        }
    }
    let text = serve(s, route, query, body);
    match fault {
        Some(Fault::Slow(delay)) => (200, text, extra, Some(delay)),
        Some(Fault::BadGatewayAfterApplying) => (
            502,
            "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
            extra,
            None,
        ),
        Some(Fault::CodeAfterApplying(code)) => (200, s.error(code, "Server error."), extra, None),
        _ => (200, text, extra, None),
    }
}

/// Key header, then the timing rule, then the signature over the exact payload.
fn authenticate(s: &State_, payload: &str, headers: &HeaderMap) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-bapi-api-key") != Some(s.api_key.as_str()) {
        return Err(s.error(
            10003,
            "API key is invalid. Check whether the key and domain are matched, there are 4 env: mainnet, testnet, mainnet-demo, testnet-demo",
        ));
    }
    let (Some(timestamp), Some(signature)) = (
        header("x-bapi-timestamp").and_then(|t| t.parse::<i64>().ok()),
        header("x-bapi-sign"),
    ) else {
        return Err(s.error(
            10001,
            "params error: missing X-BAPI-TIMESTAMP or X-BAPI-SIGN",
        ));
    };
    let recv_window: i64 = header("x-bapi-recv-window")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let server = s.now();
    if !(server - recv_window <= timestamp && timestamp < server + 1000) {
        return Err(s.error(
            10002,
            &format!("invalid request, please check your server timestamp or recv_window param. req_timestamp[{timestamp}],server_timestamp[{server}],recv_window[{recv_window}]"),
        ));
    }
    let presign = signing::presign(timestamp, &s.api_key, recv_window as u128, payload);
    let expected = signing::hmac_hex(s.secret.as_bytes(), &presign);
    if !signing::signatures_match(&expected, signature) {
        return Err(s.error(10004, "error sign! origin_string[redacted by the mock]"));
    }
    Ok(())
}

fn serve(s: &mut State_, route: Route, query: &str, body: &str) -> String {
    let p = params(query);
    match route {
        Route::ServerTime => {
            let now = s.now();
            s.envelope(0, "OK", json!({"timeSecond": (now / 1000).to_string(), "timeNano": (now as i128 * 1_000_000).to_string()}))
        }
        Route::RiskLimit => {
            let symbol = p.get("symbol").cloned().unwrap_or_default();
            let list: Vec<Value> = if symbol == s.symbol {
                s.tiers.iter().enumerate().map(|(i, (cap, mm, im, lev, ded))| json!({
                    "id": i + 1, "symbol": s.symbol, "riskLimitValue": cap, "maintenanceMargin": mm,
                    "initialMargin": im, "isLowestRisk": i32::from(i == 0), "maxLeverage": lev, "mmDeduction": ded
                })).collect()
            } else {
                vec![]
            };
            s.envelope(
                0,
                "OK",
                json!({"category": "linear", "list": list, "nextPageCursor": ""}),
            )
        }
        Route::AccountInfo => s.envelope(
            0,
            "OK",
            json!({
                "marginMode": s.margin_mode, "updatedTime": "1697078946000",
                "unifiedMarginStatus": s.unified_margin_status, "dcpStatus": "OFF", "timeWindow": 0,
                "smpGroup": 0, "isMasterTrader": false, "spotHedgingStatus": "OFF"
            }),
        ),
        Route::WalletBalance => {
            let pnl = s.pnl();
            let mm = s.maintenance();
            let mb = s.wallet + pnl;
            let rate = if mb > Decimal::ZERO {
                (mm / mb).trunc_with_scale(4)
            } else {
                Decimal::ONE
            };
            s.envelope(0, "OK", json!({"list": [{
                "totalEquity": mb.to_string(), "accountIMRate": "0.1", "accountIMRateByMp": "0.1",
                "totalMarginBalance": mb.to_string(), "totalInitialMargin": "6000",
                "totalInitialMarginByMp": "6000", "accountType": "UNIFIED",
                "totalAvailableBalance": (mb - Decimal::from(6000)).max(Decimal::ZERO).to_string(),
                "accountMMRate": rate.to_string(), "accountMMRateByMp": rate.to_string(),
                "totalPerpUPL": pnl.to_string(), "totalWalletBalance": s.wallet.to_string(),
                "accountLTV": "0", "totalMaintenanceMargin": mm.to_string(),
                "totalMaintenanceMarginByMp": mm.to_string(),
                "coin": [{
                    "availableToBorrow": "", "bonus": "0", "accruedInterest": "0",
                    "availableToWithdraw": "", "totalOrderIM": "0", "equity": mb.to_string(),
                    "totalPositionMM": mm.to_string(), "usdValue": mb.to_string(),
                    "spotHedgingQty": "0", "unrealisedPnl": pnl.to_string(), "collateralSwitch": true,
                    "borrowAmount": "0", "totalPositionIM": "6000", "walletBalance": s.wallet.to_string(),
                    "cumRealisedPnl": "0", "locked": "0", "marginCollateral": true, "coin": "USDT",
                    "spotBorrow": "0"
                }]
            }]}))
        }
        Route::Positions => {
            if let Some(mark) = s.marks.pop_front() {
                s.mark = mark;
            }
            s.inspect();
            let list: Vec<Value> = if s.qty.is_zero() {
                vec![]
            } else {
                let value = s.qty * s.mark;
                vec![json!({
                    "positionIdx": 0, "riskId": 1, "riskLimitValue": "50000", "symbol": s.symbol,
                    "side": "Buy", "size": s.qty.to_string(), "avgPrice": s.entry.to_string(),
                    "positionValue": value.to_string(), "tradeMode": 0, "positionStatus": "Normal",
                    "autoAddMargin": 0, "adlRankIndicator": 2, "leverage": "10",
                    "positionBalance": "0", "markPrice": s.mark.to_string(), "liqPrice": "",
                    "bustPrice": "", "positionMM": s.maintenance().to_string(),
                    "positionMMByMp": s.maintenance().to_string(),
                    "positionIM": (value / Decimal::TEN).to_string(),
                    "positionIMByMp": (value / Decimal::TEN).to_string(), "tpslMode": "Full",
                    "takeProfit": "0", "stopLoss": "0", "trailingStop": "0",
                    "unrealisedPnl": s.pnl().to_string(), "curRealisedPnl": "0",
                    "cumRealisedPnl": "0", "seq": 5723621632u64, "isReduceOnly": false,
                    "mmrSysUpdateTime": "", "leverageSysUpdatedTime": "",
                    "createdTime": "1676538056258", "updatedTime": s.now().to_string()
                })]
            };
            s.envelope(
                0,
                "OK",
                json!({"list": list, "nextPageCursor": "", "category": "linear"}),
            )
        }
        Route::FundingBalance => {
            if p.get("accountType").map(String::as_str) != Some("FUND") {
                return s.error(131002, "Parameter error");
            }
            s.envelope(0, "success", json!({
                "accountType": "FUND", "bizType": 1, "accountId": "1631385", "memberId": "1631373",
                "balance": {"coin": "USDT", "walletBalance": s.fund.to_string(),
                    "transferBalance": s.fund.to_string(), "bonus": "0",
                    "transferSafeAmount": "", "ltvTransferSafeAmount": ""}
            }))
        }
        Route::Transfer => {
            let Ok(request) = serde_json::from_str::<Value>(body) else {
                return s.error(10001, "Request parameter error: body is not JSON");
            };
            let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or("");
            let id = field("transferId").to_string();
            if id.len() != 36
                || field("coin") != "USDT"
                || field("fromAccountType") != "FUND"
                || field("toAccountType") != "UNIFIED"
            {
                return s.error(131203, "request parameter err");
            }
            if s.ledger.iter().any(|row| row.transfer_id == id) {
                return s.error(131214, "TransferId exist");
            }
            let Some(amount) = field("amount")
                .parse::<Decimal>()
                .ok()
                .filter(|a| *a > Decimal::ZERO)
            else {
                return s.error(131215, "Amount error");
            };
            if amount.scale() > 4 {
                return s.error(131210, "Amount accuracy error");
            }
            if amount > s.fund {
                return s.error(131212, "Insufficient balance");
            }
            s.fund -= amount;
            s.wallet += amount;
            let row = LedgerRow {
                transfer_id: id.clone(),
                amount,
                timestamp: s.now(),
                body: body.to_string(),
            };
            s.ledger.push(row);
            s.push_account_events();
            s.envelope(0, "success", json!({"transferId": id, "status": "SUCCESS"}))
        }
        Route::TransferList => {
            let start: i64 = p
                .get("startTime")
                .and_then(|v| v.parse().ok())
                .unwrap_or(s.now() - 7 * 86_400_000);
            // Second-granular, as Bybit documents.
            let start = start / 1000 * 1000;
            let list: Vec<Value> = s.ledger.iter().rev()
                .filter(|r| r.timestamp >= start && r.timestamp <= start + 7 * 86_400_000)
                .filter(|r| p.get("transferId").is_none_or(|id| *id == r.transfer_id))
                .map(|r| json!({"transferId": r.transfer_id, "coin": "USDT", "amount": r.amount.to_string(),
                    "fromAccountType": "FUND", "toAccountType": "UNIFIED",
                    "timestamp": r.timestamp.to_string(), "status": "SUCCESS"}))
                .collect();
            s.envelope(0, "success", json!({"list": list, "nextPageCursor": ""}))
        }
        Route::QueryApi => s.envelope(0, "", s.key_info.clone()),
    }
}
