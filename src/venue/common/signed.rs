//! The one signed-request pipeline the adapters share: wait for the budget, sign, send, read
//! the limit headers, read the answer, and — when the venue refused the timestamp before
//! processing the request — measure the clock again and send once more.
//!
//! What differs per venue is a small `Protocol`: how a request is signed and built, which
//! budget it draws on, what its limit headers say and how its answer (codes, envelopes) maps
//! to a reply or a `VenueError`. The skeleton around those parts is written once here, so a
//! fix to the retry rule, the clock or a transport failure's meaning lands on every venue.
//!
//! The one rule the skeleton itself enforces: only a refusal the venue documents as "rejected
//! before processing" (its timestamp-window code) is resent, and only once. Any other failure
//! goes back to the caller with the retry semantics the venue's mapping gave it.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use reqwest::header::HeaderMap;

use super::clock_offset::{ClockOffset, ServerClock};
use super::transport::{self, Effect};
use super::usage;
use crate::clock::Clock;
use crate::time::Timestamp;
use crate::venue::VenueError;

/// Wait this long for the local budget before giving up on a call. Part of every adapter's
/// `may_still_act_for`.
pub const MAX_LOCAL_WAIT: Duration = Duration::from_secs(2);

/// What the skeleton needs to know of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo {
    pub path: &'static str,
    /// Carries a signature and a timestamp: the clock must be measured first, and a
    /// timestamp refusal is retried.
    pub signed: bool,
    pub effect: Effect,
}

/// The local budget a request must pass before it is sent: `cost` cells of `limiter`.
pub struct Gate<'a> {
    pub limiter: &'a DefaultDirectRateLimiter,
    pub cost: NonZeroU32,
}

impl<'a> Gate<'a> {
    pub fn one(limiter: &'a DefaultDirectRateLimiter) -> Self {
        Self {
            limiter,
            cost: NonZeroU32::MIN,
        }
    }
}

/// Why an answer is not a reply.
pub enum Refusal {
    Venue(VenueError),
    /// The venue refused the timestamp before processing the request (its message attached):
    /// measure the clock again and send once more.
    ClockRejected(String),
}

impl From<VenueError> for Refusal {
    fn from(error: VenueError) -> Self {
        Refusal::Venue(error)
    }
}

/// One venue's part of a signed call. Implementations hold the venue's credentials, settings
/// and budgets; nothing in them awaits, so the pipeline owns every wait.
pub trait Protocol: Send + Sync {
    type Endpoint: Send + Sync;
    /// What a request carries besides its endpoint (a query, a JSON body).
    type Payload<'a>: Send + Sync;
    type Reply;

    /// The venue's name, for log lines.
    const VENUE: &'static str;
    /// The venue's timestamp-refusal code, for log lines and the final error.
    const CLOCK_CODE: &'static str;
    /// Warn about the local clock beyond this offset.
    const SKEW_WARNING_MS: i64;

    fn info(endpoint: &Self::Endpoint) -> CallInfo;

    /// The unsigned server-time request.
    fn server_time() -> (Self::Endpoint, Self::Payload<'static>);
    /// The server's time, in ms, from a server-time reply.
    fn server_time_ms(reply: &Self::Reply) -> Result<i64, VenueError>;

    /// Refuses at once (a ban, a pause, the server's count spent) or names the local budget
    /// to wait for.
    fn gate(&self, endpoint: &Self::Endpoint, server_now_ms: i64) -> Result<Gate<'_>, VenueError>;

    /// The request, signed with `server_now_ms` when the endpoint is signed. The bytes signed
    /// are the bytes sent.
    fn build(
        &self,
        client: &reqwest::Client,
        endpoint: &Self::Endpoint,
        payload: &Self::Payload<'_>,
        server_now_ms: i64,
    ) -> reqwest::RequestBuilder;

    /// Reads the server's own count of the budget from an answer's headers.
    fn read_limits(&self, endpoint: &Self::Endpoint, headers: &HeaderMap, server_now_ms: i64);

    /// The reply in an answer, or why there is none (codes mapped to `VenueError`s with their
    /// retry semantics, pauses recorded).
    fn interpret(
        &self,
        endpoint: &Self::Endpoint,
        status: u16,
        headers: &HeaderMap,
        body: String,
        server_now_ms: i64,
    ) -> Result<Self::Reply, Refusal>;

    /// A transport failure, described without anything secret.
    fn transport_error(error: &reqwest::Error, effect: Effect) -> VenueError {
        transport::from_transport(error, effect)
    }
}

/// The signed-request pipeline over one venue's `Protocol`.
pub struct SignedTransport<P> {
    client: Result<reqwest::Client, String>,
    time: ServerClock,
    protocol: P,
}

impl<P: Protocol> SignedTransport<P> {
    pub fn new(protocol: P, timeout: Duration, clock: Clock) -> Self {
        Self {
            client: transport::http_client(timeout),
            time: ServerClock::new(clock),
            protocol,
        }
    }

    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The last measured offset, if any.
    pub fn offset(&self) -> Option<ClockOffset> {
        self.time.offset()
    }

    /// The last measured offset in ms, 0 before the first measurement.
    pub fn offset_ms(&self) -> i64 {
        self.time.offset_ms()
    }

    /// The local clock (the engine's time domain).
    pub fn local_now(&self) -> Timestamp {
        self.time.local_now()
    }

    /// Local time corrected by the measured offset, in server milliseconds.
    pub fn server_now_ms(&self) -> i64 {
        self.time.server_now_ms()
    }

    /// Measures the offset: `server − (t_send + t_recv) / 2`.
    pub async fn sync_clock(&self) -> Result<ClockOffset, VenueError> {
        let (endpoint, payload) = P::server_time();
        let probe = self.time.probe();
        let reply = self
            .send_once(&endpoint, &payload)
            .await
            .map_err(final_error::<P>)?;
        let answered = self.time.answered(probe);
        let server = P::server_time_ms(&reply)?;
        let offset = self.time.record(answered, server);
        if offset.offset_ms.abs() > P::SKEW_WARNING_MS {
            tracing::warn!(
                venue = P::VENUE,
                offset_ms = offset.offset_ms,
                warn_above_ms = P::SKEW_WARNING_MS,
                "the local clock is off the venue's; timestamps are corrected, but fix NTP"
            );
        }
        Ok(offset)
    }

    /// Calls an endpoint: budget, sign, send, read the limit headers, read the answer. A
    /// timestamp refusal (rejected before processing) measures the clock again and sends once
    /// more, with a fresh timestamp and signature over the same payload.
    pub async fn call(
        &self,
        endpoint: &P::Endpoint,
        payload: &P::Payload<'_>,
    ) -> Result<P::Reply, VenueError> {
        let info = P::info(endpoint);
        if info.signed && !self.time.is_fresh() {
            self.sync_clock().await?;
        }
        match self.send_once(endpoint, payload).await {
            Err(Refusal::ClockRejected(message)) if info.signed => {
                tracing::warn!(venue = P::VENUE, code = P::CLOCK_CODE, path = info.path, %message,
                    "the venue refused the timestamp; measuring the clock offset again and retrying once");
                self.sync_clock().await?;
                self.send_once(endpoint, payload)
                    .await
                    .map_err(final_error::<P>)
            }
            other => other.map_err(final_error::<P>),
        }
    }

    async fn send_once(
        &self,
        endpoint: &P::Endpoint,
        payload: &P::Payload<'_>,
    ) -> Result<P::Reply, Refusal> {
        let info = P::info(endpoint);
        self.admit(endpoint, info).await?;
        let client = self
            .client
            .as_ref()
            .map_err(|e| VenueError::Unreachable { detail: e.clone() })?;
        let request = self
            .protocol
            .build(client, endpoint, payload, self.server_now_ms());
        let response = request
            .send()
            .await
            .map_err(|e| P::transport_error(&e, info.effect))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.protocol
            .read_limits(endpoint, &headers, self.server_now_ms());
        let body = response
            .text()
            .await
            .map_err(|e| P::transport_error(&e, info.effect))?;
        tracing::debug!(venue = P::VENUE, path = info.path, status, "venue answered");
        self.protocol
            .interpret(endpoint, status, &headers, body, self.server_now_ms())
    }

    /// Refuses or waits, before anything is sent, as the venue's gate says.
    async fn admit(&self, endpoint: &P::Endpoint, info: CallInfo) -> Result<(), VenueError> {
        let gate = self.protocol.gate(endpoint, self.server_now_ms())?;
        // Most requests pass at once; only those that wait are timed and counted.
        if gate.limiter.check_n(gate.cost) == Ok(Ok(())) {
            usage::record_request(P::VENUE, info.path, gate.cost.get());
            return Ok(());
        }
        let waiting = tokio::time::Instant::now();
        let admitted =
            tokio::time::timeout(MAX_LOCAL_WAIT, gate.limiter.until_n_ready(gate.cost)).await;
        usage::record_wait(P::VENUE, waiting.elapsed());
        match admitted {
            Ok(Ok(())) => {
                usage::record_request(P::VENUE, info.path, gate.cost.get());
                Ok(())
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    venue = P::VENUE,
                    path = info.path,
                    "the local budget for this endpoint is spent"
                );
                Err(VenueError::RateLimited {
                    retry_after: Some(MAX_LOCAL_WAIT),
                })
            }
        }
    }
}

fn final_error<P: Protocol>(refusal: Refusal) -> VenueError {
    match refusal {
        Refusal::Venue(error) => error,
        Refusal::ClockRejected(message) => VenueError::Unreachable {
            detail: format!(
                "{}: the timestamp was refused even after measuring the clock again: {message}",
                P::CLOCK_CODE
            ),
        },
    }
}
