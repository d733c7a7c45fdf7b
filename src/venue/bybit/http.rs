//! Signed REST v5 calls: timestamps and `recvWindow`, the server-time offset, per-endpoint
//! budgets, `retCode` 10002 / 10006 and HTTP 403.
//!
//! Every call names an `Endpoint` (method, path, documented limit, signed or not, whether it can
//! move money). Budgets are governor quotas at half the documented limit per endpoint (the UID
//! limits of bybit.md §5.3; public market endpoints share the 600 per 5 s IP limit), corrected
//! by the server's own count: `X-Bapi-Limit-Status` (remaining) reaching 0 holds that endpoint
//! until `X-Bapi-Limit-Reset-Timestamp`. A `10006` holds it the same way (2 s when the header is
//! missing, as pybit does); an HTTP 403 ("access too frequent") stops every call to the host
//! for the 10 minutes Bybit asks for.
//!
//! The send / clock-resync / retry-once skeleton is `venue::common::signed`; this file is
//! Bybit's `Protocol` in it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;

use super::config::HttpSettings;
use super::credential::Credentials;
use super::error::{self, Effect};
use super::parse::{self, Reply};
use crate::clock::Clock;
pub use crate::venue::common::clock_offset::ClockOffset;
pub use crate::venue::common::signed::MAX_LOCAL_WAIT;
use crate::venue::common::signed::{CallInfo, Gate, Protocol, Refusal, SignedTransport};
use crate::venue::common::transport::encode;
use crate::venue::VenueError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A documented request limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Per UID and endpoint: `count` per `window`.
    Uid { count: u32, window: Duration },
    /// Public endpoints: the per-IP limit (600 per 5 s), one pool for all of them.
    Ip,
}

#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub limit: Limit,
    pub signed: bool,
    pub effect: Effect,
}

const fn per_second(count: u32) -> Limit {
    Limit::Uid {
        count,
        window: Duration::from_secs(1),
    }
}

const fn get(path: &'static str, limit: Limit, signed: bool) -> Endpoint {
    Endpoint {
        method: Method::Get,
        path,
        limit,
        signed,
        effect: Effect::Read,
    }
}

pub const SERVER_TIME: Endpoint = get("/v5/market/time", Limit::Ip, false);
pub const RISK_LIMIT: Endpoint = get("/v5/market/risk-limit", Limit::Ip, false);
pub const WALLET_BALANCE: Endpoint = get("/v5/account/wallet-balance", per_second(50), true);
pub const POSITIONS: Endpoint = get("/v5/position/list", per_second(50), true);
pub const ACCOUNT_INFO: Endpoint = get("/v5/account/info", per_second(50), true);
pub const FUNDING_BALANCE: Endpoint = get(
    "/v5/asset/transfer/query-account-coin-balance",
    per_second(450),
    true,
);
pub const TRANSFER_LIST: Endpoint = get(
    "/v5/asset/transfer/query-inter-transfer-list",
    Limit::Uid {
        count: 60,
        window: Duration::from_secs(60),
    },
    true,
);
pub const QUERY_API: Endpoint = get("/v5/user/query-api", per_second(10), true);
pub const TRANSFER: Endpoint = Endpoint {
    method: Method::Post,
    path: "/v5/asset/transfer/inter-transfer",
    limit: Limit::Uid {
        count: 60,
        window: Duration::from_secs(60),
    },
    signed: true,
    effect: Effect::MovesMoney,
};

pub const ENDPOINTS: [Endpoint; 9] = [
    SERVER_TIME,
    RISK_LIMIT,
    WALLET_BALANCE,
    POSITIONS,
    ACCOUNT_INFO,
    FUNDING_BALANCE,
    TRANSFER_LIST,
    QUERY_API,
    TRANSFER,
];

/// pybit's wait after a 10006 without a reset header.
const DEFAULT_10006_WAIT: Duration = Duration::from_secs(2);

/// What the request carries: a query (GET) or the exact JSON body (POST).
pub enum Payload<'a> {
    Query(&'a [(&'a str, String)]),
    Json(&'a str),
}

/// The server's count for one endpoint, from the last answer's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    pub remaining: u32,
    pub limit: Option<u32>,
    pub reset_ms: Option<i64>,
}

struct Budget {
    limiter: DefaultDirectRateLimiter,
    /// Nothing is sent to this endpoint before this instant (server count spent, or 10006).
    held_until: Mutex<Option<Instant>>,
    reported: Mutex<Option<LimitStatus>>,
}

/// Bybit's part of a signed call: header signing over the exact query or body, per-endpoint
/// budgets, the envelope's `retCode`, 10006 and HTTP 403.
pub struct Bybit {
    settings: HttpSettings,
    credentials: Credentials,
    budgets: HashMap<&'static str, Budget>,
    /// Public endpoints share the IP pool.
    ip_pool: DefaultDirectRateLimiter,
    /// After an HTTP 403: nothing goes to the host before this instant.
    banned_until: Mutex<Option<Instant>>,
}

pub struct HttpClient {
    transport: SignedTransport<Bybit>,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

/// Half the documented rate, a quarter of it as burst: a full burst plus a window of refill
/// stays at 75 % of the limit, leaving room for other processes on the same UID.
fn quota(count: u32, window: Duration) -> Quota {
    let half = nonzero(count / 2);
    let period = window / half.get();
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(half))
        .allow_burst(nonzero(count / 4))
}

impl HttpClient {
    /// How long after a signed call begins Bybit may still act on it: the local budget wait,
    /// then up to two sends (a 10002 resync retries once), each accepted until `recv_window`
    /// after its timestamp and answered within the request timeout.
    pub fn may_still_act_for(&self) -> Duration {
        let settings = &self.bybit().settings;
        MAX_LOCAL_WAIT + (settings.timeout + settings.recv_window) * 2
    }

    pub fn new(settings: HttpSettings, credentials: Credentials, clock: Clock) -> Self {
        let budgets = ENDPOINTS
            .iter()
            .filter_map(|e| match e.limit {
                Limit::Uid { count, window } => Some((
                    e.path,
                    Budget {
                        limiter: RateLimiter::direct(quota(count, window)),
                        held_until: Mutex::new(None),
                        reported: Mutex::new(None),
                    },
                )),
                Limit::Ip => None,
            })
            .collect();
        let timeout = settings.timeout;
        let bybit = Bybit {
            settings,
            credentials,
            budgets,
            ip_pool: RateLimiter::direct(quota(600, Duration::from_secs(5))),
            banned_until: Mutex::new(None),
        };
        Self {
            transport: SignedTransport::new(bybit, timeout, clock),
        }
    }

    fn bybit(&self) -> &Bybit {
        self.transport.protocol()
    }

    pub fn api_key_prefix(&self) -> String {
        self.bybit().credentials.api_key().chars().take(4).collect()
    }

    pub fn base_url(&self) -> &str {
        &self.bybit().settings.base_url
    }

    pub fn offset(&self) -> Option<ClockOffset> {
        self.transport.offset()
    }

    /// The server's last reported count for an endpoint.
    pub fn reported(&self, endpoint: &Endpoint) -> Option<LimitStatus> {
        self.bybit()
            .budgets
            .get(endpoint.path)
            .and_then(|b| *b.reported.lock().expect("budget lock"))
    }

    pub fn local_now(&self) -> crate::time::Timestamp {
        self.transport.local_now()
    }

    /// Local time corrected by the measured offset, in server milliseconds.
    pub fn server_now(&self) -> i64 {
        self.transport.server_now_ms()
    }

    pub fn offset_ms(&self) -> i64 {
        self.transport.offset_ms()
    }

    /// Measures the offset: `server − (t_send + t_recv) / 2`.
    pub async fn sync_clock(&self) -> Result<ClockOffset, VenueError> {
        self.transport.sync_clock().await
    }

    /// Calls an endpoint: budget, sign, send, read the limit headers, check the envelope, map
    /// errors. A 10002 (timestamp outside the window: rejected before processing) resyncs the
    /// clock and retries once, with a fresh timestamp and signature over the same payload.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        payload: Payload<'_>,
    ) -> Result<Reply, VenueError> {
        self.transport.call(endpoint, &payload).await
    }
}

impl Bybit {
    fn hold(&self, endpoint: &Endpoint, wait: Duration) {
        if let Some(budget) = self.budgets.get(endpoint.path) {
            *budget.held_until.lock().expect("budget lock") = Some(Instant::now() + wait);
        }
    }
}

/// How long until `X-Bapi-Limit-Reset-Timestamp` (server ms), at most a minute.
fn reset_wait(headers: &HeaderMap, server_now_ms: i64) -> Option<Duration> {
    let reset = header_i64(headers, "x-bapi-limit-reset-timestamp")?;
    let wait = (reset - server_now_ms).clamp(0, 60_000);
    Some(Duration::from_millis(wait as u64))
}

impl Protocol for Bybit {
    type Endpoint = Endpoint;
    type Payload<'a> = Payload<'a>;
    type Reply = Reply;

    const VENUE: &'static str = "bybit";
    const CLOCK_CODE: &'static str = "10002";
    const SKEW_WARNING_MS: i64 = 1_000;

    fn info(endpoint: &Endpoint) -> CallInfo {
        CallInfo {
            path: endpoint.path,
            signed: endpoint.signed,
            effect: endpoint.effect,
        }
    }

    fn server_time() -> (Endpoint, Payload<'static>) {
        (SERVER_TIME, Payload::Query(&[]))
    }

    fn server_time_ms(reply: &Reply) -> Result<i64, VenueError> {
        parse::server_time_ms(reply)
    }

    /// Refuses before anything is sent when a ban or a hold says so; otherwise the
    /// endpoint's quota (public endpoints share the IP pool).
    fn gate(&self, endpoint: &Endpoint, _server_now_ms: i64) -> Result<Gate<'_>, VenueError> {
        let now = Instant::now();
        let remaining = |until: &Mutex<Option<Instant>>| {
            until
                .lock()
                .expect("hold lock")
                .filter(|t| *t > now)
                .map(|t| t - now)
        };
        if let Some(wait) = remaining(&self.banned_until) {
            return Err(VenueError::RateLimited {
                retry_after: Some(wait),
            });
        }
        match self.budgets.get(endpoint.path) {
            Some(budget) => match remaining(&budget.held_until) {
                Some(wait) => Err(VenueError::RateLimited {
                    retry_after: Some(wait),
                }),
                None => Ok(Gate::one(&budget.limiter)),
            },
            None => Ok(Gate::one(&self.ip_pool)),
        }
    }

    fn build(
        &self,
        client: &reqwest::Client,
        endpoint: &Endpoint,
        payload: &Payload<'_>,
        server_now_ms: i64,
    ) -> reqwest::RequestBuilder {
        let (query, body) = match payload {
            Payload::Query(params) => (
                params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
                None,
            ),
            Payload::Json(body) => (String::new(), Some(*body)),
        };
        let url = if query.is_empty() {
            format!("{}{}", self.settings.base_url, endpoint.path)
        } else {
            format!("{}{}?{query}", self.settings.base_url, endpoint.path)
        };
        let mut request = match (endpoint.method, body) {
            (Method::Get, _) => client.get(&url),
            (Method::Post, body) => client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body.unwrap_or("{}").to_string()),
        };
        if endpoint.signed {
            let recv_window = self.settings.recv_window.as_millis();
            // Sign exactly the bytes that are sent: the query as written into the URL, or the
            // body string itself.
            let signed = body.unwrap_or(&query);
            let signature = self.credentials.sign(server_now_ms, recv_window, signed);
            request = request
                .header("X-BAPI-API-KEY", self.credentials.api_key())
                .header("X-BAPI-TIMESTAMP", server_now_ms.to_string())
                .header("X-BAPI-RECV-WINDOW", recv_window.to_string())
                .header("X-BAPI-SIGN", signature);
        }
        request
    }

    /// Records the server's count; when it says nothing is left, holds the endpoint until the
    /// reset (or for one window when the reset is already past).
    fn read_limits(&self, endpoint: &Endpoint, headers: &HeaderMap, server_now_ms: i64) {
        let (Some(budget), Limit::Uid { window, .. }) =
            (self.budgets.get(endpoint.path), endpoint.limit)
        else {
            return;
        };
        let Some(remaining) = header_i64(headers, "x-bapi-limit-status") else {
            return;
        };
        let status = LimitStatus {
            remaining: remaining.clamp(0, u32::MAX as i64) as u32,
            limit: header_i64(headers, "x-bapi-limit").map(|l| l.clamp(0, u32::MAX as i64) as u32),
            reset_ms: header_i64(headers, "x-bapi-limit-reset-timestamp"),
        };
        *budget.reported.lock().expect("budget lock") = Some(status);
        if status.remaining == 0 {
            let wait = reset_wait(headers, server_now_ms)
                .filter(|w| !w.is_zero())
                .unwrap_or(window);
            tracing::warn!(
                path = endpoint.path,
                ?wait,
                "Bybit reports this endpoint's limit spent; holding calls until it resets"
            );
            self.hold(endpoint, wait);
        }
    }

    fn interpret(
        &self,
        endpoint: &Endpoint,
        status: u16,
        headers: &HeaderMap,
        text: String,
        server_now_ms: i64,
    ) -> Result<Reply, Refusal> {
        if status == 403 {
            *self.banned_until.lock().expect("ban lock") = Some(Instant::now() + error::IP_BAN);
            tracing::error!(path = endpoint.path, body = %error::short(&text), alert = true,
                "ALERT: Bybit answered HTTP 403 (access too frequent, or a blocked region); no call goes to Bybit for 10 minutes");
            return Err(error::from_status(status, &text, endpoint.effect).into());
        }
        let envelope = match parse::envelope(&text) {
            Ok(envelope) => envelope,
            Err(reason) if (200..300).contains(&status) => {
                return Err(match endpoint.effect {
                    // A 2xx we cannot read may still have moved the money.
                    Effect::MovesMoney => VenueError::OutcomeUnknown {
                        detail: format!("the transfer was answered {status} but the answer does not parse: {reason}"),
                    },
                    Effect::Read => parse::malformed(reason, &text),
                }
                .into());
            }
            Err(_) => return Err(error::from_status(status, &text, endpoint.effect).into()),
        };
        if envelope.ret_code == error::INVALID_TIMESTAMP {
            return Err(Refusal::ClockRejected(envelope.ret_msg));
        }
        if envelope.ret_code == error::TOO_MANY_VISITS {
            let wait = reset_wait(headers, server_now_ms)
                .filter(|w| !w.is_zero())
                .unwrap_or(DEFAULT_10006_WAIT);
            self.hold(endpoint, wait);
            tracing::warn!(path = endpoint.path, ?wait, "Bybit answered 10006 (too many visits); holding this endpoint until its limit resets");
            return Err(VenueError::RateLimited {
                retry_after: Some(wait),
            }
            .into());
        }
        if envelope.ret_code != error::OK {
            return Err(error::from_code(
                envelope.ret_code,
                &envelope.ret_msg,
                endpoint.effect,
                None,
            )
            .into());
        }
        if !(200..300).contains(&status) {
            return Err(error::from_status(status, &text, endpoint.effect).into());
        }
        let time_ms = envelope.time.as_ref().and_then(|t| t.integer("time").ok());
        match envelope.result {
            Some(result) if result.get().trim_start().starts_with('{') => Ok(Reply {
                body: text,
                result,
                time_ms,
            }),
            _ => {
                let detail = "the envelope has no result object";
                Err(match endpoint.effect {
                    Effect::MovesMoney => VenueError::OutcomeUnknown {
                        detail: detail.into(),
                    },
                    Effect::Read => parse::malformed(detail, &text),
                }
                .into())
            }
        }
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_the_documented_ones() {
        assert_eq!(
            TRANSFER.limit,
            Limit::Uid {
                count: 60,
                window: Duration::from_secs(60)
            }
        );
        assert_eq!(TRANSFER_LIST.limit, TRANSFER.limit);
        assert_eq!(WALLET_BALANCE.limit, per_second(50));
        assert_eq!(FUNDING_BALANCE.limit, per_second(450));
        assert_eq!(QUERY_API.limit, per_second(10));
        assert_eq!(TRANSFER.effect, Effect::MovesMoney);
        const { assert!(!SERVER_TIME.signed && !RISK_LIMIT.signed) };
    }

    #[test]
    fn uuids_pass_encoding_untouched() {
        assert_eq!(
            encode("0b3f5b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
            "0b3f5b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
        );
        assert_eq!(encode("USDT,USDC"), "USDT%2CUSDC");
    }
}
