//! Signed REST calls to Binance: timestamps and `recvWindow`, the server-time offset, the
//! weight budgets, 429 and 418.
//!
//! Every call names an `Endpoint` (path, weight pool, weight, signed or not, whether it can
//! move money), so the budget is reserved before the request leaves and the error mapping
//! knows whether a lost answer is harmless. Budgets are governor quotas sized from the docs
//! (futures 2400 IP weight/min, /api 6000, each /sapi endpoint 12000 IP or 180000 UID) and
//! corrected by the `X-MBX-USED-WEIGHT-1M` / `X-SAPI-USED-*-WEIGHT-1M` headers, which are the
//! true count (other processes on the same IP spend it too). A 429 pauses that pool until
//! `Retry-After`; a 418 stops every call to that host until the ban ends.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;

use super::credential::Credentials;
use super::error::{self, Effect, INVALID_TIMESTAMP};
use super::parse;
use crate::clock::Clock;
pub use crate::venue::common::clock_offset::ClockOffset;
pub use crate::venue::common::signed::MAX_LOCAL_WAIT;
use crate::venue::common::signed::{CallInfo, Gate, Protocol, Refusal, SignedTransport};
use crate::venue::common::transport::{encode, retry_after};
use crate::venue::VenueError;

/// The two hosts the adapter talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// USDⓈ-M futures, `/fapi`.
    Futures,
    /// Spot `/api` and wallet `/sapi`.
    Spot,
}

/// The weight budgets, each with its documented limit per minute and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    FuturesIp,
    SpotIp,
    SapiIp,
    SapiUid,
}

impl Pool {
    const ALL: [Pool; 4] = [Pool::FuturesIp, Pool::SpotIp, Pool::SapiIp, Pool::SapiUid];

    pub fn limit_per_minute(self) -> u32 {
        match self {
            Pool::FuturesIp => 2_400,
            Pool::SpotIp => 6_000,
            Pool::SapiIp => 12_000,
            Pool::SapiUid => 180_000,
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Pool::FuturesIp | Pool::SpotIp => "x-mbx-used-weight-1m",
            Pool::SapiIp => "x-sapi-used-ip-weight-1m",
            Pool::SapiUid => "x-sapi-used-uid-weight-1m",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// One REST endpoint as the adapter uses it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: Method,
    pub host: Host,
    pub path: &'static str,
    pub pool: Pool,
    pub weight: u32,
    pub signed: bool,
    pub effect: Effect,
}

const fn read(host: Host, path: &'static str, pool: Pool, weight: u32, signed: bool) -> Endpoint {
    Endpoint {
        method: Method::Get,
        host,
        path,
        pool,
        weight,
        signed,
        effect: Effect::Read,
    }
}

pub const SERVER_TIME: Endpoint = read(Host::Futures, "/fapi/v1/time", Pool::FuturesIp, 1, false);
pub const FUTURES_ACCOUNT: Endpoint =
    read(Host::Futures, "/fapi/v3/account", Pool::FuturesIp, 5, true);
pub const POSITION_RISK: Endpoint = read(
    Host::Futures,
    "/fapi/v3/positionRisk",
    Pool::FuturesIp,
    5,
    true,
);
pub const ACCOUNT_CONFIG: Endpoint = read(
    Host::Futures,
    "/fapi/v1/accountConfig",
    Pool::FuturesIp,
    5,
    true,
);
pub const LEVERAGE_BRACKET: Endpoint = read(
    Host::Futures,
    "/fapi/v1/leverageBracket",
    Pool::FuturesIp,
    1,
    true,
);
pub const SPOT_ACCOUNT: Endpoint = read(Host::Spot, "/api/v3/account", Pool::SpotIp, 20, true);
pub const TRANSFER_HISTORY: Endpoint =
    read(Host::Spot, "/sapi/v1/asset/transfer", Pool::SapiIp, 1, true);
pub const API_RESTRICTIONS: Endpoint = read(
    Host::Spot,
    "/sapi/v1/account/apiRestrictions",
    Pool::SapiIp,
    1,
    true,
);
/// The user-data stream's key: `USER_STREAM` security (the API key header, no signature).
/// Creating returns the active key if there is one and extends it 60 minutes.
pub const LISTEN_KEY_CREATE: Endpoint = Endpoint {
    method: Method::Post,
    ..read(
        Host::Futures,
        "/fapi/v1/listenKey",
        Pool::FuturesIp,
        1,
        false,
    )
};
/// Extends the key 60 minutes; -1125 means it is gone and must be created again.
pub const LISTEN_KEY_KEEPALIVE: Endpoint = Endpoint {
    method: Method::Put,
    ..read(
        Host::Futures,
        "/fapi/v1/listenKey",
        Pool::FuturesIp,
        1,
        false,
    )
};
/// The docs page says UID weight 900; the 2026 SDK says 300; the 2024 swagger IP 1. Budget
/// the largest.
pub const TRANSFER: Endpoint = Endpoint {
    method: Method::Post,
    host: Host::Spot,
    path: "/sapi/v1/asset/transfer",
    pool: Pool::SapiUid,
    weight: 900,
    signed: true,
    effect: Effect::MovesMoney,
};

/// Use at most this share of a pool as the server reports it; the rest is slack for other
/// processes on the IP and for the top-up.
const HEADER_CEILING_PERCENT: u32 = 90;

/// What the HTTP client needs to know.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub futures_url: String,
    pub spot_url: String,
    pub recv_window: Duration,
    pub timeout: Duration,
}

struct PoolState {
    limiter: DefaultDirectRateLimiter,
    /// The server's count: (server minute, weight used in it).
    reported: Mutex<Option<(i64, u32)>>,
    /// After a 429: nothing is sent from this pool before this instant.
    paused_until: Mutex<Option<Instant>>,
}

/// Binance's part of a signed call: query-string signing, weight pools, 429 and 418.
pub struct Binance {
    settings: HttpSettings,
    credentials: Credentials,
    pools: Vec<PoolState>,
    /// After a 418, per host: nothing is sent there before this instant.
    banned_until: [Mutex<Option<Instant>>; 2],
}

pub struct HttpClient {
    transport: SignedTransport<Binance>,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl HttpClient {
    /// How long after a signed call begins Binance may still act on it: the local budget
    /// wait, then up to two sends (a -1021 resync retries once), each accepted by the server
    /// until `recvWindow` after its timestamp and answered within the request timeout.
    pub fn may_still_act_for(&self) -> Duration {
        let settings = &self.transport.protocol().settings;
        MAX_LOCAL_WAIT + (settings.timeout + settings.recv_window) * 2
    }

    pub fn new(settings: HttpSettings, credentials: Credentials, clock: Clock) -> Self {
        let pools = Pool::ALL
            .iter()
            .map(|pool| {
                // Refill half the limit per minute with a quarter as burst: even a full burst
                // plus a minute of refill stays at 75 % of the documented budget.
                let limit = pool.limit_per_minute();
                let quota = Quota::per_minute(nonzero(limit / 2)).allow_burst(nonzero(limit / 4));
                PoolState {
                    limiter: RateLimiter::direct(quota),
                    reported: Mutex::new(None),
                    paused_until: Mutex::new(None),
                }
            })
            .collect();
        let timeout = settings.timeout;
        let binance = Binance {
            settings,
            credentials,
            pools,
            banned_until: [Mutex::new(None), Mutex::new(None)],
        };
        Self {
            transport: SignedTransport::new(binance, timeout, clock),
        }
    }

    pub fn api_key_prefix(&self) -> String {
        let credentials = &self.transport.protocol().credentials;
        credentials.api_key().chars().take(4).collect()
    }

    /// The last measured offset, if any.
    pub fn offset(&self) -> Option<ClockOffset> {
        self.transport.offset()
    }

    /// The server's count for a pool in the current minute, as last reported.
    pub fn reported_weight(&self, pool: Pool) -> Option<u32> {
        self.transport
            .protocol()
            .reported_weight(pool, self.server_now())
    }

    /// The local clock (the engine's time domain).
    pub fn local_now(&self) -> crate::time::Timestamp {
        self.transport.local_now()
    }

    /// Local time corrected by the measured offset, in server milliseconds.
    pub fn server_now(&self) -> i64 {
        self.transport.server_now_ms()
    }

    /// Measures the offset: `serverTime − (t_send + t_recv)/2`.
    pub async fn sync_clock(&self) -> Result<ClockOffset, VenueError> {
        self.transport.sync_clock().await
    }

    /// Calls an endpoint: budget, sign, send, read the weight headers, map errors. A -1021
    /// answer (timestamp outside recvWindow: rejected before processing) resyncs the clock
    /// and retries once.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        params: &[(&str, String)],
    ) -> Result<String, VenueError> {
        self.transport.call(endpoint, &params).await
    }
}

impl Binance {
    fn reported_weight(&self, pool: Pool, server_now_ms: i64) -> Option<u32> {
        let minute = server_now_ms / 60_000;
        match *self.pools[pool.index()].reported.lock().expect("pool lock") {
            Some((m, used)) if m == minute => Some(used),
            _ => None,
        }
    }

    /// The signed query: the parameters, then `recvWindow`, `timestamp` and the signature
    /// over everything before it.
    fn query(&self, endpoint: &Endpoint, params: &[(&str, String)], server_now_ms: i64) -> String {
        let mut query = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        if endpoint.signed {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!(
                "recvWindow={}&timestamp={server_now_ms}",
                self.settings.recv_window.as_millis(),
            ));
            let signature = self.credentials.sign(&query);
            query.push_str("&signature=");
            query.push_str(&signature);
        }
        query
    }
}

fn until_next_minute(server_now_ms: i64) -> Duration {
    let into = server_now_ms.rem_euclid(60_000);
    Duration::from_millis((60_000 - into) as u64 + 500)
}

impl Protocol for Binance {
    type Endpoint = Endpoint;
    type Payload<'a> = &'a [(&'a str, String)];
    type Reply = String;

    const VENUE: &'static str = "binance";
    const CLOCK_CODE: &'static str = "-1021";
    const SKEW_WARNING_MS: i64 = 1_000;

    fn info(endpoint: &Endpoint) -> CallInfo {
        CallInfo {
            path: endpoint.path,
            signed: endpoint.signed,
            effect: endpoint.effect,
        }
    }

    fn server_time() -> (Endpoint, Self::Payload<'static>) {
        (SERVER_TIME, &[])
    }

    fn server_time_ms(reply: &String) -> Result<i64, VenueError> {
        parse::server_time(reply)
    }

    /// Refuses before anything is sent when a ban, a 429 pause or the server's count says
    /// so; otherwise the pool's quota, by the endpoint's weight.
    fn gate(&self, endpoint: &Endpoint, server_now_ms: i64) -> Result<Gate<'_>, VenueError> {
        let now = Instant::now();
        let blocked = |until: &Mutex<Option<Instant>>| {
            until
                .lock()
                .expect("block lock")
                .filter(|t| *t > now)
                .map(|t| t - now)
        };
        if let Some(wait) = blocked(&self.banned_until[endpoint.host as usize]) {
            return Err(VenueError::RateLimited {
                retry_after: Some(wait),
            });
        }
        let pool = &self.pools[endpoint.pool.index()];
        if let Some(wait) = blocked(&pool.paused_until) {
            return Err(VenueError::RateLimited {
                retry_after: Some(wait),
            });
        }
        let ceiling = endpoint.pool.limit_per_minute() * HEADER_CEILING_PERCENT / 100;
        if let Some(used) = self.reported_weight(endpoint.pool, server_now_ms) {
            if used + endpoint.weight > ceiling {
                tracing::warn!(path = endpoint.path, used, ceiling, "the server reports this weight pool nearly spent; holding calls until the next minute");
                return Err(VenueError::RateLimited {
                    retry_after: Some(until_next_minute(server_now_ms)),
                });
            }
        }
        Ok(Gate {
            limiter: &pool.limiter,
            cost: nonzero(endpoint.weight),
        })
    }

    fn build(
        &self,
        client: &reqwest::Client,
        endpoint: &Endpoint,
        params: &Self::Payload<'_>,
        server_now_ms: i64,
    ) -> reqwest::RequestBuilder {
        let query = self.query(endpoint, params, server_now_ms);
        let base = match endpoint.host {
            Host::Futures => &self.settings.futures_url,
            Host::Spot => &self.settings.spot_url,
        };
        let url = if query.is_empty() {
            format!("{base}{}", endpoint.path)
        } else {
            format!("{base}{}?{query}", endpoint.path)
        };
        let request = match endpoint.method {
            Method::Get => client.get(&url),
            Method::Post => client.post(&url),
            Method::Put => client.put(&url),
        };
        request.header("X-MBX-APIKEY", self.credentials.api_key())
    }

    fn read_limits(&self, endpoint: &Endpoint, headers: &HeaderMap, server_now_ms: i64) {
        let minute = server_now_ms / 60_000;
        let pools: &[Pool] = match endpoint.host {
            Host::Futures => &[Pool::FuturesIp],
            Host::Spot if endpoint.path.starts_with("/sapi") => &[Pool::SapiIp, Pool::SapiUid],
            Host::Spot => &[Pool::SpotIp],
        };
        for pool in pools {
            let used = headers
                .get(pool.header())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(used) = used {
                *self.pools[pool.index()].reported.lock().expect("pool lock") =
                    Some((minute, used));
            }
        }
    }

    fn interpret(
        &self,
        endpoint: &Endpoint,
        status: u16,
        headers: &HeaderMap,
        body: String,
        server_now_ms: i64,
    ) -> Result<String, Refusal> {
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let retry_after = retry_after(headers);
        match status {
            429 => {
                let wait = retry_after.unwrap_or_else(|| until_next_minute(server_now_ms));
                *self.pools[endpoint.pool.index()]
                    .paused_until
                    .lock()
                    .expect("pool lock") = Some(Instant::now() + wait);
                tracing::warn!(
                    path = endpoint.path,
                    ?wait,
                    "Binance answered 429 (too many requests); pausing this weight pool"
                );
            }
            418 => {
                let wait = retry_after.unwrap_or(Duration::from_secs(120));
                *self.banned_until[endpoint.host as usize]
                    .lock()
                    .expect("ban lock") = Some(Instant::now() + wait);
                tracing::error!(host = ?endpoint.host, ?wait, alert = true,
                    "ALERT: Binance has banned this IP (HTTP 418); no call goes to that host until the ban ends");
            }
            _ => {}
        }
        if let Some(api) = error::ApiError::parse(&body).filter(|e| e.code == INVALID_TIMESTAMP) {
            return Err(Refusal::ClockRejected(api.msg));
        }
        Err(Refusal::Venue(error::from_status(
            status,
            &body,
            endpoint.effect,
            retry_after,
        )))
    }

    fn transport_error(error: &reqwest::Error, effect: Effect) -> VenueError {
        error::from_transport(error, effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_non_ascii_before_signing() {
        assert_eq!(encode("１２３"), "%EF%BC%91%EF%BC%92%EF%BC%93");
        assert_eq!(encode("MAIN_UMFUTURE"), "MAIN_UMFUTURE");
        assert_eq!(encode("12.5"), "12.5");
    }

    #[test]
    fn pools_are_sized_from_the_docs() {
        assert_eq!(Pool::FuturesIp.limit_per_minute(), 2_400);
        assert_eq!(Pool::SapiUid.limit_per_minute(), 180_000);
        assert_eq!(TRANSFER.pool, Pool::SapiUid);
        assert_eq!(TRANSFER.effect, Effect::MovesMoney);
    }
}
