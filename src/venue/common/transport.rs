//! What every adapter does the same way around a request: the HTTP client, transport failures
//! and their retry semantics, `Retry-After`, and bodies cut short for error messages.
//!
//! The one rule that matters: a call that can move money and whose answer never came (a
//! timeout or a dropped connection after sending) is `OutcomeUnknown` — reconciled, never
//! resent blindly. The same failure on a read is `Unreachable` and safe to repeat. A failed
//! connect never sent anything, so it is `Unreachable` whatever the call.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::venue::VenueError;

/// Percent-encodes a query value (RFC 3986 unreserved characters pass), so non-ASCII is encoded
/// before signing. The same string goes into the URL and into the signature, so nothing
/// re-encodes it after signing.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether the failed call could have moved money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    MovesMoney,
}

/// The client every adapter uses: one timeout for connecting and for the whole call. An error
/// building it is kept (as text) and reported on the first call, not at start.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("marginguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A failure whose outcome depends on what the call could do: `OutcomeUnknown` for a call
/// that moves money, `Unreachable` (safe to repeat) for a read.
pub fn unknown_or_unreachable(effect: Effect, detail: &str) -> VenueError {
    match effect {
        Effect::MovesMoney => VenueError::OutcomeUnknown {
            detail: detail.to_string(),
        },
        Effect::Read => VenueError::Unreachable {
            detail: detail.to_string(),
        },
    }
}

/// A transport failure from reqwest, described without its URL.
pub fn from_transport(error: &reqwest::Error, effect: Effect) -> VenueError {
    from_transport_described(error, &without_url(error), effect)
}

/// A transport failure from reqwest, with `description` (already cleaned of anything secret)
/// standing for reqwest's own message.
pub fn from_transport_described(
    error: &reqwest::Error,
    description: &str,
    effect: Effect,
) -> VenueError {
    // A failed connect never sent the request: safe whatever the call.
    if error.is_connect() {
        return VenueError::Unreachable {
            detail: format!("cannot connect: {description}"),
        };
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else {
        "transport error"
    };
    unknown_or_unreachable(effect, &format!("{kind}: {description}"))
}

/// reqwest's message with the URL replaced by `<url>`: URLs carry query strings (ids, and on
/// some venues a signature) that do not belong in logs.
pub fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

/// The `Retry-After` header in whole seconds, when sent and readable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// At most 300 characters of a body, for error messages.
pub fn short(body: &str) -> String {
    let mut text: String = body.chars().take(300).collect();
    if body.chars().count() > 300 {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Retry;

    #[test]
    fn a_lost_answer_is_unknown_on_a_transfer_and_retryable_on_a_read() {
        let transfer = unknown_or_unreachable(Effect::MovesMoney, "timed out");
        assert_eq!(transfer.retry(), Retry::AfterReconcile);
        assert_eq!(
            unknown_or_unreachable(Effect::Read, "timed out").retry(),
            Retry::Safe
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_or_nothing() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", " 7 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn short_keeps_300_characters() {
        assert_eq!(short("abc"), "abc");
        let long = "é".repeat(301);
        let cut = short(&long);
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
    }
}
