//! A generic webhook: `POST {url}` with the alert as JSON (docs/operator.md, "Webhook").
//!
//! With a secret, `X-Marginguard-Signature: sha256=<hex HMAC-SHA256(secret,
//! "<timestamp>.<body>")>` over the exact bytes sent, and `X-Marginguard-Timestamp` the Unix
//! seconds of sending: a receiver recomputes the HMAC over the raw body and refuses an old
//! timestamp, so a captured request cannot be replayed later.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::DeliveryError;
use crate::operator::alert::Alert;
use crate::venue::common::credential::Hidden;

/// The payload's `version`: bumped only if a field changes meaning or goes away.
const PAYLOAD_VERSION: u32 = 1;

pub(super) const EVENT_HEADER: &str = "X-Marginguard-Event";
pub(super) const TIMESTAMP_HEADER: &str = "X-Marginguard-Timestamp";
pub(super) const SIGNATURE_HEADER: &str = "X-Marginguard-Signature";

/// The JSON body, field for field as documented.
#[derive(Serialize)]
struct Payload<'a> {
    version: u32,
    event: &'static str,
    severity: &'static str,
    recovered: bool,
    account: Option<&'a str>,
    venue: Option<&'a str>,
    /// RFC 3339, UTC, milliseconds: `2026-12-04T18:40:00.123Z`.
    at: String,
    at_ms: i64,
    title: &'a str,
    text: &'a str,
    details: &'a BTreeMap<String, String>,
}

/// The exact bytes sent (and signed) for `alert`.
pub(super) fn body(alert: &Alert) -> Result<Vec<u8>, DeliveryError> {
    let payload = Payload {
        version: PAYLOAD_VERSION,
        event: alert.event.name(),
        severity: alert.severity.name(),
        recovered: alert.recovered,
        account: alert.account.as_deref(),
        venue: alert.venue.as_deref(),
        at: alert.at.to_string(),
        at_ms: alert.at.as_millis(),
        title: &alert.title,
        text: &alert.text,
        details: &alert.details,
    };
    serde_json::to_vec(&payload).map_err(|e| DeliveryError::Setup(format!("cannot encode: {e}")))
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub(super) fn signature(
    secret: &Hidden,
    timestamp: u64,
    body: &[u8],
) -> Result<String, DeliveryError> {
    // HMAC takes a key of any length; the error case is the trait's, not reachable here.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose())
        .map_err(|_| DeliveryError::Setup("the HMAC secret was refused".into()))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// The request for one alert, timestamped (and signed) now: each try is signed afresh, so a
/// retry after a wait does not look like a replay.
pub(super) fn request(
    client: &reqwest::Client,
    url: &Hidden,
    secret: Option<&Hidden>,
    alert: &Alert,
) -> Result<reqwest::RequestBuilder, DeliveryError> {
    let url = std::str::from_utf8(url.expose())
        .map_err(|_| DeliveryError::Setup("the webhook URL is not UTF-8".into()))?;
    let body = body(alert)?;
    let timestamp = unix_seconds_now();
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, alert.event.name())
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, timestamp, &body)?);
    }
    Ok(request.body(body))
}

/// The wall clock of sending, not the alert's time: the receiver checks it against its own.
fn unix_seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::alert::AlertSeverity;
    use crate::operator::notify::tests::alert;

    #[test]
    fn the_body_has_every_documented_field() {
        let mut sent = alert(AlertSeverity::Warning, Some("main"));
        sent.details.insert("amount".into(), "1200".into());
        let body: serde_json::Value = serde_json::from_slice(&body(&sent).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "version": 1,
                "event": "top_up_sent",
                "severity": "warning",
                "recovered": false,
                "account": "main",
                "venue": "binance",
                "at": "2026-12-04T18:40:00.123Z",
                "at_ms": 1_796_409_600_123_i64,
                "title": "main: top-up sent",
                "text": "distance 7.9 %",
                "details": { "amount": "1200" },
            })
        );
        let process = super::body(&alert(AlertSeverity::Info, None)).unwrap();
        let process: serde_json::Value = serde_json::from_slice(&process).unwrap();
        assert!(process["account"].is_null() && process["venue"].is_null());
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently (Python's hmac module) for this secret, timestamp and body.
        let signed = signature(
            &Hidden::new("CANARY-secret"),
            1_796_409_600,
            br#"{"event":"top_up_sent"}"#,
        )
        .unwrap();
        assert_eq!(
            signed,
            "sha256=d6ad4286a3a2adf8a7e54f7ae77abfeaf62b9aa4ff2162398d465e37a5ec4b37"
        );
    }
}
