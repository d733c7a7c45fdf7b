//! One WebSocket connection kept alive: connect, open (log in, subscribe), heartbeat, read
//! frames, and reconnect with capped exponential back-off and jitter — the part every venue's
//! stream does the same way. What differs per venue is a `StreamProtocol`: the URL, the
//! opening messages, the heartbeat, the connection's documented lifetime and how a text frame
//! reads.
//!
//! Frames are handed to a `FrameSink` as they arrive, on the connection's task: the sink is
//! the local account state, and the time from a frame leaving the venue's socket to the
//! decision is the reaction latency the bot exists to keep small.
//!
//! Nothing here decides anything: a frame that does not read is counted and logged with its
//! raw text, and moves nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::transport::short;
use crate::clock::Clock;
use crate::money::Price;
use crate::time::splitmix;
use crate::venue::VenueError;

/// What one frame said, in the bot's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A symbol's mark price, stamped with the venue's time of it (server ms).
    Mark {
        symbol: String,
        price: Price,
        venue_time_ms: i64,
    },
    /// The account's balances or positions changed (a fill, a transfer, funding): the local
    /// account must be seeded from REST again before the next decision.
    AccountChanged { reason: String },
    /// The venue warns the account is near liquidation (Binance `MARGIN_CALL`): a last-ditch
    /// trigger, never the primary one. Treated as an account change that must be read now.
    MarginCall,
    /// The venue asks for a new connection (an expired listen key, a service upgrade).
    Reconnect { reason: String },
    /// The connection refused the opening (a failed login): reconnect after a back-off.
    Refused { reason: String },
    /// Send this frame now (OKX: subscribe to private channels once the login is acked).
    Send { text: String },
}

/// A frame that does not read. The raw text goes to the log; nothing is decided on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable stream frame ({detail}); raw: {raw}")]
pub struct FrameError {
    pub detail: String,
    pub raw: String,
}

impl FrameError {
    pub fn new(detail: impl Into<String>, raw: &str) -> Self {
        Self {
            detail: detail.into(),
            raw: short(raw),
        }
    }
}

/// What a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Marks: a reconnect misses nothing the next frame does not bring back.
    Marks,
    /// Account events: a reconnect may have missed one, so the account is read from REST.
    Account,
}

/// One venue's stream, as the connection needs to know it.
#[async_trait]
pub trait StreamProtocol: Send + Sync + 'static {
    /// For log lines: "binance market", "okx private".
    fn name(&self) -> String;

    fn kind(&self) -> StreamKind;

    /// The URL to connect to, or `None` while there is nothing to subscribe (no open
    /// position): then the connection waits for a renewal. May call the venue first
    /// (Binance creates a listen key).
    async fn url(&self) -> Result<Option<String>, VenueError>;

    /// The text frames to send right after connecting: login, subscriptions.
    fn opening(&self) -> Vec<String>;

    /// An application-level ping and how long the connection may stay silent before it is
    /// sent; `None` where the server pings and the WebSocket layer answers.
    fn heartbeat(&self) -> Option<(Duration, String)>;

    /// The connection's documented lifetime: reconnect before it ends (Binance: 24 h).
    fn lifetime(&self) -> Option<Duration> {
        None
    }

    /// With no frame at all (a ping counts) for this long the connection is presumed dead
    /// and replaced: a few cadences for a mark stream, longer than the server's ping
    /// interval for a quiet account stream.
    fn silence_limit(&self) -> Duration;

    /// Work to do while connected, at its interval (Binance: keep the listen key alive). An
    /// error replaces the connection (Binance -1125: the key is gone, create another).
    fn upkeep_every(&self) -> Option<Duration> {
        None
    }

    async fn upkeep(&self) -> Result<(), VenueError> {
        Ok(())
    }

    /// Returns when the connection must be opened again at once with a new URL or opening
    /// (the positions to watch changed); never, by default.
    async fn renewed(&self) {
        std::future::pending::<()>().await
    }

    /// What a text frame says: zero or more events (acks and pongs say nothing).
    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError>;
}

/// Where a connection's events go.
pub trait FrameSink: Send + Sync + 'static {
    fn deliver(&self, event: StreamEvent);
    /// The connection is up (`true`) or lost (`false`).
    fn connected(&self, stream: &str, kind: StreamKind, up: bool);
}

/// How reconnects are paced.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// A connection that stayed up this long resets the back-off.
    pub healthy_after: Duration,
    /// The longest wait for the TCP/TLS/WebSocket handshake and the opening.
    pub connect_timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait before reconnect attempt `attempt` (1-based): `first · 2^(attempt−1)`, capped
    /// at `max`, times a jitter in [0.5, 1.0] so many connections do not retry in step.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let base = self
            .first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max);
        let permille = 500 + splitmix(seed ^ u64::from(attempt)) % 501;
        base.mul_f64(permille as f64 / 1000.0)
    }
}

/// Counters a connection keeps, for tests, benchmarks and (later) metrics.
#[derive(Debug, Default)]
pub struct StreamCounters {
    pub connects: AtomicU64,
    pub frames: AtomicU64,
    pub unreadable: AtomicU64,
}

impl StreamCounters {
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    pub fn unreadable(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }
}

/// Why one connection ended.
#[derive(Debug)]
enum Ended {
    /// It lasted long enough to count as healthy.
    AfterHealthyRun(String),
    Failed(String),
    /// The protocol asked for a new connection now.
    Renewed,
    /// Nothing to subscribe: wait for a renewal.
    Idle,
}

/// Keeps `protocol`'s connection alive until the task is dropped, delivering its events.
pub async fn run_stream<P: StreamProtocol, S: FrameSink>(
    protocol: Arc<P>,
    sink: Arc<S>,
    backoff: Backoff,
    counters: Arc<StreamCounters>,
) {
    let name = protocol.name();
    let seed = seed_of(&name);
    let mut attempt: u32 = 0;
    loop {
        let ended = connect_once(&*protocol, &*sink, &backoff, &counters, &name).await;
        sink.connected(&name, protocol.kind(), false);
        attempt = match ended {
            Ended::Renewed => {
                tracing::debug!(stream = %name, "stream renewed with a new subscription");
                continue;
            }
            Ended::Idle => {
                protocol.renewed().await;
                continue;
            }
            Ended::AfterHealthyRun(reason) => {
                tracing::info!(stream = %name, %reason, "stream connection ended; reconnecting");
                1
            }
            Ended::Failed(reason) => {
                let next = attempt.saturating_add(1);
                if next == 1 || next.is_power_of_two() {
                    tracing::warn!(stream = %name, %reason, attempt = next, "stream connection failed; reconnecting after a back-off");
                } else {
                    tracing::debug!(stream = %name, %reason, attempt = next, "stream connection failed");
                }
                next
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(backoff.delay(attempt, seed)) => {}
            _ = protocol.renewed() => {}
        }
    }
}

async fn connect_once<P: StreamProtocol, S: FrameSink>(
    protocol: &P,
    sink: &S,
    backoff: &Backoff,
    counters: &StreamCounters,
    name: &str,
) -> Ended {
    let opened = tokio::time::timeout(backoff.connect_timeout, open(protocol)).await;
    let mut socket = match opened {
        Ok(Ok(Some(socket))) => socket,
        Ok(Ok(None)) => return Ended::Idle,
        Ok(Err(reason)) => return Ended::Failed(reason),
        Err(_) => return Ended::Failed("the connection did not open in time".into()),
    };
    counters.connects.fetch_add(1, Ordering::Relaxed);
    sink.connected(name, protocol.kind(), true);
    let started = Instant::now();
    let lifetime_end = protocol.lifetime().map(|l| started + l);
    let heartbeat = protocol.heartbeat();
    let silence_limit = protocol.silence_limit();
    let upkeep_every = protocol.upkeep_every();
    let mut next_upkeep = upkeep_every.map(|every| started + every);
    let mut last_frame = Instant::now();
    let mut last_sent = Instant::now();
    let ended = |reason: String| {
        if started.elapsed() >= backoff.healthy_after {
            Ended::AfterHealthyRun(reason)
        } else {
            Ended::Failed(reason)
        }
    };
    loop {
        let ping_at = heartbeat
            .as_ref()
            .map(|(every, _)| last_sent.max(last_frame) + *every);
        let wake = [
            ping_at,
            lifetime_end,
            next_upkeep,
            Some(last_frame + silence_limit),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + silence_limit);
        tokio::select! {
            _ = protocol.renewed() => return Ended::Renewed,
            frame = socket.next() => {
                let Some(frame) = frame else { return ended("the venue closed the connection".into()) };
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => return ended(format!("the connection broke: {e}")),
                };
                last_frame = Instant::now();
                match frame {
                    Message::Text(text) => {
                        counters.frames.fetch_add(1, Ordering::Relaxed);
                        match deliver(protocol, sink, counters, name, text.as_str()) {
                            Verdict::Continue => {}
                            Verdict::Replace(reason) => return ended(reason),
                            Verdict::Send(replies) => {
                                for reply in replies {
                                    if let Err(e) = socket.send(Message::text(reply)).await {
                                        return ended(format!("cannot send: {e}"));
                                    }
                                }
                                last_sent = Instant::now();
                            }
                        }
                    }
                    Message::Close(_) => return ended("the venue closed the connection".into()),
                    // Pings are answered by the WebSocket layer; binary frames are not used.
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= last_frame + silence_limit {
                    return ended(format!("no frame for {silence_limit:?}"));
                }
                if lifetime_end.is_some_and(|end| now >= end) {
                    return Ended::AfterHealthyRun("the connection reached its documented lifetime".into());
                }
                if let (Some(every), Some(at)) = (upkeep_every, next_upkeep) {
                    if now >= at {
                        next_upkeep = Some(now + every);
                        if let Err(error) = protocol.upkeep().await {
                            return ended(format!("upkeep failed: {error}"));
                        }
                    }
                }
                if let (Some((_, ping)), Some(at)) = (&heartbeat, ping_at) {
                    if now >= at {
                        if let Err(e) = socket.send(Message::text(ping.clone())).await {
                            return ended(format!("cannot send the heartbeat: {e}"));
                        }
                        last_sent = now;
                    }
                }
            }
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open<P: StreamProtocol>(protocol: &P) -> Result<Option<Socket>, String> {
    let Some(url) = protocol.url().await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    for message in protocol.opening() {
        socket
            .send(Message::text(message))
            .await
            .map_err(|e| format!("cannot send the opening: {e}"))?;
    }
    Ok(Some(socket))
}

/// What a frame asks of the connection.
enum Verdict {
    Continue,
    Send(Vec<String>),
    Replace(String),
}

/// Reads one text frame and hands its events on.
fn deliver<P: StreamProtocol, S: FrameSink>(
    protocol: &P,
    sink: &S,
    counters: &StreamCounters,
    name: &str,
    text: &str,
) -> Verdict {
    let events = match protocol.read(text) {
        Ok(events) => events,
        Err(error) => {
            let unreadable = counters.unreadable.fetch_add(1, Ordering::Relaxed) + 1;
            if unreadable == 1 || unreadable.is_power_of_two() {
                tracing::warn!(stream = %name, %error, unreadable, "a stream frame did not read; nothing is decided on it");
            }
            return Verdict::Continue;
        }
    };
    let mut replies = Vec::new();
    for event in events {
        match event {
            StreamEvent::Reconnect { reason } => return Verdict::Replace(reason),
            StreamEvent::Refused { reason } => {
                tracing::error!(stream = %name, %reason, "the stream refused the opening");
                return Verdict::Replace(reason);
            }
            StreamEvent::Send { text } => replies.push(text),
            event => sink.deliver(event),
        }
    }
    if replies.is_empty() {
        Verdict::Continue
    } else {
        Verdict::Send(replies)
    }
}

fn seed_of(name: &str) -> u64 {
    let now = Clock::Wall.now().as_millis() as u64;
    name.bytes()
        .fold(now, |h, b| h.rotate_left(5) ^ u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_below_the_base() {
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
            ..Backoff::default()
        };
        for seed in 0..50 {
            let first = backoff.delay(1, seed);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let tenth = backoff.delay(10, seed);
            assert!(tenth >= Duration::from_secs(1) && tenth <= Duration::from_secs(2));
            assert!(backoff.delay(u32::MAX, seed) <= Duration::from_secs(2));
        }
    }
}
