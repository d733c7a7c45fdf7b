//! Binance's answers → `VenueError`, with the retry semantics decided here, once.
//!
//! The one rule that matters: a call that moves money and whose answer never came (timeout,
//! dropped connection after sending, HTTP 5xx, -1007 "execution status unknown", -5012
//! "pending") is `OutcomeUnknown` — reconciled through the transfer history, never resent
//! blindly. A read that fails the same way is simply `Unreachable` and safe to repeat.

use std::time::Duration;

use serde::Deserialize;

use crate::venue::common::transport::{self, unknown_or_unreachable};
pub use crate::venue::common::transport::{short, Effect};
use crate::venue::VenueError;

/// Binance's error body: `{"code": -1022, "msg": "..."}`. Key on `code`, never on `msg`.
#[derive(Debug, Deserialize)]
pub struct ApiError {
    pub code: i64,
    #[serde(default)]
    pub msg: String,
}

impl ApiError {
    pub fn parse(body: &str) -> Option<ApiError> {
        serde_json::from_str(body).ok()
    }
}

pub const INVALID_TIMESTAMP: i64 = -1021;
pub const INVALID_SIGNATURE: i64 = -1022;

/// Maps a non-2xx answer. `retry_after` is the `Retry-After` header, when sent.
pub fn from_status(
    status: u16,
    body: &str,
    effect: Effect,
    retry_after: Option<Duration>,
) -> VenueError {
    let api = ApiError::parse(body);
    match status {
        429 | 418 => return VenueError::RateLimited { retry_after },
        403 => {
            return VenueError::Rejected {
                code: "HTTP 403".into(),
                message: "blocked by Binance's web application firewall".into(),
            }
        }
        408 => return unknown_or_unreachable(effect, "HTTP 408: timeout waiting for the backend"),
        500..=599 => {
            let detail = format!("HTTP {status}: {}", short(body));
            return unknown_or_unreachable(effect, &detail);
        }
        _ => {}
    }
    match api {
        Some(api) => from_code(api.code, &api.msg, effect, retry_after),
        None => VenueError::Rejected {
            code: format!("HTTP {status}"),
            message: short(body),
        },
    }
}

/// Maps a Binance error code (§6 of shared/exchanges/binance.md).
pub fn from_code(
    code: i64,
    msg: &str,
    effect: Effect,
    retry_after: Option<Duration>,
) -> VenueError {
    let message = format!("{code}: {msg}");
    match code {
        -1003 => VenueError::RateLimited { retry_after },
        // Execution status unknown; may have succeeded.
        -1006 | -1007 => unknown_or_unreachable(effect, &message),
        // "Asset transfer is in pending": do not resend; the history will tell.
        -5012 => VenueError::OutcomeUnknown { detail: message },
        // Busy or throttled by system protection: nothing happened, try later.
        -1001 | -1004 | -1008 => VenueError::Unreachable { detail: message },
        // Rejected before processing because of the clock: nothing happened. (The HTTP layer
        // resyncs and retries once before this surfaces.)
        INVALID_TIMESTAMP => VenueError::Unreachable { detail: message },
        INVALID_SIGNATURE | -1002 | -1099 | -2014 | -2015 | -2017 => {
            VenueError::Auth { message }
        }
        -21002 => VenueError::Unsupported {
            message: format!(
                "portfolio margin account ({message}); marginguard supports classic USDⓈ-M cross margin only"
            ),
        },
        -5011 => VenueError::Unsupported {
            message: format!("the USDⓈ-M futures account does not exist ({message})"),
        },
        _ => VenueError::Rejected {
            code: code.to_string(),
            message: msg.to_string(),
        },
    }
}

/// A transport failure from reqwest, described without the URL and without anything from
/// `signature=` on (Binance signs in the query string).
pub fn from_transport(error: &reqwest::Error, effect: Effect) -> VenueError {
    let mut text = transport::without_url(error);
    if let Some(at) = text.find("signature=") {
        text.truncate(at);
        text.push('…');
    }
    transport::from_transport_described(error, &text, effect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Retry;

    #[test]
    fn server_errors_on_a_transfer_are_unknown_and_on_a_read_retryable() {
        let body = r#"{"code":-1000,"msg":"Unknown error, please check your request or try again later."}"#;
        let transfer = from_status(503, body, Effect::MovesMoney, None);
        assert_eq!(transfer.retry(), crate::venue::Retry::AfterReconcile);
        let read = from_status(503, body, Effect::Read, None);
        assert_eq!(read.retry(), Retry::Safe);
        assert_eq!(
            from_status(408, "", Effect::MovesMoney, None).retry(),
            Retry::AfterReconcile
        );
    }

    #[test]
    fn codes_carry_their_retry_semantics() {
        let case = |status, code: i64, effect| {
            let body = format!(r#"{{"code":{code},"msg":"m"}}"#);
            from_status(status, &body, effect, None)
        };
        let bad_signature = case(400, -1022, Effect::MovesMoney);
        assert!(matches!(bad_signature, VenueError::Auth { .. }));
        assert_eq!(bad_signature.retry(), Retry::Never);
        assert_eq!(
            case(400, -1007, Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(case(400, -1007, Effect::Read).retry(), Retry::Safe);
        assert_eq!(
            case(400, -5012, Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(case(400, -5013, Effect::MovesMoney).retry(), Retry::Never);
        assert_eq!(case(400, -1021, Effect::MovesMoney).retry(), Retry::Safe);
        assert!(matches!(
            case(400, -21002, Effect::MovesMoney),
            VenueError::Unsupported { .. }
        ));
        assert!(matches!(
            case(401, -2015, Effect::Read),
            VenueError::Auth { .. }
        ));
    }

    #[test]
    fn rate_limits_keep_retry_after() {
        let wait = Some(Duration::from_secs(7));
        assert_eq!(
            from_status(429, "", Effect::Read, wait),
            VenueError::RateLimited { retry_after: wait }
        );
        assert_eq!(
            from_status(418, "", Effect::MovesMoney, wait).retry(),
            Retry::Safe
        );
    }

    #[test]
    fn unparseable_client_errors_are_rejections_with_the_body() {
        let error = from_status(404, "<html>nginx</html>", Effect::Read, None);
        assert_eq!(
            error,
            VenueError::Rejected {
                code: "HTTP 404".into(),
                message: "<html>nginx</html>".into()
            }
        );
    }
}
