//! Binance's USDⓈ-M streams (binance.md §7): marks on the routed `/market` base and the
//! user-data stream on `/private` — the 2026 routing; the unrouted `/ws/...` serves neither
//! any more.
//!
//! - Marks: `<base>/market/stream?streams=<symbol>@markPrice@1s/...` (lowercase symbols;
//!   combined frames `{"stream": …, "data": {"e": "markPriceUpdate", "E", "s", "p", …}}`).
//! - Account: a listen key from `POST /fapi/v1/listenKey` (the API-key header, no signature),
//!   `<base>/private/ws?listenKey=<key>`, kept alive with a `PUT` every 30 minutes (the key
//!   lives 60); `listenKeyExpired` or a failed keepalive opens a new connection with a new
//!   key. `ACCOUNT_UPDATE` (a balance or position delta) and `MARGIN_CALL` (a last-ditch
//!   warning) both ask for a REST read; order events are followed by an `ACCOUNT_UPDATE`.
//! - Both connections are replaced before Binance's 24-hour limit; Binance pings every 3
//!   minutes and the WebSocket layer answers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::http::{self, HttpClient};
use crate::money::Price;
use crate::venue::common::num::Num;
use crate::venue::common::stream::{FrameError, StreamEvent, StreamKind, StreamProtocol};
use crate::venue::streaming::{MarkBoard, WatchedSymbols};
use crate::venue::VenueError;

/// `<symbol>@markPrice@1s` pushes every second.
pub const MARK_CADENCE: Duration = Duration::from_secs(1);
/// "A single connection is only valid for 24 hours": replace it a little before.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(23 * 3600 + 50 * 60);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(30 * 60);
/// Ten missed marks: the connection is presumed dead.
const MARK_SILENCE: Duration = Duration::from_secs(10);
/// Longer than Binance's 3-minute ping interval.
const ACCOUNT_SILENCE: Duration = Duration::from_secs(10 * 60);

pub const PRODUCTION_WS: &str = "wss://fstream.binance.com";
pub const TESTNET_WS: &str = "wss://fstream.binancefuture.com";

/// The mark streams of the open positions.
pub struct MarkStream {
    base: String,
    wanted: WatchedSymbols,
}

impl MarkStream {
    pub fn new(base: &str, board: &MarkBoard) -> Self {
        Self {
            base: base.to_string(),
            wanted: WatchedSymbols::of(board),
        }
    }
}

#[async_trait]
impl StreamProtocol for MarkStream {
    fn kind(&self) -> StreamKind {
        StreamKind::Marks
    }

    fn name(&self) -> String {
        "binance marks".into()
    }

    async fn url(&self) -> Result<Option<String>, VenueError> {
        let symbols = self.wanted.current().await;
        if symbols.is_empty() {
            return Ok(None);
        }
        let streams = symbols
            .iter()
            .map(|s| format!("{}@markPrice@1s", s.to_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join("/");
        Ok(Some(format!(
            "{}/market/stream?streams={streams}",
            self.base
        )))
    }

    fn opening(&self) -> Vec<String> {
        Vec::new()
    }

    fn heartbeat(&self) -> Option<(Duration, String)> {
        None
    }

    fn lifetime(&self) -> Option<Duration> {
        Some(CONNECTION_LIFETIME)
    }

    fn silence_limit(&self) -> Duration {
        MARK_SILENCE
    }

    async fn renewed(&self) {
        self.wanted.changed().await
    }

    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError> {
        read_mark_frame(text)
    }
}

#[derive(Deserialize)]
struct Combined<'a> {
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    #[serde(rename = "result")]
    _result: serde::de::IgnoredAny,
    #[serde(rename = "id")]
    _id: serde::de::IgnoredAny,
}

#[derive(Deserialize)]
struct MarkUpdate {
    e: String,
    #[serde(rename = "E")]
    event_time: Num,
    s: String,
    p: Num,
}

/// One combined-stream frame of `markPriceUpdate`; subscription answers say nothing.
pub fn read_mark_frame(text: &str) -> Result<Vec<StreamEvent>, FrameError> {
    let bad = |detail: String| FrameError::new(detail, text);
    let combined: Combined = match serde_json::from_str(text) {
        Ok(combined) => combined,
        // `{"result": null, "id": 1}`: the answer to a (un)subscribe request.
        Err(_) if serde_json::from_str::<Ack>(text).is_ok() => return Ok(Vec::new()),
        Err(e) => return Err(bad(format!("not a combined frame: {e}"))),
    };
    let update: MarkUpdate = serde_json::from_str(combined.data.get())
        .map_err(|e| bad(format!("not a mark price update: {e}")))?;
    if update.e != "markPriceUpdate" {
        return Err(bad(format!("unexpected event `{}`", update.e)));
    }
    let price = update.p.decimal("p").map_err(&bad)?;
    if price <= rust_decimal::Decimal::ZERO {
        return Err(bad(format!("mark price {price} is not positive")));
    }
    let venue_time_ms = update.event_time.integer("E").map_err(&bad)?;
    Ok(vec![StreamEvent::Mark {
        symbol: update.s,
        price: Price(price),
        venue_time_ms,
    }])
}

/// The user-data stream.
pub struct AccountStream {
    pub base: String,
    pub http: Arc<HttpClient>,
}

#[async_trait]
impl StreamProtocol for AccountStream {
    fn kind(&self) -> StreamKind {
        StreamKind::Account
    }

    fn name(&self) -> String {
        "binance account".into()
    }

    /// Creates (or extends) the listen key; the key never reaches a log line.
    async fn url(&self) -> Result<Option<String>, VenueError> {
        let body = self.http.call(&http::LISTEN_KEY_CREATE, &[]).await?;
        let key = listen_key(&body)?;
        Ok(Some(format!("{}/private/ws?listenKey={key}", self.base)))
    }

    fn opening(&self) -> Vec<String> {
        Vec::new()
    }

    fn heartbeat(&self) -> Option<(Duration, String)> {
        None
    }

    fn lifetime(&self) -> Option<Duration> {
        Some(CONNECTION_LIFETIME)
    }

    fn silence_limit(&self) -> Duration {
        ACCOUNT_SILENCE
    }

    fn upkeep_every(&self) -> Option<Duration> {
        Some(KEEPALIVE_EVERY)
    }

    async fn upkeep(&self) -> Result<(), VenueError> {
        self.http
            .call(&http::LISTEN_KEY_KEEPALIVE, &[])
            .await
            .map(|_| ())
    }

    fn read(&self, text: &str) -> Result<Vec<StreamEvent>, FrameError> {
        read_account_frame(text)
    }
}

fn listen_key(body: &str) -> Result<String, VenueError> {
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "listenKey")]
        listen_key: String,
    }
    let created: Created = serde_json::from_str(body).map_err(|e| VenueError::Malformed {
        detail: format!("listenKey answer: {e}"),
        raw: "(withheld: it would carry the listen key)".into(),
    })?;
    let key = created.listen_key;
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(VenueError::Malformed {
            detail: "the listen key is empty or not alphanumeric".into(),
            raw: "(withheld)".into(),
        });
    }
    Ok(key)
}

#[derive(Deserialize)]
struct UserEvent {
    e: String,
    #[serde(default)]
    a: Option<AccountUpdate>,
}

#[derive(Deserialize)]
struct AccountUpdate {
    #[serde(default)]
    m: String,
}

/// One user-data frame.
pub fn read_account_frame(text: &str) -> Result<Vec<StreamEvent>, FrameError> {
    let event: UserEvent = serde_json::from_str(text)
        .map_err(|e| FrameError::new(format!("not a user-data event: {e}"), text))?;
    Ok(match event.e.as_str() {
        "ACCOUNT_UPDATE" => vec![StreamEvent::AccountChanged {
            reason: format!(
                "ACCOUNT_UPDATE {}",
                event.a.map(|a| a.m).unwrap_or_default()
            ),
        }],
        "MARGIN_CALL" => vec![StreamEvent::MarginCall],
        "listenKeyExpired" => vec![StreamEvent::Reconnect {
            reason: "the listen key expired".into(),
        }],
        // Orders, trades and configuration: a fill is followed by its ACCOUNT_UPDATE.
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    /// The docs' payload (binance.md §7.4), wrapped as a combined stream delivers it.
    const MARK: &str = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","ap":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}"#;

    #[test]
    fn reads_the_docs_mark_price_update() {
        assert_eq!(
            read_mark_frame(MARK).unwrap(),
            vec![StreamEvent::Mark {
                symbol: "BTCUSDT".into(),
                price: Price(dec!(11794.15)),
                venue_time_ms: 1_562_305_380_000,
            }]
        );
    }

    #[test]
    fn a_mark_that_does_not_read_is_an_error_not_a_zero() {
        for bad in [
            MARK.replace(r#""p":"11794.15000000""#, r#""p":"""#),
            MARK.replace(r#""p":"11794.15000000""#, r#""p":"0""#),
            MARK.replace(r#""E":1562305380000"#, r#""E":"soon""#),
            MARK.replace("markPriceUpdate", "kline"),
            "garbage".to_string(),
            MARK[..40].to_string(),
        ] {
            assert!(read_mark_frame(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            read_mark_frame(r#"{"result":null,"id":1}"#).unwrap(),
            vec![]
        );
    }

    #[test]
    fn reads_the_docs_user_data_events() {
        let update = r#"{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],"P":[]}}"#;
        assert!(matches!(
            read_account_frame(update).unwrap()[..],
            [StreamEvent::AccountChanged { .. }]
        ));
        let call = r#"{"e":"MARGIN_CALL","E":1587727187525,"cw":"3.16812045","p":[{"s":"ETHUSDT","ps":"LONG","pa":"1.327","mt":"CROSSED","iw":"0","mp":"187.17127","up":"-1.166074","mm":"1.614445"}]}"#;
        assert_eq!(
            read_account_frame(call).unwrap(),
            vec![StreamEvent::MarginCall]
        );
        let expired = r#"{"e":"listenKeyExpired","E":1736996475556,"listenKey":"WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"}"#;
        assert!(matches!(
            read_account_frame(expired).unwrap()[..],
            [StreamEvent::Reconnect { .. }]
        ));
    }

    #[test]
    fn the_listen_key_answer_reads_and_never_shows_the_key_on_error() {
        let body =
            r#"{"listenKey":"pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"}"#;
        assert!(listen_key(body).unwrap().starts_with("pqia91"));
        let error = listen_key(r#"{"listenKey":"a/b"}"#)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("a/b"), "{error}");
    }
}
