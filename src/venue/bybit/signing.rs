//! Bybit v5 request signing (HMAC-SHA256).
//!
//! The string to sign is `timestamp + api_key + recv_window + payload`, where the payload is the
//! exact query string of a GET (nothing after `?` when there is none) or the exact JSON body of a
//! POST, byte for byte as sent. The signature is lower-case hex and travels in `X-BAPI-SIGN`
//! (shared/exchanges/bybit.md §2.2). Pure: no clock, no I/O, so the reference's vectors pin it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The pre-sign string. `payload` is what goes on the wire: the query or the body.
pub fn presign(timestamp_ms: i64, api_key: &str, recv_window_ms: u128, payload: &str) -> String {
    format!("{timestamp_ms}{api_key}{recv_window_ms}{payload}")
}

/// Lower-case hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_hex(secret: &[u8], message: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares two hex signatures in time independent of where they differ.
pub fn signatures_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shared/exchanges/bybit.md §2.3, "Common inputs" (confirmed there with pybit 5.17.0's and
    /// ccxt 4.5.90's own signing code; the docs publish no secret for their examples).
    const KEY: &str = "AbCdEfGhIjKlMnOpQr";
    const SECRET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    const TS: i64 = 1_700_000_000_000;

    fn sign(payload: &str) -> String {
        hmac_hex(SECRET, &presign(TS, KEY, 5000, payload))
    }

    #[test]
    fn vector_a_get_with_a_query() {
        assert_eq!(
            presign(TS, KEY, 5000, "accountType=UNIFIED&coin=USDT"),
            "1700000000000AbCdEfGhIjKlMnOpQr5000accountType=UNIFIED&coin=USDT"
        );
        assert_eq!(
            sign("accountType=UNIFIED&coin=USDT"),
            "31e360a6e0ff8a9aac126c5f39a88b77fe0f88b2b973aa375f2066b02b2d1911"
        );
    }

    #[test]
    fn vector_b_get_without_parameters() {
        assert_eq!(
            sign(""),
            "63282fd2d1b19e36fbdc61c7101f9561d1267cb3b6cdefba55990fce6408cc22"
        );
    }

    #[test]
    fn vector_c_post_compact_body() {
        let body = r#"{"transferId":"0b3f5b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","coin":"USDT","amount":"100","fromAccountType":"FUND","toAccountType":"UNIFIED"}"#;
        assert_eq!(
            sign(body),
            "81d9b66229ca242a94ce703876d7044056f6c2e2d9f77d471f90b1c283542794"
        );
    }

    #[test]
    fn vector_d_whitespace_changes_the_signature() {
        let body = r#"{"transferId": "0b3f5b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "coin": "USDT", "amount": "100", "fromAccountType": "FUND", "toAccountType": "UNIFIED"}"#;
        assert_eq!(
            sign(body),
            "a9f4b431139c3e28951391f8c3bcff4f05a071c87e9d65c4836ccab62f7890e9"
        );
    }

    #[test]
    fn vector_e_websocket_auth() {
        assert_eq!(
            hmac_hex(SECRET, "GET/realtime1700000001000"),
            "fe14fed8adc891bf6a3d7c60ca81e3080a316580df92a72c4902f98cd5c1fa61"
        );
    }

    #[test]
    fn comparison_ignores_case_only() {
        let s = sign("");
        assert!(signatures_match(&s, &s.to_uppercase()));
        assert!(!signatures_match(&s, &s[1..]));
        assert!(!signatures_match(&s, &sign("x")));
    }
}
