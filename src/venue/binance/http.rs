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
use crate::venue::common::clock_offset::ServerClock;
use crate::venue::common::transport::{self, encode, retry_after};
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
/// Wait this long for the local governor before giving up on a call.
const MAX_LOCAL_WAIT: Duration = Duration::from_secs(2);

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

pub struct HttpClient {
    client: Result<reqwest::Client, String>,
    settings: HttpSettings,
    credentials: Credentials,
    time: ServerClock,
    pools: Vec<PoolState>,
    /// After a 418, per host: nothing is sent there before this instant.
    banned_until: [Mutex<Option<Instant>>; 2],
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl HttpClient {
    /// How long after a signed call begins Binance may still act on it: the local budget
    /// wait, then up to two sends (a -1021 resync retries once), each accepted by the server
    /// until `recvWindow` after its timestamp and answered within the request timeout.
    pub fn may_still_act_for(&self) -> Duration {
        MAX_LOCAL_WAIT + (self.settings.timeout + self.settings.recv_window) * 2
    }

    pub fn new(settings: HttpSettings, credentials: Credentials, clock: Clock) -> Self {
        let client = transport::http_client(settings.timeout);
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
        Self {
            client,
            settings,
            credentials,
            time: ServerClock::new(clock),
            pools,
            banned_until: [Mutex::new(None), Mutex::new(None)],
        }
    }

    pub fn api_key_prefix(&self) -> String {
        self.credentials.api_key().chars().take(4).collect()
    }

    /// The last measured offset, if any.
    pub fn offset(&self) -> Option<ClockOffset> {
        self.time.offset()
    }

    /// The server's count for a pool in the current minute, as last reported.
    pub fn reported_weight(&self, pool: Pool) -> Option<u32> {
        let minute = self.server_now() / 60_000;
        match *self.pools[pool.index()].reported.lock().expect("pool lock") {
            Some((m, used)) if m == minute => Some(used),
            _ => None,
        }
    }

    /// The local clock (the engine's time domain).
    pub fn local_now(&self) -> crate::time::Timestamp {
        self.time.local_now()
    }

    /// Local time corrected by the measured offset, in server milliseconds.
    pub fn server_now(&self) -> i64 {
        self.time.server_now_ms()
    }

    /// Measures the offset: `serverTime − (t_send + t_recv)/2`.
    pub async fn sync_clock(&self) -> Result<ClockOffset, VenueError> {
        let probe = self.time.probe();
        let body = self.send_once(&SERVER_TIME, &[]).await?;
        let answered = self.time.answered(probe);
        let server = parse::server_time(&body)?;
        let offset = self.time.record(answered, server);
        if offset.offset_ms.abs() > 1_000 {
            tracing::warn!(offset_ms = offset.offset_ms, "the local clock is more than 1 s off Binance's; timestamps are corrected, but fix NTP");
        }
        Ok(offset)
    }

    async fn ensure_clock(&self) -> Result<(), VenueError> {
        if !self.time.is_fresh() {
            self.sync_clock().await?;
        }
        Ok(())
    }

    /// Calls an endpoint: budget, sign, send, read the weight headers, map errors. A -1021
    /// answer (timestamp outside recvWindow: rejected before processing) resyncs the clock
    /// and retries once.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        params: &[(&str, String)],
    ) -> Result<String, VenueError> {
        if endpoint.signed {
            self.ensure_clock().await?;
        }
        match self.send_once(endpoint, params).await {
            Err(Resync) if endpoint.signed => {
                tracing::warn!(path = endpoint.path, "Binance rejected the timestamp (-1021); measuring the clock offset again and retrying once");
                self.sync_clock().await?;
                self.send_once(endpoint, params).await.map_err(Into::into)
            }
            other => other.map_err(Into::into),
        }
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        params: &[(&str, String)],
    ) -> Result<String, CallError> {
        self.admit(endpoint).await?;
        let client = self
            .client
            .as_ref()
            .map_err(|e| VenueError::Unreachable { detail: e.clone() })?;
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
                "recvWindow={}&timestamp={}",
                self.settings.recv_window.as_millis(),
                self.server_now()
            ));
            let signature = self.credentials.sign(&query);
            query.push_str("&signature=");
            query.push_str(&signature);
        }
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
        };
        let response = request
            .header("X-MBX-APIKEY", self.credentials.api_key())
            .send()
            .await
            .map_err(|e| error::from_transport(&e, endpoint.effect))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.record_weights(endpoint, &headers);
        let body = response
            .text()
            .await
            .map_err(|e| error::from_transport(&e, endpoint.effect))?;
        tracing::debug!(path = endpoint.path, status, "binance answered");
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let retry_after = retry_after(&headers);
        match status {
            429 => {
                let wait = retry_after.unwrap_or_else(|| self.until_next_minute());
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
        if error::ApiError::parse(&body).is_some_and(|e| e.code == INVALID_TIMESTAMP) {
            return Err(Resync);
        }
        Err(CallError::Venue(error::from_status(
            status,
            &body,
            endpoint.effect,
            retry_after,
        )))
    }

    /// Refuses or waits, before anything is sent, when a ban, a 429 pause, the server's count
    /// or the local quota says so.
    async fn admit(&self, endpoint: &Endpoint) -> Result<(), VenueError> {
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
        if let Some(used) = self.reported_weight(endpoint.pool) {
            if used + endpoint.weight > ceiling {
                tracing::warn!(path = endpoint.path, used, ceiling, "the server reports this weight pool nearly spent; holding calls until the next minute");
                return Err(VenueError::RateLimited {
                    retry_after: Some(self.until_next_minute()),
                });
            }
        }
        match tokio::time::timeout(
            MAX_LOCAL_WAIT,
            pool.limiter.until_n_ready(nonzero(endpoint.weight)),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(VenueError::RateLimited {
                retry_after: Some(MAX_LOCAL_WAIT),
            }),
        }
    }

    fn record_weights(&self, endpoint: &Endpoint, headers: &HeaderMap) {
        let minute = self.server_now() / 60_000;
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

    fn until_next_minute(&self) -> Duration {
        let into = self.server_now().rem_euclid(60_000);
        Duration::from_millis((60_000 - into) as u64 + 500)
    }
}

/// A call's failure, with the one case `call` handles itself kept apart.
enum CallError {
    Venue(VenueError),
    /// -1021: resync the clock and try once more.
    Resync,
}
use CallError::Resync;

impl From<VenueError> for CallError {
    fn from(error: VenueError) -> Self {
        CallError::Venue(error)
    }
}

impl From<CallError> for VenueError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Venue(e) => e,
            CallError::Resync => VenueError::Unreachable {
                detail: "-1021: timestamp outside recvWindow even after resyncing the clock".into(),
            },
        }
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
