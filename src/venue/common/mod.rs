//! Venue-neutral plumbing the adapters share: nothing here names a venue, a path, a header or
//! a payload. Each adapter keeps its own signing, endpoints, codes and JSON shapes in
//! `venue/<name>/` and calls these plain functions for the parts that are the same everywhere.

pub mod clock_offset;
pub mod credential;
pub mod num;
pub mod settings;
pub mod signed;
pub mod stream;
pub mod transport;
pub mod usage;

/// Whether `url` names this machine (`127.0.0.1`, `::1`, `localhost`): a mock or a proxy the
/// operator runs, not a venue, so limits drawn from a venue's documented behaviour may be
/// relaxed for it.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod loopback_tests {
    use super::is_loopback_url;

    #[test]
    fn only_this_machine_is_loopback() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost/api",
            "http://[::1]:9/x",
            "127.0.0.1:1",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://fapi.binance.com",
            "https://127.0.0.1.example.com",
            "http://10.0.0.1:80",
            "https://localhost.evil.com",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
