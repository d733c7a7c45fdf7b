//! Bybit's answers → `VenueError`, with the retry semantics decided here, once.
//!
//! Bybit reports most failures as a `retCode` inside an HTTP 200 envelope; a few arrive as bare
//! HTTP statuses without JSON (403 "access too frequent", 404, 429, 5xx). The rule that matters:
//! a transfer whose answer never came or cannot be read (timeout, 5xx, 429, retCode 10000 /
//! 10016 / 131230, an unreadable 2xx) is `OutcomeUnknown` and is looked up by its `transferId`;
//! a read that fails the same way is `Unreachable` and safe to repeat. Codes from
//! shared/exchanges/bybit.md §6; key on `retCode`, never on `retMsg`.

use std::time::Duration;

pub use crate::venue::common::transport::{from_transport, short, unknown_or_unreachable, Effect};
use crate::venue::VenueError;

pub const OK: i64 = 0;
pub const SERVER_TIMEOUT: i64 = 10000;
pub const INVALID_TIMESTAMP: i64 = 10002;
pub const INVALID_KEY: i64 = 10003;
pub const INVALID_SIGNATURE: i64 = 10004;
pub const PERMISSION_DENIED: i64 = 10005;
pub const TOO_MANY_VISITS: i64 = 10006;
pub const SERVER_ERROR: i64 = 10016;
pub const ROUTE_NOT_FOUND: i64 = 10017;
pub const INSUFFICIENT_BALANCE: i64 = 131212;
/// "TransferId exist": a transfer with this id was already made. Not a failure: verify it.
pub const TRANSFER_ID_EXISTS: i64 = 131214;
pub const SYSTEM_BUSY: i64 = 131230;

/// Maps a non-zero `retCode`. `retry_after` comes from `X-Bapi-Limit-Reset-Timestamp`.
pub fn from_code(
    code: i64,
    msg: &str,
    effect: Effect,
    retry_after: Option<Duration>,
) -> VenueError {
    let message = format!("{code}: {msg}");
    match code {
        TOO_MANY_VISITS => VenueError::RateLimited { retry_after },
        // Server timeout / server error / "system busy": the request may have been processed.
        SERVER_TIMEOUT | SERVER_ERROR | SYSTEM_BUSY => unknown_or_unreachable(effect, &message),
        // Rejected before processing because of the clock (the HTTP layer resyncs and retries
        // once before this surfaces).
        INVALID_TIMESTAMP => VenueError::Unreachable { detail: message },
        // Key unknown in this environment, bad signature, auth failed, IP not bound, expired.
        INVALID_KEY | INVALID_SIGNATURE | 10007 | 10010 | 33004 => VenueError::Auth { message },
        PERMISSION_DENIED => VenueError::Auth {
            message: format!("{message} (the key lacks a permission this call needs)"),
        },
        10028 => VenueError::Unsupported {
            message: format!(
                "{message}: the account is not a Unified Trading Account; marginguard supports UTA cross margin only"
            ),
        },
        ROUTE_NOT_FOUND => VenueError::Unsupported {
            message: format!("{message}: this host does not serve the endpoint (demo trading has no transfer or key endpoints)"),
        },
        _ => VenueError::Rejected {
            code: code.to_string(),
            message: msg.to_string(),
        },
    }
}

/// Maps an HTTP status outside 2xx whose body is not a Bybit envelope.
pub fn from_status(status: u16, body: &str, effect: Effect) -> VenueError {
    match status {
        401 => VenueError::Auth {
            message: format!(
                "HTTP 401: wrong key or missing auth headers: {}",
                short(body)
            ),
        },
        // "403, access too frequent" is the IP ban; the HTTP layer holds every call for 10 min.
        403 => VenueError::RateLimited {
            retry_after: Some(IP_BAN),
        },
        // System-level frequency protection. For a transfer the docs do not say whether it was
        // processed: look it up.
        429 => match effect {
            Effect::Read => VenueError::RateLimited {
                retry_after: Some(Duration::from_secs(1)),
            },
            Effect::MovesMoney => VenueError::OutcomeUnknown {
                detail: "HTTP 429 (system-level frequency protection) on a transfer".into(),
            },
        },
        408 | 500..=599 => {
            unknown_or_unreachable(effect, &format!("HTTP {status}: {}", short(body)))
        }
        _ => VenueError::Rejected {
            code: format!("HTTP {status}"),
            message: short(body),
        },
    }
}

/// How long Bybit says to stay away after "403, access too frequent".
pub const IP_BAN: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::Retry;

    #[test]
    fn codes_carry_their_retry_semantics() {
        let code = |c, e| from_code(c, "m", e, None);
        assert_eq!(
            code(10000, Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(
            code(10016, Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(
            code(131230, Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(code(10016, Effect::Read).retry(), Retry::Safe);
        assert_eq!(code(10006, Effect::MovesMoney).retry(), Retry::Safe);
        assert_eq!(code(10002, Effect::MovesMoney).retry(), Retry::Safe);
        assert!(matches!(code(10004, Effect::Read), VenueError::Auth { .. }));
        assert!(matches!(code(10003, Effect::Read), VenueError::Auth { .. }));
        assert!(matches!(
            code(10005, Effect::MovesMoney),
            VenueError::Auth { .. }
        ));
        assert_eq!(code(131212, Effect::MovesMoney).retry(), Retry::Never);
        assert!(matches!(
            code(10028, Effect::Read),
            VenueError::Unsupported { .. }
        ));
    }

    #[test]
    fn bare_statuses() {
        assert_eq!(
            from_status(403, "", Effect::Read),
            VenueError::RateLimited {
                retry_after: Some(IP_BAN)
            }
        );
        assert_eq!(
            from_status(502, "<html>", Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(
            from_status(502, "<html>", Effect::Read).retry(),
            Retry::Safe
        );
        assert_eq!(
            from_status(429, "", Effect::MovesMoney).retry(),
            Retry::AfterReconcile
        );
        assert_eq!(from_status(429, "", Effect::Read).retry(), Retry::Safe);
        assert!(matches!(
            from_status(401, "", Effect::Read),
            VenueError::Auth { .. }
        ));
    }
}
