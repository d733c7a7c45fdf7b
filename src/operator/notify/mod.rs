//! Delivering alerts to the operator: a Telegram chat, a Discord channel, a signed webhook.
//!
//! Each notifier has its own worker and its own bounded queue, so a receiver that hangs or
//! fails delays only its own messages. `Notifiers::send` never waits: a full queue drops the
//! alert and counts it. Every request has a timeout; a 429, a 5xx or a transport failure is
//! tried at most twice more. Delivery is at least once: an answer lost after the receiver took
//! the message means it may arrive twice, which beats an alert that never arrives.
//!
//! Secrets (the bot token, the webhook URLs, the HMAC secret) live in `Hidden` and go only
//! into the request. What is logged is scrubbed of them and of every URL.

pub mod config;
mod discord;
mod telegram;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use crate::operator::alert::{Alert, AlertSeverity};
use crate::venue::common::credential::Hidden;
use crate::venue::common::transport;

pub use config::RawNotifier;

/// How many alerts wait for one notifier before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 64;
/// The request timeout when the config gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first try and at most two more.
const MAX_ATTEMPTS: usize = 3;
/// A receiver's `retry_after` is honoured up to this; longer would hold the queue too long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The waits before the second and the third try when the receiver names none.
const BACKOFF: [Duration; MAX_ATTEMPTS - 1] = [Duration::from_secs(1), Duration::from_secs(2)];
/// The most of a receiver's answer read: enough for any error message, bounded for a
/// receiver that streams without end.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// One notifier, validated. `Debug` shows no secret (`Hidden` prints `[redacted]`).
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// Unique among notifiers; the `notifier` metric label.
    pub name: String,
    pub kind: NotifierKind,
    /// Alerts below this severity are not sent here.
    pub min_severity: AlertSeverity,
    /// Only these accounts' alerts (and the process-wide ones); `None`: every account's.
    pub accounts: Option<Vec<String>>,
    /// For each request, connecting included.
    pub timeout: Duration,
}

/// Where a notifier delivers, with its credentials.
#[derive(Debug, Clone)]
pub enum NotifierKind {
    /// `POST {api_url}/bot{bot_token}/sendMessage`.
    Telegram {
        /// Without a trailing slash; not secret.
        api_url: String,
        bot_token: Hidden,
        chat_id: String,
    },
    /// `POST {webhook_url}`; the URL is the credential.
    Discord { webhook_url: Hidden },
    /// `POST {url}` with the JSON payload of docs/operator.md, signed when a secret is given.
    Webhook {
        url: Hidden,
        hmac_secret: Option<Hidden>,
    },
}

impl NotifierKind {
    /// `telegram`, `discord` or `webhook`: the config's `kind`, a log field.
    pub fn name(&self) -> &'static str {
        match self {
            NotifierKind::Telegram { .. } => "telegram",
            NotifierKind::Discord { .. } => "discord",
            NotifierKind::Webhook { .. } => "webhook",
        }
    }
}

impl NotifierSettings {
    /// Whether this notifier takes `alert`: at or above `min_severity`, and about one of
    /// `accounts` when those are listed. Process-wide alerts (no account) go to every notifier
    /// that takes their severity: a shutdown concerns every account.
    pub fn wants(&self, alert: &Alert) -> bool {
        let account_wanted = match (&self.accounts, &alert.account) {
            (Some(accounts), Some(account)) => accounts.contains(account),
            _ => true,
        };
        alert.severity >= self.min_severity && account_wanted
    }
}

/// What one notifier has done so far, for `/metrics`. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierStats {
    pub name: String,
    /// `telegram`, `discord` or `webhook`.
    pub kind: &'static str,
    /// Delivered (the receiver said so).
    pub sent: u64,
    /// Given up on: refused, or still failing after the retries.
    pub failed: u64,
    /// Never tried: the queue was full (or the worker gone).
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The running notifiers: one worker and one queue each.
pub struct Notifiers {
    workers: Vec<RunningNotifier>,
}

struct RunningNotifier {
    settings: Arc<NotifierSettings>,
    queue: mpsc::Sender<Arc<Alert>>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl Notifiers {
    /// Spawns one worker per notifier, each with its own bounded queue (capacity 64). Must
    /// be called inside a tokio runtime.
    pub fn start(settings: Vec<NotifierSettings>) -> Notifiers {
        let workers = settings.into_iter().map(RunningNotifier::start).collect();
        Notifiers { workers }
    }

    /// Hands `alert` to every notifier that wants it. Never blocks and never awaits: a full
    /// queue drops the alert for that notifier and counts it.
    pub fn send(&self, alert: &Alert) {
        let alert = Arc::new(alert.clone());
        for worker in self.workers.iter().filter(|w| w.settings.wants(&alert)) {
            worker.enqueue(&alert);
        }
    }

    /// Counters per notifier, in config order, for `/metrics`.
    pub fn stats(&self) -> Vec<NotifierStats> {
        self.workers.iter().map(RunningNotifier::stats).collect()
    }

    /// At shutdown: closes the queues and waits up to `within` for the workers to deliver
    /// what is queued (the `shutdown` alert must get out). Workers still busy then are
    /// stopped, and what they held is logged as lost.
    pub async fn flush(self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let closing: Vec<_> = self
            .workers
            .into_iter()
            .map(RunningNotifier::close)
            .collect();
        for (settings, queued_at_shutdown, mut task) in closing {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(
                    notifier = %settings.name,
                    kind = settings.kind.name(),
                    within = ?within,
                    queued_at_shutdown,
                    "shutdown: the notifier did not deliver everything in time; the rest is lost"
                );
            }
        }
    }

    /// No notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }
}

impl RunningNotifier {
    fn start(settings: NotifierSettings) -> RunningNotifier {
        let settings = Arc::new(settings);
        let counters = Arc::new(Counters::default());
        let (queue, incoming) = mpsc::channel(QUEUE_CAPACITY);
        let worker = Worker::new(settings.clone(), counters.clone());
        let task = tokio::spawn(worker.run(incoming));
        RunningNotifier {
            settings,
            queue,
            counters,
            task,
        }
    }

    fn enqueue(&self, alert: &Arc<Alert>) {
        let why = match self.queue.try_send(alert.clone()) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "its queue is full",
            Err(TrySendError::Closed(_)) => "its worker has stopped",
        };
        Counters::bump(&self.counters.dropped);
        tracing::warn!(
            notifier = %self.settings.name,
            kind = self.settings.kind.name(),
            event = alert.event.name(),
            "alert dropped: {why}"
        );
    }

    fn stats(&self) -> NotifierStats {
        NotifierStats {
            name: self.settings.name.clone(),
            kind: self.settings.kind.name(),
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }

    /// Drops the sending side, so the worker ends once its queue is empty.
    fn close(self) -> (Arc<NotifierSettings>, usize, JoinHandle<()>) {
        let queued_at_shutdown = QUEUE_CAPACITY - self.queue.capacity();
        (self.settings, queued_at_shutdown, self.task)
    }
}

/// Why a delivery failed, fit for a log line: no URL, no secret, the answer cut short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("the receiver answered HTTP {status}: {body}")]
    Answer { status: u16, body: String },
    #[error("{0}")]
    Transport(String),
    #[error("cannot make the request: {0}")]
    Setup(String),
}

impl DeliveryError {
    fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Answer { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What an answer (or its absence) means for the alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Delivered,
    /// Worth another try, after `after` when the receiver named a wait.
    Retry {
        after: Option<Duration>,
        error: DeliveryError,
    },
    /// Trying again would get the same answer.
    Refused(DeliveryError),
}

/// An answer as the verdicts read it: status, headers, and the body as text (at most
/// `MAX_ANSWER_BYTES`, lossily decoded).
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The generic reading: 2xx delivered; 429 retried after the receiver's wait; 5xx
    /// retried; anything else refused.
    pub fn verdict(&self) -> Verdict {
        if self.status.is_success() {
            return Verdict::Delivered;
        }
        let error = self.error();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            let after = body_retry_after(&self.body).or_else(|| header_retry_after(&self.headers));
            return Verdict::Retry { after, error };
        }
        if self.status.is_server_error() {
            return Verdict::Retry { after: None, error };
        }
        Verdict::Refused(error)
    }

    /// This answer as a failure, its body shortened (the worker has scrubbed it of secrets).
    pub fn error(&self) -> DeliveryError {
        DeliveryError::Answer {
            status: self.status.as_u16(),
            body: transport::short(self.body.trim()),
        }
    }
}

/// `retry_after` (seconds, a float on Discord) at the top of a JSON answer, or under
/// `parameters` as Telegram puts it.
pub(crate) fn body_retry_after(body: &str) -> Option<Duration> {
    let answer: serde_json::Value = serde_json::from_str(body).ok()?;
    let seconds = answer
        .get("retry_after")
        .or_else(|| answer.pointer("/parameters/retry_after"))?
        .as_f64()?;
    seconds_capped(seconds)
}

/// The `Retry-After` header in seconds (a fraction allowed); dates are not worth parsing here.
fn header_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    seconds_capped(raw.trim().parse().ok()?)
}

/// `seconds` as a wait of at most `MAX_RETRY_AFTER`; nothing for a negative or absurd value.
fn seconds_capped(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .map(|wait| wait.min(MAX_RETRY_AFTER))
}

/// The wait before try number `failed + 1`, after `failed` failed tries.
fn wait_before_retry(failed: usize, named: Option<Duration>) -> Duration {
    named.unwrap_or(BACKOFF[(failed - 1).min(BACKOFF.len() - 1)])
}

/// `text` cut to at most `max` units (as `units` counts a character), on a character
/// boundary, ending in `…` when cut. Receivers refuse a message that is too long outright,
/// so a shortened alert beats a lost one.
pub(crate) fn cap_text(text: &str, max: usize, units: fn(char) -> usize) -> String {
    if text.chars().map(units).sum::<usize>() <= max {
        return text.to_string();
    }
    let mut used = units('…');
    let mut capped = String::with_capacity(text.len().min(max * 4));
    for c in text.chars() {
        used += units(c);
        if used > max {
            break;
        }
        capped.push(c);
    }
    capped.push('…');
    capped
}

/// Delivers one notifier's alerts, one at a time, in order.
struct Worker {
    settings: Arc<NotifierSettings>,
    counters: Arc<Counters>,
    /// An error building the client is kept and reported for each alert, not at start.
    client: Result<reqwest::Client, String>,
    /// Texts never to log: the secrets, and the parts of secret URLs that carry a token.
    never_logged: Vec<Hidden>,
}

impl Worker {
    fn new(settings: Arc<NotifierSettings>, counters: Arc<Counters>) -> Worker {
        Worker {
            client: http_client(settings.timeout),
            never_logged: secret_texts(&settings.kind),
            settings,
            counters,
        }
    }

    async fn run(self, mut incoming: mpsc::Receiver<Arc<Alert>>) {
        while let Some(alert) = incoming.recv().await {
            match self.deliver(&alert).await {
                Ok(()) => Counters::bump(&self.counters.sent),
                Err(error) => {
                    Counters::bump(&self.counters.failed);
                    self.log_failure(&alert, &error);
                }
            }
        }
    }

    /// One alert, retried on a 429, a 5xx or a transport failure.
    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| DeliveryError::Setup(e.clone()))?;
        let mut failed = 0;
        loop {
            match self.attempt(client, alert).await {
                Verdict::Delivered => return Ok(()),
                Verdict::Refused(error) => return Err(error),
                Verdict::Retry { after, error } => {
                    failed += 1;
                    if failed == MAX_ATTEMPTS {
                        return Err(error);
                    }
                    let wait = wait_before_retry(failed, after);
                    tracing::debug!(
                        notifier = %self.settings.name,
                        kind = self.settings.kind.name(),
                        status = error.status(),
                        error = %self.scrubbed(&error.to_string()),
                        wait = ?wait,
                        "alert not delivered yet; trying again"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, client: &reqwest::Client, alert: &Alert) -> Verdict {
        let request = match self.request(client, alert) {
            Ok(request) => request,
            Err(error) => return Verdict::Refused(error),
        };
        let mut answer = match read_answer(request).await {
            Ok(answer) => answer,
            Err(error) => {
                return Verdict::Retry {
                    after: None,
                    error: DeliveryError::Transport(self.scrubbed(&transport_error(error))),
                }
            }
        };
        // Scrubbed whole, before anything shortens it: a cut through an echoed token would
        // leave a piece of it that no longer matches.
        answer.body = self.scrubbed(&answer.body);
        match &self.settings.kind {
            NotifierKind::Telegram { .. } => telegram::verdict(&answer),
            NotifierKind::Discord { .. } | NotifierKind::Webhook { .. } => answer.verdict(),
        }
    }

    fn request(
        &self,
        client: &reqwest::Client,
        alert: &Alert,
    ) -> Result<reqwest::RequestBuilder, DeliveryError> {
        match &self.settings.kind {
            NotifierKind::Telegram {
                api_url,
                bot_token,
                chat_id,
            } => telegram::request(client, api_url, bot_token, chat_id, alert),
            NotifierKind::Discord { webhook_url } => discord::request(client, webhook_url, alert),
            NotifierKind::Webhook { url, hmac_secret } => {
                webhook::request(client, url, hmac_secret.as_ref(), alert)
            }
        }
    }

    /// Logs a given-up alert: the status and the (already scrubbed, shortened) answer or
    /// transport error, scrubbed once more in case a setup error carries a secret.
    fn log_failure(&self, alert: &Alert, error: &DeliveryError) {
        tracing::warn!(
            notifier = %self.settings.name,
            kind = self.settings.kind.name(),
            status = error.status(),
            event = alert.event.name(),
            error = %self.scrubbed(&error.to_string()),
            "alert not delivered"
        );
    }

    /// `text` with every secret text replaced: a receiver (or a proxy in front of it) may
    /// echo the URL or the token back in its answer.
    fn scrubbed(&self, text: &str) -> String {
        scrub(text, &self.never_logged)
    }
}

/// The client for one notifier: `timeout` for connecting and for the whole call, and no
/// redirects — a redirect could lead a signed alert off `https://` to a host not configured.
fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("marginguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
}

/// Sends `request` and reads at most `MAX_ANSWER_BYTES` of the answer.
async fn read_answer(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER_BYTES {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    body.truncate(MAX_ANSWER_BYTES);
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// reqwest's message without the URL (the URL holds the token), plus its chain of causes,
/// which says what went wrong ("tcp connect error: Connection refused").
pub(crate) fn transport_error(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    let mut causes = Vec::new();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        causes.push(inner.to_string());
        cause = inner.source();
    }
    let mut text = format!("{kind}: {}", error.without_url());
    for cause in causes {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// The texts of `kind` that must never be logged: each secret whole and, for a secret URL,
/// its path and query (where Discord and most webhook services keep the token).
fn secret_texts(kind: &NotifierKind) -> Vec<Hidden> {
    let mut texts = Vec::new();
    match kind {
        NotifierKind::Telegram { bot_token, .. } => texts.push(bot_token.clone()),
        NotifierKind::Discord { webhook_url } => push_url_texts(&mut texts, webhook_url),
        NotifierKind::Webhook { url, hmac_secret } => {
            push_url_texts(&mut texts, url);
            texts.extend(hmac_secret.iter().cloned());
        }
    }
    texts
}

/// The URL as written and as normalised, its path, its query, and the two together.
pub(crate) fn push_url_texts(texts: &mut Vec<Hidden>, url: &Hidden) {
    texts.push(url.clone());
    let Some(parsed) = std::str::from_utf8(url.expose())
        .ok()
        .and_then(|raw| reqwest::Url::parse(raw).ok())
    else {
        return;
    };
    texts.push(Hidden::new(parsed.as_str()));
    texts.push(Hidden::new(parsed.path()));
    if let Some(query) = parsed.query() {
        texts.push(Hidden::new(query));
        texts.push(Hidden::new(format!("{}?{query}", parsed.path())));
    }
}

/// Texts shorter than this are not scrubbed: a URL's path `/` would blank every slash.
const MIN_SCRUBBED_LEN: usize = 8;

/// `text` with each of `secrets` (longest first) replaced by `[redacted]`.
pub(crate) fn scrub(text: &str, secrets: &[Hidden]) -> String {
    let mut secrets: Vec<&str> = secrets
        .iter()
        .filter_map(|s| std::str::from_utf8(s.expose()).ok())
        .filter(|s| s.len() >= MIN_SCRUBBED_LEN)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.into_iter().fold(text.to_string(), |text, secret| {
        text.replace(secret, "[redacted]")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::operator::alert::AlertEvent;
    use crate::time::Timestamp;

    pub(crate) fn alert(severity: AlertSeverity, account: Option<&str>) -> Alert {
        Alert {
            event: AlertEvent::TopUpSent,
            severity,
            account: account.map(str::to_string),
            venue: account.map(|_| "binance".to_string()),
            at: Timestamp::from_millis(1_796_409_600_123),
            title: "main: top-up sent".to_string(),
            text: "distance 7.9 %".to_string(),
            recovered: false,
            details: BTreeMap::new(),
        }
    }

    fn settings(min_severity: AlertSeverity, accounts: Option<&[&str]>) -> NotifierSettings {
        NotifierSettings {
            name: "team".into(),
            kind: NotifierKind::Discord {
                webhook_url: Hidden::new("https://discord.example/api/webhooks/1/t"),
            },
            min_severity,
            accounts: accounts.map(|a| a.iter().map(|s| s.to_string()).collect()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn wants_filters_by_severity_and_account_and_takes_process_alerts() {
        let warning_main = settings(AlertSeverity::Warning, Some(&["main"]));
        assert!(warning_main.wants(&alert(AlertSeverity::Warning, Some("main"))));
        assert!(warning_main.wants(&alert(AlertSeverity::Critical, Some("main"))));
        assert!(!warning_main.wants(&alert(AlertSeverity::Info, Some("main"))));
        assert!(!warning_main.wants(&alert(AlertSeverity::Critical, Some("other"))));
        assert!(warning_main.wants(&alert(AlertSeverity::Critical, None)));
        assert!(!warning_main.wants(&alert(AlertSeverity::Info, None)));
        let every = settings(AlertSeverity::Info, None);
        assert!(every.wants(&alert(AlertSeverity::Info, Some("other"))));
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.to_string(),
        }
    }

    #[test]
    fn verdicts_retry_429_and_5xx_only_and_cap_the_wait() {
        assert_eq!(answer(204, &[], "").verdict(), Verdict::Delivered);
        let retry_after = |a: &Answer| match a.verdict() {
            Verdict::Retry { after, .. } => after,
            other => panic!("not a retry: {other:?}"),
        };
        let discord = answer(429, &[("retry-after", "2")], r#"{"retry_after": 0.25}"#);
        assert_eq!(retry_after(&discord), Some(Duration::from_millis(250)));
        let header_only = answer(429, &[("retry-after", "3")], "slow down");
        assert_eq!(retry_after(&header_only), Some(Duration::from_secs(3)));
        let huge = answer(429, &[], r#"{"parameters": {"retry_after": 86400}}"#);
        assert_eq!(retry_after(&huge), Some(MAX_RETRY_AFTER));
        let negative = answer(429, &[], r#"{"retry_after": -1}"#);
        assert_eq!(retry_after(&negative), None);
        assert_eq!(retry_after(&answer(503, &[], "")), None);
        assert_eq!(
            answer(404, &[], "Unknown Webhook").verdict(),
            Verdict::Refused(DeliveryError::Answer {
                status: 404,
                body: "Unknown Webhook".into()
            })
        );
        assert!(matches!(
            answer(302, &[], "").verdict(),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn the_backoff_is_one_then_two_seconds_unless_the_receiver_names_a_wait() {
        assert_eq!(wait_before_retry(1, None), Duration::from_secs(1));
        assert_eq!(wait_before_retry(2, None), Duration::from_secs(2));
        let named = Some(Duration::from_millis(300));
        assert_eq!(wait_before_retry(2, named), Duration::from_millis(300));
    }

    #[test]
    fn cap_text_cuts_on_a_character_boundary() {
        let one = |_: char| 1;
        assert_eq!(cap_text("abc", 3, one), "abc");
        assert_eq!(cap_text("abcd", 3, one), "ab…");
        let cut = cap_text(&"é".repeat(10), 5, one);
        assert_eq!(cut, "éééé…");
        // An emoji is two UTF-16 units: it does not fit in the one unit left.
        assert_eq!(cap_text("ab😀cd", 4, char::len_utf16), "ab…");
    }

    #[tokio::test]
    async fn a_transport_error_names_what_went_wrong_but_not_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = http_client(Duration::from_secs(5)).unwrap();
        let error = client
            .post(format!("http://{addr}/CANARY-NOTIFY-transport"))
            .send()
            .await
            .unwrap_err();
        let text = transport_error(error);
        assert!(text.starts_with("cannot connect: "), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(!text.contains("CANARY"), "{text}");
    }

    #[test]
    fn scrub_removes_secrets_and_url_tokens_but_not_short_paths() {
        let kind = NotifierKind::Webhook {
            url: Hidden::new("https://hooks.example/T0K3N-in-the-path?key=abc"),
            hmac_secret: Some(Hidden::new("CANARY-NOTIFY-hmac")),
        };
        let texts = secret_texts(&kind);
        let echoed = "bad request to /T0K3N-in-the-path?key=abc, signed CANARY-NOTIFY-hmac";
        let scrubbed = scrub(echoed, &texts);
        assert!(!scrubbed.contains("T0K3N"), "{scrubbed}");
        assert!(!scrubbed.contains("CANARY"), "{scrubbed}");
        let root = secret_texts(&NotifierKind::Discord {
            webhook_url: Hidden::new("https://relay.example/"),
        });
        assert_eq!(scrub("a/b/c", &root), "a/b/c");
    }
}
