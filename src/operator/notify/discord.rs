//! Discord: `POST {webhook_url}` with the message as `content`. The webhook URL is the
//! credential: whoever has it can post to the channel.
//!
//! `allowed_mentions.parse = []` keeps an `@everyone` (or a role) inside an alert's text from
//! pinging anyone. Discord answers 204 when it took the message, and 429 with a JSON
//! `retry_after` (seconds, a float) and a `Retry-After` header when rate-limited.

use serde_json::json;

use super::{cap_text, DeliveryError};
use crate::operator::alert::Alert;
use crate::venue::common::credential::Hidden;

/// Discord's limit on a message's `content`, in characters.
pub(super) const MAX_CONTENT: usize = 2000;

/// The request for one alert.
pub(super) fn request(
    client: &reqwest::Client,
    webhook_url: &Hidden,
    alert: &Alert,
) -> Result<reqwest::RequestBuilder, DeliveryError> {
    let url = std::str::from_utf8(webhook_url.expose())
        .map_err(|_| DeliveryError::Setup("the webhook URL is not UTF-8".into()))?;
    Ok(client.post(url).json(&payload(alert)))
}

fn payload(alert: &Alert) -> serde_json::Value {
    json!({
        "content": cap_text(&alert.chat_text(), MAX_CONTENT, |_| 1),
        "allowed_mentions": { "parse": [] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::alert::AlertSeverity;
    use crate::operator::notify::tests::alert;

    #[test]
    fn content_is_capped_and_mentions_are_off() {
        let mut long = alert(AlertSeverity::Critical, Some("main"));
        long.text = "@everyone ".repeat(500);
        let payload = payload(&long);
        let content = payload["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), MAX_CONTENT);
        assert!(content.starts_with("[CRITICAL] main: top-up sent\n@everyone"));
        assert!(content.ends_with('…'));
        assert_eq!(payload["allowed_mentions"]["parse"], json!([]));
    }
}
