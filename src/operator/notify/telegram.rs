//! Telegram: `POST {api_url}/bot{token}/sendMessage` with the chat and a plain-text message.
//!
//! No parse mode, so a figure such as `1_200` or `*` is never read as markup and a message is
//! never refused for bad markup. Telegram answers `{"ok": true, ...}` when it took the
//! message, and `{"ok": false, "error_code": 429, "parameters": {"retry_after": N}}` when
//! flooded.

use serde::Deserialize;
use serde_json::json;

use super::{cap_text, Answer, DeliveryError, Verdict};
use crate::operator::alert::Alert;
use crate::venue::common::credential::Hidden;

/// Telegram's limit on a message's text. It counts UTF-16 code units, so that is what is
/// counted here: an emoji is two.
pub(super) const MAX_TEXT: usize = 4096;

/// The request for one alert. The token is only ever in the URL of this request.
pub(super) fn request(
    client: &reqwest::Client,
    api_url: &str,
    bot_token: &Hidden,
    chat_id: &str,
    alert: &Alert,
) -> Result<reqwest::RequestBuilder, DeliveryError> {
    let token = std::str::from_utf8(bot_token.expose())
        .map_err(|_| DeliveryError::Setup("the bot token is not UTF-8".into()))?;
    let payload = json!({
        "chat_id": chat_id,
        "text": cap_text(&alert.chat_text(), MAX_TEXT, char::len_utf16),
        "disable_web_page_preview": true,
    });
    Ok(client
        .post(format!("{api_url}/bot{token}/sendMessage"))
        .json(&payload))
}

/// The fields of Telegram's answer that decide: any other shape is not a success.
#[derive(Deserialize)]
struct TelegramAnswer {
    ok: Option<bool>,
    error_code: Option<u16>,
}

/// Delivered only on HTTP 200 with `"ok": true`; a 429 (as status or as `error_code`) waits
/// `parameters.retry_after`; otherwise the generic reading.
pub(super) fn verdict(answer: &Answer) -> Verdict {
    let said: Option<TelegramAnswer> = serde_json::from_str(&answer.body).ok();
    let ok = said.as_ref().and_then(|a| a.ok) == Some(true);
    let code = said.as_ref().and_then(|a| a.error_code);
    match answer.verdict() {
        Verdict::Delivered if ok && answer.status == reqwest::StatusCode::OK => Verdict::Delivered,
        Verdict::Delivered | Verdict::Refused(_) if code == Some(429) => Verdict::Retry {
            after: super::body_retry_after(&answer.body),
            error: answer.error(),
        },
        // Something answered 2xx without Telegram's `ok: true` (a proxy, a portal): the
        // message was not taken.
        Verdict::Delivered => Verdict::Refused(answer.error()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::HeaderMap;
    use reqwest::StatusCode;

    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.to_string(),
        }
    }

    #[test]
    fn delivered_needs_200_and_ok_true() {
        let took = r#"{"ok":true,"result":{"message_id":1}}"#;
        assert_eq!(verdict(&answer(200, took)), Verdict::Delivered);
        assert!(matches!(
            verdict(&answer(200, "<html>portal</html>")),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            verdict(&answer(200, r#"{"ok":false,"error_code":400}"#)),
            Verdict::Refused(_)
        ));
        let unauthorized = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;
        assert!(matches!(
            verdict(&answer(401, unauthorized)),
            Verdict::Refused(DeliveryError::Answer { status: 401, .. })
        ));
    }

    #[test]
    fn flood_control_waits_retry_after() {
        let flooded = r#"{"ok":false,"error_code":429,"parameters":{"retry_after":3}}"#;
        for status in [429, 400] {
            match verdict(&answer(status, flooded)) {
                Verdict::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(3))),
                other => panic!("HTTP {status}: not a retry: {other:?}"),
            }
        }
    }
}
