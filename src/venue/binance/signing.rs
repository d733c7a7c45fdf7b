//! HMAC-SHA256 request signing, as Binance documents it for `SIGNED` endpoints.
//!
//! `totalParams` is the query string concatenated with the request body (this adapter sends
//! everything in the query string, so the body is empty); the signature is the lower-case hex
//! HMAC-SHA256 of those exact bytes under the secret key, appended last as `&signature=`.
//! Pure: no clock, no I/O, so the documented examples pin it byte for byte.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex HMAC-SHA256 of `payload` under `secret`.
pub fn sign(secret: &[u8], payload: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares two hex signatures without leaking where they differ through timing; Binance
/// says the HMAC signature is not case sensitive.
pub fn signatures_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shared/exchanges/binance.md §2.2: the USDⓈ-M futures docs' "SIGNED Endpoint Examples
    /// for POST /fapi/v1/order - HMAC Keys", Example 1.
    /// https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
    const FUTURES_SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

    #[test]
    fn reproduces_the_futures_docs_example_byte_for_byte() {
        let query = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(
            sign(FUTURES_SECRET.as_bytes(), query),
            "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        );
    }

    /// §2.2: the spot docs' example (binance-spot-api-docs rest-api.md, HMAC keys), both the
    /// plain and the percent-encoded non-ASCII payloads.
    #[test]
    fn reproduces_the_spot_docs_examples() {
        let secret = b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        assert_eq!(
            sign(secret, "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        assert_eq!(
            sign(secret, "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"),
            "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
        );
    }

    /// §2.3: the bot's own requests under the futures docs' secret (computed by the note's
    /// author with Python `hmac` and openssl, not published by Binance).
    #[test]
    fn signs_the_bots_own_requests() {
        let secret = FUTURES_SECRET.as_bytes();
        let cases = [
            (
                "type=MAIN_UMFUTURE&asset=USDT&amount=100&recvWindow=5000&timestamp=1591702613943",
                "8816c9d46a8984bc41d121b660a6caa9fa281056adbfce993b2519fc76833798",
            ),
            (
                "recvWindow=5000&timestamp=1591702613943",
                "5581570ecf76b9b74c6f1a66ef6520c2959a75c32641affb2634d655d6e64db8",
            ),
            (
                "type=MAIN_UMFUTURE&startTime=1591702000000&size=100&recvWindow=5000&timestamp=1591702613943",
                "430798629938e5ae25a29286171c5033ab24130a36310e2caf2239d96f14a3af",
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(sign(secret, payload), expected, "{payload}");
        }
    }

    #[test]
    fn signature_comparison_ignores_case_only() {
        let s = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9";
        assert!(signatures_match(s, &s.to_uppercase()));
        assert!(!signatures_match(s, &s[1..]));
        assert!(!signatures_match(s, &s.replace('3', "4")));
    }
}
