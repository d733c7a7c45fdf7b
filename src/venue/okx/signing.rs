//! OKX v5 request signing (shared/exchanges/okx.md §2).
//!
//! `OK-ACCESS-SIGN` = Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)),
//! where `requestPath` carries the query string exactly as sent and `body` is the exact JSON
//! text sent (empty for GET). The secret is used as its UTF-8 bytes — it looks like hex but is
//! never hex-decoded. Pure: no clock, no I/O, so the reference's vectors pin it byte for byte.
//!
//! The WebSocket login (okx.md §2.3) signs the same way over `timestamp + "GET" +
//! "/users/self/verify"`, where the timestamp is whole Unix *seconds*, not the REST header's
//! ISO milliseconds.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::Timestamp;

/// The exact bytes that are signed.
pub fn prehash(timestamp: &str, method: &str, path_and_query: &str, body: &str) -> String {
    format!("{timestamp}{method}{path_and_query}{body}")
}

/// Base64 (standard, padded) HMAC-SHA256 of `prehash` under the secret's UTF-8 bytes.
pub fn sign(secret: &[u8], prehash: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(prehash.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `OK-ACCESS-TIMESTAMP`: ISO 8601 UTC with milliseconds and a literal `Z`,
/// e.g. `2020-12-08T09:08:57.715Z`.
pub fn iso_timestamp(at: Timestamp) -> String {
    format!(
        "{}T{}.{:03}Z",
        at.date(),
        at.hh_mm_ss(),
        at.as_millis().rem_euclid(1000)
    )
}

/// The WebSocket login's fixed request path; its method is always `GET`.
pub const LOGIN_PATH: &str = "/users/self/verify";

/// The login's `timestamp`: whole Unix seconds (rounded down), e.g. `1704876947`. OKX expires
/// the login 30 s after it, so the caller passes the server-corrected clock.
pub fn login_timestamp(at: Timestamp) -> String {
    at.as_millis().div_euclid(1000).to_string()
}

/// The exact bytes the WebSocket login signs.
pub fn login_prehash(timestamp: &str) -> String {
    prehash(timestamp, "GET", LOGIN_PATH, "")
}

/// Compares two signatures in time independent of where they differ.
pub fn signatures_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// okx.md §2.2: the docs' example secret; every vector checked there three ways (Python
    /// `hmac`, python-okx 0.4.4, ccxt 4.5.90).
    const SECRET: &[u8] = b"22582BD0CFF14C41EDBF1AB98506286D";
    const TS: &str = "2020-12-08T09:08:57.715Z";

    #[test]
    fn reproduces_the_reference_vectors() {
        let cases = [
            (
                "GET",
                "/api/v5/account/balance?ccy=BTC",
                "",
                "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=",
            ),
            (
                "GET",
                "/api/v5/account/balance",
                "",
                "AkD5YszBhggtIyjDlmTy/9PpNVntel+1Lff8wh0qpQw=",
            ),
            (
                "GET",
                "/api/v5/account/config",
                "",
                "Kr/8IrbDYujS4cg2KkmB+tO2HMUXxyayG6ZwNb4H/yA=",
            ),
            (
                "GET",
                "/api/v5/asset/transfer-state?clientId=topup0001",
                "",
                "mSTk1l8SrtsnrXVPW1zkDX7D3ejsTB9xaxD62YpUO1k=",
            ),
            (
                "GET",
                "/api/v5/asset/transfer-state?transId=754147&type=0",
                "",
                "0qIsWe/hkWHg5XLTrfcijpD453XpZ6NiVPrOEO8ei60=",
            ),
            (
                "POST",
                "/api/v5/asset/transfer",
                r#"{"ccy":"USDT","amt":"25.5","from":"6","to":"18","type":"0","clientId":"topup0001"}"#,
                "wtG2LdPDVQbCtoXERSICc+BnwuKjFHsVMgXr2M79e7U=",
            ),
            (
                "POST",
                "/api/v5/asset/transfer",
                r#"{"ccy": "USDT", "amt": "25.5", "from": "6", "to": "18", "type": "0", "clientId": "topup0001"}"#,
                "LM/Uf5lNDkJzbNYhG3jgSUjE1SPckN9516ZRXQTMUhY=",
            ),
        ];
        for (method, path, body, expected) in cases {
            assert_eq!(
                sign(SECRET, &prehash(TS, method, path, body)),
                expected,
                "{method} {path} {body}"
            );
        }
        // Vector 8: the WebSocket login, seconds and a fixed path.
        assert_eq!(
            sign(
                SECRET,
                &prehash("1704876947", "GET", "/users/self/verify", "")
            ),
            "5/36BgGV6m/6pmdc20zdqk0mzF5ZalmzzPD2fo3wavU="
        );
    }

    #[test]
    fn the_query_is_signed_and_the_secret_is_not_hex_decoded() {
        let with_query = sign(
            SECRET,
            &prehash(TS, "GET", "/api/v5/account/balance?ccy=BTC", ""),
        );
        let without = sign(SECRET, &prehash(TS, "GET", "/api/v5/account/balance", ""));
        assert_ne!(with_query, without);
        let decoded = hex::decode("22582BD0CFF14C41EDBF1AB98506286D").unwrap();
        let wrong = sign(
            &decoded,
            &prehash(TS, "GET", "/api/v5/account/balance?ccy=BTC", ""),
        );
        assert_eq!(wrong, "7gOiWzlkocSfqFWm0vH09C2jmmxEioZXIfRUrjlq2Sk=");
        assert_ne!(wrong, with_query);
    }

    #[test]
    fn the_websocket_login_signs_whole_seconds_over_the_fixed_path() {
        // Vector 8, reached from a millisecond clock reading inside that second.
        let timestamp = login_timestamp(Timestamp(1_704_876_947_999));
        assert_eq!(timestamp, "1704876947");
        assert_eq!(login_prehash(&timestamp), "1704876947GET/users/self/verify");
        assert_eq!(
            sign(SECRET, &login_prehash(&timestamp)),
            "5/36BgGV6m/6pmdc20zdqk0mzF5ZalmzzPD2fo3wavU="
        );
        assert_eq!(login_timestamp(Timestamp(1_704_876_947_000)), "1704876947");
    }

    #[test]
    fn timestamps_are_iso_with_milliseconds() {
        // 2020-12-08T09:08:57.715Z, the docs' example instant.
        assert_eq!(iso_timestamp(Timestamp(1_607_418_537_715)), TS);
        assert_eq!(
            iso_timestamp(Timestamp(1_607_418_537_005)),
            "2020-12-08T09:08:57.005Z"
        );
    }

    #[test]
    fn signature_comparison_is_exact() {
        let s = "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=";
        assert!(signatures_match(s, s));
        assert!(!signatures_match(s, &s.to_lowercase()));
        assert!(!signatures_match(s, &s[1..]));
    }
}
