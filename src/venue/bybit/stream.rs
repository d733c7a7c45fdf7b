//! Bybit's v5 streams (bybit.md §7): marks on the public linear stream and account events on
//! the private one.
//!
//! - Marks: `<public>` (`wss://stream.bybit.com/v5/public/linear`), one
//!   `{"op":"subscribe","args":["tickers.<SYMBOL>", …]}` for the open positions, sent on
//!   connect. Each topic sends a `snapshot`, then a `delta` every 100 ms carrying only what
//!   changed. A delta without `markPrice` therefore says the mark is unchanged as of its
//!   `ts`: it re-stamps the mark this connection last read (bybit.md §7.4, "merge deltas into
//!   the cached snapshot"). Without that a steady mark would look stale after a second and
//!   every decision would fall back to REST while the stream is perfectly alive.
//! - Account: `<private>` (`wss://stream.bybit.com/v5/private`), an `auth` frame on connect
//!   (`hex(HMAC_SHA256(secret, "GET/realtime" + expires))`, expires a few seconds ahead on the
//!   server's clock), then `{"op":"subscribe","args":["wallet","position"]}` once the auth is
//!   acked. The docs show that order (auth answered, then subscribe) and promise nothing for
//!   a subscription sent before the answer, so the subscribe waits for it: one round trip per
//!   connect, which the REST read after every connect takes anyway. Both topics push deltas
//!   with no snapshot and `wallet` does not push on PnL (§7.2): each frame asks for a REST read.
//! - Heartbeat: `{"op":"ping"}`, answered by a pong (public: `op` `ping`, `ret_msg` `pong`;
//!   private: `op` `pong`). Bybit recommends one every 20 s; the private stream sends it after
//!   20 s of silence. A ticker stream pushing every 100 ms is never quiet for 5 s unless the
//!   connection is dying, so there the ping is sent after 5 s and doubles as a probe: a dead
//!   mark connection is replaced within 10 s, as Binance's is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use serde_json::value::RawValue;

use super::credential::Credentials;
use super::http::HttpClient;
use crate::money::Price;
use crate::venue::common::num::Num;
use crate::venue::common::stream::{FrameError, StreamEvent, StreamKind, StreamProtocol};
use crate::venue::common::transport::short;
use crate::venue::streaming::{MarkBoard, WatchedSymbols};
use crate::venue::VenueError;

/// "Push frequency: Derivatives & Options - 100ms" (bybit.md §7.4).
pub const MARK_CADENCE: Duration = Duration::from_millis(100);
/// Bybit's recommended heartbeat interval.
const HEARTBEAT: Duration = Duration::from_secs(20);
/// A mark stream quiet this long is probed with a ping (see the module comment).
const MARK_PING_AFTER: Duration = Duration::from_secs(5);
/// Two probes unanswered: the mark connection is presumed dead.
const MARK_SILENCE: Duration = Duration::from_secs(10);
/// Two heartbeats unanswered on the (often quiet) account stream.
const ACCOUNT_SILENCE: Duration = Duration::from_secs(60);
/// The auth expires this far ahead of the server's clock: the docs' 1 s leaves no room for
/// the skew the offset measurement has not caught (bybit.md §7.1).
const AUTH_AHEAD_MS: i64 = 5_000;
/// Topics per subscribe request: Bybit caps some markets at 10 args per request.
const TOPICS_PER_REQUEST: usize = 10;

pub const PUBLIC_PATH: &str = "/v5/public/linear";
pub const PRIVATE_PATH: &str = "/v5/private";
pub const MAINNET_HOST: &str = "stream.bybit.com";
pub const TESTNET_HOST: &str = "stream-testnet.bybit.com";
/// Demo trading has private streams only; its public data is mainnet's (bybit.md §1).
pub const DEMO_HOST: &str = "stream-demo.bybit.com";

/// `wss://<host><path>`.
pub fn url_at(host: &str, path: &str) -> String {
    format!("wss://{host}{path}")
}

/// Locks, keeping the data of a lock whose holder panicked: these are caches, and a frame
/// must never turn into a panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The heartbeat frame (`req_id` is optional and echoed in the pong).
pub fn ping_frame() -> String {
    json!({"req_id": "marginguard-ping", "op": "ping"}).to_string()
}

/// One subscribe request.
pub fn subscribe_frame<S: serde::Serialize>(topics: &[S]) -> String {
    json!({"req_id": "marginguard-subscribe", "op": "subscribe", "args": topics}).to_string()
}

/// Subscribe requests for `topics`, at most `TOPICS_PER_REQUEST` per frame.
pub fn subscribe_frames(topics: &[String]) -> Vec<String> {
    topics
        .chunks(TOPICS_PER_REQUEST)
        .map(subscribe_frame)
        .collect()
}

/// The string a private-stream auth signs (bybit.md §7.1; vector E in §2.3).
pub fn auth_presign(expires_ms: i64) -> String {
    format!("GET/realtime{expires_ms}")
}

/// The auth frame; `expires` is a JSON number, as in the docs and pybit.
pub fn auth_frame(api_key: &str, expires_ms: i64, signature: &str) -> String {
    json!({"req_id": "marginguard-auth", "op": "auth", "args": [api_key, expires_ms, signature]})
        .to_string()
}

/// The envelope every frame shares: an answer to a request (`op`) or a topic push.
#[derive(Deserialize)]
struct Frame<'a> {
    op: Option<String>,
    success: Option<bool>,
    ret_msg: Option<String>,
    topic: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    ts: Option<Num>,
}

fn frame(text: &str) -> Result<Frame<'_>, FrameError> {
    // An array would fill a struct positionally; every Bybit frame is an object.
    if !text.trim_start().starts_with('{') {
        return Err(FrameError::new("not a JSON object", text));
    }
    serde_json::from_str(text).map_err(|e| FrameError::new(format!("not a Bybit frame: {e}"), text))
}

/// What an answer to one of our requests says. `subscribe_on_auth` is the private stream's
/// subscription, sent once the auth is acked; the public stream never authenticates.
fn read_answer(
    frame: &Frame,
    op: &str,
    text: &str,
    subscribe_on_auth: Option<&str>,
) -> Result<Vec<StreamEvent>, FrameError> {
    let accepted = frame.success == Some(true);
    let refused = |what: &str| StreamEvent::Refused {
        reason: format!(
            "Bybit refused the {what}: {}",
            short(frame.ret_msg.as_deref().unwrap_or("(no ret_msg)"))
        ),
    };
    Ok(match (op, subscribe_on_auth) {
        // Public pongs come back as `op: "ping"`, private ones as `op: "pong"`.
        ("ping" | "pong", _) => Vec::new(),
        ("subscribe", _) if accepted => Vec::new(),
        ("subscribe", _) => vec![refused("subscription")],
        ("auth", Some(subscribe)) if accepted => vec![StreamEvent::Send {
            text: subscribe.to_string(),
        }],
        // The failure format is undocumented: anything but `success: true` (bybit.md §7.1).
        ("auth", Some(_)) => vec![refused("auth")],
        (other, _) => {
            return Err(FrameError::new(
                format!("an answer to `{other}`, which this stream never sends"),
                text,
            ))
        }
    })
}

/// A field that is present, whatever its value: `null` must read as a broken number, not as
/// "absent" (which a delta uses to say "unchanged").
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Num>, D::Error> {
    Num::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
struct Ticker {
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default, rename = "markPrice", deserialize_with = "present")]
    mark_price: Option<Num>,
}

/// One public-stream frame: a ticker snapshot or delta (at most one mark), a subscription
/// answer or a pong. `last` is this connection's mark per symbol, which a delta without
/// `markPrice` re-stamps.
pub fn read_public_frame(
    text: &str,
    last: &mut HashMap<String, Decimal>,
) -> Result<Vec<StreamEvent>, FrameError> {
    let frame = frame(text)?;
    if let Some(op) = frame.op.as_deref() {
        return read_answer(&frame, op, text, None);
    }
    let (symbol, venue_time_ms, ticker) = read_ticker(&frame, text)?;
    let bad = |detail: String| FrameError::new(detail, text);
    let price = match (frame.kind.as_deref(), ticker.mark_price) {
        (Some("snapshot" | "delta"), Some(mark)) => {
            let price = mark.decimal("markPrice").map_err(&bad)?;
            if price <= Decimal::ZERO {
                return Err(bad(format!("mark price {price} is not positive")));
            }
            last.insert(symbol.to_string(), price);
            price
        }
        (Some("delta"), None) => match last.get(symbol) {
            Some(price) => *price,
            // Unchanged since a snapshot this connection has not seen: nothing to say.
            None => return Ok(Vec::new()),
        },
        (Some("snapshot"), None) => return Err(bad("a snapshot without markPrice".into())),
        (kind, _) => return Err(bad(format!("unexpected type {kind:?}"))),
    };
    Ok(vec![StreamEvent::Mark {
        symbol: symbol.to_string(),
        price: Price(price),
        venue_time_ms,
    }])
}

/// A ticker push's symbol (from its topic, matching its data), `ts` and data.
fn read_ticker<'f>(frame: &'f Frame, text: &str) -> Result<(&'f str, i64, Ticker), FrameError> {
    let bad = |detail: String| FrameError::new(detail, text);
    let topic = frame
        .topic
        .as_deref()
        .ok_or_else(|| bad("neither op nor topic".into()))?;
    let symbol = topic
        .strip_prefix("tickers.")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("unexpected topic `{topic}`")))?;
    let venue_time_ms = frame
        .ts
        .as_ref()
        .ok_or_else(|| bad("no ts".into()))?
        .integer("ts")
        .map_err(&bad)?;
    let data = frame.data.ok_or_else(|| bad("no data".into()))?;
    // The field table says array, the docs' sample and the venue send an object (§7.4).
    if !data.get().trim_start().starts_with('{') {
        return Err(bad("data is not an object".into()));
    }
    let ticker: Ticker =
        serde_json::from_str(data.get()).map_err(|e| bad(format!("not a ticker: {e}")))?;
    if ticker.symbol.as_deref().is_some_and(|s| s != symbol) {
        return Err(bad(format!(
            "data for {:?} on topic `{topic}`",
            ticker.symbol
        )));
    }
    Ok((symbol, venue_time_ms, ticker))
}

/// One private-stream frame: `wallet` or `position` pushes ask for a REST read; the auth ack
/// sends `subscribe`; subscription answers and pongs say nothing.
pub fn read_private_frame(text: &str, subscribe: &str) -> Result<Vec<StreamEvent>, FrameError> {
    let frame = frame(text)?;
    if let Some(op) = frame.op.as_deref() {
        return read_answer(&frame, op, text, Some(subscribe));
    }
    let bad = |detail: String| FrameError::new(detail, text);
    let topic = frame
        .topic
        .as_deref()
        .ok_or_else(|| bad("neither op nor topic".into()))?;
    // `position` is the all-in-one topic; its pushes may name a category (`position.linear`).
    let known = topic == "wallet" || topic == "position" || topic.starts_with("position.");
    if !known {
        return Err(bad(format!("topic `{topic}` was never subscribed")));
    }
    let rows = frame.data.ok_or_else(|| bad("no data".into()))?;
    if !rows.get().trim_start().starts_with('[') {
        return Err(bad("data is not a list".into()));
    }
    Ok(vec![StreamEvent::AccountChanged {
        reason: format!("bybit {topic} push"),
    }])
}

/// The ticker streams of the open positions.
pub struct MarkStream {
    url: String,
    wanted: WatchedSymbols,
    /// The symbols of the connection being opened: `url` takes them, `opening` subscribes.
    subscribing: Mutex<Vec<String>>,
    /// This connection's last mark per symbol (what a delta without `markPrice` repeats).
    last: Mutex<HashMap<String, Decimal>>,
}

impl MarkStream {
    pub fn new(url: &str, board: &MarkBoard) -> Self {
        Self {
            url: url.to_string(),
            wanted: WatchedSymbols::of(board),
            subscribing: Mutex::new(Vec::new()),
            last: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl StreamProtocol for MarkStream {
    fn kind(&self) -> StreamKind {
        StreamKind::Marks
    }

    fn name(&self) -> String {
        "bybit marks".into()
    }

    async fn url(&self) -> Result<Option<String>, VenueError> {
        let symbols = self.wanted.current().await;
        if symbols.is_empty() {
            return Ok(None);
        }
        *lock(&self.subscribing) = symbols.into_iter().collect();
        Ok(Some(self.url.clone()))
    }

    /// The subscription; a new connection starts from its own snapshots, so the marks an
    /// older one read are forgotten.
    fn opening(&self) -> Vec<String> {
        lock(&self.last).clear();
        let topics: Vec<String> = lock(&self.subscribing)
            .iter()
            .map(|symbol| format!("tickers.{symbol}"))
            .collect();
        subscribe_frames(&topics)
    }

    fn heartbeat(&self) -> Option<(Duration, String)> {
        Some((MARK_PING_AFTER, ping_frame()))
    }

    fn silence_limit(&self) -> Duration {
        MARK_SILENCE
    }

    async fn renewed(&self) {
        self.wanted.changed().await
    }

    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError> {
        read_public_frame(text, &mut lock(&self.last))
    }
}

/// The private stream: wallet and position pushes.
pub struct AccountStream {
    url: String,
    /// The server's clock, for the auth's expiry.
    http: Arc<HttpClient>,
    credentials: Credentials,
    subscribe: String,
}

impl AccountStream {
    pub fn new(url: &str, http: Arc<HttpClient>, credentials: Credentials) -> Self {
        Self {
            url: url.to_string(),
            http,
            credentials,
            // The all-in-one `position`: it may not share a request with `position.linear`.
            subscribe: subscribe_frame(&["wallet", "position"]),
        }
    }
}

#[async_trait]
impl StreamProtocol for AccountStream {
    fn kind(&self) -> StreamKind {
        StreamKind::Account
    }

    fn name(&self) -> String {
        "bybit account".into()
    }

    async fn url(&self) -> Result<Option<String>, VenueError> {
        Ok(Some(self.url.clone()))
    }

    /// The auth, signed now so its expiry is a few seconds from the moment it is sent. The
    /// frame carries the key and the signature and is never logged.
    fn opening(&self) -> Vec<String> {
        let expires = self.http.server_now() + AUTH_AHEAD_MS;
        let signature = self.credentials.sign_stream_auth(expires);
        vec![auth_frame(self.credentials.api_key(), expires, &signature)]
    }

    fn heartbeat(&self) -> Option<(Duration, String)> {
        Some((HEARTBEAT, ping_frame()))
    }

    fn silence_limit(&self) -> Duration {
        ACCOUNT_SILENCE
    }

    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError> {
        read_private_frame(text, &self.subscribe)
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::super::signing;
    use super::*;

    /// The docs' ticker snapshot (bybit.md §7.4).
    const SNAPSHOT: &str = r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","lastPrice":"66666.60","markPrice":"66666.60","indexPrice":"115418.19","fundingRate":"-0.005","nextFundingTime":"1760342400000","bid1Price":"66666.60","ask1Price":"66666.70"},"cs":9532239429,"ts":1760325052630}"#;
    /// A delta as the ticker stream sends it: only what changed.
    const DELTA: &str = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","markPrice":"66670.10","bid1Price":"66670.00"},"cs":9532239430,"ts":1760325052730}"#;
    const QUIET_DELTA: &str = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"66670.20"},"cs":9532239431,"ts":1760325052830}"#;
    /// The docs' wallet and position pushes (bybit.md §7.2, §7.3), trimmed.
    const WALLET: &str = r#"{"id":"592324d2bce751-ad38-48eb-8f42-4671d1fb4d4e","topic":"wallet","creationTime":1700034722104,"data":[{"accountIMRate":"0","accountMMRate":"0","totalEquity":"10262.91335023","totalWalletBalance":"9684.46297164","totalMarginBalance":"9684.46297164","totalAvailableBalance":"9556.6056555","totalPerpUPL":"0","totalInitialMargin":"0","totalMaintenanceMargin":"0","coin":[{"coin":"BTC","equity":"0.00102964","usdValue":"36.70759517","walletBalance":"0.00102964","totalOrderIM":"","totalPositionIM":"","totalPositionMM":"","unrealisedPnl":"0","collateralSwitch":true,"marginCollateral":true,"spotBorrow":"0"}],"accountLTV":"0","accountType":"UNIFIED"}]}"#;
    const POSITION: &str = r#"{"id":"1003076014fb7eedb-c7e6-45d6-a8c1-270f0169171a","topic":"position","creationTime":1697682317044,"data":[{"positionIdx":2,"tradeMode":0,"riskId":1,"riskLimitValue":"2000000","symbol":"BTCUSDT","side":"","size":"0","entryPrice":"0","leverage":"10","positionValue":"0","markPrice":"28184.5","positionIM":"0","positionMM":"0","unrealisedPnl":"0","liqPrice":"0","bustPrice":"","category":"linear","positionStatus":"Normal","seq":8327597863,"isReduceOnly":false,"createdTime":"1694402496913","updatedTime":"1697682317038"}]}"#;
    const SUBSCRIBE: &str = r#"{"op":"subscribe","args":["wallet","position"]}"#;

    fn mark(price: Decimal, venue_time_ms: i64) -> Vec<StreamEvent> {
        vec![StreamEvent::Mark {
            symbol: "BTCUSDT".into(),
            price: Price(price),
            venue_time_ms,
        }]
    }

    #[test]
    fn reads_the_docs_snapshot_then_deltas_merged_into_it() {
        let mut last = HashMap::new();
        assert_eq!(
            read_public_frame(SNAPSHOT, &mut last).unwrap(),
            mark(dec!(66666.60), 1_760_325_052_630)
        );
        assert_eq!(
            read_public_frame(DELTA, &mut last).unwrap(),
            mark(dec!(66670.10), 1_760_325_052_730)
        );
        // Unchanged: the last mark, as of this frame's time.
        assert_eq!(
            read_public_frame(QUIET_DELTA, &mut last).unwrap(),
            mark(dec!(66670.10), 1_760_325_052_830)
        );
        // A quiet delta before any mark on this connection says nothing.
        assert_eq!(
            read_public_frame(QUIET_DELTA, &mut HashMap::new()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_mark_that_does_not_read_is_an_error_never_a_zero_or_a_repeat() {
        let price = r#""markPrice":"66670.10""#;
        for broken in [
            DELTA.replace(price, r#""markPrice":"""#),
            DELTA.replace(price, r#""markPrice":"0""#),
            DELTA.replace(price, r#""markPrice":"-66670.10""#),
            DELTA.replace(price, r#""markPrice":"6.6e4""#),
            DELTA.replace(price, r#""markPrice":null"#),
            DELTA.replace(price, r#""markPrice":{"v":"1"}"#),
            DELTA.replace(r#""ts":1760325052730"#, r#""ts":"soon""#),
            DELTA.replace(r#","ts":1760325052730"#, ""),
            DELTA.replace(r#""type":"delta""#, r#""type":"update""#),
            DELTA.replace(r#""symbol":"BTCUSDT""#, r#""symbol":"ETHUSDT""#),
            DELTA.replace("tickers.BTCUSDT", "orderbook.1.BTCUSDT"),
            DELTA.replace("tickers.BTCUSDT", "tickers."),
            DELTA.replace(r#""data":{"#, r#""dta":{"#),
            DELTA.replace(
                r#""data":{"symbol":"BTCUSDT","markPrice":"66670.10","bid1Price":"66670.00"}"#,
                r#""data":[{"symbol":"BTCUSDT","markPrice":"66670.10"}]"#,
            ),
            DELTA.replace(
                r#""data":{"symbol":"BTCUSDT","markPrice":"66670.10","bid1Price":"66670.00"}"#,
                r#""data":[]"#,
            ),
            SNAPSHOT.replace(r#""markPrice":"66666.60","#, ""),
            DELTA[..DELTA.len() / 2].to_string(),
            "[]".to_string(),
            "<html>502</html>".to_string(),
            String::new(),
        ] {
            let mut last = HashMap::from([("BTCUSDT".to_string(), dec!(60000))]);
            assert!(read_public_frame(&broken, &mut last).is_err(), "{broken}");
            assert_eq!(last["BTCUSDT"], dec!(60000), "{broken} moved the cache");
        }
    }

    #[test]
    fn answers_and_pongs_say_nothing_and_a_refused_subscription_reconnects() {
        let mut last = HashMap::new();
        for quiet in [
            r#"{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","req_id":"","op":"ping"}"#,
            r#"{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"10001","op":"subscribe"}"#,
        ] {
            assert_eq!(read_public_frame(quiet, &mut last).unwrap(), vec![]);
        }
        let refused = r#"{"success":false,"ret_msg":"error:handler not found,topic:tickers.NOPE","conn_id":"c","req_id":"","op":"subscribe"}"#;
        assert!(matches!(
            read_public_frame(refused, &mut last).unwrap()[..],
            [StreamEvent::Refused { .. }]
        ));
        // The public stream never authenticates.
        let auth = r#"{"success":true,"ret_msg":"","op":"auth","conn_id":"c"}"#;
        assert!(read_public_frame(auth, &mut last).is_err());
    }

    #[test]
    fn the_auth_ack_subscribes_and_a_failed_auth_is_refused() {
        let ack = r#"{"success":true,"ret_msg":"","op":"auth","conn_id":"cejreaspqfh3sjdnldmg-p"}"#;
        assert_eq!(
            read_private_frame(ack, SUBSCRIBE).unwrap(),
            vec![StreamEvent::Send {
                text: SUBSCRIBE.into()
            }]
        );
        for failed in [
            r#"{"success":false,"ret_msg":"Params Error","op":"auth","conn_id":"c"}"#,
            r#"{"ret_msg":"","op":"auth","conn_id":"c"}"#,
        ] {
            assert!(matches!(
                read_private_frame(failed, SUBSCRIBE).unwrap()[..],
                [StreamEvent::Refused { .. }]
            ));
        }
        let pong = r#"{"req_id":"test","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}"#;
        assert_eq!(read_private_frame(pong, SUBSCRIBE).unwrap(), vec![]);
        let subscribed = r#"{"success":true,"ret_msg":"","op":"subscribe","conn_id":"c"}"#;
        assert_eq!(read_private_frame(subscribed, SUBSCRIBE).unwrap(), vec![]);
    }

    #[test]
    fn wallet_and_position_pushes_ask_for_a_rest_read() {
        for push in [
            WALLET,
            POSITION,
            &POSITION.replace(r#""topic":"position""#, r#""topic":"position.linear""#),
        ] {
            assert!(matches!(
                read_private_frame(push, SUBSCRIBE).unwrap()[..],
                [StreamEvent::AccountChanged { .. }]
            ));
        }
        for broken in [
            WALLET.replace(r#""topic":"wallet""#, r#""topic":"order""#),
            WALLET.replace(r#""topic":"wallet","#, ""),
            POSITION
                .replace(r#""data":["#, r#""data":{"x":["#)
                .replace("}]}", "}]}}"),
            WALLET[..WALLET.len() / 3].to_string(),
            "garbage".to_string(),
        ] {
            assert!(read_private_frame(&broken, SUBSCRIBE).is_err(), "{broken}");
        }
    }

    #[test]
    fn vector_e_signs_the_auth_and_the_frame_carries_expires_as_a_number() {
        let secret = b"0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(auth_presign(1_700_000_001_000), "GET/realtime1700000001000");
        let signature = signing::hmac_hex(secret, &auth_presign(1_700_000_001_000));
        assert_eq!(
            signature,
            "fe14fed8adc891bf6a3d7c60ca81e3080a316580df92a72c4902f98cd5c1fa61"
        );
        let frame: serde_json::Value = serde_json::from_str(&auth_frame(
            "AbCdEfGhIjKlMnOpQr",
            1_700_000_001_000,
            &signature,
        ))
        .unwrap();
        assert_eq!(frame["op"], "auth");
        assert_eq!(
            frame["args"],
            json!(["AbCdEfGhIjKlMnOpQr", 1_700_000_001_000i64, signature])
        );
    }

    #[test]
    fn subscriptions_are_split_ten_topics_a_request() {
        let topics: Vec<String> = (0..23).map(|i| format!("tickers.S{i}USDT")).collect();
        let frames = subscribe_frames(&topics);
        assert_eq!(frames.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!(first["op"], "subscribe");
        assert_eq!(first["args"].as_array().unwrap().len(), 10);
        let ping: serde_json::Value = serde_json::from_str(&ping_frame()).unwrap();
        assert_eq!(ping["op"], "ping");
    }
}
