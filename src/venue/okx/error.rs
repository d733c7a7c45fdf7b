//! OKX's answers → `VenueError`, with the retry semantics decided here, once.
//!
//! OKX answers most business errors with HTTP 200 and a non-zero `code` in the envelope
//! `{"code":"…","msg":"…","data":[…]}`, some with 4xx/5xx and the same envelope, and proxies
//! may answer with no envelope at all (okx.md §6). The rule that matters: a transfer whose
//! answer never came, or whose answer says "maybe" (timeout, 5xx, 50001/50004/50013/50026,
//! 58124 "being processed", 50042 "repeated request", an unreadable 2xx) is `OutcomeUnknown`
//! — looked up by `clientId` in `transfer-state`, never resent blindly. A read that fails the
//! same way is `Unreachable` and safe to repeat.

use std::time::Duration;

use serde::Deserialize;

use crate::venue::common::transport::unknown_or_unreachable;
pub use crate::venue::common::transport::{from_transport, short, Effect};
use crate::venue::VenueError;

/// The envelope's status part; `data` is read by `parse`.
#[derive(Debug, Deserialize)]
pub struct Status {
    pub code: String,
    #[serde(default)]
    pub msg: String,
}

impl Status {
    pub fn parse(body: &str) -> Option<Status> {
        serde_json::from_str(body).ok()
    }
}

pub const OK: &str = "0";
/// "Timestamp request expired": rejected before processing; resync and retry once.
pub const TIMESTAMP_EXPIRED: &str = "50102";
/// "Rate limit reached" (HTTP 200 or 429).
pub const RATE_LIMITED: &str = "50011";
/// The transfer endpoint's own throttle (HTTP 429).
pub const TRANSFER_RATE_LIMITED: &str = "58102";
/// "Fund transfers are unavailable while perpetual contracts are charging funding fees."
pub const FUNDING_FEE_PAUSE: &str = "58111";
/// What `transfer-state` has been seen to answer for an unknown `clientId` (third-party,
/// unconfirmed): "Parameter error" and "{param} is incorrect".
pub const NOT_FOUND_CODES: [&str; 2] = ["51000", "58129"];

/// Maps an answer that is not a success: its HTTP status, its body and what the call does.
pub fn from_answer(
    status: u16,
    body: &str,
    effect: Effect,
    retry_after: Option<Duration>,
) -> VenueError {
    match Status::parse(body) {
        Some(s) if s.code != OK => from_code(&s.code, &s.msg, status, effect, retry_after),
        _ => match status {
            429 => VenueError::RateLimited { retry_after },
            500..=599 => unknown_or_unreachable(effect, &format!("HTTP {status}: {}", short(body))),
            200..=299 => match effect {
                Effect::MovesMoney => VenueError::OutcomeUnknown {
                    detail: format!(
                        "the transfer was answered {status} with an unreadable body: {}",
                        short(body)
                    ),
                },
                Effect::Read => VenueError::Malformed {
                    detail: format!("HTTP {status} without an OKX envelope"),
                    raw: body.to_string(),
                },
            },
            _ => VenueError::Rejected {
                code: format!("HTTP {status}"),
                message: short(body),
            },
        },
    }
}

/// Maps an OKX error code (okx.md §6).
pub fn from_code(
    code: &str,
    msg: &str,
    status: u16,
    effect: Effect,
    retry_after: Option<Duration>,
) -> VenueError {
    let message = format!("{code}: {msg}");
    match code {
        RATE_LIMITED | TRANSFER_RATE_LIMITED => VenueError::RateLimited { retry_after },
        // May or may not have been processed.
        "50001" | "50004" | "50013" | "50026" => unknown_or_unreachable(effect, &message),
        "58124" | "50042" => unknown_or_unreachable(effect, &message),
        // Rejected before processing because of the clock (the HTTP layer resyncs and retries
        // once before this surfaces).
        TIMESTAMP_EXPIRED => VenueError::Unreachable { detail: message },
        // Kept as its code: the transfer waits it out and retries (see `OkxVenue::transfer`).
        FUNDING_FEE_PAUSE => VenueError::Rejected {
            code: code.to_string(),
            message: msg.to_string(),
        },
        // Transfers paused or risk-controlled: nothing moved; try again later.
        "58101" | "58110" | "58120" => VenueError::Unreachable {
            detail: format!("transfer refused for now ({message}); nothing moved"),
        },
        "50101" => VenueError::Auth {
            message: format!("{message} (a demo-trading key needs demo = true, a production key demo = false)"),
        },
        "50119" => VenueError::Auth {
            message: format!("{message} (a key made on my.okx.com needs region = \"eea\", one made on app.okx.com region = \"us\")"),
        },
        "50110" => VenueError::Auth {
            message: format!("{message} (add this machine's address to the key's IP whitelist)"),
        },
        "50030" | "50120" => VenueError::Auth {
            message: format!("{message} (the key needs the Trade permission, which covers funding transfers)"),
        },
        "50035" | "50103" | "50104" | "50105" | "50106" | "50107" | "50111" | "50112"
        | "50113" | "50114" => VenueError::Auth { message },
        "50038" => VenueError::Unsupported {
            message: format!("{message}: this feature is not available in demo trading"),
        },
        _ if (500..=599).contains(&status) => unknown_or_unreachable(effect, &message),
        _ => VenueError::Rejected {
            code: code.to_string(),
            message: msg.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Retry;

    fn env(code: &str) -> String {
        format!(r#"{{"code":"{code}","msg":"m","data":[]}}"#)
    }

    #[test]
    fn maybe_answers_on_a_transfer_are_unknown_and_on_a_read_retryable() {
        for (status, code) in [
            (400, "50004"),
            (503, "50001"),
            (500, "50026"),
            (429, "50013"),
            (200, "58124"),
            (200, "50042"),
        ] {
            let transfer = from_answer(status, &env(code), Effect::MovesMoney, None);
            assert_eq!(transfer.retry(), Retry::AfterReconcile, "{code}");
            assert_eq!(
                from_answer(status, &env(code), Effect::Read, None).retry(),
                Retry::Safe,
                "{code}"
            );
        }
        let html = from_answer(502, "<html>bad gateway</html>", Effect::MovesMoney, None);
        assert_eq!(html.retry(), Retry::AfterReconcile);
        let unreadable = from_answer(200, "{\"code\":", Effect::MovesMoney, None);
        assert!(matches!(unreadable, VenueError::OutcomeUnknown { .. }));
        let read = from_answer(200, "<html>", Effect::Read, None);
        assert!(matches!(read, VenueError::Malformed { .. }));
    }

    #[test]
    fn codes_carry_their_retry_semantics() {
        let case = |status, code: &str| from_answer(status, &env(code), Effect::MovesMoney, None);
        assert!(matches!(case(401, "50113"), VenueError::Auth { .. }));
        assert!(matches!(case(401, "50105"), VenueError::Auth { .. }));
        assert!(case(200, "50119").to_string().contains("eea"));
        assert!(case(401, "50101").to_string().contains("demo"));
        assert!(matches!(case(200, "58111"), VenueError::Rejected { code, .. } if code == "58111"));
        assert_eq!(case(200, "58110").retry(), Retry::Safe);
        assert_eq!(case(401, "50102").retry(), Retry::Safe);
        assert_eq!(case(200, "58116").retry(), Retry::Never);
        assert!(matches!(case(200, "50011"), VenueError::RateLimited { .. }));
        assert!(matches!(case(429, "50011"), VenueError::RateLimited { .. }));
        assert!(matches!(case(429, "58102"), VenueError::RateLimited { .. }));
        assert!(matches!(case(200, "50038"), VenueError::Unsupported { .. }));
    }
}
