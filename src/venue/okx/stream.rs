//! OKX's v5 streams (okx.md §7): marks on the public connection, account events on the
//! private one.
//!
//! - Marks: `/ws/v5/public`, `{"op":"subscribe","args":[{"channel":"mark-price","instId":…}]}`
//!   for each open position's `instId` (the adapter's `Position.symbol`). OKX pushes every
//!   200 ms while the mark moves and every 10 s while it does not; a frame may carry several
//!   `data` entries.
//! - Account: `/ws/v5/private`, a login signed like REST over whole seconds (okx.md §2.3), and
//!   only once OKX acks it the subscriptions to `account` (USDT) and `positions` (SWAP) — OKX
//!   refuses private channels before the login. Both are subscribed event-only
//!   (`updateInterval` 0): the regular 5-second snapshots would otherwise force a REST read
//!   every 5 s and the local account would never be used. Any push asks for a REST read;
//!   nothing is merged by hand (event updates carry only what changed).
//! - Keepalive: the text `ping` after 20 s without a frame (OKX closes a connection silent for
//!   30 s); the answer is the text `pong`, which is not JSON. `64008` (a service upgrade soon)
//!   opens a new connection now; an `error` event (a refused login or subscription) replaces
//!   the connection after a back-off.
//! - Because `pong` keeps a connection alive whatever it carries, each connection also checks
//!   its purpose (`upkeep`): a mark stream with no mark for 25 s (OKX repeats each every
//!   10 s), or a private one whose login was never answered, is replaced.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::credential::Credentials;
use super::http::HttpClient;
use super::signing;
use crate::money::Price;
use crate::venue::common::num::Num;
use crate::venue::common::stream::{FrameError, StreamEvent, StreamKind, StreamProtocol};
use crate::venue::streaming::{MarkBoard, StreamSettings, WatchedSymbols};
use crate::venue::VenueError;

/// How often `mark-price` pushes while the mark moves: the rescue horizon's observation step.
pub const MARK_CADENCE: Duration = Duration::from_millis(200);
/// OKX pushes an unchanged mark only every 10 s, so a quiet market leaves a correct mark 10 s
/// old; three 200 ms cadences would fall back to REST on every calm stretch. 10 s plus 2 s for
/// the network and OKX's own aggregation: older than that, the push was missed.
pub const MAX_MARK_AGE: Duration = Duration::from_secs(12);
/// The text `ping` after this long without a frame: under OKX's 30 s cutoff with room for
/// the answer.
const PING_AFTER: Duration = Duration::from_secs(20);
/// A ping whose `pong` has not come within 5 s: the connection is dead (a live mark stream
/// also sends at least every 10 s).
const SILENCE_LIMIT: Duration = Duration::from_secs(25);
/// How often a connection checks that it does what it was opened for.
const PURPOSE_CHECK_EVERY: Duration = Duration::from_secs(5);
/// A login is answered within milliseconds; unanswered this long, it was lost.
const LOGIN_PATIENCE: Duration = Duration::from_secs(10);
const PING: &str = "ping";
const PONG: &str = "pong";
/// `notice` code: "The connection will soon be closed for a service upgrade. Please reconnect."
const SERVICE_UPGRADE: &str = "64008";
/// Event-only pushes, in the exact format OKX asks for.
const EVENTS_ONLY: &str = r#"{"updateInterval": "0"}"#;

/// The stream settings at OKX's documented cadences (the knobs the config may change aside).
pub fn settings() -> StreamSettings {
    StreamSettings {
        max_mark_age: MAX_MARK_AGE,
        ..StreamSettings::for_cadence(MARK_CADENCE)
    }
}

/// The `mark-price` channel for the open positions.
pub struct MarkStream {
    url: String,
    wanted: WatchedSymbols,
    /// The set `url` found, for `opening` (which cannot wait on the watch).
    subscribing: std::sync::Mutex<BTreeSet<String>>,
    /// The last mark read on this connection (its opening, before the first).
    last_mark: std::sync::Mutex<Instant>,
}

impl MarkStream {
    pub fn new(url: &str, board: &MarkBoard) -> Self {
        Self {
            url: url.to_string(),
            wanted: WatchedSymbols::of(board),
            subscribing: std::sync::Mutex::new(BTreeSet::new()),
            last_mark: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn saw_mark_now(&self) {
        *self.last_mark.lock().expect("last mark lock") = Instant::now();
    }
}

#[async_trait]
impl StreamProtocol for MarkStream {
    fn kind(&self) -> StreamKind {
        StreamKind::Marks
    }

    fn name(&self) -> String {
        "okx marks".into()
    }

    async fn url(&self) -> Result<Option<String>, VenueError> {
        let symbols = self.wanted.current().await;
        if symbols.is_empty() {
            return Ok(None);
        }
        *self.subscribing.lock().expect("subscribing lock") = symbols;
        Ok(Some(self.url.clone()))
    }

    fn opening(&self) -> Vec<String> {
        self.saw_mark_now();
        let symbols = self.subscribing.lock().expect("subscribing lock").clone();
        if symbols.is_empty() {
            return Vec::new();
        }
        vec![subscribe_marks(&symbols)]
    }

    fn heartbeat(&self) -> Option<(Duration, String)> {
        Some((PING_AFTER, PING.into()))
    }

    fn silence_limit(&self) -> Duration {
        SILENCE_LIMIT
    }

    fn upkeep_every(&self) -> Option<Duration> {
        Some(PURPOSE_CHECK_EVERY)
    }

    /// `pong`s alone keep a connection whose subscription never took: replace it.
    async fn upkeep(&self) -> Result<(), VenueError> {
        let since = self.last_mark.lock().expect("last mark lock").elapsed();
        if since > SILENCE_LIMIT {
            return Err(VenueError::Unreachable {
                detail: format!("no mark for {since:?}, though OKX repeats each every 10 s"),
            });
        }
        Ok(())
    }

    async fn renewed(&self) {
        self.wanted.changed().await
    }

    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError> {
        let events = read_mark_frame(text)?;
        if events.iter().any(|e| matches!(e, StreamEvent::Mark { .. })) {
            self.saw_mark_now();
        }
        Ok(events)
    }
}

/// The subscription to the marks of `inst_ids`.
pub fn subscribe_marks(inst_ids: &BTreeSet<String>) -> String {
    let args: Vec<_> = inst_ids
        .iter()
        .map(|id| json!({"channel": "mark-price", "instId": id}))
        .collect();
    json!({"op": "subscribe", "args": args}).to_string()
}

/// The subscriptions the private connection makes once logged in.
pub fn subscribe_account() -> String {
    json!({"op": "subscribe", "args": [
        {"channel": "account", "ccy": "USDT", "extraParams": EVENTS_ONLY},
        {"channel": "positions", "instType": "SWAP", "extraParams": EVENTS_ONLY},
    ]})
    .to_string()
}

/// `{"op":"login",…}` signed at `at` (the server-corrected clock). It carries the key and the
/// passphrase: it goes to the socket and nowhere else.
pub fn login_frame(credentials: &Credentials, at: crate::time::Timestamp) -> String {
    let timestamp = signing::login_timestamp(at);
    let sign = credentials.sign(&signing::login_prehash(&timestamp));
    json!({"op": "login", "args": [{
        "apiKey": credentials.api_key(),
        "passphrase": credentials.passphrase(),
        "timestamp": timestamp,
        "sign": sign,
    }]})
    .to_string()
}

/// Every frame OKX sends on v5: an `event` answer, or a push of `arg` + `data`.
#[derive(Deserialize)]
struct Frame<D> {
    event: Option<String>,
    code: Option<String>,
    msg: Option<String>,
    arg: Option<Arg>,
    #[serde(rename = "eventType")]
    event_type: Option<String>,
    data: Option<Vec<D>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    channel: String,
    inst_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkEntry {
    inst_id: String,
    mark_px: Num,
    ts: Num,
}

/// What an `event` frame says, on either connection.
enum Said {
    Nothing,
    LoggedIn,
    Event(StreamEvent),
}

fn read_event<D>(frame: &Frame<D>, text: &str) -> Result<Said, FrameError> {
    let event = frame.event.as_deref().unwrap_or_default();
    let code = frame.code.as_deref().unwrap_or_default();
    let msg = frame.msg.as_deref().unwrap_or_default();
    Ok(match event {
        // Acks, and the count of connections to a private channel.
        "subscribe" | "unsubscribe" | "channel-conn-count" => Said::Nothing,
        "login" if code == "0" => Said::LoggedIn,
        "login" | "error" => Said::Event(StreamEvent::Refused {
            reason: format!("OKX answered {event} {code}: {msg}"),
        }),
        "channel-conn-count-error" => Said::Event(StreamEvent::Refused {
            reason: "OKX refuses another connection to a private channel (30 per channel)".into(),
        }),
        "notice" if code == SERVICE_UPGRADE => Said::Event(StreamEvent::Reconnect {
            reason: format!("OKX notice {code}: a service upgrade closes the connection soon"),
        }),
        other => {
            return Err(FrameError::new(
                format!("unknown event `{other}` (code `{code}`)"),
                text,
            ))
        }
    })
}

fn frame<D: serde::de::DeserializeOwned>(text: &str) -> Result<Frame<D>, FrameError> {
    serde_json::from_str(text).map_err(|e| FrameError::new(format!("not an OKX frame: {e}"), text))
}

/// One public-connection frame: marks, acks, `pong`, notices.
pub fn read_mark_frame(text: &str) -> Result<Vec<StreamEvent>, FrameError> {
    if text == PONG {
        return Ok(Vec::new());
    }
    let frame: Frame<MarkEntry> = frame(text)?;
    if frame.event.is_some() {
        return match read_event(&frame, text)? {
            Said::Nothing => Ok(Vec::new()),
            Said::Event(event) => Ok(vec![event]),
            Said::LoggedIn => Err(FrameError::new(
                "a login answer on the public connection",
                text,
            )),
        };
    }
    let bad = |detail: String| FrameError::new(detail, text);
    let arg = frame
        .arg
        .ok_or_else(|| bad("a push without `arg`".into()))?;
    if arg.channel != "mark-price" {
        return Err(bad(format!("a push on channel `{}`", arg.channel)));
    }
    let entries = frame.data.unwrap_or_default();
    if entries.is_empty() {
        return Err(bad("a mark-price push without data".into()));
    }
    entries
        .into_iter()
        .map(|entry| mark_of(entry, arg.inst_id.as_deref()).map_err(&bad))
        .collect()
}

/// One `data` entry: a positive mark and its time (ms), for the instrument `arg` names.
fn mark_of(entry: MarkEntry, subscribed: Option<&str>) -> Result<StreamEvent, String> {
    if entry.inst_id.is_empty() || subscribed.is_some_and(|id| id != entry.inst_id) {
        return Err(format!(
            "instId `{}` is not the subscribed {subscribed:?}",
            entry.inst_id
        ));
    }
    let price = entry.mark_px.decimal("markPx")?;
    if price <= rust_decimal::Decimal::ZERO {
        return Err(format!("markPx {price} is not positive"));
    }
    let venue_time_ms = entry.ts.integer("ts")?;
    if venue_time_ms <= 0 {
        return Err(format!("ts {venue_time_ms} is not a time"));
    }
    Ok(StreamEvent::Mark {
        symbol: entry.inst_id,
        price: Price(price),
        venue_time_ms,
    })
}

/// The private connection: login, then `account` and `positions`.
pub struct AccountStream {
    url: String,
    /// The corrected clock the login is stamped with (OKX expires it 30 s later).
    http: Arc<HttpClient>,
    credentials: Credentials,
    /// When this connection sent its login, and whether OKX acked it.
    login: std::sync::Mutex<(Instant, bool)>,
}

impl AccountStream {
    pub fn new(url: &str, http: Arc<HttpClient>, credentials: Credentials) -> Self {
        Self {
            url: url.to_string(),
            http,
            credentials,
            login: std::sync::Mutex::new((Instant::now(), false)),
        }
    }

    /// Whether a frame carries the key or the passphrase (an error echoing the login back):
    /// then no part of it may reach a log line.
    fn echoes_credentials(&self, text: &str) -> bool {
        let passphrase = self.credentials.passphrase();
        let key = self.credentials.api_key();
        (!passphrase.is_empty() && text.contains(passphrase))
            || (!key.is_empty() && text.contains(key))
    }
}

#[async_trait]
impl StreamProtocol for AccountStream {
    fn kind(&self) -> StreamKind {
        StreamKind::Account
    }

    fn name(&self) -> String {
        "okx account".into()
    }

    /// Measures the clock first if no REST call has: a skewed login is refused (60006).
    async fn url(&self) -> Result<Option<String>, VenueError> {
        if self.http.offset().is_none() {
            self.http.sync_clock().await?;
        }
        Ok(Some(self.url.clone()))
    }

    fn opening(&self) -> Vec<String> {
        *self.login.lock().expect("login lock") = (Instant::now(), false);
        vec![login_frame(&self.credentials, self.http.server_now())]
    }

    fn heartbeat(&self) -> Option<(Duration, String)> {
        Some((PING_AFTER, PING.into()))
    }

    fn silence_limit(&self) -> Duration {
        SILENCE_LIMIT
    }

    fn upkeep_every(&self) -> Option<Duration> {
        Some(PURPOSE_CHECK_EVERY)
    }

    /// A login never answered leaves the private channels unsubscribed while `pong`s keep
    /// the connection up: replace it.
    async fn upkeep(&self) -> Result<(), VenueError> {
        let (sent, acked) = *self.login.lock().expect("login lock");
        if !acked && sent.elapsed() > LOGIN_PATIENCE {
            return Err(VenueError::Unreachable {
                detail: "OKX never answered the login".into(),
            });
        }
        Ok(())
    }

    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError> {
        let read = read_account_frame(text);
        if let Ok(events) = &read {
            if events.iter().any(|e| matches!(e, StreamEvent::Send { .. })) {
                self.login.lock().expect("login lock").1 = true;
            }
        }
        if !self.echoes_credentials(text) {
            return read;
        }
        const WITHHELD: &str = "(withheld: the frame echoes the login)";
        match read {
            Ok(events) => Ok(events.into_iter().map(withhold).collect()),
            Err(_) => Err(FrameError::new("a frame echoing the login", WITHHELD)),
        }
    }
}

/// The event without OKX's words, which quote the key or passphrase.
fn withhold(event: StreamEvent) -> StreamEvent {
    match event {
        StreamEvent::Refused { .. } => StreamEvent::Refused {
            reason: "OKX refused the login (its answer quotes the credentials; withheld)".into(),
        },
        other => other,
    }
}

/// One private-connection frame: the login ack (answered with the subscriptions), acks,
/// `pong`, notices, and `account`/`positions` pushes.
pub fn read_account_frame(text: &str) -> Result<Vec<StreamEvent>, FrameError> {
    if text == PONG {
        return Ok(Vec::new());
    }
    let frame: Frame<serde_json::Map<String, serde_json::Value>> = frame(text)?;
    if frame.event.is_some() {
        return Ok(match read_event(&frame, text)? {
            Said::Nothing => Vec::new(),
            Said::LoggedIn => vec![StreamEvent::Send {
                text: subscribe_account(),
            }],
            Said::Event(event) => vec![event],
        });
    }
    let bad = |detail: &str| FrameError::new(detail, text);
    let arg = frame.arg.ok_or_else(|| bad("a push without `arg`"))?;
    if !matches!(arg.channel.as_str(), "account" | "positions") {
        return Err(bad(&format!("a push on channel `{}`", arg.channel)));
    }
    // An empty `data` is sound: no position (or no balance) left.
    if frame.data.is_none() {
        return Err(bad("a push without `data`"));
    }
    let kind = frame.event_type.as_deref().unwrap_or("push");
    if !matches!(kind, "snapshot" | "event_update" | "push") {
        return Err(bad(&format!("unknown eventType `{kind}`")));
    }
    Ok(vec![StreamEvent::AccountChanged {
        reason: format!("okx {} {kind}", arg.channel),
    }])
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::time::Timestamp;

    /// The docs' mark-price push (okx.md §7.6), verbatim.
    const DOCS_MARK: &str = r#"{"arg":{"channel":"mark-price","instId":"LTC-USD-190628"},"data":[{"instType":"FUTURES","instId":"LTC-USD-190628","markPx":"0.1","ts":"1597026383085"}]}"#;
    const MARK: &str = r#"{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","markPx":"60123.4","ts":"1597026383085"}]}"#;

    #[test]
    fn reads_the_docs_mark_price_push() {
        assert_eq!(
            read_mark_frame(DOCS_MARK).unwrap(),
            vec![StreamEvent::Mark {
                symbol: "LTC-USD-190628".into(),
                price: Price(dec!(0.1)),
                venue_time_ms: 1_597_026_383_085,
            }]
        );
    }

    #[test]
    fn several_entries_in_one_frame_are_several_marks() {
        let two = r#"{"arg":{"channel":"mark-price"},"data":[{"instId":"BTC-USDT-SWAP","markPx":"1","ts":"1"},{"instId":"ETH-USDT-SWAP","markPx":"2","ts":"2"}]}"#;
        let marks = read_mark_frame(two).unwrap();
        assert_eq!(marks.len(), 2);
        assert!(matches!(&marks[1], StreamEvent::Mark { symbol, .. } if symbol == "ETH-USDT-SWAP"));
    }

    #[test]
    fn a_mark_that_does_not_read_is_an_error_not_a_zero() {
        for bad in [
            MARK.replace(r#""markPx":"60123.4""#, r#""markPx":"""#),
            MARK.replace(r#""markPx":"60123.4""#, r#""markPx":"0""#),
            MARK.replace(r#""markPx":"60123.4""#, r#""markPx":"-1""#),
            MARK.replace(r#""markPx":"60123.4""#, r#""markPx":"6e4""#),
            MARK.replace(r#""markPx":"60123.4""#, r#""markPx":null"#),
            MARK.replace(r#","markPx":"60123.4""#, ""),
            MARK.replace(r#""ts":"1597026383085""#, r#""ts":"soon""#),
            MARK.replace(r#""ts":"1597026383085""#, r#""ts":"""#),
            MARK.replace(
                r#""instId":"BTC-USDT-SWAP","markPx""#,
                r#""instId":"ETH-USDT-SWAP","markPx""#,
            ),
            MARK.replace("mark-price", "tickers"),
            MARK.replace(r#""data""#, r#""dta""#),
            r#"{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[]}"#.into(),
            MARK[..MARK.len() / 2].to_string(),
            "<html>502</html>".into(),
            "PONG".into(),
        ] {
            assert!(read_mark_frame(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pong_acks_errors_and_notices() {
        assert_eq!(read_mark_frame("pong").unwrap(), vec![]);
        let ack = r#"{"id":"1512","event":"subscribe","arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"connId":"a4d3ae55"}"#;
        assert_eq!(read_mark_frame(ack).unwrap(), vec![]);
        let error = r#"{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\"}","connId":"a4d3ae55"}"#;
        assert!(matches!(
            read_mark_frame(error).unwrap()[..],
            [StreamEvent::Refused { .. }]
        ));
        let notice = r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}"#;
        assert!(matches!(
            read_mark_frame(notice).unwrap()[..],
            [StreamEvent::Reconnect { .. }]
        ));
        assert!(read_mark_frame(&notice.replace("64008", "64009")).is_err());
        assert!(read_mark_frame(r#"{"event":"login","code":"0","msg":""}"#).is_err());
    }

    #[test]
    fn the_mark_subscription_names_each_instrument() {
        let ids = BTreeSet::from(["BTC-USDT-SWAP".to_string(), "ETH-USDT-SWAP".to_string()]);
        let sent: serde_json::Value = serde_json::from_str(&subscribe_marks(&ids)).unwrap();
        assert_eq!(
            sent,
            json!({"op": "subscribe", "args": [
                {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
                {"channel": "mark-price", "instId": "ETH-USDT-SWAP"},
            ]})
        );
    }

    #[test]
    fn the_login_is_signed_over_whole_seconds() {
        let credentials = Credentials::new(
            "37c541a1-0000-4000-8000-10fe7a038418",
            "22582BD0CFF14C41EDBF1AB98506286D",
            "Passphrase-123",
        );
        let login: serde_json::Value =
            serde_json::from_str(&login_frame(&credentials, Timestamp(1_704_876_947_640))).unwrap();
        assert_eq!(login["op"], "login");
        let args = &login["args"][0];
        // A JSON string, not a number (the docs' parameter table).
        assert_eq!(args["timestamp"], "1704876947");
        assert_eq!(args["sign"], "5/36BgGV6m/6pmdc20zdqk0mzF5ZalmzzPD2fo3wavU=");
        assert_eq!(args["apiKey"], "37c541a1-0000-4000-8000-10fe7a038418");
        assert_eq!(args["passphrase"], "Passphrase-123");
    }

    #[test]
    fn the_login_ack_is_answered_with_the_private_subscriptions() {
        let ack = r#"{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}"#;
        let [StreamEvent::Send { text }] = &read_account_frame(ack).unwrap()[..] else {
            panic!("the ack must be answered");
        };
        let sent: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(sent["op"], "subscribe");
        assert_eq!(sent["args"][0]["channel"], "account");
        assert_eq!(sent["args"][0]["ccy"], "USDT");
        assert_eq!(sent["args"][1]["channel"], "positions");
        assert_eq!(sent["args"][1]["instType"], "SWAP");
        assert_eq!(sent["args"][1]["extraParams"], r#"{"updateInterval": "0"}"#);
        let failed =
            r#"{"event":"error","code":"60009","msg":"Login failed.","connId":"a4d3ae55"}"#;
        assert!(matches!(
            read_account_frame(failed).unwrap()[..],
            [StreamEvent::Refused { .. }]
        ));
        let refused =
            r#"{"event":"login","code":"60024","msg":"Wrong passphrase","connId":"a4d3ae55"}"#;
        assert!(matches!(
            read_account_frame(refused).unwrap()[..],
            [StreamEvent::Refused { .. }]
        ));
    }

    /// The docs' account push (okx.md §7.2), trimmed as there.
    const DOCS_ACCOUNT: &str = r#"{"arg":{"channel":"account","uid":"44*********584"},"eventType":"snapshot","curPage":1,"lastPage":true,"data":[{"adjEq":"55444.12216906034","availEq":"55444.12216906034","details":[{"ccy":"USDT","availBal":"4734.371190691436","availEq":"4734.371190691435","cashBal":"4750.426970691436","coinUsdPrice":"0.99927","disEq":"4889.379316336831","eq":"4892.951170691435","frozenBal":"158.57998","mgnRatio":"","mmr":"","imr":"","uTime":"1705564213903","upl":"-7.475800000000003"}],"imr":"0","isoEq":"0","mgnRatio":"","mmr":"0","notionalUsd":"0","ordFroz":"0","totalEq":"55868.06403501676","uTime":"1705564223311","upl":"0"}]}"#;

    #[test]
    fn account_and_position_pushes_ask_for_a_rest_read() {
        let positions = r#"{"arg":{"channel":"positions","uid":"77982378738415879","instType":"SWAP"},"eventType":"event_update","data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","mgnMode":"cross","pos":"0","markPx":"2353.849","pTime":"1619507761462"}]}"#;
        for push in [DOCS_ACCOUNT, positions] {
            assert!(
                matches!(
                    read_account_frame(push).unwrap()[..],
                    [StreamEvent::AccountChanged { .. }]
                ),
                "{push}"
            );
        }
        let empty = r#"{"arg":{"channel":"positions","instType":"SWAP"},"eventType":"snapshot","curPage":1,"lastPage":true,"data":[]}"#;
        assert_eq!(read_account_frame(empty).unwrap().len(), 1);
        assert_eq!(read_account_frame("pong").unwrap(), vec![]);
        for bad in [
            DOCS_ACCOUNT.replace(r#""data""#, r#""dta""#),
            DOCS_ACCOUNT.replace(r#""channel":"account""#, r#""channel":"orders""#),
            DOCS_ACCOUNT.replace("snapshot", "rumour"),
            DOCS_ACCOUNT.replace(r#""data":["#, r#""data":[1,"#),
            DOCS_ACCOUNT[..100].to_string(),
            r#"{"event":"mystery"}"#.into(),
        ] {
            assert!(read_account_frame(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_frame_echoing_the_login_is_never_quoted() {
        let stream = account_stream(Credentials::new(
            "CANARY-KEY-1f3a",
            "s3cr3t",
            "CANARY-PASS-77",
        ));
        let echo = r#"{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"login\", \"args\":[{\"apiKey\":\"CANARY-KEY-1f3a\",\"passphrase\":\"CANARY-PASS-77\"}]}","connId":"a4d3ae55"}"#;
        let shown = format!("{:?}", stream.read(echo));
        assert!(matches!(
            stream.read(echo).unwrap()[..],
            [StreamEvent::Refused { .. }]
        ));
        let broken = format!(
            "{:?}",
            stream.read(&echo.replace(r#""event":"error","#, ""))
        );
        for text in [shown, broken] {
            assert!(!text.contains("CANARY"), "{text}");
        }
        let login = stream.opening().remove(0);
        assert!(
            login.contains("CANARY-PASS-77"),
            "the login itself carries it"
        );
    }

    fn account_stream(credentials: Credentials) -> AccountStream {
        let http = HttpClient::new(
            crate::venue::okx::http::HttpSettings {
                base_url: "http://127.0.0.1:9".into(),
                demo: false,
                timeout: Duration::from_secs(1),
            },
            credentials.clone(),
            crate::clock::Clock::Wall,
        );
        AccountStream::new("ws://127.0.0.1:9", Arc::new(http), credentials)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_pongs_but_does_not_do_its_job_is_replaced() {
        let board = MarkBoard::new(crate::clock::Clock::Wall, Box::new(|| 0));
        let marks = MarkStream::new("ws://127.0.0.1:9", &board);
        marks.opening();
        tokio::time::advance(Duration::from_secs(26)).await;
        assert!(marks.upkeep().await.is_err(), "no mark for 26 s");
        marks.read(MARK).unwrap();
        assert!(marks.upkeep().await.is_ok());

        let account = account_stream(Credentials::new("k", "s", "p"));
        account.opening();
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(
            account.upkeep().await.is_err(),
            "the login was never answered"
        );
        account.opening();
        account
            .read(r#"{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}"#)
            .unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(account.upkeep().await.is_ok());
    }
}
