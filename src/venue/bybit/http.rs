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
//! (Venue-neutral parts — the clock-offset estimate and a governor pool held by a server-reported
//! count — have twins in the Binance adapter; see the report for the extraction.)

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
use crate::venue::common::clock_offset::ServerClock;
use crate::venue::common::transport::{self, encode};
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

/// Wait this long for the local governor before giving up on a call.
const MAX_LOCAL_WAIT: Duration = Duration::from_secs(2);
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

pub struct HttpClient {
    client: Result<reqwest::Client, String>,
    settings: HttpSettings,
    credentials: Credentials,
    time: ServerClock,
    budgets: HashMap<&'static str, Budget>,
    /// Public endpoints share the IP pool.
    ip_pool: DefaultDirectRateLimiter,
    /// After an HTTP 403: nothing goes to the host before this instant.
    banned_until: Mutex<Option<Instant>>,
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
        MAX_LOCAL_WAIT + (self.settings.timeout + self.settings.recv_window) * 2
    }

    pub fn new(settings: HttpSettings, credentials: Credentials, clock: Clock) -> Self {
        let client = transport::http_client(settings.timeout);
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
        Self {
            client,
            settings,
            credentials,
            time: ServerClock::new(clock),
            budgets,
            ip_pool: RateLimiter::direct(quota(600, Duration::from_secs(5))),
            banned_until: Mutex::new(None),
        }
    }

    pub fn api_key_prefix(&self) -> String {
        self.credentials.api_key().chars().take(4).collect()
    }

    pub fn base_url(&self) -> &str {
        &self.settings.base_url
    }

    pub fn offset(&self) -> Option<ClockOffset> {
        self.time.offset()
    }

    /// The server's last reported count for an endpoint.
    pub fn reported(&self, endpoint: &Endpoint) -> Option<LimitStatus> {
        self.budgets
            .get(endpoint.path)
            .and_then(|b| *b.reported.lock().expect("budget lock"))
    }

    pub fn local_now(&self) -> crate::time::Timestamp {
        self.time.local_now()
    }

    /// Local time corrected by the measured offset, in server milliseconds.
    pub fn server_now(&self) -> i64 {
        self.time.server_now_ms()
    }

    pub fn offset_ms(&self) -> i64 {
        self.time.offset_ms()
    }

    /// Measures the offset: `server − (t_send + t_recv) / 2`.
    pub async fn sync_clock(&self) -> Result<ClockOffset, VenueError> {
        let probe = self.time.probe();
        let reply = self.send_once(&SERVER_TIME, &Payload::Query(&[])).await?;
        let answered = self.time.answered(probe);
        let server = parse::server_time_ms(&reply)?;
        let offset = self.time.record(answered, server);
        if offset.offset_ms.abs() > 1_000 {
            tracing::warn!(
                offset_ms = offset.offset_ms,
                "the local clock is more than 1 s off Bybit's; timestamps are corrected, but fix NTP"
            );
        }
        Ok(offset)
    }

    async fn ensure_clock(&self) -> Result<(), VenueError> {
        if !self.time.is_fresh() {
            self.sync_clock().await?;
        }
        Ok(())
    }

    /// Calls an endpoint: budget, sign, send, read the limit headers, check the envelope, map
    /// errors. A 10002 (timestamp outside the window: rejected before processing) resyncs the
    /// clock and retries once, with a fresh timestamp and signature over the same payload.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        payload: Payload<'_>,
    ) -> Result<Reply, VenueError> {
        if endpoint.signed {
            self.ensure_clock().await?;
        }
        match self.send_once(endpoint, &payload).await {
            Err(CallError::Resync(message)) if endpoint.signed => {
                tracing::warn!(path = endpoint.path, %message, "Bybit rejected the timestamp (10002); measuring the clock offset again and retrying once");
                self.sync_clock().await?;
                self.send_once(endpoint, &payload).await.map_err(Into::into)
            }
            other => other.map_err(Into::into),
        }
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        payload: &Payload<'_>,
    ) -> Result<Reply, CallError> {
        self.admit(endpoint).await?;
        let client = self
            .client
            .as_ref()
            .map_err(|e| VenueError::Unreachable { detail: e.clone() })?;
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
            let timestamp = self.server_now();
            let recv_window = self.settings.recv_window.as_millis();
            // Sign exactly the bytes that are sent: the query as written into the URL, or the
            // body string itself.
            let signed = body.unwrap_or(&query);
            let signature = self.credentials.sign(timestamp, recv_window, signed);
            request = request
                .header("X-BAPI-API-KEY", self.credentials.api_key())
                .header("X-BAPI-TIMESTAMP", timestamp.to_string())
                .header("X-BAPI-RECV-WINDOW", recv_window.to_string())
                .header("X-BAPI-SIGN", signature);
        }
        let response = request
            .send()
            .await
            .map_err(|e| error::from_transport(&e, endpoint.effect))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.record_limit(endpoint, &headers);
        let text = response
            .text()
            .await
            .map_err(|e| error::from_transport(&e, endpoint.effect))?;
        tracing::debug!(path = endpoint.path, status, "bybit answered");
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
            return Err(CallError::Resync(envelope.ret_msg));
        }
        if envelope.ret_code == error::TOO_MANY_VISITS {
            let wait = self
                .reset_wait(&headers)
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
        let result = match envelope.result {
            Some(result) if result.get().trim_start().starts_with('{') => result,
            _ => {
                let detail = "the envelope has no result object";
                return Err(match endpoint.effect {
                    Effect::MovesMoney => VenueError::OutcomeUnknown {
                        detail: detail.into(),
                    },
                    Effect::Read => parse::malformed(detail, &text),
                }
                .into());
            }
        };
        Ok(Reply {
            body: text,
            result,
            time_ms,
        })
    }

    /// Refuses or waits before anything is sent when a ban, a hold or the local quota says so.
    async fn admit(&self, endpoint: &Endpoint) -> Result<(), VenueError> {
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
        let limiter = match self.budgets.get(endpoint.path) {
            Some(budget) => {
                if let Some(wait) = remaining(&budget.held_until) {
                    return Err(VenueError::RateLimited {
                        retry_after: Some(wait),
                    });
                }
                &budget.limiter
            }
            None => &self.ip_pool,
        };
        match tokio::time::timeout(MAX_LOCAL_WAIT, limiter.until_ready()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(VenueError::RateLimited {
                retry_after: Some(MAX_LOCAL_WAIT),
            }),
        }
    }

    fn hold(&self, endpoint: &Endpoint, wait: Duration) {
        if let Some(budget) = self.budgets.get(endpoint.path) {
            *budget.held_until.lock().expect("budget lock") = Some(Instant::now() + wait);
        }
    }

    /// How long until `X-Bapi-Limit-Reset-Timestamp` (server ms), at most a minute.
    fn reset_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let reset = header_i64(headers, "x-bapi-limit-reset-timestamp")?;
        let wait = (reset - self.server_now()).clamp(0, 60_000);
        Some(Duration::from_millis(wait as u64))
    }

    /// Records the server's count; when it says nothing is left, holds the endpoint until the
    /// reset (or for one window when the reset is already past).
    fn record_limit(&self, endpoint: &Endpoint, headers: &HeaderMap) {
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
            let wait = self
                .reset_wait(headers)
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
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
}

/// A call's failure, with the one case `call` handles itself kept apart.
enum CallError {
    Venue(VenueError),
    /// 10002: resync the clock and try once more.
    Resync(String),
}

impl From<VenueError> for CallError {
    fn from(error: VenueError) -> Self {
        CallError::Venue(error)
    }
}

impl From<CallError> for VenueError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Venue(e) => e,
            CallError::Resync(message) => VenueError::Unreachable {
                detail: format!("10002 even after resyncing the clock: {message}"),
            },
        }
    }
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
