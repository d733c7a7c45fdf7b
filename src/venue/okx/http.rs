//! Signed REST v5 calls: timestamps, the server-clock offset, per-endpoint budgets, 50011 and
//! 50102, the demo-trading header.
//!
//! Every call names an `Endpoint` (method, path, documented limit and window, private or
//! public, whether it can move money). Each endpoint has its own governor quota sized so that
//! no window of the documented length can hold more than the documented count: a burst of half
//! the limit, refilled at half the documented rate (okx.md §5). A 50011 (or the transfer
//! throttle 58102) pauses that endpoint — for `Retry-After` when sent, else 1 s doubling to
//! 8 s — and nothing is sent to it before the pause ends. A 50102 (timestamp outside OKX's 30 s
//! window; rejected before processing) measures the clock again and retries once.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;

use super::credential::Credentials;
use super::error::{self, Effect, Status};
use super::{parse, signing};
use crate::clock::Clock;
pub use crate::venue::common::clock_offset::ClockOffset;
pub use crate::venue::common::signed::MAX_LOCAL_WAIT;
use crate::venue::common::signed::{CallInfo, Gate, Protocol, Refusal, SignedTransport};
use crate::venue::common::transport::retry_after;
use crate::venue::VenueError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One REST endpoint as the adapter uses it, with its documented rate limit.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    /// Requests allowed per `window` (okx.md §5).
    pub limit: u32,
    pub window: Duration,
    pub private: bool,
    pub effect: Effect,
}

const fn get(path: &'static str, limit: u32, window_ms: u64, private: bool) -> Endpoint {
    Endpoint {
        method: Method::Get,
        path,
        limit,
        window: Duration::from_millis(window_ms),
        private,
        effect: Effect::Read,
    }
}

pub const SERVER_TIME: Endpoint = get("/api/v5/public/time", 10, 2_000, false);
pub const INSTRUMENTS: Endpoint = get("/api/v5/public/instruments", 20, 2_000, false);
pub const POSITION_TIERS: Endpoint = get("/api/v5/public/position-tiers", 10, 2_000, false);
pub const ACCOUNT_CONFIG: Endpoint = get("/api/v5/account/config", 5, 2_000, true);
pub const BALANCE: Endpoint = get("/api/v5/account/balance", 10, 2_000, true);
pub const POSITIONS: Endpoint = get("/api/v5/account/positions", 10, 2_000, true);
pub const FUNDING_BALANCES: Endpoint = get("/api/v5/asset/balances", 6, 1_000, true);
pub const TRANSFER_STATE: Endpoint = get("/api/v5/asset/transfer-state", 10, 1_000, true);
/// 2 per second per user *and currency*; the bot only ever moves USDT, so one budget.
pub const TRANSFER: Endpoint = Endpoint {
    method: Method::Post,
    path: "/api/v5/asset/transfer",
    limit: 2,
    window: Duration::from_secs(1),
    private: true,
    effect: Effect::MovesMoney,
};

pub const ALL: [Endpoint; 9] = [
    SERVER_TIME,
    INSTRUMENTS,
    POSITION_TIERS,
    ACCOUNT_CONFIG,
    BALANCE,
    POSITIONS,
    FUNDING_BALANCES,
    TRANSFER_STATE,
    TRANSFER,
];

/// OKX rejects timestamps more than 30 s off; warn well before.
const SKEW_WARNING_MS: i64 = 5_000;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// OKX refuses a request whose timestamp is more than 30 s from its clock (50102).
pub const OKX_TIMESTAMP_VALIDITY: Duration = Duration::from_secs(30);

/// What the HTTP client needs to know.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Scheme and host, no trailing slash.
    pub base_url: String,
    /// Adds `x-simulated-trading: 1` to every request.
    pub demo: bool,
    pub timeout: Duration,
}

struct Budget {
    limiter: DefaultDirectRateLimiter,
    /// After a 50011: nothing is sent before this instant; and the next back-off.
    paused: Mutex<(Option<Instant>, Duration)>,
}

impl Budget {
    /// Burst `limit/2`, refilled at `(limit − burst)/window`: no window of the documented
    /// length can hold more than `limit` requests.
    fn for_endpoint(endpoint: &Endpoint) -> Self {
        let burst = (endpoint.limit / 2).max(1);
        let refill = (endpoint.limit - burst).max(1);
        let period = endpoint.window / refill;
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Budget {
            limiter: RateLimiter::direct(quota),
            paused: Mutex::new((None, FIRST_BACKOFF)),
        }
    }
}

/// What an OKX request carries: the exact query string (signed as sent) and the exact JSON
/// text of a POST.
pub struct Request<'a> {
    pub query: &'a str,
    pub body: Option<&'a str>,
}

/// OKX's part of a signed call: the prehash over timestamp, method, path and body, the
/// passphrase and demo headers, per-endpoint budgets, `code` 50011 / 58102 and 50102.
pub struct Okx {
    settings: HttpSettings,
    credentials: Credentials,
    budgets: Vec<Budget>,
}

pub struct HttpClient {
    transport: SignedTransport<Okx>,
}

impl HttpClient {
    /// How long after one signed call begins OKX may still act on it: the local budget wait,
    /// then up to two sends (a 50102 resync retries once), each accepted while its timestamp
    /// is within 30 s of the server's (okx.md §5) and answered within the request timeout.
    pub fn may_still_act_for(&self) -> Duration {
        self.attempt_span() + OKX_TIMESTAMP_VALIDITY
    }

    /// The longest one call can take here: two sends, each after the local budget wait.
    pub fn attempt_span(&self) -> Duration {
        (MAX_LOCAL_WAIT + self.settings().timeout) * 2
    }

    pub fn new(settings: HttpSettings, credentials: Credentials, clock: Clock) -> Self {
        let timeout = settings.timeout;
        let okx = Okx {
            budgets: ALL.iter().map(Budget::for_endpoint).collect(),
            settings,
            credentials,
        };
        Self {
            transport: SignedTransport::new(okx, timeout, clock),
        }
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.transport.protocol().settings
    }

    pub fn key_prefix(&self) -> String {
        self.transport.protocol().credentials.key_prefix()
    }

    pub fn offset(&self) -> Option<ClockOffset> {
        self.transport.offset()
    }

    pub fn local_now(&self) -> crate::time::Timestamp {
        self.transport.local_now()
    }

    /// Local time corrected by the measured offset.
    pub fn server_now(&self) -> crate::time::Timestamp {
        crate::time::Timestamp(self.transport.server_now_ms())
    }

    /// Measures the offset from `GET /api/v5/public/time`: `ts − (t_send + t_recv)/2`.
    pub async fn sync_clock(&self) -> Result<ClockOffset, VenueError> {
        self.transport.sync_clock().await
    }

    /// Calls an endpoint and returns the body of a `code: "0"` answer. `query` is the exact
    /// query string (signed as sent); `body` the exact JSON text of a POST.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        query: &str,
        body: Option<&str>,
    ) -> Result<String, VenueError> {
        self.transport
            .call(endpoint, &Request { query, body })
            .await
    }
}

impl Okx {
    fn budget(&self, endpoint: &Endpoint) -> &Budget {
        let index = ALL
            .iter()
            .position(|e| e.path == endpoint.path && e.method == endpoint.method)
            .unwrap_or(0);
        &self.budgets[index]
    }

    /// Pauses an endpoint after a 50011 and returns for how long.
    fn pause(&self, budget: &Budget, retry_after: Option<Duration>) -> Duration {
        let mut paused = budget.paused.lock().expect("budget lock");
        let wait = retry_after.unwrap_or(paused.1);
        paused.0 = Some(Instant::now() + wait);
        paused.1 = (paused.1 * 2).min(MAX_BACKOFF);
        wait
    }
}

impl Protocol for Okx {
    type Endpoint = Endpoint;
    type Payload<'a> = Request<'a>;
    type Reply = String;

    const VENUE: &'static str = "okx";
    const CLOCK_CODE: &'static str = "50102";
    const SKEW_WARNING_MS: i64 = SKEW_WARNING_MS;

    fn info(endpoint: &Endpoint) -> CallInfo {
        CallInfo {
            path: endpoint.path,
            signed: endpoint.private,
            effect: endpoint.effect,
        }
    }

    fn server_time() -> (Endpoint, Request<'static>) {
        (
            SERVER_TIME,
            Request {
                query: "",
                body: None,
            },
        )
    }

    fn server_time_ms(reply: &String) -> Result<i64, VenueError> {
        parse::server_time(reply)
    }

    /// Refuses while the endpoint is paused; otherwise its own quota.
    fn gate(&self, endpoint: &Endpoint, _server_now_ms: i64) -> Result<Gate<'_>, VenueError> {
        let budget = self.budget(endpoint);
        let now = Instant::now();
        let paused = budget.paused.lock().expect("budget lock").0;
        if let Some(until) = paused.filter(|t| *t > now) {
            return Err(VenueError::RateLimited {
                retry_after: Some(until - now),
            });
        }
        Ok(Gate::one(&budget.limiter))
    }

    fn build(
        &self,
        client: &reqwest::Client,
        endpoint: &Endpoint,
        request: &Request<'_>,
        server_now_ms: i64,
    ) -> reqwest::RequestBuilder {
        // Built once, used for both signing and sending (okx.md §8.3).
        let path_and_query = if request.query.is_empty() {
            endpoint.path.to_string()
        } else {
            format!("{}?{}", endpoint.path, request.query)
        };
        let url = format!("{}{path_and_query}", self.settings.base_url);
        let body = request.body.unwrap_or("");
        let mut builder = match endpoint.method {
            Method::Get => client.get(&url),
            Method::Post => client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        };
        if endpoint.private {
            let timestamp = signing::iso_timestamp(crate::time::Timestamp(server_now_ms));
            let prehash =
                signing::prehash(&timestamp, endpoint.method.as_str(), &path_and_query, body);
            builder = builder
                .header("OK-ACCESS-KEY", self.credentials.api_key())
                .header("OK-ACCESS-SIGN", self.credentials.sign(&prehash))
                .header("OK-ACCESS-TIMESTAMP", timestamp)
                .header("OK-ACCESS-PASSPHRASE", self.credentials.passphrase());
        }
        if self.settings.demo {
            builder = builder.header("x-simulated-trading", "1");
        }
        builder
    }

    /// OKX sends no usage headers; its budget is corrected by its codes alone.
    fn read_limits(&self, _endpoint: &Endpoint, _headers: &HeaderMap, _server_now_ms: i64) {}

    fn interpret(
        &self,
        endpoint: &Endpoint,
        status: u16,
        headers: &HeaderMap,
        text: String,
        _server_now_ms: i64,
    ) -> Result<String, Refusal> {
        let budget = self.budget(endpoint);
        let code = Status::parse(&text).map(|s| s.code);
        if (200..300).contains(&status) && code.as_deref() == Some(error::OK) {
            budget.paused.lock().expect("budget lock").1 = FIRST_BACKOFF;
            return Ok(text);
        }
        let retry_after = retry_after(headers);
        match code.as_deref() {
            Some(error::TIMESTAMP_EXPIRED) if endpoint.private => {
                return Err(Refusal::ClockRejected(error::short(&text)))
            }
            Some(error::RATE_LIMITED | error::TRANSFER_RATE_LIMITED) => {
                let wait = self.pause(budget, retry_after);
                tracing::warn!(
                    path = endpoint.path,
                    ?wait,
                    "OKX answered 50011 (rate limit); pausing this endpoint"
                );
                return Err(Refusal::Venue(VenueError::RateLimited {
                    retry_after: Some(wait),
                }));
            }
            None if status == 429 => {
                let wait = self.pause(budget, retry_after);
                return Err(Refusal::Venue(VenueError::RateLimited {
                    retry_after: Some(wait),
                }));
            }
            _ => {}
        }
        Err(Refusal::Venue(error::from_answer(
            status,
            &text,
            endpoint.effect,
            retry_after,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_follow_the_documented_limits() {
        assert_eq!(
            (TRANSFER.limit, TRANSFER.window),
            (2, Duration::from_secs(1))
        );
        assert_eq!(TRANSFER.effect, Effect::MovesMoney);
        assert_eq!(
            (ACCOUNT_CONFIG.limit, ACCOUNT_CONFIG.window),
            (5, Duration::from_secs(2))
        );
        assert_eq!(
            (FUNDING_BALANCES.limit, FUNDING_BALANCES.window),
            (6, Duration::from_secs(1))
        );
        let private: Vec<bool> = [SERVER_TIME, POSITION_TIERS, BALANCE]
            .iter()
            .map(|e| e.private)
            .collect();
        assert_eq!(private, [false, false, true]);
    }

    #[tokio::test]
    async fn a_budget_never_lets_more_than_the_limit_into_one_window() {
        for endpoint in ALL {
            let budget = Budget::for_endpoint(&endpoint);
            let started = Instant::now();
            let mut admitted = 0;
            while budget.limiter.check().is_ok() {
                admitted += 1;
            }
            // The burst, then the refill over a whole window, stay within the limit.
            let burst = admitted;
            let refill = (endpoint.limit - burst).max(1);
            assert!(
                burst + refill <= endpoint.limit.max(2),
                "{}: {burst} + {refill}",
                endpoint.path
            );
            assert!(started.elapsed() < Duration::from_millis(100));
        }
    }
}
