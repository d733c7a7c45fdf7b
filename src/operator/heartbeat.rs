//! The dead-man switch: a URL fetched while all is well, `{url}/fail` while it is not
//! (healthchecks.io's convention). If the daemon or its host dies nothing is fetched, and the
//! checking service raises the alarm after its own grace — the one alert that cannot come from
//! the daemon itself.
//!
//! The engine calls `healthy()` or `unhealthy()` after each tick; those decide, without
//! waiting, whether a ping is due (at most one per `every`, but at once when the state
//! changes, so a failure is heard without delay) and hand it to one worker. The worker holds
//! at most one ping not yet sent: a newer one replaces it, so pings never queue up behind a
//! slow checking service.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config_file::literal::DurationLit;
use crate::config_file::ConfigError;
use crate::operator::notify::config::SecretSource;
use crate::operator::notify::{push_url_texts, scrub, transport_error};
use crate::venue::common::credential::Hidden;

/// Each ping's timeout, connecting included.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// `every` when the config gives none.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);
const MIN_EVERY: Duration = Duration::from_secs(10);
const MAX_EVERY: Duration = Duration::from_secs(3600);

/// The `[heartbeat]` table as written; `build` checks it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    url_env: Option<String>,
    url_file: Option<String>,
    every: Option<DurationLit>,
}

impl RawHeartbeat {
    /// The validated heartbeat; `prefix` is where the table sits (`heartbeat.`). The URL
    /// comes from `url_env` or `url_file` (exactly one), `every` is 10 s to 1 h (1 min when
    /// not given).
    pub fn build(self, file: &Path, prefix: &str) -> Result<HeartbeatSettings, ConfigError> {
        let every = self.every.map_or(DEFAULT_EVERY, |d| d.0);
        if !(MIN_EVERY..=MAX_EVERY).contains(&every) {
            return Err(ConfigError::new(
                file,
                format!("{prefix}every"),
                "must be between 10s and 1h (at most one ping per interval)",
            ));
        }
        let source = SecretSource::new(
            file,
            prefix,
            ("url_env", &self.url_env),
            ("url_file", &self.url_file),
        );
        let url = source.required_url()?;
        Ok(HeartbeatSettings { url, every })
    }
}

/// The heartbeat, validated. `Debug` shows no URL (it is a credential: whoever has it can
/// ping, or silence the alarm).
#[derive(Debug, Clone)]
pub struct HeartbeatSettings {
    /// Fetched while healthy; `{url}/fail` while not.
    pub url: Hidden,
    /// The least time between two pings of the same kind.
    pub every: Duration,
}

/// Pings so far, for `marginguard_heartbeat_pings_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatStats {
    /// Healthy pings the checking service took (2xx).
    pub ok: u64,
    /// `/fail` pings the checking service took (2xx).
    pub fail: u64,
    /// Pings of either kind that failed (transport error, timeout, not 2xx).
    pub error: u64,
}

/// Which of the two URLs a ping fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ping {
    Healthy,
    Unhealthy,
}

impl Ping {
    fn name(self) -> &'static str {
        match self {
            Ping::Healthy => "ok",
            Ping::Unhealthy => "fail",
        }
    }
}

/// Decides whether a ping is due: the first one, one of a changed kind, or one `every` after
/// the last of the same kind.
#[derive(Debug)]
struct PingClock {
    every: Duration,
    last: Option<(Ping, Instant)>,
}

impl PingClock {
    /// Whether `ping` is due `now`; if it is, it counts as sent now.
    fn due(&mut self, ping: Ping, now: Instant) -> bool {
        let due = match self.last {
            Some((last, at)) => last != ping || now.saturating_duration_since(at) >= self.every,
            None => true,
        };
        if due {
            self.last = Some((ping, now));
        }
        due
    }
}

#[derive(Debug, Default)]
struct Counters {
    ok: AtomicU64,
    fail: AtomicU64,
    error: AtomicU64,
}

/// The running heartbeat: the caller-side clock and one worker.
pub struct Heartbeat {
    clock: Mutex<PingClock>,
    /// The ping the worker is to send next; `None` until the first.
    next: watch::Sender<Option<Ping>>,
    counters: Arc<Counters>,
}

impl Heartbeat {
    /// Spawns the worker. Must be called inside a tokio runtime. The worker ends when the
    /// `Heartbeat` is dropped.
    pub fn start(settings: HeartbeatSettings) -> Heartbeat {
        let (next, pending) = watch::channel(None);
        let counters = Arc::new(Counters::default());
        tokio::spawn(Pinger::new(&settings.url, counters.clone()).run(pending));
        Heartbeat {
            clock: Mutex::new(PingClock {
                every: settings.every,
                last: None,
            }),
            next,
            counters,
        }
    }

    /// Called after every healthy tick; pings `url` (GET) at most once per `every`, and at
    /// once after an unhealthy spell. Never blocks.
    pub fn healthy(&self) {
        self.report(Ping::Healthy);
    }

    /// Called while unhealthy (an account blind, a runner failed); pings `{url}/fail` at most
    /// once per `every`, and at once when health is lost. Never blocks.
    pub fn unhealthy(&self) {
        self.report(Ping::Unhealthy);
    }

    /// Pings so far.
    pub fn stats(&self) -> HeartbeatStats {
        HeartbeatStats {
            ok: self.counters.ok.load(Ordering::Relaxed),
            fail: self.counters.fail.load(Ordering::Relaxed),
            error: self.counters.error.load(Ordering::Relaxed),
        }
    }

    fn report(&self, ping: Ping) {
        // A panic elsewhere while holding the lock leaves the clock usable: it is two fields.
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        if clock.due(ping, Instant::now()) {
            // Replaces a ping the worker has not taken yet: only the newest matters.
            self.next.send_replace(Some(ping));
        }
    }
}

/// Sends the pings, one at a time.
struct Pinger {
    client: Result<reqwest::Client, String>,
    /// The healthy and the `/fail` URL, or why the URL cannot be used.
    urls: Result<(Hidden, Hidden), String>,
    never_logged: Vec<Hidden>,
    counters: Arc<Counters>,
}

impl Pinger {
    fn new(url: &Hidden, counters: Arc<Counters>) -> Pinger {
        let mut never_logged = Vec::new();
        push_url_texts(&mut never_logged, url);
        let urls = fail_url(url).map(|fail| (url.clone(), fail));
        if let Some(fail) = urls.as_ref().ok().map(|(_, fail)| fail) {
            never_logged.push(fail.clone());
        }
        Pinger {
            client: ping_client(),
            urls,
            never_logged,
            counters,
        }
    }

    async fn run(self, mut pending: watch::Receiver<Option<Ping>>) {
        while pending.changed().await.is_ok() {
            let next = *pending.borrow_and_update();
            if let Some(ping) = next {
                self.send(ping).await;
            }
        }
    }

    async fn send(&self, ping: Ping) {
        let counter = match self.fetch(ping).await {
            Ok(()) if ping == Ping::Healthy => &self.counters.ok,
            Ok(()) => &self.counters.fail,
            Err((status, error)) => {
                tracing::warn!(
                    ping = ping.name(),
                    status,
                    error = %scrub(&error, &self.never_logged),
                    "heartbeat ping failed"
                );
                &self.counters.error
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// GETs the ping's URL; a 2xx is success. The error is the status (if any) and what
    /// went wrong, without the URL.
    async fn fetch(&self, ping: Ping) -> Result<(), (Option<u16>, String)> {
        let client = self.client.as_ref().map_err(|e| (None, e.clone()))?;
        let (healthy, unhealthy) = self.urls.as_ref().map_err(|e| (None, e.clone()))?;
        let url = match ping {
            Ping::Healthy => healthy,
            Ping::Unhealthy => unhealthy,
        };
        let url = std::str::from_utf8(url.expose())
            .map_err(|_| (None, "the heartbeat URL is not UTF-8".to_string()))?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| (None, transport_error(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err((Some(status.as_u16()), format!("answered HTTP {status}")))
        }
    }
}

/// The client for pings: a 10 s timeout, and no redirects (a redirect could take the secret
/// path off `https://`).
fn ping_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(PING_TIMEOUT)
        .connect_timeout(PING_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("marginguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
}

/// `{url}/fail`, with `/fail` added to the path so a query string (`?rid=…`) stays after it.
fn fail_url(url: &Hidden) -> Result<Hidden, String> {
    let mut parsed = std::str::from_utf8(url.expose())
        .ok()
        .and_then(|raw| reqwest::Url::parse(raw.trim()).ok())
        .ok_or_else(|| "the heartbeat URL is not a URL".to_string())?;
    let path = format!("{}/fail", parsed.path().trim_end_matches('/'));
    parsed.set_path(&path);
    Ok(Hidden::new(String::from(parsed)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_ping_is_due_first_on_a_change_and_once_per_interval() {
        let every = Duration::from_secs(60);
        let mut clock = PingClock { every, last: None };
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert!(clock.due(Ping::Healthy, at(0)));
        assert!(!clock.due(Ping::Healthy, at(1)));
        assert!(!clock.due(Ping::Healthy, at(59)));
        assert!(clock.due(Ping::Healthy, at(60)));
        assert!(
            clock.due(Ping::Unhealthy, at(61)),
            "a failure is told at once"
        );
        assert!(!clock.due(Ping::Unhealthy, at(62)));
        assert!(clock.due(Ping::Unhealthy, at(121)));
        assert!(
            clock.due(Ping::Healthy, at(122)),
            "a recovery is told at once"
        );
        assert!(!clock.due(Ping::Healthy, at(150)));
    }

    #[test]
    fn fail_is_added_to_the_path() {
        let fail = |url: &str| {
            let fail = fail_url(&Hidden::new(url)).unwrap();
            String::from_utf8(fail.expose().to_vec()).unwrap()
        };
        assert_eq!(
            fail("https://hc.example/abc"),
            "https://hc.example/abc/fail"
        );
        assert_eq!(
            fail("https://hc.example/abc/"),
            "https://hc.example/abc/fail"
        );
        assert_eq!(fail("https://hc.example"), "https://hc.example/fail");
        assert_eq!(
            fail("https://hc.example/abc?rid=1"),
            "https://hc.example/abc/fail?rid=1"
        );
        assert!(fail_url(&Hidden::new("nope")).is_err());
    }

    fn build(toml_text: &str) -> Result<HeartbeatSettings, ConfigError> {
        let raw: RawHeartbeat = toml::from_str(toml_text).expect("the table parses");
        raw.build(&PathBuf::from("/etc/mg.toml"), "heartbeat.")
    }

    #[test]
    fn the_config_checks_every_and_the_url_without_quoting_it() {
        let var = "MG_HEARTBEAT_UNIT_URL";
        std::env::set_var(var, "https://hc.example/CANARY-NOTIFY-heartbeat");
        let built = build(&format!("url_env = \"{var}\"\n")).unwrap();
        assert_eq!(built.every, DEFAULT_EVERY);
        assert!(!format!("{built:?}").contains("CANARY"));
        for (table, key) in [
            (
                format!("url_env = \"{var}\"\nevery = \"5s\"\n"),
                "heartbeat.every",
            ),
            (
                format!("url_env = \"{var}\"\nevery = \"2h\"\n"),
                "heartbeat.every",
            ),
            ("every = \"1m\"\n".to_string(), "heartbeat.url_env"),
            (
                format!("url_env = \"{var}\"\nurl_file = \"hb\"\n"),
                "heartbeat.url_env",
            ),
        ] {
            let error = build(&table).unwrap_err();
            assert_eq!(error.key, key, "{table}: {error}");
        }
        let plain = "MG_HEARTBEAT_UNIT_PLAIN";
        std::env::set_var(plain, "http://hc.example/CANARY-NOTIFY-heartbeat");
        let error = build(&format!("url_env = \"{plain}\"\n")).unwrap_err();
        assert_eq!(error.key, "heartbeat.url_env");
        assert!(!error.to_string().contains("CANARY"), "{error}");
        assert!(toml::from_str::<RawHeartbeat>("url = \"x\"\n").is_err());
    }
}
